"""Faults during an import leave the database exactly as it was: PostgreSQL stopped mid-write, a bad row,
values with quotes and non-ASCII text carried byte for byte."""

import json
import os
import signal
import subprocess
import sys
import time

import etcd3
import psycopg
import pytest

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema, pg_rows
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams

from test_import_golden import db_args, run_module, table_rows

NODE = {"xname": "x3000c0s1b0n0", "nid": 1, "role": "Compute", "mac": "a4:bf:01:3e:1f:a0"}
KERNEL = "http://10.0.0.1/boot/vmlinuz-ü"


def put_records(port, records):
    client = etcd3.client(host="127.0.0.1", port=port)
    client.delete_prefix("/")
    for key, value in records.items():
        client.put(key, value)
    client.close()


def node_record(params):
    return json.dumps({"params": params, "kernel": "/kernel/k1", "cloud-init": {}})


def restart_postgres(service):
    """Start the same cluster again on the same port (the data directory was kept)."""
    argv = [os.path.join(procs.PG_BIN, "postgres"), "-D", os.path.join(service.workdir, "data"), "-p", str(service.port),
            "-k", service.workdir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    proc, _log = procs.spawn("postgres-again", argv, service.workdir, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                             user="postgres")
    again = procs.Service("postgres-again", proc.pid, service.port, service.workdir, service.log, service.extra,
                          stop_signal=signal.SIGINT)
    procs.wait_for_tcp(service.port, proc=proc)
    procs._wait_pg_ready(again)  # pylint: disable=protected-access
    return again


@pytest.fixture
def setup(etcd_server, tmp_path):
    export = tmp_path / "smd.json"
    export.write_text(json.dumps([NODE, dict(NODE, xname="x3000c0s1b0n1", nid=2, mac="a4:bf:01:3e:1f:a1")]))
    put_records(etcd_server.port, {"/kernel/k1": json.dumps({"path": KERNEL}),
                                   "/params/x3000c0s1b0n0": node_record("console=ttyS0 a=1"),
                                   "/params/x3000c0s1b0n1": node_record("console=ttyS0 a=1")})
    return {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "smd_export": str(export)}


def test_postgres_stopped_in_the_middle_of_an_import_leaves_the_database_unchanged(setup, etcd_server):
    service = procs.start_postgres()
    try:
        conninfo = procs.postgres_conninfo(service)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            bss_schema.apply_migrations(conn)
        first = run_module(import_bootparams, dict(setup, **db_args(conninfo)))
        assert first["changed"] is True
        before = table_rows(conninfo)
        put_records(etcd_server.port, {"/kernel/k1": json.dumps({"path": KERNEL}),
                                       "/params/x3000c0s1b0n0": node_record("console=ttyS0 a=2"),
                                       "/params/x3000c0s1b0n1": node_record("console=ttyS0 a=2")})
        original_copy = pg_rows._copy  # pylint: disable=protected-access

        def copy_then_die(conn, table, columns, rows):
            original_copy(conn, table, columns, rows)
            if table == "boot_groups":            # configs and groups written, nodes not yet
                service.stop(keep_workdir=True)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pg_rows, "_copy", copy_then_die)
            broken = run_module(import_bootparams, dict(setup, **db_args(conninfo)))
        assert broken["failed"] and "Failed to import boot parameters" in broken["msg"]
        assert not service.alive()
        service = restart_postgres(service)
        assert table_rows(conninfo) == before
        healed = run_module(import_bootparams, dict(setup, **db_args(conninfo)))
        assert healed["changed"] is True
        assert {row[4] for row in table_rows(conninfo)["served"]} == {"console=ttyS0 a=2"}
    finally:
        service.stop()


def test_bad_row_rolls_back_everything_and_names_the_column(setup, etcd_server, bss_database):
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.put("/endpoint-access/x3000c0s1b0n0/bootscript", "99999999999")   # does not fit BSS's 32-bit column
    client.close()
    result = run_module(import_bootparams, dict(setup, **db_args(bss_database)))
    assert result["failed"] and "nothing written" in result["msg"]
    assert "99999999999" in result["msg"] and "last_epoch" in result["msg"]
    rows = table_rows(bss_database)
    assert rows["nodes"] == [] and rows["configs"] == []


def test_quotes_and_non_ascii_text_are_carried_byte_for_byte(setup, etcd_server, bss_database):
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    params = 'console=ttyS0 motd="it\'s a \\"test\\"" greeting=grüße\u00a0x'
    put_records(etcd_server.port, {"/kernel/k1": json.dumps({"path": KERNEL}),
                                   "/params/x3000c0s1b0n0": node_record(params),
                                   "/params/x3000c0s1b0n1": node_record(params)})
    result = run_module(import_bootparams, dict(setup, **db_args(bss_database)))
    assert result["changed"] is True, result.get("msg")
    configs = table_rows(bss_database)["configs"]
    assert len(configs) == 1
    kernel, _initrd, cmdline, name, _description = configs[0]
    assert (kernel, cmdline) == (KERNEL, params)
    assert name == 'BootGroup(kernel="http://10.0.0.1/boot/vmlinuz-ü",initrd="",' \
                   'params="console=ttyS0 motd=\\"it\'s a \\\\\\"test\\\\\\"\\" greeting=grüße\\u00a0x")'
    assert run_module(import_bootparams, dict(setup, **db_args(bss_database)))["changed"] is False


def test_database_without_schema_is_refused(setup, bss_database):
    result = run_module(import_bootparams, dict(setup, **db_args(bss_database)))
    assert result["failed"] and "run hpc_boot.bss.schema first" in result["msg"]


KILLED_CHILD = r'''
import json, sys, time
sys.path[:0] = {paths!r}
from unittest import mock
from ansible.module_utils import basic
from ansible_collections.hpc_boot.bss.plugins.module_utils import pg_rows
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams
original = pg_rows._copy
def copy_then_hang(conn, table, columns, rows):
    original(conn, table, columns, rows)
    if table == "boot_groups":
        open({marker!r}, "w").close()
        time.sleep(120)
pg_rows._copy = copy_then_hang
payload = json.dumps({{"ANSIBLE_MODULE_ARGS": {args!r}}}).encode()
with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy"):
    import_bootparams.main()
'''


def test_import_process_killed_mid_write_leaves_the_database_unchanged(setup, etcd_server, bss_database, tmp_path):
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    args = dict(setup, **db_args(bss_database))
    assert run_module(import_bootparams, args)["changed"] is True
    before = table_rows(bss_database)
    put_records(etcd_server.port, {"/kernel/k1": json.dumps({"path": KERNEL}),
                                   "/params/x3000c0s1b0n0": node_record("console=ttyS0 killed=1"),
                                   "/params/x3000c0s1b0n1": node_record("console=ttyS0 killed=1")})
    marker = str(tmp_path / "in-transaction")
    code = KILLED_CHILD.format(paths=[p for p in sys.path if p.endswith(("lab", "collections"))], marker=marker, args=args)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # pylint: disable=consider-using-with
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached the middle of its write"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stderr.close()
    assert table_rows(bss_database) == before          # the half-done transaction died with its connection
    healed = run_module(import_bootparams, args)
    assert healed["changed"] is True
    assert {row[4] for row in table_rows(bss_database)["served"]} == {"console=ttyS0 killed=1"}
