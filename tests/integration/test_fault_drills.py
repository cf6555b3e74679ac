"""Fault drills (issue 14): a fault in the middle of a write, then what is left, then a rerun to completion.

Each drill ends the same way: what the run was not asked to change (etcd, undeclared nodes, an earlier
snapshot, the database when nothing could be written) is as before, no node is half-written, and a
rerun with the fault gone completes, a further run changing nothing.
"""

import contextlib
import json
import os
import resource
import signal
import subprocess
import types
import uuid

import etcd3
import pytest
import requests

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.modules import bootparams, etcd_snapshot, import_bootparams

from fault_proxy import FaultProxy
from test_import_delta import load_golden, new_db
from test_import_golden import GOLDEN_LOSSES, run_module, db_args, table_rows

NODES = 30
OLD = {"kernel": "http://10.1.0.1/boot/vmlinuz-old", "initrd": "http://10.1.0.1/boot/initrd-old", "params": "console=ttyS0 old=1"}
CONTROL = ["02:00:00:00:02:01", "02:00:00:00:02:02"]


def mac(index):
    return "02:00:00:00:01:%02x" % index


def new_config(index):
    return {"kernel": "http://10.1.0.1/boot/vmlinuz-new", "initrd": "http://10.1.0.1/boot/initrd-new",
            "params": "console=ttyS0 drill.node=%d" % index}


def etcd_state(port):
    client = etcd3.client(host="127.0.0.1", port=port)
    try:
        keys = sorted((meta.key, value) for value, meta in client.get_all())
        return client.status().raft_index, keys
    finally:
        client.close()


def served(bss_url):
    """MAC -> (kernel, initrd, params) of every boot-parameter entry BSS holds."""
    entries = requests.get(bss_url + "/boot/v1/bootparameters", timeout=30).json() or []
    return {m: (entry.get("kernel"), entry.get("initrd"), entry.get("params")) for entry in entries for m in entry.get("macs") or []}


def as_tuple(config):
    return (config["kernel"], config["initrd"], config["params"])


@pytest.fixture
def postgres_bss(postgres_server, golden_smd, request):
    from hpclab.bss.launch import start_bss  # pylint: disable=import-outside-toplevel
    database = "drill_" + uuid.uuid4().hex[:10]
    procs.psql(postgres_server, "CREATE DATABASE %s OWNER %s" % (database, postgres_server.extra["user"]))
    request.addfinalizer(lambda: procs.psql(postgres_server, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database))
    target = types.SimpleNamespace(port=postgres_server.port, extra=dict(postgres_server.extra, dbname=database))
    service = start_bss("bss-drill", "postgres", golden_smd.url, postgres=target)
    request.addfinalizer(service.stop)
    return service


@pytest.mark.parametrize("mode", ["before", "after"])
def test_bss_answering_500_to_a_third_of_the_puts_of_a_bulk_apply(postgres_bss, etcd_server, mode):
    seed = dict(OLD, macs=[mac(i) for i in range(NODES)])
    assert requests.put(postgres_bss.url + "/boot/v1/bootparameters", json=seed, timeout=30).status_code == 200
    control = dict(OLD, macs=CONTROL, params="console=ttyS0 control=1")
    assert requests.put(postgres_bss.url + "/boot/v1/bootparameters", json=control, timeout=30).status_code == 200
    before, etcd_before = served(postgres_bss.url), etcd_state(etcd_server.port)
    declarations = [dict(new_config(i), macs=[mac(i)]) for i in range(NODES)]
    proxy = FaultProxy(postgres_bss.url, every=3, mode=mode)
    try:
        failed = run_module(bootparams, {"url": proxy.url, "declarations": declarations, "retries": 0})
        assert failed["failed"] is True and "PUT" in failed["msg"] and "HTTP 500" in failed["msg"]
        assert 0 < len(failed["requests"]) < NODES, "the run stopped at the first refused PUT"
        after = served(postgres_bss.url)
        written = {m for raw, _status, reached in proxy.puts if reached for m in json.loads(raw)["macs"]}
        for index in range(NODES):
            expected = new_config(index) if mac(index) in written else OLD
            assert after[mac(index)] == as_tuple(expected), "node %d is either as before or as declared" % index
        assert {m: after[m] for m in CONTROL} == {m: before[m] for m in CONTROL}, "undeclared nodes as before"
        assert etcd_state(etcd_server.port) == etcd_before, "etcd as before"

        proxy.every = 0
        proxy.puts.clear()
        rerun = run_module(bootparams, {"url": proxy.url, "declarations": declarations, "retries": 0})
        assert rerun["changed"] is True and not rerun.get("failed"), rerun.get("msg")
        assert len(proxy.puts) == NODES - len(written), "the rerun writes only the nodes still as before"
        final = served(postgres_bss.url)
        assert all(final[mac(i)] == as_tuple(new_config(i)) for i in range(NODES))
        assert {m: final[m] for m in CONTROL} == {m: before[m] for m in CONTROL}
        proxy.puts.clear()
        assert run_module(bootparams, {"url": proxy.url, "declarations": declarations})["changed"] is False
        assert proxy.puts == []
    finally:
        proxy.stop()


