"""hpc_boot.bss.schema against a real PostgreSQL: creation, check mode, idempotence, repairs, drop guard."""

import os
import subprocess

import psycopg
import pytest

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.modules import schema as schema_module

from test_import_golden import db_args, run_module

ALL_TABLES = ["nodes", "boot_group_assignments", "boot_groups", "boot_configs", "endpoint_access"]


def normalised_schema_dump(service, dbname):
    dump = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(procs.PG_BIN, "pg_dump"), "-s",
                           "-h", service.workdir, "-p", str(service.port), dbname],
                          capture_output=True, text=True, check=True).stdout
    return normalise(dump)


def normalise(text):
    return [line for line in text.splitlines() if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def tables(conninfo):
    with psycopg.connect(conninfo) as conn:
        return sorted(row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))


def migrations(conninfo):
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()


def test_fresh_database_check_then_apply_then_idempotent(bss_database, postgres_server, golden_dir):
    args = db_args(bss_database)
    planned = run_module(schema_module, args, check=True, diff=True)
    assert planned["changed"] is True
    assert planned["steps"] == ["up 1 create_db_init", "up 2 create_version1", "up 3 create_version2"]
    assert tables(bss_database) == []          # check mode ran no DDL, not even the bookkeeping table

    applied = run_module(schema_module, args, diff=True)
    assert applied["changed"] is True and applied["version"] == 3
    assert applied["diff"]["after"]["tables"] == ALL_TABLES
    assert migrations(bss_database) == [(3, False)]
    dbname = dict(item.split("=", 1) for item in bss_database.split())["dbname"]
    with open(os.path.join(golden_dir, "postgres", "raw", "schema.sql"), encoding="utf-8") as handle:
        assert normalised_schema_dump(postgres_server, dbname) == normalise(handle.read())

    again = run_module(schema_module, args)
    assert again["changed"] is False and again["steps"] == [] and again["condition"] == "clean"


def test_dirty_flag_fails_until_repair_is_asked(bss_database):
    args = db_args(bss_database)
    run_module(schema_module, args)
    with psycopg.connect(bss_database) as conn:
        conn.execute("UPDATE schema_migrations SET dirty = true")
        conn.execute("DROP TABLE endpoint_access")
    refused = run_module(schema_module, args)
    assert refused["failed"] and "dirty at version 3" in refused["msg"] and "repair=true" in refused["msg"]
    assert migrations(bss_database) == [(3, True)]
    repaired = run_module(schema_module, dict(args, repair=True))
    assert repaired["changed"] is True and repaired["condition"] == "dirty"
    assert migrations(bss_database) == [(3, False)] and "endpoint_access" in tables(bss_database)


def test_bss_init_second_run_downgrade_is_detected_and_repaired_on_request(bss_database):
    args = db_args(bss_database)
    run_module(schema_module, dict(args, state="present", version=2))
    assert migrations(bss_database) == [(2, False)] and "endpoint_access" not in tables(bss_database)
    refused = run_module(schema_module, args)
    assert refused["failed"] and "bss-init" in refused["msg"] and "BSS_DBSTEP=3" in refused["msg"]
    checked = run_module(schema_module, dict(args, repair=True), check=True)
    assert checked["changed"] and checked["steps"] == ["up 3 create_version2"] and "endpoint_access" not in tables(bss_database)
    repaired = run_module(schema_module, dict(args, repair=True))
    assert repaired["version"] == 3 and migrations(bss_database) == [(3, False)]


def test_present_version_goes_down_and_keeps_data_of_remaining_tables(bss_database):
    args = db_args(bss_database)
    run_module(schema_module, args)
    with psycopg.connect(bss_database) as conn:
        conn.execute("INSERT INTO nodes VALUES ('n1', 'aa:bb:cc:dd:ee:ff', 'x1c0s0b0n0', 1)")
    down = run_module(schema_module, dict(args, state="present", version=2))
    assert down["changed"] and down["steps"] == ["down 3 create_version2"]
    with psycopg.connect(bss_database) as conn:
        assert conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 1


