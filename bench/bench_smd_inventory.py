"""Benchmark of the hpc_boot.bss.smd inventory plugin (issue 11): time and peak memory at site scale.

For each node count an SMD double serves N nodes (each in the SMD group ``compute``, one MAC and one IP
each). The inventory is then built the way ansible-playbook builds it (an ``InventoryManager`` over
``smd.yml``) in a fresh child process, three ways:

- no cache: three GETs to SMD, then the hosts and groups;
- cache, cold: as above, and the SMD answers written to a jsonfile cache;
- cache, warm: the answers read from that cache, SMD not asked (the double is stopped first, to prove it).

Each figure is the child's wall time from interpreter start (Ansible's imports included) to the built
inventory, the part of it spent building the inventory, and the child's peak RSS (wait4).

Run: .venv/bin/python bench/bench_smd_inventory.py [--nodes 10000 50000]
Results are printed and written to bench/results/smd_inventory.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)

from bench_boot_config import ansible_env  # noqa: E402  pylint: disable=wrong-import-position,import-error
from bench_bootparams import REPO, node_set, procs, smd  # noqa: E402  pylint: disable=wrong-import-position,import-error

CHILD = r"""
import json, sys, time
from ansible.plugins.loader import init_plugin_loader
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
init_plugin_loader()
started = time.perf_counter()
inventory = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
hosts = inventory.get_hosts()
seconds = time.perf_counter() - started
print(json.dumps({"build_seconds": round(seconds, 2), "hosts": len(hosts), "groups": len(inventory.groups),
                  "first": hosts[0].name if hosts else None, "macs": hosts[0].vars.get("bss_macs") if hosts else None}))
"""


def build(workdir, path):
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path], env=ansible_env(workdir), stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                            stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0 or not out.strip():
        raise RuntimeError("inventory build failed: %s" % err[-2000:])
    result = json.loads(out.strip().splitlines()[-1])
    result.update({"wall_seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024.0)})
    return result


def bench_size(count, workdir):
    nodes = node_set(count)
    for node in nodes:
        node["groups"] = ["compute"]
    path = os.path.join(workdir, "nodes-%d.json" % count)
    with open(path, "w") as handle:
        json.dump(nodes, handle)
    service = smd.start_smd(path)
    results = {"nodes": count}
    try:
        plain = os.path.join(workdir, "plain-%d" % count)
        cached = os.path.join(workdir, "cached-%d" % count)
        cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": os.path.join(workdir, "cache-%d" % count),
                 "cache_timeout": 3600}
        for directory, config in ((plain, {}), (cached, cache)):
            os.makedirs(directory)
            with open(os.path.join(directory, "smd.yml"), "w") as handle:
                json.dump(dict({"plugin": "hpc_boot.bss.smd", "url": service.url}, **config), handle)
        results["no_cache"] = build(workdir, os.path.join(plain, "smd.yml"))
        results["cache_cold"] = build(workdir, os.path.join(cached, "smd.yml"))
    finally:
        service.stop()
    results["cache_warm"] = build(workdir, os.path.join(cached, "smd.yml"))   # SMD is down: only the cache can answer
    for name in ("no_cache", "cache_cold", "cache_warm"):
        if results[name]["hosts"] != count:
            raise RuntimeError("%s: %d hosts instead of %d" % (name, results[name]["hosts"], count))
        print("  %d nodes, %-10s: %5.1f s wall (%5.1f s building), peak RSS %4d MB, %d hosts, %d groups" % (
            count, name, results[name]["wall_seconds"], results[name]["build_seconds"], results[name]["peak_rss_mb"],
            results[name]["hosts"], results[name]["groups"]), flush=True)
    results["load_average"] = [round(v, 1) for v in os.getloadavg()]
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10000, 50000])
    options = parser.parse_args()
    workdir = procs.make_workdir("bench-smd-inventory")
    results = []
    try:
        for count in options.nodes:
            print("%d nodes (load average %.1f)" % (count, os.getloadavg()[0]), flush=True)
            results.append(bench_size(count, workdir))
    finally:
        procs.shutil.rmtree(workdir, ignore_errors=True)
        path = os.path.join(REPO, "bench", "results", "smd_inventory.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
