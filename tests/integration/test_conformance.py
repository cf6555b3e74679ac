"""Conformance of the BSS double and of the real upstream BSS with the golden upstream transcripts.

Every test runs twice (``bss_impl``): against the lab's double and against upstream's boot-script-service and
bss-init installed from the Go module proxy (lab/upstream.mk). The golden files come from commit e4894b0; the
only expectation adjusted by version is BOOTIF (OpenCHAMI/bss#78, not in v1.32.2): see docs/lab-doubles.md.
Every request of golden/requests and every recorded GET is replayed against a fresh BSS in etcd mode
(real etcd) and in postgres mode (real PostgreSQL, bss-init first), with the SMD double serving
golden/smd-nodes.json. Each golden file is one test id; see golden_replay.py for the normalisation.
"""

import json
import os
import re
import subprocess
import uuid

import pytest
from hpclab.upstream import folds_put_mac_case, serves_bootif, without_bootif

from golden_replay import (CHAIN_ENV, ETCD_ADVERTISE, GOLDEN, NO_RESPONSE, POSTGRES_ADVERTISE, canonical_set,
                           etcd_golden_decoded, etcd_golden_from_json_dump, etcd_golden_from_plain, normalise_etcd,
                           normalise_json, normalise_tables, normalise_text, parse_inserts, parse_script_file,
                           request, run_replay, token_map)

TABLES = ("boot_configs", "boot_group_assignments", "boot_groups", "endpoint_access", "nodes", "schema_migrations")
BOOT_PARAMS_ORDER = ("hosts", "macs", "nids", "params", "kernel", "initrd", "cloud-init")
PROBLEM_ORDER = ["type", "title", "detail", "status"]


def _exchange_files(backend):
    found = []
    for kind in ("post", "put", "get"):
        folder = os.path.join(GOLDEN, backend, kind)
        if os.path.isdir(folder):
            found += [f"{kind}/{name}" for name in sorted(os.listdir(folder))]
    return found


def _raw_files(backend):
    folder = os.path.join(GOLDEN, backend, "raw")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _expected(text, run):
    """A golden text as the BSS under test should serve it (no BOOTIF before v1.32.3)."""
    return text if run["bootif"] else without_bootif(text)


@pytest.fixture(scope="module")
def etcd_run(etcd_server, golden_smd, bss_impl):
    import etcd3
    from hpclab.bss.launch import start_bss
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    for _value, meta in client.get_all():
        client.delete(meta.key)
    bss = start_bss("bss-conformance-etcd", "etcd", golden_smd.url, etcd=etcd_server,
                    env=dict(CHAIN_ENV, BSS_ADVERTISE_ADDRESS=ETCD_ADVERTISE), impl=bss_impl)
    try:
        results = run_replay(bss.url, GOLDEN, "etcd")
        kvs = {meta.key.decode(): value.decode() for value, meta in client.get_all()}
    finally:
        bss.stop()
        client.close()
    yield {"results": results, "kvs": kvs, "tokens": token_map(GOLDEN, "etcd", results),
           "bootif": serves_bootif(bss_impl)}


def _read_tables(conninfo):
    import psycopg
    from psycopg.rows import dict_row
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        return {name: conn.execute(f"SELECT * FROM {name}").fetchall() for name in TABLES}


