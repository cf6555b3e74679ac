"""The rollout's write-freeze window (issue 16) against the real upstream BSS, by cluster size and delta size.

For each cluster size: a synthetic cluster (lab/hpclab/cluster.py, every record shape) in etcd served by an etcd-mode
upstream BSS, imported into PostgreSQL (``import_bootparams``) and served by a postgres-mode upstream BSS, as after the
cutover's import and parity phases. Then, for each delta size D: D nodes get new boot parameters through the old BSS's
API (after the "backup" revision), and what the rollout does while writes are frozen is timed, each module in its own
process as Ansible runs it:

1. ``import_bootparams`` with ``since_revision`` (merge): imports the delta, returns ``affected_xnames``;
2. the ``parity_scope`` filter: every lookup of those nodes and a 1 % sample (at least 20) of the others;
3. ``bootscript_info`` comparing exactly those lookups on the old and the new BSS.

window = 1 + 2 + 3. Not included: the two gateway reloads and Ansible's per-task overhead (see docs/performance.md for
that fixed part, measured by the e2e test's freeze). The full re-check of every lookup (``--full``) is printed beside it:
with ``--full-limit`` it times that many lookups and extrapolates linearly to all of them (marked as such).

``--simulate-lookup-ms MS`` (for 100,000 nodes, where upstream's etcd-mode BSS did not answer one boot script within
minutes on this machine): no BSS is started, the changes are written straight into etcd as BSS writes them, the import
and the scope are measured for real and each re-checked lookup is counted at MS milliseconds (take the per-lookup cost
the 10,000-node run measured); the parity times and windows are then marked simulated.

Usage: .venv/bin/python bench/bench_freeze.py [--nodes 10000 100000] [--deltas 0,10,1000] [--full] [--full-limit 3000]
       [--bss upstream|double] [--simulate-lookup-ms 23]
Results are printed and merged into bench/results/freeze.json. Every service binds 127.0.0.1 on a free port and is
stopped by PID at the end.
"""

import argparse
import json
import os
import random
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lab"), os.path.join(REPO, ".build", "collections"), os.path.dirname(os.path.abspath(__file__))]

import etcd3  # noqa: E402  pylint: disable=wrong-import-position
import requests  # noqa: E402  pylint: disable=wrong-import-position

from hpclab import cluster, procs, smd  # noqa: E402  pylint: disable=wrong-import-position
from hpclab.bss import launch  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.hpc_boot.bss.plugins.filter.parity_scope import parity_scope  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hpc_boot.bss.plugins.filter.smd_nodes import smd_nodes  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hpc_boot.bss.plugins.modules.etcd_revision_info import read_revision  # noqa: E402  pylint: disable=wrong-import-position

from bench_bootparams import run_module  # noqa: E402  pylint: disable=wrong-import-position
from bench_upstream_import import Http, new_database  # noqa: E402  pylint: disable=wrong-import-position


def import_args(etcd, pg, dbname, smd_url):
    return {"etcd_host": procs.LOOPBACK, "etcd_port": etcd.port, "smd_url": smd_url, "db_host": procs.LOOPBACK, "db_port": pg.port,
            "db_name": dbname, "db_user": pg.extra["user"], "db_password": pg.extra["password"], "db_sslmode": "disable",
            "accept_loss_kinds": list(bss_convert.LOSS_KINDS)}


def role_nodes(smd_url):
    """The nodes as the cutover role reads them: two SMD requests through the smd_nodes filter."""
    components = requests.get(f"{smd_url}/hsm/v2/State/Components", params={"type": "Node"}, timeout=300).json()
    interfaces = requests.get(f"{smd_url}/hsm/v2/Inventory/EthernetInterfaces", timeout=300).json()
    return smd_nodes(components, interfaces)


def change_nodes(old, xnames, step):
    """New boot parameters for each node through the old BSS's API, as an admin would write them."""
    writer = Http(old.url)
    for xname in xnames:
        body = {"hosts": [xname], "kernel": f"http://10.0.0.1/boot/vmlinuz-freeze-{step}", "params": f"console=ttyS0 freeze.step={step}"}
        status, text = writer.call("PUT", "/boot/v1/bootparameters", body)
        if status != 200:
            raise RuntimeError(f"PUT {xname} on the old BSS: HTTP {status} {text[:200]}")


def change_in_etcd(client, xnames, step):
    """The same change as :func:`change_nodes`, written into etcd the way BSS stores it (no BSS running)."""
    kernel = f"http://10.0.0.1/boot/vmlinuz-freeze-{step}"
    client.put("/kernel/" + cluster.image_hash(kernel), cluster.image_value(kernel))
    for xname in xnames:
        client.put("/params/" + xname, cluster.params_value(params=f"console=ttyS0 freeze.step={step}", kernel=kernel))


def compare(old, new, scope, workers):
    seconds, result = run_module("bootscript_info", {"url": old.url, "compare_url": new.url, "workers": workers,
                                                     "macs": scope["macs"], "hosts": scope["hosts"], "nids": scope["nids"]})
    return seconds, result["parity_summary"]


