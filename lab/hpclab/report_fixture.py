"""A cutover report without a lab: a site-scale state file and loss report, rendered by the role, viewed in Chromium.

``write_fixture`` writes ``state.json`` and ``losses.json`` as a finished cutover of ``nodes`` synthetic
nodes would leave them: the losses are the real conversion's (``bss_convert`` on the synthetic cluster's
etcd records), plus records whose names carry HTML (a ``<script>`` element) to prove the report escapes
them. ``render`` runs the cutover playbook with ``--tags report`` on that directory, as an admin
rewrites a report. ``chromium`` runs Debian's headless Chromium (``--dump-dom`` or ``--screenshot``).

Command line (``make report-screenshot``)::

    python -m hpclab.report_fixture [--report path/report.html] [--png docs/images/cutover-report.png]

renders the fixture (or takes ``--report``) and saves a 1280x800 screenshot.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

from hpclab import cluster, cutover_lab

REPO = cutover_lab.REPO
sys.path.insert(0, os.path.join(REPO, ".build", "collections"))

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert  # noqa: E402  pylint: disable=wrong-import-position

HOSTILE_NAME = '<script>alert("bss")</script>'
HOSTILE_XNAME = 'x9000c0s0b0n0<b>&amp;'
EPOCH = 1796000000.0
PHASE_SECONDS = (("preflight", 1.2), ("backup", 3.4), ("postgres", 0.8), ("schema", 1.1), ("import", 9.6),
                 ("new_bss", 6.3), ("parity", 21.7), ("canary", 48.2), ("rollout", 27.5))


def losses_of(nodes, seed=0):
    """The real conversion's losses for the synthetic cluster's etcd records, plus two hostile record names."""
    records = cluster.etcd_records(nodes, seed=seed)
    records["/params/" + HOSTILE_NAME] = cluster.params_value("console=ttyS0", "", "")
    records["/params/" + HOSTILE_XNAME] = cluster.params_value("quiet", "http://10.1.0.1/k", "")
    params, kernels, initrds, access = bss_convert.split_etcd_keys(records)
    conversion = bss_convert.convert(params, kernels, initrds, access, smd_nodes=nodes)
    return conversion


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fixture_state(nodes_count=2000, seed=0):
    """(state, loss report) of a complete cutover of ``nodes_count`` synthetic nodes."""
    nodes = cluster.generate_nodes(nodes_count, seed=seed)
    conversion = losses_of(nodes, seed)
    losses = conversion["losses"]
    counts = {}
    for loss in losses:
        counts[loss["kind"]] = counts.get(loss["kind"], 0) + 1
    lookups = sum(len(node["macs"]) for node in nodes) + len(nodes) + sum(1 for node in nodes if node["nid"] > 0)
    parity = {"nodes": len(nodes), "compared": lookups, "equal": lookups, "different": 0, "differences": []}
    canary = next(node for node in nodes if node["role"] == "Compute")
    data = {
        "preflight": {"old_bss_backend": "etcd", "old_bss_version": "v1.32.2", "smd_status": 200, "target_schema": "empty"},
        "backup": {"revision": 52311, "files": [
            {"kind": "etcd snapshot", "path": "/var/backups/hpc_boot/bss/bss-etcd-20261203T101500Z.db", "sha256": "9f2c" * 16},
            {"kind": "logical export (GET /boot/v1/bootparameters)",
             "path": "/var/backups/hpc_boot/bss/bss-etcd-20261203T101500Z.bootparameters.json", "sha256": "51ab" * 16}]},
        "postgres": {"deployed": False, "schema_before": "empty"},
        "schema": {"version": 3, "steps": ["1_create_tables", "2_endpoint_access", "3_boot_groups"]},
        "import": {"revision": 52311, "counts": conversion["counts"], "loss_counts": counts, "losses": losses[:200],
                   "plan": {"insert_nodes": len(conversion["nodes"]), "insert_configs": len(conversion["configs"])}},
        "new_bss": {"url": "http://127.0.0.1:27780", "backend": "postgres", "version": "v1.32.2"},
        "parity": {"parity": parity},
        "canary": {"node": canary["xname"], "nodes": [canary["xname"]], "mac": canary["macs"][0], "power": "command",
                   "kernel": "http://10.1.0.1/boot/compute/vmlinuz",
                   "cmdline": "console=ttyS0,115200 root=live:http://10.1.0.1/compute.squashfs xname=%s nid=%d ip=dhcp"
                              % (canary["xname"], canary["nid"])},
        "rollout": {"active": "the new BSS (PostgreSQL), http://127.0.0.1:27780", "delta_nodes": 3, "parity": parity},
    }
    phases, clock = {}, EPOCH
    for name, seconds in PHASE_SECONDS:
        phases[name] = {"status": "done", "started": _iso(clock), "started_epoch": clock, "finished": _iso(clock + seconds),
                        "duration": seconds, "reason": "", "data": data[name]}
        clock += seconds + 0.9
    state = {"created": _iso(EPOCH), "updated": _iso(clock), "order": [name for name, _s in PHASE_SECONDS], "phases": phases}
    return state, {"revision": 52311, "loss_counts": counts, "losses": losses}


def stopped_at_parity(state):
    """The same cutover stopped by its parity phase: two lookups differ, canary and rollout never ran."""
    state = json.loads(json.dumps(state))
    for name in ("canary", "rollout"):
        del state["phases"][name]
        state["order"].remove(name)
    parity = state["phases"]["parity"]
    served = {"kind": "boot", "kernel": "http://10.1.0.1/k", "initrd": "http://10.1.0.1/i", "params": "quiet xname=x1000c0s0b0n0",
              "retry_delay": "30", "chain": "http://bss/boot/v1/bootscript?mac=98:03:9b:00:00:01"}
    rows = [{"node": "98:03:9b:00:00:01", "same": False, "differences": ["params"], "first": served,
             "second": dict(served, params="quiet <b>xname</b>=x1000c0s0b0n0")},
            {"node": "nid2", "same": False, "differences": ["script"], "first": served, "second": None}]
    compared = parity["data"]["parity"]["compared"]
    parity["data"]["parity"].update({"equal": compared - 2, "different": 2, "differences": rows})
    parity.update({"status": "failed", "reason": "2 of %d lookups serve a different boot script on the new BSS, first ones: "
                   "['98:03:9b:00:00:01', 'nid2'] <i>" % compared})
    return state


def write_fixture(state_dir, nodes_count=2000, seed=0, stopped=False):
    state, loss_report = fixture_state(nodes_count, seed)
    write_state_dir(state_dir, stopped_at_parity(state) if stopped else state, loss_report)
    return state, loss_report


def write_state_dir(state_dir, state, loss_report):
    """``state.json`` and ``losses.json`` into ``state_dir``, as the cutover leaves them."""
    os.makedirs(state_dir, exist_ok=True)
    for name, value in (("state.json", state), ("losses.json", loss_report)):
        with open(os.path.join(state_dir, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=1, sort_keys=True)


def render(*state_dirs):
    """``ansible-playbook hpc_boot.bss.cutover --tags report`` for each state directory (one local host each, one run).

    Returns the CompletedProcess; the inventory is written into the first directory.
    """
    hosts = {}
    for number, state_dir in enumerate(state_dirs):
        hosts[f"report{number}"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "cutover_state_dir": state_dir, "cutover_accept_loss_kinds": sorted(bss_convert_kinds())}
    inventory = os.path.join(state_dirs[0], "inventory.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"bss_head": {"hosts": hosts}}, handle)
    return cutover_lab.run_playbook(os.path.join(REPO, "playbooks", "cutover.yml"), inventory, "--tags", "report")


def bss_convert_kinds():
    """Every loss kind the conversion reports (the fixture's cutover accepted them all)."""
    return {"cloud_init", "global_cloud_init", "unknown_mac_record", "unknown_nid_record", "unknown_xname_record",
            "shadowed_record", "tag_record", "image_params_merged", "kernel_missing", "divergent_identities",
            "node_without_mac", "undecodable_record", "unsafe_params"}


def chromium(page, *args, window="1280,800", timeout=90):
    """Run headless Chromium on ``page`` (a file path); returns its stdout (the DOM with ``--dump-dom``)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise FileNotFoundError("chromium is not installed (make deps installs Debian's chromium package)")
    profile = tempfile.mkdtemp(prefix="hpclab-chromium-")
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={window}", *args, "file://" + os.path.abspath(page)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def screenshot(page, png, window="1280,800"):
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    chromium(page, f"--screenshot={os.path.abspath(png)}", window=window)
    if not os.path.exists(png) or os.path.getsize(png) == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def main(argv=None):
    parser = argparse.ArgumentParser(description="Screenshot the cutover report at 1280x800.")
    parser.add_argument("--report", help="an existing report.html (default: render the 2,000-node fixture)")
    parser.add_argument("--png", default=os.path.join(REPO, "docs", "images", "cutover-report.png"))
    parser.add_argument("--nodes", type=int, default=2000)
    args = parser.parse_args(argv)
    page = args.report
    if not page:
        state_dir = os.path.join(REPO, ".build", "report-fixture")
        shutil.rmtree(state_dir, ignore_errors=True)
        write_fixture(state_dir, args.nodes)
        result = render(state_dir)
        if result.returncode != 0:
            print(result.stdout[-3000:] + result.stderr[-2000:], file=sys.stderr)
            return 1
        page = os.path.join(state_dir, "report.html")
    screenshot(page, args.png)
    print(f"{args.png}: screenshot of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
