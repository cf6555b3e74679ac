"""Upstream behaviours of the BSS double in postgres mode, and the bss-init double (bss-spec 3.3, 3.5, 3.6, 7.2)."""

import json
import os
import subprocess
import sys

import pytest

from golden_replay import CHAIN_ENV, NO_RESPONSE, request

K1, K2 = "http://10.0.0.1/k1", "http://10.0.0.1/k2"


@pytest.fixture
def bss(postgres_server, bss_database, golden_smd):
    from hpclab.bss.launch import start_bss
    dbname = bss_database.split("dbname=")[1].split()[0]
    service = start_bss("bss-pg-behaviour", "postgres", golden_smd.url, postgres=postgres_server,
                        env=dict(CHAIN_ENV, BSS_DBNAME=dbname))
    service.conninfo = bss_database
    yield service
    service.stop()


def sql(bss, statement, args=None):
    import psycopg
    with psycopg.connect(bss.conninfo, autocommit=True) as conn:
        cur = conn.execute(statement, args)
        return cur.fetchall() if cur.description else []


def call(bss, method, path, body=None):
    return request(bss.url, method, path, json.dumps(body) if isinstance(body, dict) else body)


def counts(bss):
    return {table: sql(bss, f"SELECT count(*) FROM {table}")[0][0]
            for table in ("nodes", "boot_configs", "boot_groups", "boot_group_assignments")}


def test_put_without_identifiers_rewrites_every_node_and_orphans_old_groups(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0", "x3000c0s1b0n1"], "kernel": K1, "params": "a"})
    call(bss, "POST", "/boot/v1/bootparameters", {"macs": ["DE:AD:BE:EF:00:04"], "kernel": K2})
    assert call(bss, "PUT", "/boot/v1/bootparameters", {"params": "everyone"})["status"] == 200
    rows = sql(bss, "SELECT bc.kernel_uri, bc.cmdline FROM nodes n JOIN boot_group_assignments a ON a.node_id = n.id "
                    "JOIN boot_groups g ON g.id = a.boot_group_id JOIN boot_configs bc ON bc.id = g.boot_config_id")
    assert sorted(rows) == [(K1, "everyone"), (K1, "everyone"), (K2, "everyone")]
    assert counts(bss) == {"nodes": 3, "boot_configs": 4, "boot_groups": 4, "boot_group_assignments": 3}


def test_tags_are_silently_dropped_and_post_is_partial(bss):
    resp = call(bss, "PUT", "/boot/v1/bootparameters", {"hosts": ["Default"], "kernel": K1})
    assert resp["status"] == 200 and resp["headers"].get("Bss-Referral-Token")
    assert counts(bss)["nodes"] == 0
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1})
    assert call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0", "x3000c0s1b0n1"], "kernel": K1})["status"] == 201
    assert sorted(r[0] for r in sql(bss, "SELECT xname FROM nodes")) == ["x3000c0s1b0n0", "x3000c0s1b0n1"]
    assert counts(bss)["boot_configs"] == 1  # the config was reused, found by its generated name


def test_patch_needs_existing_rows_and_keeps_orphans(bss):
    resp = call(bss, "PATCH", "/boot/v1/bootparameters", {"hosts": ["x9c0s0b0n0"], "nids": [7], "params": "p"})
    assert resp["status"] == 404
    assert json.loads(resp["body"])["detail"] == \
        "Not Found: postgres.Update: data does not exist: nodes table: macs=[] xnames=[x9c0s0b0n0] nids=[7]"
    call(bss, "POST", "/boot/v1/bootparameters", {"macs": ["AA:BB:CC:00:00:01"], "kernel": K1})
    assert call(bss, "PATCH", "/boot/v1/bootparameters", {"macs": ["aa:bb:cc:00:00:01"], "kernel": K2})["status"] == 200
    assert counts(bss) == {"nodes": 1, "boot_configs": 2, "boot_groups": 2, "boot_group_assignments": 1}
    only_ci = call(bss, "PATCH", "/boot/v1/bootparameters", {"macs": ["aa:bb:cc:00:00:01"], "cloud-init": {"meta-data": {"a": 1}}})
    assert only_ci["status"] == 404


