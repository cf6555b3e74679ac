"""Benchmark of the boot_config role at site scale (issue 11); figures go to docs/performance.md.

For each node count: an SMD double serving N nodes (SMD group label ``compute``, one node also in
``testbed``), an inventory made by the hpc_boot.bss.smd inventory plugin with ``group_vars/compute.yml``
declaring the class, and the lab's BSS double in postgres mode behind a recording proxy that counts
writes. Then, each an ``ansible-playbook`` process timed from start to exit (inventory build included):

1. playbooks/boot_config.yml from empty (the seed run);
2. the same again: the no-op run (writes on the wire, changed count from the recap);
3. playbooks/site.yml (its boot configuration play; the other plays have no hosts): no-op too;
4. ``group_vars/testbed.yml`` now gives the one ``testbed`` node other params: exactly one write expected.

The naive peer, in the same run: one ``ansible.builtin.uri`` PUT per node over the same inventory (a
loop over ``groups['compute']`` reading hostvars), on ``--naive-nodes`` nodes against its own BSS, its
loop time extrapolated linearly to N; the ratio is naive / our no-op run.

Run: .venv/bin/python bench/bench_boot_config.py [--nodes 1000 10000 50000] [--naive-nodes 200]
Results are printed and written to bench/results/boot_config.json. Every service binds 127.0.0.1 on a
free port and is stopped by PID at the end.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)

from bench_bootparams import COLLECTIONS, INITRD, KERNEL, PARAMS, REPO, BssRecorder, Lab, node_set, procs, smd  # noqa: E402  pylint: disable=wrong-import-position,import-error

RECAP_RE = re.compile(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TESTBED_PARAMS = PARAMS + " rd.shell"


class SiteLab(Lab):
    """The bench lab, its SMD double serving the given nodes (with their group labels)."""

    def __init__(self, nodes, workdir):  # pylint: disable=super-init-not-called
        self.services = []
        path = os.path.join(workdir, "nodes.json")
        with open(path, "w") as handle:
            json.dump(nodes, handle)
        self.smd = self._keep(smd.start_smd(path))
        self.postgres = None
        self.etcd = None


def write_inventory(directory, smd_url):
    os.makedirs(os.path.join(directory, "group_vars"), exist_ok=True)
    with open(os.path.join(directory, "smd.yml"), "w") as handle:
        json.dump({"plugin": "hpc_boot.bss.smd", "url": smd_url}, handle)
    with open(os.path.join(directory, "group_vars", "compute.yml"), "w") as handle:
        json.dump({"bss_boot_config": {"kernel": KERNEL, "initrd": INITRD, "params": PARAMS}}, handle)
    return os.path.join(directory, "smd.yml")


def ansible_env(workdir):
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_HOME=os.path.join(workdir, "ansible-home"),
                ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1",
                ANSIBLE_HOST_KEY_CHECKING="false", PYTHONDONTWRITEBYTECODE="1")


def run_playbook(workdir, inventory, playbook, extra):
    """Run ansible-playbook; returns wall seconds, peak RSS (MB) of the controller process and the recap sums."""
    log = os.path.join(workdir, "playbook.log")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, "-c", "local",
            "-e", json.dumps(dict(extra, ansible_python_interpreter=sys.executable)), playbook]
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=ansible_env(workdir), stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    with open(log) as handle:
        text = handle.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed:\n%s" % (os.path.basename(playbook), text[-3000:]))
    recap = [tuple(int(v) for v in m) for m in RECAP_RE.findall(text)]
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0),
            "changed": sum(r[1] for r in recap), "failed": sum(r[3] for r in recap), "hosts_in_recap": len(recap)}


def naive_loop(lab, workdir, inventory, count):
    """One uri PUT per node, as a hand-written playbook would do it; returns loop seconds and run seconds."""
    bss = lab.bss("postgres", "bss-bench-naive-%d" % count)
    stamps = os.path.join(workdir, "naive.json")
    play = [{"name": "naive", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "t0", "ansible.builtin.set_fact": {"t0": "{{ now(utc=true).timestamp() }}"}},
        {"name": "one PUT per node", "ansible.builtin.uri": {
            "url": bss.url + "/boot/v1/bootparameters", "method": "PUT", "body_format": "json",
            "body": {"macs": "{{ hostvars[item].bss_macs }}", "hosts": ["{{ hostvars[item].bss_xname }}"],
                     "kernel": "{{ hostvars[item].bss_boot_config.kernel }}", "initrd": "{{ hostvars[item].bss_boot_config.initrd }}",
                     "params": "{{ hostvars[item].bss_boot_config.params }}"}},
         "loop": "{{ groups['compute'][:%d] }}" % count},
        {"name": "t1", "ansible.builtin.set_fact": {"t1": "{{ now(utc=true).timestamp() }}"}},
        {"name": "save", "ansible.builtin.copy": {"dest": stamps, "mode": "0600", "content": "{{ {'t0': t0, 't1': t1} | to_json }}"}},
    ]}]
    playbook = os.path.join(workdir, "naive.yml")
    with open(playbook, "w") as handle:
        json.dump(play, handle)
    run = run_playbook(workdir, inventory, playbook, {})
    with open(stamps) as handle:
        times = json.load(handle)
    return {"nodes": count, "loop_seconds": round(float(times["t1"]) - float(times["t0"]), 1), "run_seconds": run["seconds"]}


def bench_size(count, naive_count, workdir):
    nodes = node_set(count)
    for node in nodes:
        node["groups"] = ["compute"]
    testbed = nodes[count // 2]
    testbed["groups"] = ["compute", "testbed"]
    lab = SiteLab(nodes, workdir)
    recorder = None
    try:
        bss = lab.bss("postgres", "bss-bench-role-%d" % count)
        recorder = BssRecorder(bss.url)
        inventory = write_inventory(os.path.join(workdir, "inventory-%d" % count), lab.smd.url)
        extra = {"boot_config_bss_url": recorder.url, "boot_config_backend": "postgres"}
        role_playbook = os.path.join(REPO, "playbooks", "boot_config.yml")
        result = {"nodes": count}
        seed = run_playbook(workdir, inventory, role_playbook, extra)
        result["seed"] = dict(seed, writes=len(recorder.writes()))
        print("  %d nodes: seed run %.1f s, %d writes" % (count, seed["seconds"], result["seed"]["writes"]), flush=True)
        for name, playbook in (("no_op", role_playbook), ("site_no_op", os.path.join(REPO, "playbooks", "site.yml"))):
            recorder.clear()
            run = run_playbook(workdir, inventory, playbook, extra)
            result[name] = dict(run, writes=len(recorder.writes()))
            print("  %d nodes: %s %.1f s, %d writes, changed=%d, peak RSS %d MB" % (
                count, name, run["seconds"], result[name]["writes"], run["changed"], run["peak_rss_mb"]), flush=True)
        recorder.clear()
        with open(os.path.join(os.path.dirname(inventory), "group_vars", "testbed.yml"), "w") as handle:
            json.dump({"bss_boot_config": {"kernel": KERNEL, "initrd": INITRD, "params": TESTBED_PARAMS}}, handle)
        run = run_playbook(workdir, inventory, role_playbook, extra)
        writes = recorder.writes()
        result["one_changed"] = dict(run, writes=len(writes), requests=["%s %s %s" % (w[0], w[1], json.dumps(w[2])[:160]) for w in writes])
        print("  %d nodes: one node's group_vars changed: %.1f s, %d write(s) %s" % (
            count, run["seconds"], len(writes), result["one_changed"]["requests"]), flush=True)
        if naive_count:
            naive = naive_loop(lab, workdir, inventory, min(naive_count, count))
            naive["extrapolated_seconds"] = round(naive["run_seconds"] + naive["loop_seconds"] * (count / naive["nodes"] - 1), 1)
            naive["ratio_to_no_op"] = round(naive["extrapolated_seconds"] / result["no_op"]["seconds"], 1)
            result["naive"] = naive
            print("  %d nodes: naive uri loop %.1f s for %d nodes (run %.1f s), extrapolated %.1f s: %.1fx our no-op run" % (
                count, naive["loop_seconds"], naive["nodes"], naive["run_seconds"], naive["extrapolated_seconds"],
                naive["ratio_to_no_op"]), flush=True)
        result["load_average"] = [round(v, 1) for v in os.getloadavg()]
        return result
    finally:
        if recorder is not None:
            recorder.stop()
        lab.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--naive-nodes", type=int, default=200, help="nodes the uri loop really writes (0: skip)")
    options = parser.parse_args()
    workdir = procs.make_workdir("bench-boot-config")
    results = []
    try:
        for count in options.nodes:
            print("%d nodes (load average %.1f)" % (count, os.getloadavg()[0]), flush=True)
            results.append(bench_size(count, options.naive_nodes, workdir))
    finally:
        procs.shutil.rmtree(workdir, ignore_errors=True)
        path = os.path.join(REPO, "bench", "results", "boot_config.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