@contextlib.contextmanager
def small_disk(tmp_path, size_kb):
    """``(directory, mounted)``: a tmpfs of ``size_kb`` when root may mount one, else a plain directory."""
    target = tmp_path / "small-disk"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0700" % size_kb, "tmpfs", str(target)],
                             capture_output=True, check=False).returncode == 0
    try:
        yield str(target), mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(target)], check=True)


def fill(directory, leave_bytes):
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with open(os.path.join(directory, "filler"), "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


def snapshot_in_child(args, max_file_bytes):
    """Run the module in a forked child whose files may not grow past ``max_file_bytes`` (RLIMIT_FSIZE)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_end)
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
            result = run_module(etcd_snapshot, args)
        except BaseException as exc:  # pylint: disable=broad-except
            result = {"failed": True, "msg": "child: %r" % exc}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)  # pylint: disable=protected-access
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_disk_full_while_writing_the_etcd_snapshot(etcd_server, golden_dir, tmp_path):
    client, _decoded = load_golden(etcd_server.port, golden_dir)
    client.close()
    etcd_before = etcd_state(etcd_server.port)
    with small_disk(tmp_path, 4096) as (directory, disk):
        path = os.path.join(directory, "bss-etcd.db")
        args = {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "path": path, "verify": "etcdctl"}
        first = run_module(etcd_snapshot, args)
        assert first["changed"] is True, first.get("msg")
        earlier = {name: etcd_snapshot.sha256_of(os.path.join(directory, name)) for name in os.listdir(directory)}
        size = os.path.getsize(path)

        if disk:
            fill(directory, size // 2)
            failed = run_module(etcd_snapshot, dict(args, force=True))
        else:
            failed = snapshot_in_child(dict(args, force=True), size // 2)
        assert failed["failed"] is True
        assert "Failed to save etcd snapshot '%s'" % path in failed["msg"]
        assert ("No space left on device" if disk else "File too large") in failed["msg"]
        left = {name: etcd_snapshot.sha256_of(os.path.join(directory, name)) for name in os.listdir(directory) if name != "filler"}
        assert left == earlier, "the earlier snapshot and its sidecar are untouched and no partial file is left"
        assert etcd_state(etcd_server.port) == etcd_before, "etcd as before"

        if disk:
            os.unlink(os.path.join(directory, "filler"))
        rerun = run_module(etcd_snapshot, dict(args, force=True))
        assert rerun["changed"] is True and rerun["verified_with"] == "etcdctl", rerun.get("msg")
        assert sorted(os.listdir(directory)) == ["bss-etcd.db", "bss-etcd.db.json"]
        assert run_module(etcd_snapshot, args)["changed"] is False, "the new snapshot matches its sidecar"


def test_etcd_compacted_past_the_backup_revision_before_the_delta_sync(etcd_server, postgres_server, golden_dir):
    client, decoded = load_golden(etcd_server.port, golden_dir)
    base = {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "smd_export": os.path.join(golden_dir, "smd-nodes.json"),
            "accept_loss_kinds": GOLDEN_LOSSES}
    database = new_db(postgres_server, "drill_compacted")
    try:
        full = run_module(import_bootparams, dict(base, **db_args(database)))
        assert full["changed"] is True, full.get("msg")
        backup_revision = full["revision"]
        changed_key = "/params/x3000c0s1b0n0"
        record = json.loads(decoded[changed_key])
        record["params"] = (record.get("params") or "") + " drill.changed=1"
        client.put(changed_key, json.dumps(record))
        latest = client.put("/params/unused-filler", json.dumps({"params": "y"})).header.revision
        client.delete("/params/unused-filler")
        client.compact(latest)
        rows_before, etcd_before = table_rows(database), etcd_state(etcd_server.port)

        delta = dict(base, since_revision=backup_revision, mode="merge", **db_args(database))
        failed = run_module(import_bootparams, delta)
        assert failed["failed"] is True
        assert "revision %d has been compacted" % backup_revision in failed["msg"] and "import again" in failed["msg"]
        assert table_rows(database) == rows_before, "the database as before"
        assert etcd_state(etcd_server.port) == etcd_before, "etcd as before"

        rerun = run_module(import_bootparams, dict(base, **db_args(database)))
        assert rerun["changed"] is True and rerun["revision"] > backup_revision, rerun.get("msg")
        assert any("drill.changed=1" in row[4] for row in table_rows(database)["served"])
        assert run_module(import_bootparams, dict(base, **db_args(database)))["changed"] is False
    finally:
        client.close()
        procs.psql(postgres_server, "DROP DATABASE IF EXISTS drill_compacted WITH (FORCE)")


def test_postgres_restarted_during_a_bootparams_apply_of_1000_nodes(golden_smd, etcd_server, request):
    """PostgreSQL stops under BSS at the 300th PUT of 1,000 and comes back; the apply fails clearly, no node
    is half-written, and the rerun against the restarted database completes."""
    from hpclab.bss.launch import start_bss  # pylint: disable=import-outside-toplevel
    from test_import_faults import restart_postgres  # pylint: disable=import-outside-toplevel
    count = 1000
    database = {"service": procs.start_postgres(name="postgres-drill")}

    def stop_current_database():  # the service object changes when the database is restarted
        database["service"].stop()

    request.addfinalizer(stop_current_database)
    bss = start_bss("bss-drill-1000", "postgres", golden_smd.url, postgres=database["service"])
    request.addfinalizer(bss.stop)
    macs = ["02:00:00:%02x:%02x:%02x" % (3, i // 256, i % 256) for i in range(count)]
    assert requests.put(bss.url + "/boot/v1/bootparameters", json=dict(OLD, macs=macs), timeout=60).status_code == 200
    etcd_before = etcd_state(etcd_server.port)
    declarations = [dict(new_config(i), macs=[m]) for i, m in enumerate(macs)]

    def stop_database(number):
        if number == 300:
            database["service"].stop(keep_workdir=True)

    proxy = FaultProxy(bss.url, every=0)
    proxy.before_put = stop_database
    try:
        failed = run_module(bootparams, {"url": proxy.url, "declarations": declarations, "retries": 0})
        assert failed["failed"] is True and "PUT" in failed["msg"], failed.get("msg")
        assert 299 <= len(failed["requests"]) < count
        database["service"] = restart_postgres(database["service"])
        after = served(bss.url)
        fresh = [i for i, m in enumerate(macs) if after[m] == as_tuple(new_config(i))]
        assert all(after[m] == as_tuple(OLD) for i, m in enumerate(macs) if i not in set(fresh)), "no node half-written"
        assert 299 <= len(fresh) <= 300
        assert etcd_state(etcd_server.port) == etcd_before, "etcd as before"

        proxy.before_put = None
        proxy.puts.clear()
        rerun = run_module(bootparams, {"url": proxy.url, "declarations": declarations})
        assert rerun["changed"] is True and not rerun.get("failed"), rerun.get("msg")
        assert len(proxy.puts) == count - len(fresh), "the rerun writes only what the first run did not"
        final = served(bss.url)
        assert all(final[m] == as_tuple(new_config(i)) for i, m in enumerate(macs))
        proxy.puts.clear()
        assert run_module(bootparams, {"url": proxy.url, "declarations": declarations})["changed"] is False
        assert proxy.puts == []
    finally:
        proxy.stop()