def test_delete_removes_nodes_and_empty_groups(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"nids": [1, 2], "kernel": K1})
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {"nids": [1]})["status"] == 200
    assert counts(bss) == {"nodes": 1, "boot_configs": 1, "boot_groups": 1, "boot_group_assignments": 1}
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {"nids": [2]})["status"] == 200
    assert counts(bss) == {"nodes": 0, "boot_configs": 0, "boot_groups": 0, "boot_group_assignments": 0}
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {"nids": [2]})["status"] == 400
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {})["status"] == 200  # nothing selected: success
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0", "x3000c0s1b0n1"], "kernel": K1, "params": "a"})
    call(bss, "POST", "/boot/v1/bootparameters", {"nids": [5], "kernel": K1, "params": "b"})
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {"kernel": K1, "params": "a"})["status"] == 200
    assert sql(bss, "SELECT xname, nid FROM nodes") == [("", 5)]
    assert json.loads(call(bss, "DELETE", "/boot/v1/bootparameters", {"hosts": ["Default"]})["body"])["detail"] == \
        "postgres.Delete: error deleting BootConfig(s): no boot config IDs specified to delete"


def test_quote_in_a_value_breaks_the_interpolated_lookup_and_writes_nothing(bss):
    resp = call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1, "params": "a='b'"})
    assert resp["status"] == 400
    assert json.loads(resp["body"])["detail"].startswith("Bad Request: postgres.Add: ")
    assert counts(bss)["nodes"] == 0


def test_null_column_breaks_get_all(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1})
    group = sql(bss, "SELECT id FROM boot_groups")[0][0]
    sql(bss, "INSERT INTO nodes VALUES ('n-null', NULL, 'x3000c0s1b0n1', 0)")
    sql(bss, "INSERT INTO boot_group_assignments VALUES (%s, 'n-null')", (group,))
    assert call(bss, "GET", "/boot/v1/bootparameters")["body"] == b"null\n"


def test_panics_drop_the_connection_and_history_is_appended(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1})
    first = call(bss, "GET", "/boot/v1/bootscript?name=x3000c0s1b0n0")
    assert first["status"] == 200
    assert call(bss, "GET", "/boot/v1/bootscript?name=x3000c0s1b0n0")["body"] == first["body"]
    assert call(bss, "GET", "/boot/v1/bootscript?mac=ff:ff:ff:00:00:09&arch=x86_64")["status"] == NO_RESPONSE
    assert call(bss, "POST", "/boot/v1/scn", "{}")["status"] == NO_RESPONSE
    assert request(bss.url, "GET", "/meta-data", headers={"X-Forwarded-For": "10.9.9.9"})["status"] == NO_RESPONSE
    history = json.loads(call(bss, "GET", "/boot/v1/endpoint-history")["body"])
    assert [(h["name"], h["endpoint"]) for h in history] == [("x3000c0s1b0n0", "bootscript")] * 2
    assert json.loads(call(bss, "GET", "/boot/v1/endpoint-history?endpoint=bootscript")["body"]) == history


def _bss_init(bss_database, *args, env=None):
    fields = dict(part.split("=", 1) for part in bss_database.split())
    full_env = {"BSS_DBHOST": fields["host"], "BSS_DBPORT": fields["port"], "BSS_DBNAME": fields["dbname"],
                "BSS_DBUSER": fields["user"], "BSS_DBPASS": fields["password"], "BSS_INSECURE": "true",
                "PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "hpclab.bss.init", *args], env=full_env, capture_output=True, text=True,
                          timeout=120, check=False)


