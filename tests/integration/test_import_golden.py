"""hpc_boot.bss.import_bootparams against a real etcd holding the golden upstream key space and a real PostgreSQL.

The module runs through its main() with real arguments (check, apply, apply again, diff), and once
through ``ansible localhost -m`` so the collection wiring is exercised too.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
from unittest import mock

import etcd3
import psycopg
import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN_LOSSES = ["cloud_init", "global_cloud_init", "tag_record", "unknown_mac_record", "unknown_nid_record"]


def run_module(module, args, check=False, diff=False):
    """Run a module's main() in-process; returns its JSON result (failed results included)."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff,
                                           _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    out = io.StringIO()
    with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps(payload))), \
            mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy"), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue())


def db_args(conninfo):
    parts = dict(item.split("=", 1) for item in conninfo.split())
    return {"db_host": parts["host"], "db_port": int(parts["port"]), "db_name": parts["dbname"],
            "db_user": parts["user"], "db_password": parts["password"], "db_sslmode": "disable"}


def table_rows(conninfo):
    with psycopg.connect(conninfo) as conn:
        return {
            "nodes": sorted(conn.execute("SELECT boot_mac, xname, nid FROM nodes").fetchall()),
            "configs": sorted(conn.execute(
                "SELECT c.kernel_uri, c.initrd_uri, c.cmdline, g.name, g.description FROM boot_configs c"
                " JOIN boot_groups g ON g.boot_config_id = c.id").fetchall()),
            "served": sorted(conn.execute(
                "SELECT n.boot_mac, n.xname, n.nid, c.kernel_uri, c.cmdline FROM nodes n"
                " JOIN boot_group_assignments a ON a.node_id = n.id JOIN boot_groups g ON g.id = a.boot_group_id"
                " JOIN boot_configs c ON c.id = g.boot_config_id").fetchall()),
            "endpoint_access": sorted(conn.execute("SELECT name, endpoint, last_epoch FROM endpoint_access").fetchall()),
            "ids": sorted(conn.execute("SELECT id FROM nodes").fetchall()),
        }


