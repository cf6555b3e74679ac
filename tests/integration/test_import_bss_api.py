"""source=bss_api: a BSS running on its in-memory store is imported from its API, giving the same rows as
the same requests stored in etcd and imported from there."""

import json

import pytest

from hpclab import cluster, procs, smd
from hpclab.bss import launch

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams

from test_import_golden import db_args, run_module, table_rows
from test_import_parity import fresh_db, http


@pytest.fixture(scope="module")
def twins(tmp_path_factory, bss_impl):
    workdir = tmp_path_factory.mktemp("bssapi")
    etcd_server = procs.start_etcd()
    nodes = cluster.generate_nodes(60, seed=11)
    path = workdir / "nodes.json"
    path.write_text(json.dumps(nodes))
    smd_service = smd.start_smd(str(path))
    services = [etcd_server, smd_service]
    try:
        services.append(launch.start_bss("bss-mem-api", "memory", smd_service.url, impl=bss_impl))
        services.append(launch.start_bss("bss-etcd-api", "etcd", smd_service.url, etcd=etcd_server, impl=bss_impl))
        for method, body in cluster.api_payloads(nodes, seed=11):
            for bss in services[2:]:
                status, text = http(bss.url + "/boot/v1/bootparameters", method, body)
                assert status in (200, 201), (bss.name, method, body, status, text)
        yield {"smd": smd_service, "memory": services[2], "etcd": etcd_server}
    finally:
        for service in reversed(services):
            service.stop()


def test_in_memory_bss_imports_like_etcd(twins, postgres_server):
    accept = {"accept_loss_kinds": list(bss_convert.LOSS_KINDS), "smd_url": twins["smd"].url}
    from_api_db = fresh_db(postgres_server, "bssapi_mem")
    from_etcd_db = fresh_db(postgres_server, "bssapi_etcd")
    from_api = run_module(import_bootparams, dict(db_args(from_api_db), source="bss_api", bss_url=twins["memory"].url, **accept))
    from_etcd = run_module(import_bootparams, dict(db_args(from_etcd_db), etcd_host="127.0.0.1", etcd_port=twins["etcd"].port, **accept))
    assert from_api["changed"] and from_etcd["changed"], (from_api.get("msg"), from_etcd.get("msg"))
    api_rows, etcd_rows = table_rows(from_api_db), table_rows(from_etcd_db)
    assert api_rows["served"] == etcd_rows["served"] and len(api_rows["served"]) >= 60
    assert {(l["kind"], l["name"]) for l in from_api["losses"]} == {(l["kind"], l["name"]) for l in from_etcd["losses"]}
    again = run_module(import_bootparams, dict(db_args(from_api_db), source="bss_api", bss_url=twins["memory"].url, **accept))
    assert again["changed"] is False
    for name in ("bssapi_mem", "bssapi_etcd"):
        procs.psql(postgres_server, f"DROP DATABASE {name} WITH (FORCE)")


def test_unreachable_bss_api_is_a_clear_error(postgres_server):
    conninfo = fresh_db(postgres_server, "bssapi_down")
    url = "http://127.0.0.1:%d" % procs.free_port()
    result = run_module(import_bootparams, dict(db_args(conninfo), source="bss_api", bss_url=url, smd_export="/nonexistent.json"))
    assert result["failed"] and url in result["msg"]
    assert table_rows(conninfo)["nodes"] == []