def _tables(conninfo):
    import psycopg
    with psycopg.connect(conninfo) as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        version = conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()
    return names, version


def test_bss_init_second_run_drops_endpoint_access(bss_database):
    assert _bss_init(bss_database).returncode == 0
    names, version = _tables(bss_database)
    assert "endpoint_access" in names and version == [(3, False)]
    second = _bss_init(bss_database)
    assert second.returncode == 0 and "password=****" in second.stderr and "password=bssuser" not in second.stderr
    names, version = _tables(bss_database)
    assert "endpoint_access" not in names and version == [(2, False)]
    assert _bss_init(bss_database, env={"BSS_DBSTEP": "3"}).returncode == 0
    assert _tables(bss_database) == (names | {"endpoint_access"}, [(3, False)])


def test_bss_init_rejections_and_dirty_clear(bss_database):
    assert _bss_init(bss_database, "--force-step", "3").returncode == 1
    assert _bss_init(bss_database, "--fresh").returncode == 1  # "no change" on an empty database is fatal
    assert _bss_init(bss_database, "--step", "3").returncode == 0
    import psycopg
    with psycopg.connect(bss_database, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET dirty = true")
    assert _bss_init(bss_database, "--step", "3").returncode == 0
    assert _tables(bss_database)[1] == [(3, False)]
    assert _bss_init(bss_database, "--fresh", "--step", "3").returncode == 0
    assert _bss_init(bss_database, "--version").stdout == "Version: 1, Schema Version: 1\n"


def test_build_executable_serves_as_the_binary(tmp_path, golden_smd):
    from hpclab import procs
    from hpclab.bss.launch import build_executable
    dest = build_executable(str(tmp_path / "boot-script-service"), sys.executable)
    port = procs.free_port()
    env = {"HSM_URL": golden_smd.url, "BSS_ADVERTISE_ADDRESS": "http://127.0.0.1:1", "BSS_HTTP_LISTEN": f"127.0.0.1:{port}",
           "PATH": os.environ["PATH"]}
    proc, _log = procs.spawn("bss-zipapp", [dest], str(tmp_path), env=env)
    try:
        procs.wait_for_http(f"http://127.0.0.1:{port}/boot/v1/service/status", proc=proc)
        resp = request(f"http://127.0.0.1:{port}", "POST", "/boot/v1/bootparameters",
                       json.dumps({"hosts": ["x3000c0s1b0n0"], "kernel": K1}))
        assert resp["status"] == 201
    finally:
        procs.stop_pid(proc.pid)
    failing = subprocess.run([dest], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60, check=False)
    assert failing.returncode == 1 and "BSS_ADVERTISE_ADDRESS" in failing.stderr


def test_patch_without_selectors_rewrites_every_node(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1, "params": "a"})
    call(bss, "POST", "/boot/v1/bootparameters", {"nids": [100], "kernel": K2, "params": "b"})
    assert call(bss, "PATCH", "/boot/v1/bootparameters", {"initrd": "http://i/new"})["status"] == 200
    every = json.loads(call(bss, "GET", "/boot/v1/bootparameters")["body"])
    assert sorted((e["kernel"], e["initrd"], e["params"]) for e in every) == [(K1, "http://i/new", "a"), (K2, "http://i/new", "b")]


def test_panic_mode_500_answers_an_empty_server_error(postgres_server, bss_database, golden_smd):
    from hpclab.bss.launch import start_bss
    dbname = bss_database.split("dbname=")[1].split()[0]
    service = start_bss("bss-pg-panic500", "postgres", golden_smd.url, postgres=postgres_server,
                        env=dict(CHAIN_ENV, BSS_DBNAME=dbname, HPCLAB_BSS_PANIC="500"))
    try:
        resp = request(service.url, "POST", "/boot/v1/scn", "{}")
        assert (resp["status"], resp["body"], "Content-Type" in resp["headers"]) == (500, b"", False)
    finally:
        service.stop()