@pytest.fixture
def golden_etcd(etcd_server, golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
        decoded = json.load(handle)
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.delete_prefix("/")
    for key, value in decoded.items():
        client.put(key, value)
    client.close()
    return etcd_server


@pytest.fixture
def bss_db(bss_database):
    with psycopg.connect(bss_database) as conn:
        conn.autocommit = True
        bss_schema.apply_migrations(conn)
    return bss_database


def import_args(golden_etcd, golden_dir, bss_db, **extra):
    args = {"etcd_host": "127.0.0.1", "etcd_port": golden_etcd.port, "smd_export": os.path.join(golden_dir, "smd-nodes.json")}
    args.update(db_args(bss_db))
    args.update(extra)
    return args


def test_strict_import_stops_on_unaccepted_losses_and_writes_nothing(golden_etcd, golden_dir, bss_db):
    result = run_module(import_bootparams, import_args(golden_etcd, golden_dir, bss_db, accept_loss_kinds=["cloud_init"]))
    assert result["failed"] and "not accepted" in result["msg"]
    assert "global_cloud_init:Global" in result["msg"] and "unknown_nid_record:nid100" in result["msg"]
    assert {loss["kind"] for loss in result["unaccepted_losses"]} == set(GOLDEN_LOSSES) - {"cloud_init"}
    assert table_rows(bss_db)["nodes"] == []


def test_import_check_apply_and_idempotence(golden_etcd, golden_dir, bss_db):
    args = import_args(golden_etcd, golden_dir, bss_db, accept_loss_kinds=GOLDEN_LOSSES)
    planned = run_module(import_bootparams, args, check=True, diff=True)
    assert planned["changed"] is True and planned["plan"]["insert_nodes"] == 6
    assert planned["diff"]["after"]["nodes"] == 6
    assert table_rows(bss_db)["nodes"] == []

    applied = run_module(import_bootparams, args, diff=True)
    assert applied["changed"] is True, applied
    rows = table_rows(bss_db)
    assert rows["nodes"] == [("a4:bf:01:3e:1f:a0", "x3000c0s1b0n0", 1), ("a4:bf:01:3e:1f:a1", "x3000c0s1b0n1", 2),
                             ("a4:bf:01:3e:1f:b0", "x3000c0s2b0n0", 3), ("de:ad:be:ef:00:04", "x3000c0s3b0n0", 4),
                             ("de:ad:be:ef:00:05", "x3000c0s4b0n0", 5), ("de:ad:be:ef:00:06", "x3000c0s5b0n0", 6)]
    served = {row[1]: row[3:] for row in rows["served"]}
    assert served["x3000c0s5b0n0"] == ("http://10.0.0.1/boot/vmlinuz-default", "console=ttyS0 default_boot=1")
    assert ("x3000c0s2b0n0", "bootscript", 1795566826) in rows["endpoint_access"]
    for kernel, initrd, cmdline, name, description in rows["configs"]:
        assert name == 'BootGroup(kernel="%s",initrd="%s",params="%s")' % (kernel, initrd, cmdline)
        assert description.startswith('Boot group for nodes with kernel="%s"' % kernel)

    again = run_module(import_bootparams, args, diff=True)
    assert again["changed"] is False and not any(again["plan"].values())
    assert table_rows(bss_db)["ids"] == rows["ids"]


def test_replace_removes_foreign_rows_and_merge_keeps_them(golden_etcd, golden_dir, bss_db):
    with psycopg.connect(bss_db) as conn:
        conn.execute("INSERT INTO nodes VALUES ('n-foreign', 'aa:aa:aa:aa:aa:aa', '', 0), ('n-clash', '', 'x3000c0s1b0n0', 0)")
        conn.execute("INSERT INTO boot_configs VALUES ('c-foreign', 'http://k', '', 'x=1')")
        conn.execute("INSERT INTO boot_groups VALUES ('g-foreign', 'c-foreign', 'BootGroup(kernel=\"http://k\",initrd=\"\",params=\"x=1\")',"
                     " 'Boot group for nodes with kernel=\"http://k\" initrd=\"\" params=\"x=1\"')")
        conn.execute("INSERT INTO boot_group_assignments VALUES ('g-foreign', 'n-foreign'), ('g-foreign', 'n-clash')")
    merged = run_module(import_bootparams, import_args(golden_etcd, golden_dir, bss_db, mode="merge", strict=False))
    assert merged["changed"] is True
    nodes = table_rows(bss_db)["nodes"]
    assert ("aa:aa:aa:aa:aa:aa", "", 0) in nodes          # unrelated row kept
    assert ("", "x3000c0s1b0n0", 0) not in nodes          # would have shadowed the imported node: removed
    replaced = run_module(import_bootparams, import_args(golden_etcd, golden_dir, bss_db, strict=False))
    assert replaced["changed"] is True
    rows = table_rows(bss_db)
    assert len(rows["nodes"]) == 6 and ("aa:aa:aa:aa:aa:aa", "", 0) not in rows["nodes"]
    assert all(not name.endswith('params="x=1")') for _k, _i, _c, name, _d in rows["configs"])


def test_etcd_unreachable_is_a_clear_error(golden_dir, bss_db, etcd_server):
    from hpclab import procs
    args = {"etcd_host": "127.0.0.1", "etcd_port": procs.free_port(), "etcd_timeout": 2,
            "smd_export": os.path.join(golden_dir, "smd-nodes.json")}
    args.update(db_args(bss_db))
    result = run_module(import_bootparams, args)
    assert result["failed"] and "Failed to connect to etcd at 127.0.0.1:%d" % args["etcd_port"] in result["msg"]
    assert table_rows(bss_db)["nodes"] == []
    del etcd_server


def test_wrong_database_password_is_a_clear_error(golden_etcd, golden_dir, bss_db):
    args = import_args(golden_etcd, golden_dir, bss_db, strict=False)
    args["db_password"] = "wrong-password"
    result = run_module(import_bootparams, args)
    assert result["failed"] and "Failed to connect to database" in result["msg"]
    assert "wrong-password" not in json.dumps(result)


def test_duplicate_mac_in_smd_is_an_error_naming_both_nodes(golden_etcd, golden_dir, bss_db, tmp_path):
    with open(os.path.join(golden_dir, "smd-nodes.json"), encoding="utf-8") as handle:
        nodes = json.load(handle)
    nodes[1]["mac"] = nodes[0]["mac"].upper()
    export = tmp_path / "smd.json"
    export.write_text(json.dumps(nodes))
    result = run_module(import_bootparams, import_args(golden_etcd, golden_dir, bss_db, strict=False, smd_export=str(export)))
    assert result["failed"]
    assert "MAC 'a4:bf:01:3e:1f:a0' on two nodes: 'x3000c0s1b0n0' and 'x3000c0s1b0n1'" in result["msg"]
    assert table_rows(bss_db)["nodes"] == []


def test_smd_missing_nodes_become_losses(golden_etcd, golden_dir, bss_db, tmp_path):
    with open(os.path.join(golden_dir, "smd-nodes.json"), encoding="utf-8") as handle:
        nodes = json.load(handle)
    export = tmp_path / "smd.json"
    export.write_text(json.dumps(nodes[1:]))
    result = run_module(import_bootparams, import_args(golden_etcd, golden_dir, bss_db, smd_export=str(export),
                                                       accept_loss_kinds=GOLDEN_LOSSES))
    assert result["failed"] and "unknown_xname_record:x3000c0s1b0n0" in result["msg"]
    assert table_rows(bss_db)["nodes"] == []


def test_ansible_adhoc_runs_the_module(golden_etcd, golden_dir, bss_db):
    args = import_args(golden_etcd, golden_dir, bss_db, strict=False)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, "-m", "hpc_boot.bss.import_bootparams",
               "-a", json.dumps(args), "--check", "-o"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"insert_nodes": 6' in result.stdout or '"insert_nodes":6' in result.stdout
    assert table_rows(bss_db)["nodes"] == []