@pytest.fixture(scope="module")
def postgres_run(postgres_server, golden_smd, bss_impl):
    from hpclab import procs
    from hpclab.bss.launch import start_bss
    dbname = "conf_" + uuid.uuid4().hex[:10]
    procs.psql(postgres_server, f"CREATE DATABASE {dbname} OWNER {postgres_server.extra['user']}")
    conninfo = procs.postgres_conninfo(postgres_server, dbname=dbname)
    bss = start_bss("bss-conformance-pg", "postgres", golden_smd.url, postgres=postgres_server,
                    env=dict(CHAIN_ENV, BSS_ADVERTISE_ADDRESS=POSTGRES_ADVERTISE, BSS_DBNAME=dbname), impl=bss_impl)
    try:
        results = run_replay(bss.url, GOLDEN, "postgres")
        tables = _read_tables(conninfo)
        yield {"results": results, "tables": tables, "tokens": token_map(GOLDEN, "postgres", results), "bss": bss,
               "conninfo": conninfo, "server": postgres_server, "dbname": dbname, "bootif": serves_bootif(bss_impl),
               "mac_case": folds_put_mac_case(bss_impl)}
    finally:
        bss.stop()
        procs.psql(postgres_server, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def _check_go_json(body, content_type):
    """Bodies written by Go's json.Encoder: compact, one trailing newline, struct field order."""
    assert body.endswith(b"\n") and not body.endswith(b"\n\n"), body[-20:]
    assert b"\n" not in body[:-1]
    value = json.loads(body, object_pairs_hook=lambda pairs: pairs)
    if content_type.startswith("application/problem+json"):
        assert [pair[0] for pair in value] == PROBLEM_ORDER
    elif isinstance(value, list):
        for entry in value:
            keys = [pair[0] for pair in entry]
            if "cloud-init" in keys:
                assert keys == [key for key in BOOT_PARAMS_ORDER if key in keys], keys


def compare_exchange(backend, name, run):
    ours = run["results"][name]
    tokens = run["tokens"]
    path = os.path.join(GOLDEN, backend, name)
    if name.endswith(".txt"):
        _line, status, body = parse_script_file(path)
        assert ours["status"] == status, ours
        if status != NO_RESPONSE:
            assert normalise_text(ours["body"].decode(), tokens) == normalise_text(_expected(body, run), tokens)
        return
    with open(path, encoding="utf-8") as handle:
        golden = json.load(handle)
    assert ours["status"] == golden["status"], (ours["status"], ours["body"][:300])
    if golden["status"] == NO_RESPONSE:
        return
    our_headers = {key.lower(): value for key, value in ours["headers"].items()}
    for key, value in golden.get("headers", {}).items():
        assert normalise_text(our_headers.get(key.lower(), "<absent>"), tokens) == normalise_text(value, tokens), key
    if "Bss-Referral-Token" not in golden.get("headers", {}):
        assert "bss-referral-token" not in our_headers
    body = json.loads(_expected(json.dumps(golden["body"]), run))
    if body == "" or isinstance(body, str):
        assert ours["body"].decode() == body
        return
    content_type = our_headers.get("content-type", "")
    if name.startswith("get/bootparameters") or name.startswith("post/") or name.startswith("put/") \
            or content_type.startswith("application/problem+json"):
        _check_go_json(ours["body"], content_type)
    decoded = json.loads(ours["body"])
    if backend == "postgres" and name == "get/bootparameters_all.json":
        assert canonical_set(decoded) == canonical_set(body)
    else:
        assert normalise_json(decoded, tokens) == normalise_json(body, tokens)


@pytest.mark.parametrize("name", _exchange_files("etcd"))
def test_etcd_exchange(etcd_run, name):
    compare_exchange("etcd", name, etcd_run)


@pytest.mark.parametrize("name", _exchange_files("postgres"))
def test_postgres_exchange(postgres_run, name):
    compare_exchange("postgres", name, postgres_run)


@pytest.mark.parametrize("name", _raw_files("etcd"))
def test_etcd_raw(etcd_run, name):
    loaders = {"etcd_decoded.json": etcd_golden_decoded, "etcdctl_get_prefix_json.json": etcd_golden_from_json_dump,
               "etcdctl_get_prefix_plain.txt": etcd_golden_from_plain}
    golden = loaders[name](GOLDEN)
    tokens = etcd_run["tokens"]
    assert normalise_etcd(etcd_run["kvs"], tokens) == normalise_etcd(golden, tokens)
    for key, value in etcd_run["kvs"].items():  # the stored bytes themselves, not just their meaning
        if key.startswith(("/params/", "/kernel/", "/initrd/")):
            assert normalise_text(value, tokens) == normalise_text(golden[key], tokens), key


def _golden_tables():
    tables = {}
    for table in TABLES:
        with open(os.path.join(GOLDEN, "postgres", "raw", f"table_{table}.json"), encoding="utf-8") as handle:
            tables[table] = json.load(handle)
    return tables


@pytest.mark.parametrize("name", _raw_files("postgres"))
def test_postgres_raw(postgres_run, name):
    if name.startswith("table_"):
        table = name[len("table_"):-len(".json")]
        ours, ids_ok = normalise_tables(postgres_run["tables"])
        golden = normalise_tables(_golden_tables())[0]
        assert ids_ok, "row ids must be lowercase UUIDv4 strings"
        assert ours[table] == golden[table]
    elif name == "data_inserts.sql":
        inserted = parse_inserts(os.path.join(GOLDEN, "postgres", "raw", name))
        as_rows = {
            "boot_configs": [dict(zip(("id", "kernel_uri", "initrd_uri", "cmdline"), row)) for row in inserted["boot_configs"]],
            "boot_groups": [dict(zip(("id", "boot_config_id", "name", "description"), row)) for row in inserted["boot_groups"]],
            "boot_group_assignments": [dict(zip(("boot_group_id", "node_id"), row))
                                       for row in inserted["boot_group_assignments"]],
            "nodes": [dict(zip(("id", "boot_mac", "xname", "nid"), row[:3] + [int(row[3])])) for row in inserted["nodes"]],
            "endpoint_access": [dict(zip(("name", "endpoint"), row)) for row in inserted.get("endpoint_access", [])],
            "schema_migrations": [{"version": int(row[0]), "dirty": row[1] == "true"}
                                  for row in inserted.get("schema_migrations", [])],
        }
        golden = normalise_tables(as_rows)[0]
        ours = normalise_tables(postgres_run["tables"])[0]
        assert ours == golden
    elif name == "schema.sql":
        dump = subprocess.run(["/usr/lib/postgresql/15/bin/pg_dump", "-s", "--no-owner", postgres_run["conninfo"]],
                              capture_output=True, text=True, check=True).stdout
        with open(os.path.join(GOLDEN, "postgres", "raw", name), encoding="utf-8") as handle:
            golden = handle.read()
        assert _schema_statements(dump) == _schema_statements(golden)
    else:
        pytest.fail(f"no comparison defined for golden file postgres/raw/{name}")


def _schema_statements(text):
    statements, current = [], []
    for line in text.splitlines():
        if not line or line.startswith(("--", "\\", "SET ", "SELECT pg_catalog")) or "OWNER TO" in line:
            continue
        current.append(line.strip())
        if line.rstrip().endswith(";"):
            statements.append(" ".join(current))
            current = []
    return sorted(statements)


def _second_line(base, query):
    resp = request(base, "GET", "/boot/v1/bootscript?" + query)
    assert resp["status"] == 200
    lines = resp["body"].decode().split("\n")
    return lines[1], lines[6]


def test_combined_rows(postgres_run):
    """golden/combined-rows.md: one node row with MAC, xname and NID written by SQL, then a PUT by MAC."""
    import psycopg
    base = postgres_run["bss"].url
    group = 'BootGroup(kernel="http://10.0.0.1/k-combo",initrd="http://10.0.0.1/i-combo",params="console=ttyS0 combo=1")'
    desc = 'Boot group for nodes with kernel="http://10.0.0.1/k-combo" initrd="http://10.0.0.1/i-combo" params="console=ttyS0 combo=1"'
    with psycopg.connect(postgres_run["conninfo"], autocommit=True) as conn:
        conn.execute("INSERT INTO boot_configs VALUES ('cfg-test-1', 'http://10.0.0.1/k-combo', 'http://10.0.0.1/i-combo', "
                     "'console=ttyS0 combo=1')")
        conn.execute("INSERT INTO boot_groups VALUES ('grp-test-1', 'cfg-test-1', %s, %s)", (group, desc))
        conn.execute("INSERT INTO nodes VALUES ('node-test-1', 'de:ad:be:ef:00:06', 'x3000c0s5b0n0', 6)")
        conn.execute("INSERT INTO boot_group_assignments VALUES ('grp-test-1', 'node-test-1')")
    tail = " ds=nocloud-net;s=http://127.0.0.1:27779/ || goto boot_retry"
    plain = "kernel --name kernel http://10.0.0.1/k-combo initrd=initrd console=ttyS0 combo=1 xname=x3000c0s5b0n0 nid=6"
    chain = "chain http://127.0.0.1/boot/v1/bootscript?mac=de:ad:be:ef:00:06&retry=1"
    by_mac = _expected(plain + " BOOTIF=01-de-ad-be-ef-00-06" + tail, postgres_run)
    assert _second_line(base, "mac=de:ad:be:ef:00:06") == (by_mac, chain)
    assert _second_line(base, "name=x3000c0s5b0n0") == (plain + tail, chain)
    assert _second_line(base, "nid=6") == (plain + tail, chain)
    every = json.loads(request(base, "GET", "/boot/v1/bootparameters")["body"])
    combo = [entry for entry in every if entry.get("kernel") == "http://10.0.0.1/k-combo"]
    assert [(e.get("hosts"), e.get("macs"), e.get("nids")) for e in combo] == [(["x3000c0s5b0n0"], ["de:ad:be:ef:00:06"], [6])]
    by_name = json.loads(request(base, "GET", "/boot/v1/bootparameters?name=x3000c0s5b0n0")["body"])
    assert [sorted(k for k in e if k in ("hosts", "macs", "nids")) for e in by_name] == [["hosts"]]
    by_mac = json.loads(request(base, "GET", "/boot/v1/bootparameters?mac=de:ad:be:ef:00:06")["body"])
    assert [sorted(k for k in e if k in ("hosts", "macs", "nids")) for e in by_mac] == [["macs"]]
    body = json.dumps({"macs": ["DE:AD:BE:EF:00:06"], "kernel": "http://10.0.0.1/k-new", "initrd": "http://10.0.0.1/i-new",
                       "params": "console=ttyS0 new=1"})
    if not postgres_run["mac_case"]:  # v1.32.2: the upper-case MAC misses the stored row (fixed by OpenCHAMI/bss#79)
        refused = request(base, "PUT", "/boot/v1/bootparameters", body)
        assert (refused["status"], json.loads(refused["body"])["detail"]) == (400, "No data")
        body = body.replace("DE:AD:BE:EF:00:06", "de:ad:be:ef:00:06")
    assert request(base, "PUT", "/boot/v1/bootparameters", body)["status"] == 200
    with psycopg.connect(postgres_run["conninfo"]) as conn:
        rows = conn.execute("SELECT * FROM nodes WHERE id = 'node-test-1' OR boot_mac = 'de:ad:be:ef:00:06'").fetchall()
    assert rows == [("node-test-1", "de:ad:be:ef:00:06", "x3000c0s5b0n0", 6)]
    for query in ("mac=de:ad:be:ef:00:06", "name=x3000c0s5b0n0", "nid=6"):
        assert _second_line(base, query)[0].startswith("kernel --name kernel http://10.0.0.1/k-new initrd=initrd console=ttyS0 new=1 ")


def _cross_backend_form(name, resp):
    """compare.txt's normalisation: tokens/UUIDs, ts=, the BSS port, instance-id suffixes, epochs."""
    headers = {key: value for key, value in resp["headers"].items() if key in ("Content-Type", "Bss-Referral-Token")}
    try:
        body = json.loads(resp["body"]) if resp["body"] and not name.endswith(".txt") else resp["body"].decode()
    except ValueError:
        body = resp["body"].decode()
    text = json.dumps({"status": resp["status"], "headers": headers if not name.endswith(".txt") else {}, "body": body},
                      sort_keys=True)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<UUID>", text)
    text = re.sub(r"ts=\d+", "ts=<TS>", text)
    text = re.sub(r"127\.0\.0\.1:2777[89]", "127.0.0.1:<BSSPORT>", text)
    text = re.sub(r'(-)[0-9a-f]{12}"', r'\1<RAND>"', text)
    return re.sub(r'"last_epoch": \d+', '"last_epoch": "<EPOCH>"', text)


def test_compare_txt_same_and_diff_classification(etcd_run, postgres_run):
    """golden/compare.txt lists which of the 54 shared requests answer identically in both backends."""
    with open(os.path.join(GOLDEN, "compare.txt"), encoding="utf-8") as handle:
        expected = dict(reversed(line.split(None, 1)) for line in handle.read().splitlines() if line[:5] in ("SAME ", "DIFF "))
    expected = {name.strip(): verdict for name, verdict in expected.items()}
    ours = {}
    for name in expected:
        same = _cross_backend_form(name, etcd_run["results"][name]) == _cross_backend_form(name, postgres_run["results"][name])
        ours[name] = "SAME" if same else "DIFF"
    assert ours == expected
    assert sum(verdict == "SAME" for verdict in ours.values()) == 20


def test_golden_inputs_are_all_used():
    """Names the golden files that are inputs or prose rather than recorded responses."""
    used_elsewhere = {"README.md": "describes the replay order (golden_replay.py)",
                      "compare.txt": "checked by test_compare_txt_same_and_diff_classification",
                      "combined-rows.md": "reproduced by test_combined_rows",
                      "smd-nodes.json": "served by the SMD double", "requests": "replayed as POST/PUT bodies"}
    top = set(os.listdir(GOLDEN)) - {"etcd", "postgres"}
    assert top <= set(used_elsewhere), top - set(used_elsewhere)
    assert sorted(os.listdir(os.path.join(GOLDEN, "requests"))) == sorted(
        f"{label}.json" for label in ("01_hosts_xnames", "02_macs_mixed_case", "03_nids", "04_default",
                                      "05_global_cloudinit", "06_host_cloudinit"))


MULTI_MACS = ("b4:2e:99:00:00:03", "b4:2e:9a:00:00:03")


@pytest.fixture
def multi_mac_bss(postgres_server, bss_database, tmp_path, bss_impl):
    """combined-rows.md, second part: SMD node x1000c0s1b0n1 (NID 4) with two MACs, postgres mode."""
    from hpclab.bss.launch import start_bss
    from hpclab.smd import start_smd
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps([{"xname": "x1000c0s1b0n1", "nid": 4, "role": "Compute", "macs": list(MULTI_MACS)}]))
    smd = start_smd(str(nodes))
    dbname = bss_database.split("dbname=")[1].split()[0]
    bss = start_bss("bss-multi-mac", "postgres", smd.url, postgres=postgres_server,
                    env=dict(CHAIN_ENV, BSS_ADVERTISE_ADDRESS=POSTGRES_ADVERTISE, BSS_DBNAME=dbname), impl=bss_impl)
    yield bss, bss_database
    bss.stop()
    smd.stop()


