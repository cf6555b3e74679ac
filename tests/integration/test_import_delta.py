"""Delta sync (freeze-and-sync): only what changed in etcd after the snapshot's revision is written, deletions included."""

import json
import os

import etcd3
import psycopg

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
from ansible_collections.hpc_boot.bss.plugins.modules import etcd_snapshot, import_bootparams

from test_import_golden import GOLDEN_LOSSES, db_args, run_module, table_rows


def load_golden(port, golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
        decoded = json.load(handle)
    client = etcd3.client(host="127.0.0.1", port=port)
    client.delete_prefix("/")
    for key, value in decoded.items():
        client.put(key, value)
    return client, decoded


def new_db(postgres_server, name):
    procs.psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    procs.psql(postgres_server, f"CREATE DATABASE {name} OWNER bssuser")
    conninfo = procs.postgres_conninfo(postgres_server, dbname=name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    return conninfo


def test_delta_sync_writes_changed_and_deleted_records_only(etcd_server, postgres_server, golden_dir, tmp_path):
    client, decoded = load_golden(etcd_server.port, golden_dir)
    base = {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "smd_export": os.path.join(golden_dir, "smd-nodes.json"),
            "accept_loss_kinds": GOLDEN_LOSSES}
    synced_db = new_db(postgres_server, "delta_synced")
    assert run_module(import_bootparams, dict(base, **db_args(synced_db)))["changed"] is True
    snapshot = run_module(etcd_snapshot, {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "path": str(tmp_path / "s.db")})
    revision = snapshot["revision"]
    with psycopg.connect(synced_db) as conn:       # written to postgres after the cutover: must survive a merge
        conn.execute("INSERT INTO nodes VALUES ('n-new', '02:00:00:00:00:77', '', 0)")

    record = json.loads(decoded["/params/x3000c0s1b0n0"])
    record["params"] = "console=ttyS0,115200 quiet changed_after_snapshot=1"
    client.put("/params/x3000c0s1b0n0", json.dumps(record))
    client.delete("/params/x3000c0s2b0n0")          # deletion: the node now falls back to Default
    client.put("/endpoint-access/x3000c0s1b0n0/bootscript", "1795567000")
    client.close()

    planned = run_module(import_bootparams, dict(base, since_revision=revision, mode="merge", **db_args(synced_db)), check=True)
    assert planned["changed"] is True and planned["affected_nodes"] == 2
    synced = run_module(import_bootparams, dict(base, since_revision=revision, mode="merge", **db_args(synced_db)))
    assert synced["changed"] is True and synced["affected_nodes"] == 2
    assert synced["affected_xnames"] == ["x3000c0s1b0n0", "x3000c0s2b0n0"], "the changed and the deleted record's nodes"
    assert synced["plan"]["reassign_nodes"] == 2 and synced["plan"]["insert_nodes"] == 0
    assert synced["plan"]["insert_endpoint_access"] == 1

    full_db = new_db(postgres_server, "delta_full")
    run_module(import_bootparams, dict(base, **db_args(full_db)))
    synced_rows, full_rows = table_rows(synced_db), table_rows(full_db)
    assert ("02:00:00:00:00:77", "", 0) in synced_rows["nodes"]
    assert synced_rows["served"] == full_rows["served"]
    served = {row[1]: row[3:] for row in synced_rows["served"]}
    assert served["x3000c0s2b0n0"] == ("http://10.0.0.1/boot/vmlinuz-default", "console=ttyS0 default_boot=1")
    again = run_module(import_bootparams, dict(base, since_revision=revision, mode="merge", **db_args(synced_db)))
    assert again["changed"] is False
    for name in ("delta_synced", "delta_full"):
        procs.psql(postgres_server, f"DROP DATABASE {name} WITH (FORCE)")


def test_since_revision_newer_than_etcd_is_refused(etcd_server, bss_database, golden_dir):
    client, _decoded = load_golden(etcd_server.port, golden_dir)
    current = client.status().raft_index
    client.close()
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    result = run_module(import_bootparams, {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "strict": False,
                                            "smd_export": os.path.join(golden_dir, "smd-nodes.json"),
                                            "since_revision": current + 10 ** 9, **db_args(bss_database)})
    assert result["failed"] and "newer than etcd's current revision" in result["msg"]
    assert table_rows(bss_database)["nodes"] == []
