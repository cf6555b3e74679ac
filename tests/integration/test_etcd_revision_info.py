"""etcd_revision_info on a real etcd: the revision moves with every write and names the records it saw."""

import etcd3

from ansible_collections.hpc_boot.bss.plugins.modules import etcd_revision_info

from test_import_golden import run_module


def test_revision_follows_writes_and_counts_params_records(etcd_server, etcd_prefix_clean):
    args = {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port}
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.put("/params/x1c0s0b0n0", "{}")
    client.put("/kernel/abc", "{}")
    first = run_module(etcd_revision_info, args)
    assert first["changed"] is False and first["params_keys"] == 1
    client.put("/params/x1c0s0b0n1", "{}")
    second = run_module(etcd_revision_info, args, check=True)
    client.close()
    assert second["revision"] == first["revision"] + 1 and second["params_keys"] == 2


def test_an_etcd_that_does_not_answer_is_named():
    result = run_module(etcd_revision_info, {"etcd_host": "127.0.0.1", "etcd_port": 1, "etcd_timeout": 2})
    assert result["failed"] and "127.0.0.1:1" in result["msg"]
