"""The lab cutover at 10,000 nodes against the real upstream BSS (issue 11): every phase's time, parity's figures.

One command: brings the lab up with N synthetic nodes (``hpclab up``/``load``: etcd, the SMD double, upstream BSS in
etcd mode as the old side and in postgres mode as the new side, PostgreSQL, haproxy), deploys the site's gateway,
then runs ``playbooks/cutover.yml`` for real, as an operator would, and prints:

- each phase's duration from the cutover's state.json (the report's table);
- the parity phase's lookups (every MAC, xname and NID of every node; no sampling), its phase time and the comparison's
  own time (the module's progress file);
- where the CPU went in each phase: the lab's processes (old BSS, etcd, new BSS, PostgreSQL, SMD double), sampled
  from /proc every second, the rest being Ansible and our modules;
- the progress lines the operator saw (phase start/end, parity counts), with the second they appeared;
- the naive peer measured in the same run: a serial, one request at a time, new connection per request (as a curl loop
  would) parity loop over ``--naive-lookups`` random lookups on both sides, extrapolated to all lookups, and the ratio;
- the load average at the start, after the cutover and at the end.

The canary's VM boot is skipped: its power command only fetches the canary's boot script through the gateway, as its
iPXE would (``cutover_lab.prepare(power="fetch")``), so the canary phase keeps every check but the boot's own
command-line comparison. Results are merged into bench/results/cutover.json.

Run: ``.venv/bin/python bench/bench_cutover.py [--nodes 10000] [--seed 0] [--naive-lookups 300] [--bss upstream]``.
Every service binds 127.0.0.1 on a free port and is stopped by PID at the end (also on failure or Ctrl-C).
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lab"), os.path.join(REPO, ".build", "collections")]

from hpclab import cli, cutover_lab  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.hpc_boot.bss.plugins.filter.parity_scope import parity_scope  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hpc_boot.bss.plugins.filter.smd_nodes import smd_nodes  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse as parse  # noqa: E402  pylint: disable=wrong-import-position

PROGRESS = re.compile(r'"msg": "((?:phase \w+: |parity: ).*)"')
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of ``pid`` (with ``children``: plus its live children and those it reaped, for
    PostgreSQL's backends, also the short-lived sessions it forks for new connections)."""
    pids = [pid]
    if children:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
                pids += [int(item) for item in handle.read().split()]
        except OSError:
            pass
    total = 0.0
    for each in pids:
        try:
            with open(f"/proc/{each}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children and each == pid else 0)) / TICK
    return total


class CpuByPhase(threading.Thread):
    """Every second: which phase the state file says is running, and the CPU the lab's processes used since."""

    def __init__(self, state_file, processes):
        super().__init__(daemon=True)
        self.state_file = state_file
        self.processes = processes  # label -> (pid, with children)
        self.by_phase = {}
        self.stopped = threading.Event()

    def phase(self):
        try:
            with open(self.state_file, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return None
        running = [name for name in state.get("order", []) if state["phases"][name]["status"] == "started"]
        return running[-1] if running else None

    def sample(self):
        return {label: cpu_seconds(pid, children) for label, (pid, children) in self.processes.items()}

    def run(self):
        last = self.sample()
        while not self.stopped.wait(1.0):
            now, phase = self.sample(), self.phase()
            if phase:
                used = self.by_phase.setdefault(phase, dict.fromkeys(now, 0.0))
                for label, value in now.items():
                    used[label] += max(0.0, value - last[label])
            last = now


def run_cutover(prepared, log):
    """ansible-playbook cutover.yml, streaming its output: returns (rc, seconds, [(second, progress line)])."""
    argv = [os.path.join(cutover_lab.VENV_BIN, "ansible-playbook"), "-i", prepared["inventory"],
            os.path.join(REPO, "playbooks", "cutover.yml")]
    started = time.monotonic()
    lines = []
    with open(log, "a", encoding="utf-8") as out, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cutover_lab.ansible_env(), cwd=REPO) as child:
        for line in child.stdout:
            out.write(line)
            match = PROGRESS.search(line)
            if match:
                seen = (round(time.monotonic() - started, 1), match.group(1))
                lines.append(seen)
                print("  [%6.1f s] %s" % seen, flush=True)
        rc = child.wait()
    return rc, time.monotonic() - started, lines


def all_lookups(smd_url):
    """Every lookup the parity phase makes, as (query key, value): the same SMD answers through the same filter."""
    def get(path):
        host = smd_url.split("//", 1)[1].rstrip("/")
        connection = http.client.HTTPConnection(host, timeout=300)
        connection.request("GET", path)
        body = connection.getresponse().read()
        connection.close()
        return json.loads(body)
    nodes = smd_nodes(get("/hsm/v2/State/Components?type=Node"), get("/hsm/v2/Inventory/EthernetInterfaces"))
    scope = parity_scope(nodes, [node["xname"] for node in nodes])
    return ([("mac", value) for value in scope["macs"]] + [("name", value) for value in scope["hosts"]]
            + [("nid", str(value)) for value in scope["nids"]])


def naive_parity(old_url, new_url, lookups):
    """Serial, one request at a time and a new connection each, both sides, then compared: (seconds, different)."""
    def fetch(url, key, value):
        connection = http.client.HTTPConnection(url.split("//", 1)[1], timeout=120)
        connection.request("GET", "/boot/v1/bootscript?%s=%s" % (key, quote(value, safe="")))
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        connection.close()
        return None if response.status == 404 else parse.normalise(parse.parse_script(text))
    started = time.perf_counter()
    different = sum(1 for key, value in lookups if fetch(old_url, key, value) != fetch(new_url, key, value))
    return time.perf_counter() - started, different


def load_average():
    return [round(value, 1) for value in os.getloadavg()]


def bench(options):
    figures = {"nodes": options.nodes, "bss": options.bss, "load_average_start": load_average()}
    print(f"bench_cutover: {options.nodes} nodes, BSS {options.bss}, load average {figures['load_average_start']}", flush=True)
    state_dir = tempfile.mkdtemp(prefix="hpclab-bench-cutover-")
    prepared = None
    try:
        began = time.monotonic()
        services = cli.up(state_dir, nodes=options.nodes, seed=options.seed, vm=True, bss=options.bss, out=lambda _line: None)
        cli.load(state_dir, out=lambda _line: None)
        prepared = cutover_lab.prepare(state_dir, power="fetch")
        log = os.path.join(state_dir, "ansible.log")
        cutover_lab.deploy_gateway(prepared, log=log)
        figures["lab_setup_s"] = round(time.monotonic() - began, 1)
        print(f"lab up, cluster loaded and gateway deployed in {figures['lab_setup_s']} s (not part of the cutover)", flush=True)

        watched = {"old BSS": (services["bss-etcd"].pid, False), "etcd": (services["etcd"].pid, False),
                   "new BSS": (services["bss-postgres"].pid, False), "PostgreSQL": (services["postgres"].pid, True),
                   "SMD double": (services["smd"].pid, False)}
        sampler = CpuByPhase(os.path.join(prepared["state_dir"], "state.json"), watched)
        sampler.start()
        print("cutover (ansible-playbook playbooks/cutover.yml), the progress lines it printed:", flush=True)
        rc, seconds, lines = run_cutover(prepared, log)
        sampler.stopped.set()
        sampler.join()
        figures.update(cutover_s=round(seconds, 1), rc=rc, progress_lines=len(lines), load_average_after=load_average())
        with open(os.path.join(prepared["state_dir"], "state.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        figures["phases"] = {name: {"status": state["phases"][name]["status"], "duration_s": state["phases"][name]["duration"],
                                    "cpu_s": {label: round(value, 1) for label, value in sampler.by_phase.get(name, {}).items()}}
                             for name in state["order"]}
        if rc != 0:
            shutil.copy(log, os.path.join(REPO, "bench", "results", "cutover-failed.log"))
            raise RuntimeError(f"the cutover failed (rc {rc}); log kept in bench/results/cutover-failed.log")
        parity = state["phases"]["parity"]["data"]["parity"]
        with open(os.path.join(prepared["state_dir"], "parity_progress.json"), encoding="utf-8") as handle:
            progress = json.load(handle)
        figures["parity"] = {"lookups": int(parity["compared"]), "equal": int(parity["equal"]), "different": int(parity["different"]),
                             "phase_s": state["phases"]["parity"]["duration"], "comparison_s": progress["seconds"]}

        lookups = all_lookups(prepared["lab_env"]["HPCLAB_SMD_URL"])
        timed = random.Random(options.seed).sample(lookups, min(options.naive_lookups, len(lookups)))
        naive_s, naive_different = naive_parity(prepared["lab_env"]["HPCLAB_BSS_ETCD_URL"],
                                                prepared["lab_env"]["HPCLAB_BSS_POSTGRES_URL"], timed)
        estimate = naive_s * len(lookups) / len(timed)
        figures["naive"] = {"timed_lookups": len(timed), "timed_s": round(naive_s, 1), "different": naive_different,
                            "extrapolated_s": round(estimate, 1), "lookups": len(lookups),
                            "ratio_to_parity_phase": round(estimate / figures["parity"]["phase_s"], 2),
                            "ratio_to_comparison": round(estimate / max(0.1, figures["parity"]["comparison_s"]), 2)}
        figures["load_average_end"] = load_average()
        report(figures)
    finally:
        if prepared is not None:
            cutover_lab.remove_gateway(prepared)
        cli.down(state_dir, out=lambda _line: None)
        shutil.rmtree(state_dir, ignore_errors=True)
    return figures


def report(figures):
    print()
    print("phase        status    duration  CPU seconds of the lab's processes during the phase")
    for name, phase in figures["phases"].items():
        cpu = ", ".join(f"{label} {value}" for label, value in phase["cpu_s"].items() if value >= 0.1) or "-"
        print(f"{name:<12} {phase['status']:<8} {phase['duration_s']:>8.1f} s  {cpu}")
    print(f"cutover in all: {figures['cutover_s']} s (ansible-playbook, the canary's VM boot skipped)")
    parity, naive = figures["parity"], figures["naive"]
    print(f"parity: {parity['lookups']} lookups (every MAC, xname and NID), {parity['equal']} equal, {parity['different']} different; "
          f"phase {parity['phase_s']:.1f} s, comparison {parity['comparison_s']:.1f} s; goal under 30 s: "
          f"{'met' if parity['phase_s'] < 30 else 'missed'}")
    print(f"naive peer (serial, new connection per request): {naive['timed_lookups']} lookups in {naive['timed_s']} s "
          f"({naive['different']} different), extrapolated {naive['extrapolated_s']} s for {naive['lookups']}: "
          f"{naive['ratio_to_parity_phase']}x the parity phase, {naive['ratio_to_comparison']}x its comparison")
    print(f"load average: start {figures['load_average_start']}, after the cutover {figures['load_average_after']}, "
          f"end {figures['load_average_end']} (2 cores, shared)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-lookups", type=int, default=300, help="lookups the naive serial loop times (then extrapolated)")
    parser.add_argument("--bss", choices=("upstream", "double"), default="upstream")
    options = parser.parse_args()
    figures = bench(options)
    path = os.path.join(REPO, "bench", "results", "cutover.json")
    previous = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    previous[f"{options.bss}_{options.nodes}"] = figures
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(previous, handle, indent=2)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