def _seed_two_rows(conninfo, second_row):
    import psycopg
    name = 'BootGroup(kernel="http://10.0.0.1/k-old",initrd="",params="")'
    desc = 'Boot group for nodes with kernel="http://10.0.0.1/k-old" initrd="" params=""'
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO boot_configs VALUES ('cfg-old', 'http://10.0.0.1/k-old', '', '')")
        conn.execute("INSERT INTO boot_groups VALUES ('grp-old', 'cfg-old', %s, %s)", (name, desc))
        conn.execute("INSERT INTO nodes VALUES ('row-1', %s, 'x1000c0s1b0n1', 4)", (MULTI_MACS[0],))
        conn.execute("INSERT INTO nodes VALUES ('row-2', %s, %s, %s)", (MULTI_MACS[1],) + second_row)
        conn.execute("INSERT INTO boot_group_assignments VALUES ('grp-old', 'row-1'), ('grp-old', 'row-2')")


def _kernel_of(base, query):
    return request(base, "GET", "/boot/v1/bootscript?" + query)["body"].decode().split("\n")[1].split()[3]


NEW_CONFIG = json.dumps({"hosts": ["x1000c0s1b0n1"], "kernel": "http://10.0.0.1/k-new"})


def test_combined_rows_second_mac_row_without_xname_keeps_old_config(multi_mac_bss):
    bss, conninfo = multi_mac_bss
    _seed_two_rows(conninfo, ("", 0))
    assert [_kernel_of(bss.url, "mac=" + mac) for mac in MULTI_MACS] == ["http://10.0.0.1/k-old"] * 2
    assert request(bss.url, "PUT", "/boot/v1/bootparameters", NEW_CONFIG)["status"] == 200
    assert [_kernel_of(bss.url, "mac=" + mac) for mac in MULTI_MACS] == ["http://10.0.0.1/k-new", "http://10.0.0.1/k-old"]


def test_combined_rows_both_mac_rows_with_xname_move_together(multi_mac_bss):
    bss, conninfo = multi_mac_bss
    _seed_two_rows(conninfo, ("x1000c0s1b0n1", 4))
    assert request(bss.url, "PUT", "/boot/v1/bootparameters", NEW_CONFIG)["status"] == 200
    queries = ["mac=" + MULTI_MACS[0], "mac=" + MULTI_MACS[1], "name=x1000c0s1b0n1", "nid=4"]
    assert [_kernel_of(bss.url, query) for query in queries] == ["http://10.0.0.1/k-new"] * 4
    by_name = json.loads(request(bss.url, "GET", "/boot/v1/bootparameters?name=x1000c0s1b0n1")["body"])
    assert [entry["hosts"] for entry in by_name] == [["x1000c0s1b0n1", "x1000c0s1b0n1"]]