@pytest.mark.parametrize("confirm", [False, True])
def test_drop_needs_confirmation(bss_database, confirm):
    args = db_args(bss_database)
    run_module(schema_module, args)
    result = run_module(schema_module, dict(args, state="absent", confirm_drop=confirm))
    if confirm:
        assert result["changed"] and sorted(result["dropped"]) == sorted(ALL_TABLES + ["schema_migrations"])
        assert tables(bss_database) == []
    else:
        assert result["failed"] and "confirm_drop=true" in result["msg"]
        assert len(tables(bss_database)) == 6


def test_wrong_password_is_a_clear_error(bss_database):
    result = run_module(schema_module, dict(db_args(bss_database), db_password="not-the-password"))
    assert result["failed"] and "Failed to connect to database" in result["msg"] and "not-the-password" not in result["msg"]


def test_data_owner_tells_our_import_from_foreign_rows(bss_database):
    """Preflight relies on this: rows written by hand are 'foreign', rows written by our import are ours."""
    import psycopg
    from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
        assert bss_schema.inspect_schema(conn)["data_owner"] == "none"
        conn.execute("INSERT INTO boot_configs VALUES ('c1', 'http://k', '', '')")
        assert bss_schema.inspect_schema(conn)["data_owner"] == "foreign"
        with conn.transaction():
            bss_schema.record_import(conn, "etcd", 42, 1)
        assert bss_schema.inspect_schema(conn)["data_owner"] == "hpc_boot.bss"


def _bss_init(conninfo, bss_impl, step):
    """Run bss-init (the double or upstream's binary, bss_impl) against the database of ``conninfo``."""
    import types
    from hpclab.bss import launch
    params = dict(item.split("=", 1) for item in conninfo.split())
    target = types.SimpleNamespace(port=int(params["port"]), extra={
        "host": params.get("host", "127.0.0.1"), "dbname": params["dbname"], "user": params["user"],
        "password": params["password"]})
    env = launch.bss_environment("postgres", "http://127.0.0.1:9", procs.free_port(), postgres=target)
    workdir = procs.make_workdir("bss-init")
    try:
        return launch.run_bss_init(workdir, env, extra_env={"BSS_DBSTEP": str(step)}, impl=bss_impl)
    finally:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


def test_real_bss_init_and_the_schema_module_agree(bss_database, bss_impl):
    """bss-init (upstream's own, and the double) installs a schema the module calls clean; the module's schema is
    one bss-init leaves alone; bss-init's default of 2 steps on a second run is the downgrade the module catches."""
    args = db_args(bss_database)
    _bss_init(bss_database, bss_impl, 2)          # a first install runs every migration whatever the step says
    assert migrations(bss_database) == [(3, False)]
    assert sorted(tables(bss_database)) == sorted(ALL_TABLES + ["schema_migrations"])
    clean = run_module(schema_module, args, check=True)
    assert clean["changed"] is False and clean["condition"] == "clean" and clean["version"] == 3

    _bss_init(bss_database, bss_impl, 2)          # upstream's SCHEMA_STEPS=2 on a second run goes down to 2
    assert migrations(bss_database) == [(2, False)] and "endpoint_access" not in tables(bss_database)
    refused = run_module(schema_module, args)
    assert refused["failed"] and "bss-init" in refused["msg"] and "BSS_DBSTEP=3" in refused["msg"]
    repaired = run_module(schema_module, dict(args, repair=True))
    assert repaired["version"] == 3 and migrations(bss_database) == [(3, False)]

    _bss_init(bss_database, bss_impl, 3)          # with the step the module tells users to set, bss-init is a no-op
    assert migrations(bss_database) == [(3, False)] and "endpoint_access" in tables(bss_database)
    assert run_module(schema_module, args, check=True)["changed"] is False
