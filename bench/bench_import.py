"""Benchmark of hpc_boot.bss.import_bootparams (issue 4): time and peak memory, and two baselines.

For each size: a synthetic cluster (lab/hpclab/cluster.py) is written raw into a private etcd, then
1. our import (the module's main(), in a child process: wall time, and peak RSS as the child's own VmHWM;
   wait4's ru_maxrss is not used: Linux carries the parent's high-water mark over vfork+exec, so it
   reported this bench's own memory, which holds the whole data set),
2. a plain COPY of the very same rows into an empty database (the floor: no reading, no conversion),
3. replaying the etcd records one at a time through a postgres-mode BSS double's API (PUT per record),
   which is what existing restore scripts do; with --replay-limit only the first N records are replayed
   and the total is extrapolated linearly (reported as such).

Usage: .venv/bin/python bench/bench_import.py [--nodes 10000 100000] [--replay-limit 2000]
Prints one block per size (with the machine's load average before and after it: the cores may be shared)
and a JSON line with every figure. Everything runs on 127.0.0.1, free ports.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lab"), os.path.join(REPO, ".build", "collections")]

import etcd3  # noqa: E402  pylint: disable=wrong-import-position
import psycopg  # noqa: E402  pylint: disable=wrong-import-position

from hpclab import cluster, procs  # noqa: E402  pylint: disable=wrong-import-position
from hpclab.bss import launch  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.hpc_boot.bss.plugins.module_utils import (  # noqa: E402  pylint: disable=wrong-import-position
    bss_convert, bss_schema, pg_rows, smd_source)

CHILD = r'''
import io, json, sys, contextlib
sys.path[:0] = {paths!r}
from unittest import mock
from ansible.module_utils import basic
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams
payload = json.dumps({{"ANSIBLE_MODULE_ARGS": {args!r}}}).encode()
out = io.StringIO()
with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy"), \
        contextlib.redirect_stdout(out):
    try:
        import_bootparams.main()
    except SystemExit:
        pass
result = json.loads(out.getvalue())
with open("/proc/self/status", encoding="ascii") as status:
    hwm_kb = int(status.read().split("VmHWM:")[1].split()[0])
print(json.dumps(dict({{k: result.get(k) for k in ("changed", "failed", "msg", "counts", "plan", "timings")}}, peak_rss_kb=hwm_kb)))
'''


def new_database(pg, name):
    procs.psql(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    procs.psql(pg, f"CREATE DATABASE {name} OWNER {pg.extra['user']}")
    conninfo = procs.postgres_conninfo(pg, dbname=name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    return conninfo


def run_import_child(etcd, pg, dbname, smd_path):
    args = {"etcd_host": "127.0.0.1", "etcd_port": etcd.port, "smd_export": smd_path, "strict": False,
            "db_host": "127.0.0.1", "db_port": pg.port, "db_name": dbname, "db_user": pg.extra["user"],
            "db_password": pg.extra["password"], "db_sslmode": "disable"}
    code = CHILD.format(paths=sys.path[:2], args=args)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # pylint: disable=consider-using-with
    _pid, status, _usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if status != 0 or not out.strip():
        raise RuntimeError(f"import child failed: {err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    if result.get("failed"):
        raise RuntimeError(f"import failed: {result.get('msg')}")
    return elapsed, result["peak_rss_kb"] / 1024.0, result


def plain_copy(pg, dbname, kvs, smd_nodes):
    """COPY the same rows into an empty database; only the COPY transaction is timed."""
    conversion = bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=smd_nodes)
    plan = pg_rows.plan_rows({"configs": {}, "groups": {}, "nodes": {}, "assignments": [], "endpoint_access": []}, conversion)
    conninfo = new_database(pg, dbname)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        started = time.perf_counter()
        with conn.transaction():
            for table, columns, rows in (("boot_configs", "id, kernel_uri, initrd_uri, cmdline", plan["insert_configs"]),
                                         ("boot_groups", "id, boot_config_id, name, description", plan["insert_groups"]),
                                         ("nodes", "id, boot_mac, xname, nid", plan["insert_nodes"]),
                                         ("boot_group_assignments", "boot_group_id, node_id", plan["insert_assignments"]),
                                         ("endpoint_access", "name, endpoint, last_epoch", plan["insert_endpoint_access"])):
                with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        return time.perf_counter() - started


def api_replay(pg, dbname, kvs, smd_url, limit):
    """PUT every /params/ record through a postgres-mode BSS, one request each (like restore scripts)."""
    params, kernels, initrds, _access = bss_convert.split_etcd_keys(kvs)
    records, _losses = bss_convert.resolve_records(params, kernels, initrds)
    names = sorted(records)
    sample = names[:limit] if limit else names
    new_database(pg, dbname)
    pg_service = procs.Service.from_dict(dict(pg.to_dict(), owns_workdir=False, extra=dict(pg.extra, dbname=dbname)))
    bss = launch.start_bss("bench-bss-pg", "postgres", smd_url, postgres=pg_service)
    try:
        started = time.perf_counter()
        for name in sample:
            record = records[name]
            body = {"hosts": [name], "params": bss_convert.script_cmdline(record), "kernel": record["kernel"] or "none"}
            if record["initrd"]:
                body["initrd"] = record["initrd"]
            request = urllib.request.Request(bss.url + "/boot/v1/bootparameters", data=json.dumps(body).encode(), method="PUT",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                exc.read()
        elapsed = time.perf_counter() - started
    finally:
        bss.stop()
    return elapsed * len(names) / max(1, len(sample)), len(sample), len(names)


def load_average():
    return "/".join("%.1f" % value for value in os.getloadavg())


def bench(size, replay_limit, workdir):
    from hpclab import smd  # pylint: disable=import-outside-toplevel
    load_before = load_average()
    nodes = cluster.generate_nodes(size, seed=7)
    smd_path = os.path.join(workdir, f"nodes-{size}.json")
    with open(smd_path, "w", encoding="utf-8") as handle:
        json.dump(nodes, handle)
    kvs_bytes = cluster.etcd_records(nodes, seed=7, shapes={"endpoint_access": 1.0})
    for node in nodes:   # a site where every node also fetched cloud-init user-data: about 3 keys a node
        kvs_bytes[f"/endpoint-access/{node['xname']}/user-data"] = str(cluster.EPOCH_BASE + node["nid"]).encode("ascii")
    kvs = {key: value.decode("utf-8") if isinstance(value, bytes) else value for key, value in kvs_bytes.items()}
    etcd, pg, smd_service = procs.start_etcd(), procs.start_postgres(), smd.start_smd(smd_path)
    try:
        client = etcd3.client(host="127.0.0.1", port=etcd.port, timeout=120)
        cluster.load_etcd(client, kvs_bytes)
        client.close()
        new_database(pg, "bench_import")
        import_s, peak_mb, result = run_import_child(etcd, pg, "bench_import", smd_path)
        rerun_s, rerun_peak_mb, rerun = run_import_child(etcd, pg, "bench_import", smd_path)
        smd_nodes = smd_source.read_export(smd_path)
        copy_s = plain_copy(pg, "bench_copy", kvs, smd_nodes)
        replay_s, replayed, records = api_replay(pg, "bench_replay", kvs, smd_service.url, replay_limit)
    finally:
        for service in (smd_service, pg, etcd):
            service.stop()
    figures = {"nodes": size, "etcd_keys": len(kvs), "rows": result["counts"]["nodes"], "configs": result["counts"]["configs"],
               "import_s": round(import_s, 2), "import_peak_rss_mb": round(peak_mb, 1), "rerun_unchanged_s": round(rerun_s, 2),
               "rerun_peak_rss_mb": round(rerun_peak_mb, 1), "load_average_before": load_before, "load_average_after": load_average(),
               "rerun_changed": rerun["changed"], "phases": result["timings"], "rerun_phases": rerun["timings"], "plain_copy_s": round(copy_s, 3),
               "api_replay_s": round(replay_s, 1), "api_replay_records_timed": replayed, "api_replay_records": records,
               "import_vs_copy": round(import_s / copy_s, 1), "api_replay_vs_import": round(replay_s / import_s, 1)}
    print(f"--- {size} nodes, {len(kvs)} etcd keys -> {figures['rows']} node rows, {figures['configs']} configs "
          f"(load average 1/5/15 min: {load_before} before, {figures['load_average_after']} after)")
    print(f"import (read etcd + SMD export, convert, plan, COPY, commit): {import_s:.2f} s, peak RSS {peak_mb:.0f} MB")
    print(f"  phases: {result['timings']}")
    print(f"re-run on unchanged input: {rerun_s:.2f} s, peak RSS {rerun_peak_mb:.0f} MB, changed={rerun['changed']}, "
          f"phases: {rerun['timings']}")
    in_module = sum(result["timings"].values())
    figures["import_in_module_s"] = round(in_module, 2)
    figures["import_in_module_vs_copy"] = round(in_module / copy_s, 1)
    print(f"plain COPY of the same rows: {copy_s:.3f} s  -> import/COPY = {figures['import_vs_copy']}x "
          f"(process wall time; {figures['import_in_module_vs_copy']}x counting only the module's own phases)")
    extrapolated = "" if replayed == records else f" (extrapolated from {replayed} of {records} records)"
    print(f"API replay, one PUT per record: {replay_s:.1f} s{extrapolated} -> replay/import = {figures['api_replay_vs_import']}x")
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10000])
    parser.add_argument("--replay-limit", type=int, default=2000, help="records replayed through the API (0 = all)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as workdir:
        figures = [bench(size, options.replay_limit, workdir) for size in options.nodes]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