def bench_size(count, options):
    services = []
    workdir = procs.make_workdir("bench-freeze")
    figures = {"nodes": count, "bss": options.bss, "deltas": []}
    try:
        nodes = cluster.generate_nodes(count, seed=options.seed)
        path = os.path.join(workdir, "nodes.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(nodes, handle)
        etcd = procs.start_etcd()
        services.append(etcd)
        smd_service = smd.start_smd(path)
        services.append(smd_service)
        pg = procs.start_postgres()
        services.append(pg)
        client = etcd3.client(host=procs.LOOPBACK, port=etcd.port)
        cluster.load_etcd(client, cluster.etcd_records(nodes, seed=options.seed))
        simulated = options.simulate_lookup_ms is not None
        figures["simulated_lookup_ms"] = options.simulate_lookup_ms
        if not simulated:
            old = launch.start_bss("bench-freeze-old", "etcd", smd_service.url, etcd=etcd, impl=options.bss)
            services.append(old)
        _conninfo, target = new_database(pg, "bench_freeze")
        seconds, result = run_module("import_bootparams", import_args(etcd, pg, "bench_freeze", smd_service.url))
        figures["import_s"] = round(seconds, 2)
        if not simulated:
            new = launch.start_bss("bench-freeze-new", "postgres", smd_service.url, postgres=target, impl=options.bss)
            services.append(new)
        seen = role_nodes(smd_service.url)
        candidates = [node["xname"] for node in seen if node["macs"] and node["nid"]]
        random.Random(options.seed).shuffle(candidates)
        total_lookups = parity_scope(seen)["counts"]["lookups"]
        print(f"{count} nodes on the {'simulated' if simulated else options.bss} BSS: imported in {seconds:.1f} s, {total_lookups} lookups", flush=True)
        for step, delta in enumerate(options.deltas):
            base, _keys = read_revision(client)
            changed, candidates = candidates[:delta], candidates[delta:]
            if simulated:
                change_in_etcd(client, changed, step)
            else:
                change_nodes(old, changed, step)
            started = time.perf_counter()
            import_s, synced = run_module("import_bootparams", dict(import_args(etcd, pg, "bench_freeze", smd_service.url),
                                                                    since_revision=base, mode="merge"))
            scope_started = time.perf_counter()
            scope = parity_scope(seen, synced["affected_xnames"], share=options.share, minimum=options.minimum, seed=options.seed + step)
            scope_s = time.perf_counter() - scope_started
            if simulated:
                chosen = scope["counts"]["changed_lookups"] + scope["counts"]["sample_lookups"]
                parity_s, summary = chosen * options.simulate_lookup_ms / 1000.0, {"different": 0}
                window = time.perf_counter() - started + parity_s
            else:
                parity_s, summary = compare(old, new, scope, options.workers)
                window = time.perf_counter() - started
            row = {"delta": delta, "affected_nodes": synced["affected_nodes"], "lookups_changed": scope["counts"]["changed_lookups"],
                   "lookups_sampled": scope["counts"]["sample_lookups"], "import_s": round(import_s, 2), "scope_s": round(scope_s, 3),
                   "parity_s": round(parity_s, 2), "window_s": round(window, 2), "different": summary["different"],
                   "import_timings": synced.get("timings", {}),
                   "load_average": round(os.getloadavg()[0], 1)}
            figures["deltas"].append(row)
            print("  delta %(delta)5d: %(affected_nodes)5d nodes re-planned, %(lookups_changed)5d + %(lookups_sampled)4d lookups; "
                  "import %(import_s)6.2f s, scope %(scope_s).3f s, parity %(parity_s)6.2f s => window %(window_s)6.2f s, "
                  "%(different)d different (load %(load_average)s); in the import module: %(import_timings)s" % row, flush=True)
        client.close()
        if options.full and simulated:
            figures["full"] = {"lookups": total_lookups, "full_s": round(total_lookups * options.simulate_lookup_ms / 1000.0, 1),
                               "simulated": True}
            print("  full re-check of every lookup: %(full_s).1f s for %(lookups)d lookups (simulated)" % figures["full"], flush=True)
        elif options.full:
            everything = parity_scope(seen, [node["xname"] for node in seen])
            lookups = [("macs", value) for value in everything["macs"]] + [("hosts", value) for value in everything["hosts"]] + \
                [("nids", value) for value in everything["nids"]]
            timed = lookups if not options.full_limit else random.Random(options.seed).sample(lookups, min(options.full_limit, len(lookups)))
            scope = {"macs": [v for k, v in timed if k == "macs"], "hosts": [v for k, v in timed if k == "hosts"],
                     "nids": [v for k, v in timed if k == "nids"]}
            full_s, summary = compare(old, new, scope, options.workers)
            estimate = full_s * len(lookups) / len(timed)
            figures["full"] = {"lookups": len(lookups), "timed_lookups": len(timed), "timed_s": round(full_s, 2),
                               "full_s": round(estimate, 1), "extrapolated": len(timed) < len(lookups), "different": summary["different"],
                               "load_average": round(os.getloadavg()[0], 1)}
            print("  full re-check of every lookup: %(full_s).1f s for %(lookups)d lookups (%(timed_lookups)d timed in %(timed_s).1f s"
                  "%(note)s), %(different)d different" % dict(figures["full"], note=", extrapolated" if len(timed) < len(lookups) else ""),
                  flush=True)
    finally:
        for service in reversed(services):
            service.stop()
        procs.shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10000])
    parser.add_argument("--deltas", type=lambda text: [int(item) for item in text.split(",")], default=[0, 10, 1000])
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--minimum", type=int, default=20)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--full", action="store_true", help="also time the full re-check of every lookup")
    parser.add_argument("--full-limit", type=int, default=0, help="time this many lookups of the full re-check and extrapolate")
    parser.add_argument("--bss", choices=("upstream", "double"), default="upstream")
    parser.add_argument("--simulate-lookup-ms", type=float, default=None,
                        help="start no BSS; count each re-checked lookup at this many milliseconds")
    options = parser.parse_args()
    kind = "simulated" if options.simulate_lookup_ms is not None else options.bss
    results = {f"{kind}_{count}": bench_size(count, options) for count in options.nodes}
    path = os.path.join(REPO, "bench", "results", "freeze.json")
    previous = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    previous.update(results)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(previous, handle, indent=2)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
