"""The import against an API replay, both on the real upstream BSS, with the faithful lookups of each counted.

A synthetic cluster (lab/hpclab/cluster.py: every record shape real sites carry) is written into etcd through an
etcd-mode upstream BSS (API requests) plus raw keys for the shapes its API cannot make. Then, each into its own
empty database served by a postgres-mode upstream BSS:

1. our import: ``hpc_boot.bss.import_bootparams`` (the module's main(), in a child process) from etcd;
2. the API replay that restore scripts do: ``GET /boot/v1/bootparameters`` from the old BSS, then one ``PUT``
   per returned record (image entries skipped) to the new BSS.

For both, every node is looked up by each MAC, its xname and its NID on the old and the new BSS, and the boot
scripts are compared after removing what differs by design (referral token, advertise address, ts=). A lookup is
faithful when status and script are equal. Times are wall-clock seconds of each path (the replay's includes its GET).

Usage: .venv/bin/python bench/bench_upstream_import.py [--nodes 2000] [--bss upstream|double]
Needs `make upstream` for the default. Everything runs on 127.0.0.1 on free ports and is stopped by PID.
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time
import types
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lab"), os.path.join(REPO, ".build", "collections")]

import etcd3  # noqa: E402  pylint: disable=wrong-import-position

from hpclab import cluster, procs, smd  # noqa: E402  pylint: disable=wrong-import-position
from hpclab.bss import launch  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_import import CHILD, new_database as new_schema_database  # noqa: E402  pylint: disable=wrong-import-position


class Http(object):
    """One keep-alive connection per thread to a BSS."""

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.address = (parsed.hostname, parsed.port)
        self.connection = None

    def call(self, method, path, body=None):
        for _attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(*self.address, timeout=60)
            try:
                data = None if body is None else json.dumps(body).encode()
                self.connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
                response = self.connection.getresponse()
                return response.status, response.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
        return 0, ""


def normalise(script, service):
    script = script.replace(service.extra["advertise_address"], "<advertise>")
    script = re.sub(r" bss_referral_token=\S+", "", script)
    return re.sub(r"ts=\d+", "ts=<ts>", script)


def lookups(nodes):
    for node in nodes:
        for mac in node.get("macs") or []:
            yield "mac=" + mac.lower()
        yield "name=" + node["xname"]
        yield "nid=%d" % node["nid"]


def faithful(old, new, nodes, workers=8):
    """(faithful lookups, all lookups): status and normalised script equal on both BSS."""
    queries = list(lookups(nodes))
    chunks = [queries[i::workers] for i in range(workers)]

    def compare(chunk):
        first, second, same = Http(old.url), Http(new.url), 0
        for query in chunk:
            a = first.call("GET", "/boot/v1/bootscript?" + query)
            b = second.call("GET", "/boot/v1/bootscript?" + query)
            same += (a[0], normalise(a[1], old)) == (b[0], normalise(b[1], new))
        return same

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(compare, chunks)), len(queries)


def new_database(pg, name):
    """An empty database at the BSS schema: (conninfo, the target a postgres-mode BSS is started on)."""
    conninfo = new_schema_database(pg, name)
    return conninfo, types.SimpleNamespace(port=pg.port, extra=dict(pg.extra, dbname=name))


def our_import(etcd, pg, dbname, smd_url):
    conninfo, target = new_database(pg, dbname)
    parts = dict(item.split("=", 1) for item in conninfo.split())
    args = {"db_host": parts["host"], "db_port": int(parts["port"]), "db_name": dbname, "db_user": parts["user"],
            "db_password": parts["password"], "db_sslmode": "disable", "etcd_host": procs.LOOPBACK,
            "etcd_port": etcd.port, "smd_url": smd_url, "accept_loss_kinds": list(bss_convert.LOSS_KINDS)}
    code = CHILD.format(paths=[os.path.join(REPO, ".build", "collections")], args=args)
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    result = json.loads(child.stdout.strip().splitlines()[-1])
    if result.get("failed"):
        raise RuntimeError(result.get("msg"))
    return elapsed, target


def replay_into(old, new):
    """GET every record from the old BSS, then PUT each to the new BSS (restore scripts' way)."""
    started = time.perf_counter()
    client = Http(old.url)
    status, text = client.call("GET", "/boot/v1/bootparameters")
    if status != 200:
        raise RuntimeError(f"GET all from the old BSS: HTTP {status}")
    writer, refused = Http(new.url), 0
    entries = [entry for entry in json.loads(text) or [] if entry.get("hosts") or entry.get("macs") or entry.get("nids")]
    for count, entry in enumerate(entries, 1):  # image entries ({"kernel": path}) of an etcd-mode GET are skipped
        body = {key: entry[key] for key in ("hosts", "macs", "nids", "params", "kernel", "initrd") if entry.get(key)}
        if writer.call("PUT", "/boot/v1/bootparameters", body)[0] != 200:
            refused += 1
        if count % 250 == 0 or count == len(entries):
            print(f"  replay: {count}/{len(entries)} PUTs, {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter() - started, refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bss", choices=("upstream", "double"), default="upstream")
    options = parser.parse_args()
    workdir = procs.make_workdir("bench-upstream-import")
    services = []
    try:
        nodes = cluster.generate_nodes(options.nodes, seed=options.seed)
        path = os.path.join(workdir, "nodes.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(nodes, handle)
        etcd = procs.start_etcd()
        services.append(etcd)
        smd_service = smd.start_smd(path)
        services.append(smd_service)
        pg = procs.start_postgres()
        services.append(pg)
        old = launch.start_bss("bench-old-etcd", "etcd", smd_service.url, etcd=etcd, impl=options.bss)
        services.append(old)
        writer = Http(old.url)
        for method, body in cluster.api_payloads(nodes, seed=options.seed):
            writer.call(method, "/boot/v1/bootparameters", body)
        client = etcd3.client(host=procs.LOOPBACK, port=etcd.port)
        cluster.load_etcd(client, cluster.etcd_records(nodes, seed=options.seed, include_api_shapes=False))
        client.close()

        print(f"old BSS loaded: {options.nodes} nodes", flush=True)
        import_s, target = our_import(etcd, pg, "bench_import", smd_service.url)
        print(f"  import: {import_s:.1f} s", flush=True)
        imported = launch.start_bss("bench-new-import", "postgres", smd_service.url, postgres=target, impl=options.bss)
        services.append(imported)
        import_same, total = faithful(old, imported, nodes)

        _conninfo, target = new_database(pg, "bench_replay")
        replayed = launch.start_bss("bench-new-replay", "postgres", smd_service.url, postgres=target, impl=options.bss)
        services.append(replayed)
        replay_s, refused = replay_into(old, replayed)
        replay_same, _total = faithful(old, replayed, nodes)

        figures = {"bss": options.bss, "nodes": options.nodes, "lookups": total, "import_s": round(import_s, 2),
                   "import_faithful": import_same, "replay_s": round(replay_s, 2), "replay_faithful": replay_same,
                   "replay_refused_puts": refused, "replay_vs_import_time": round(replay_s / import_s, 2),
                   "load_average": round(os.getloadavg()[0], 1)}
        print(f"{options.nodes} nodes on the {options.bss} BSS, {total} lookups (every MAC, xname, NID):")
        print(f"  our import:  {import_s:6.2f} s, faithful {import_same}/{total} ({100.0 * import_same / total:.1f} %)")
        print(f"  API replay:  {replay_s:6.2f} s, faithful {replay_same}/{total} ({100.0 * replay_same / total:.1f} %), "
              f"{refused} PUTs refused")
        print(f"  replay/import time: {figures['replay_vs_import_time']}x; load average {figures['load_average']}")
        print(json.dumps(figures))
    finally:
        for service in reversed(services):
            service.stop()
        procs.shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
