"""Benchmarks for issue 3 (declared boot parameters); figures go to docs/performance.md.

1. 10,000 nodes declared against the BSS double in postgres mode: a run with nothing to change
   (writes counted on the wire, module process time), then a run that changes one node.
2. 1,000 nodes, one ansible-playbook run: the naive way (ansible.builtin.uri looping over nodes, one
   PUT each) against one hpc_boot.bss.bootparams call, each on its own empty BSS; ratio of task times.
3. bootscript_info comparing 10,000 nodes across an etcd-mode and a postgres-mode BSS: the doubles, then
   the real upstream BSS (``make upstream``), both measured in the same run, with the ratio.

Run: .venv/bin/python bench/bench_bootparams.py [--nodes 10000] [--naive-nodes 1000] [--only 1,2,3]
     [--bss double,upstream]
Results are printed and merged into bench/results/bootparams.json. Every service binds 127.0.0.1 on
a free port and is stopped by PID at the end.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "lab"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from bss_recorder import BssRecorder  # noqa: E402  pylint: disable=wrong-import-position,import-error
from hpclab import procs, smd  # noqa: E402  pylint: disable=wrong-import-position
from hpclab.bss.launch import start_bss  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.join(REPO, ".build", "collections")
KERNEL = "http://10.0.0.1/boot-images/compute/rocky9/vmlinuz"
INITRD = "http://10.0.0.1/boot-images/compute/rocky9/initramfs.img"
PARAMS = "console=ttyS0,115200 root=live:http://10.0.0.1/boot-images/compute/rocky9/rootfs ip=dhcp"


def node_set(count):
    """``count`` SMD nodes: 4 nodes per blade, 8 slots per chassis, 8 chassis per cabinet."""
    nodes = []
    for index in range(count):
        cabinet, rest = divmod(index, 256)
        chassis, rest = divmod(rest, 32)
        slot, node = divmod(rest, 4)
        nodes.append({"xname": "x%dc%ds%db0n%d" % (1000 + cabinet, chassis, slot, node), "nid": index + 1, "role": "Compute",
                      "mac": "02:%02x:%02x:%02x:%02x:%02x" % (0x10, (index >> 24) & 0xff, (index >> 16) & 0xff, (index >> 8) & 0xff,
                                                              index & 0xff),
                      "ip": "10.%d.%d.%d" % (100 + (index >> 16), (index >> 8) & 0xff, index & 0xff)})
    return nodes


def cpu_seconds(pid):
    """User+system CPU seconds of a process so far (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def run_module(module, args):
    """Run a module as Ansible would on the target (one Python process); returns (seconds, result)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run([sys.executable, "-m", "ansible_collections.hpc_boot.bss.plugins.modules." + module, handle.name],
                               env=env, capture_output=True, text=True, check=False, timeout=900)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_module.last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    os.unlink(handle.name)
    result = json.loads(completed.stdout)
    if result.get("failed"):
        raise RuntimeError("%s failed: %s" % (module, result.get("msg")))
    return elapsed, result


class Lab(object):
    """SMD double with ``count`` nodes plus PostgreSQL/etcd and BSS doubles on demand; stops all by PID."""

    def __init__(self, count, workdir):
        self.services = []
        path = os.path.join(workdir, "nodes.json")
        with open(path, "w") as handle:
            json.dump(node_set(count), handle)
        self.smd = self._keep(smd.start_smd(path))
        self.postgres = None
        self.etcd = None

    def _keep(self, service):
        self.services.append(service)
        return service

    def bss(self, backend, name, impl="double"):
        if backend == "postgres":
            if self.postgres is None:
                self.postgres = self._keep(procs.start_postgres())
            database = "b_" + name.replace("-", "_")
            procs.psql(self.postgres, "CREATE DATABASE %s OWNER %s" % (database, self.postgres.extra["user"]))
            target = types.SimpleNamespace(port=self.postgres.port, extra=dict(self.postgres.extra, dbname=database))
            return self._keep(start_bss(name, "postgres", self.smd.url, postgres=target, impl=impl))
        if self.etcd is None:
            self.etcd = self._keep(procs.start_etcd())
        else:  # a second etcd-mode BSS gets an empty store, as the first did
            import etcd3  # pylint: disable=import-outside-toplevel
            client = etcd3.client(host=procs.LOOPBACK, port=self.etcd.port)
            client.delete_prefix("/")
            client.close()
        return self._keep(start_bss(name, "etcd", self.smd.url, etcd=self.etcd, impl=impl))

    def stop(self):
        for service in reversed(self.services):
            service.stop()


def declarations(nodes, changed=()):
    same = {"kernel": KERNEL, "initrd": INITRD, "params": PARAMS, "macs": [n["mac"] for n in nodes if n["mac"] not in changed]}
    result = [same]
    if changed:
        result.append({"kernel": KERNEL, "initrd": INITRD, "params": PARAMS + " rd.shell", "macs": list(changed)})
    return result


def bench_no_change(lab, nodes):
    bss = lab.bss("postgres", "bss-bench-nochange")
    _seconds, seeded = run_module("bootparams", {"url": bss.url, "declarations": declarations(nodes)})
    recorder = BssRecorder(bss.url)
    try:
        seconds, result = run_module("bootparams", {"url": recorder.url, "declarations": declarations(nodes)})
        idle_writes = len(recorder.writes())
        recorder.clear()
        one = [nodes[len(nodes) // 2]["mac"]]
        seconds_one, result_one = run_module("bootparams", {"url": recorder.url, "declarations": declarations(nodes, one)})
        one_writes = recorder.writes()
    finally:
        recorder.stop()
    return {"nodes": len(nodes), "seed_writes": len(seeded["requests"]), "no_change_seconds": round(seconds, 2),
            "no_change_changed": result["changed"], "no_change_writes": idle_writes,
            "one_change_seconds": round(seconds_one, 2), "one_change_writes": len(one_writes),
            "one_change_nodes_changed": result_one["nodes_changed"],
            "one_change_request": "%s %s" % (one_writes[0][0], json.dumps(one_writes[0][2])[:120]) if one_writes else None}


def bench_naive_vs_module(lab, nodes, workdir):
    naive = lab.bss("postgres", "bss-bench-naive")
    bulk = lab.bss("postgres", "bss-bench-bulk")
    out = os.path.join(workdir, "timing.json")
    payloads = [{"macs": [n["mac"]], "kernel": KERNEL, "initrd": INITRD, "params": PARAMS} for n in nodes]
    play = [{"hosts": "localhost", "gather_facts": False, "vars": {"payloads": payloads}, "tasks": [
        {"name": "t0", "ansible.builtin.set_fact": {"t0": "{{ now(utc=true).timestamp() }}"}},
        {"name": "naive: one PUT per node", "ansible.builtin.uri": {
            "url": naive.url + "/boot/v1/bootparameters", "method": "PUT", "body_format": "json", "body": "{{ item }}"},
         "loop": "{{ payloads }}", "loop_control": {"label": "{{ item.macs[0] }}"}},
        {"name": "t1", "ansible.builtin.set_fact": {"t1": "{{ now(utc=true).timestamp() }}"}},
        {"name": "bootparams: one call", "hpc_boot.bss.bootparams": {"url": bulk.url, "declarations": declarations(nodes)}},
        {"name": "t2", "ansible.builtin.set_fact": {"t2": "{{ now(utc=true).timestamp() }}"}},
        {"name": "save", "ansible.builtin.copy": {"dest": out, "mode": "0600", "content": "{{ {'t0': t0, 't1': t1, 't2': t2} | to_json }}"}},
    ]}]
    playbook = os.path.join(workdir, "naive.yml")
    with open(playbook, "w") as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_HOME=os.path.join(workdir, "ansible-home"))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
                    "-e", "ansible_python_interpreter=%s" % sys.executable, playbook],
                   env=env, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    with open(out) as handle:
        stamps = json.load(handle)
    naive_s = float(stamps["t1"]) - float(stamps["t0"])
    bulk_s = float(stamps["t2"]) - float(stamps["t1"])
    return {"nodes": len(nodes), "naive_uri_loop_seconds": round(naive_s, 2), "bootparams_seconds": round(bulk_s, 2),
            "ratio": round(naive_s / bulk_s, 1)}


def bench_parity(lab, nodes, workers, impl="double"):
    etcd = lab.bss("etcd", "bss-bench-etcd-" + impl, impl)
    postgres = lab.bss("postgres", "bss-bench-parity-" + impl, impl)
    for bss in (etcd, postgres):
        run_module("bootparams", {"url": bss.url, "declarations": declarations(nodes)})
    servers = {"bss_etcd_" + impl: etcd.pid, "bss_postgres_" + impl: postgres.pid, "etcd": lab.etcd.pid}
    cpu_before = dict((name, cpu_seconds(pid)) for name, pid in servers.items())
    seconds, result = run_module("bootscript_info", {"url": etcd.url, "compare_url": postgres.url, "workers": workers,
                                                     "macs": [n["mac"] for n in nodes]})
    cpu = dict((name, round(cpu_seconds(pid) - cpu_before[name], 1)) for name, pid in servers.items())
    cpu["bootscript_info"] = round(run_module.last_cpu, 1)
    etcd.stop()
    postgres.stop()
    return {"bss": impl, "nodes": len(nodes), "workers": workers, "seconds": round(seconds, 2), "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0], "summary": result["parity_summary"],
            "first_difference": next((row for row in result["parity"] if not row["same"]), None)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--naive-nodes", type=int, default=1000)
    parser.add_argument("--only", default="1,2,3")
    parser.add_argument("--workers", type=int, default=32, help="bootscript_info workers per BSS instance")
    parser.add_argument("--bss", default="double,upstream",
                        help="parity (3) against these BSS implementations, each measured in this run (default both)")
    options = parser.parse_args()
    chosen = set(options.only.split(","))
    workdir = procs.make_workdir("bench-bootparams")
    lab = Lab(max(options.nodes, options.naive_nodes), workdir)
    nodes = node_set(options.nodes)
    results = {}
    try:
        if "1" in chosen:
            results["no_change"] = bench_no_change(lab, nodes)
            print("1. %(nodes)d nodes, postgres: no-change run %(no_change_seconds).2f s, %(no_change_writes)d writes; "
                  "one node changed: %(one_change_seconds).2f s, %(one_change_writes)d write(s)" % results["no_change"], flush=True)
        if "2" in chosen:
            results["naive_vs_module"] = bench_naive_vs_module(lab, node_set(options.naive_nodes), workdir)
            print("2. %(nodes)d nodes: uri loop %(naive_uri_loop_seconds).2f s, bootparams %(bootparams_seconds).2f s, "
                  "ratio %(ratio).1fx" % results["naive_vs_module"], flush=True)
        if "3" in chosen:
            for impl in options.bss.split(","):
                key = "parity" if impl == "double" else "parity_" + impl
                results[key] = bench_parity(lab, nodes, options.workers, impl)
                print("3. bootscript_info parity of %d nodes on the %s BSS (etcd vs postgres, %d workers each): %.2f s, "
                      "%s, CPU s %s" % (results[key]["nodes"], impl, options.workers, results[key]["seconds"],
                                        results[key]["summary"], results[key]["cpu_seconds"]), flush=True)
            if "parity" in results and "parity_upstream" in results:
                print("   double / upstream: %.1fx" % (results["parity"]["seconds"] / results["parity_upstream"]["seconds"]))
    finally:
        lab.stop()
        procs.shutil.rmtree(workdir, ignore_errors=True)
    path = os.path.join(REPO, "bench", "results", "bootparams.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    previous = {}
    if os.path.exists(path):
        with open(path) as handle:
            previous = json.load(handle)
    previous.update(results)
    with open(path, "w") as handle:
        json.dump(previous, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
