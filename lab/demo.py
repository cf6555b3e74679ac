"""``make demo``: the cutover from etcd to PostgreSQL on the local lab, in a few minutes.

Brings the local lab up (etcd, PostgreSQL, SMD double, BSS double in etcd and in postgres mode,
haproxy gateway, the canary VM's image server), loads a synthetic cluster into the etcd-mode BSS the
way real sites hold it, asks both BSS instances for the same boot scripts, shows why copying records
is not a migration, then runs the cutover playbook (dry run, then for real, with a canary node that
network-boots in QEMU), prints the report's summary, and tears everything down again, also on Ctrl-C
or failure. The report is kept in .build/demo/.

Run: ``.venv/bin/python lab/demo.py [--nodes N] [--seed S]``.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hpclab import cli, cluster, cutover_lab, procs  # noqa: E402  pylint: disable=wrong-import-position

WIDTH = 78


def heading(text):
    print()
    print(text)
    print("-" * min(WIDTH, len(text)))


def indented(line):
    print("  " + line.rstrip())


def from_lab(line):
    print("  " + line.strip())


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def shape_counts(records, nodes):
    """What the etcd BSS now holds, in words a BSS operator uses."""
    xnames = {node["xname"] for node in nodes}
    known_macs = {mac for node in nodes for mac in node["macs"]}
    known_nids = {f"nid{node['nid']}" for node in nodes}
    counts = {}

    def bump(label):
        counts[label] = counts.get(label, 0) + 1

    for key, value in records.items():
        text = value.decode("utf-8")
        if key.startswith("/params/"):
            name = key[len("/params/"):]
            if name in xnames:
                if '"ReferralToken":' in text:
                    bump("node records with the legacy ReferralToken key (BSS v1.15-v1.32.0)")
                elif '"referral-token":' not in text:
                    bump("node records without any referral token (before 2022)")
                elif '"meta-data":{' in text:
                    bump("node records with cloud-init data")
                else:
                    bump("node records by xname (current shape)")
            elif name in known_macs:
                bump("records named by an SMD-known MAC (second-choice lookup)")
            elif ":" in name:
                bump("records for MACs SMD does not know (case kept)")
            elif name in known_nids:
                bump("nid<N> records for SMD-known NIDs")
            elif name.startswith("nid"):
                bump("nid<N> records for NIDs SMD does not know")
            else:
                bump("tag records: " + name)
        elif key.startswith(("/kernel/", "/initrd/")):
            bump("image records" + (" with their own params" if '"params":' in text else ""))
        elif key.startswith("/endpoint-access/"):
            bump("endpoint-access epochs")
    tags = sorted(label[len("tag records: "):] for label in counts if label.startswith("tag records: "))
    merged = {label: count for label, count in counts.items() if not label.startswith("tag records: ")}
    if tags:
        merged["tag records (" + ", ".join(tags) + ")"] = len(tags)
    return merged


def boot_source(node, records):
    """Which etcd record an etcd-mode BSS uses for a ``?mac=`` request (bss-spec.md 5.1)."""
    for label, name in (("own record", node["xname"]), ("MAC-named record", node["macs"][0]),
                        (f"role record {node['role']}", node["role"]), ("Default record", "Default")):
        if f"/params/{name}" in records:
            return label
    return "nothing"


def script_kind(text):
    if "\nkernel " in text:
        return "kernel"
    if "chain " in text and "sleep" in text:
        return "discovery chain"
    return "other"


def show_script(title, url, params, session):
    response = session.get(url + "/boot/v1/bootscript", params=params, timeout=30)
    print(f"  {title}: HTTP {response.status_code}")
    for line in response.text.rstrip("\n").splitlines():
        print("    | " + line)
    return response.text


def demo_bss(choice):
    """The BSS the demo runs: the real upstream one when `make upstream` installed it, else the double."""
    from hpclab import upstream  # pylint: disable=import-outside-toplevel
    if choice != "auto":
        return choice
    manifest = upstream.read_manifest()
    return "upstream" if manifest and not manifest.get("unavailable") else "double"


def run(nodes_wanted, seed, state_dir, bss="auto"):
    import requests  # pylint: disable=import-outside-toplevel

    bss = demo_bss(bss)
    heading("1. Bring the lab up (every piece on 127.0.0.1, free ports, its own temp directory)")
    print("  BSS: " + ("the real upstream boot-script-service (make upstream)" if bss == "upstream"
                       else "the lab's BSS double (the upstream binary is not installed)"))
    cli.up(state_dir, nodes=nodes_wanted, seed=seed, vm=True, out=from_lab, bss=bss)
    env = cli.env_vars(state_dir)
    with open(env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
        nodes = json.load(handle)
    roles = {}
    for node in nodes:
        label = node["role"] + (f"/{node['subrole']}" if node.get("subrole") else "")
        roles[label] = roles.get(label, 0) + 1
    indented(f"SMD double serves {len(nodes)} nodes: " + ", ".join(f"{count} {role}" for role, count in sorted(roles.items(), key=lambda r: -r[1])))

    heading("2. Load a synthetic cluster into the etcd-mode BSS (API requests + raw etcd writes)")
    cli.load(state_dir, out=from_lab)
    records = cluster.etcd_records(nodes, seed=seed)
    for label, count in shape_counts(records, nodes).items():
        indented(f"{count:>5}  {label}")

    heading("3. Both BSS instances answer")
    with requests.Session() as session:
        for name, var in (("etcd-mode BSS", "HPCLAB_BSS_ETCD_URL"), ("postgres-mode BSS", "HPCLAB_BSS_POSTGRES_URL"),
                          ("gateway (-> etcd BSS)", "HPCLAB_GATEWAY_URL")):
            body = session.get(env[var] + "/boot/v1/service/storage/status", timeout=10).json()
            backend = body.get("bss-storage-backend", {})
            indented(f"{name:<22} {env[var]:<24} storage: {backend.get('name')} {backend.get('status')}")

        node = next(n for n in nodes if n["role"] == "Compute" and f"/params/{n['xname']}" in records
                    and '"referral-token"' in records[f"/params/{n['xname']}"].decode())
        mac = node["macs"][0]
        heading(f"4. One node asks for its boot script: {node['xname']} (nid {node['nid']}), MAC {mac}")
        show_script("via the gateway, answered by the etcd-mode BSS", env["HPCLAB_GATEWAY_URL"], {"mac": mac}, session)
        indented("(chain lines name 10.0.2.100: the gateway as the lab's canary VM sees it)")
        print()
        show_script("the same request to the postgres-mode BSS (empty database)", env["HPCLAB_BSS_POSTGRES_URL"],
                    {"mac": mac}, session)
        indented("The postgres BSS does not know the node, so it answers with the discovery chain:")
        indented("the node would sleep, retry with arch=, and never boot its image.")

        heading(f"5. Every node by MAC, both instances ({len(nodes)} nodes)")
        sources, etcd_kernel, pg_kernel = {}, 0, 0
        for each in nodes:
            params = {"mac": each["macs"][0]}
            etcd_text = session.get(env["HPCLAB_BSS_ETCD_URL"] + "/boot/v1/bootscript", params=params, timeout=30).text
            pg_text = session.get(env["HPCLAB_BSS_POSTGRES_URL"] + "/boot/v1/bootscript", params=params, timeout=30).text
            if script_kind(etcd_text) == "kernel":
                etcd_kernel += 1
                source = boot_source(each, records)
                sources[source] = sources.get(source, 0) + 1
            pg_kernel += script_kind(pg_text) == "kernel"
    indented(f"etcd-mode BSS:     {etcd_kernel}/{len(nodes)} nodes get a kernel script, found through")
    for source, count in sorted(sources.items(), key=lambda s: -s[1]):
        indented(f"                   {count:>5}  {source}")
    indented(f"postgres-mode BSS: {pg_kernel}/{len(nodes)} nodes get a kernel script")
    return etcd_kernel, pg_kernel, len(nodes)


REPORT_DIR = os.path.join(cutover_lab.REPO, ".build", "demo")


def run_cutover(state_dir, prepared):
    """Dry run, then the cutover for real; returns the state record. Keeps the report in REPORT_DIR."""
    canary = prepared["canaries"][0]
    heading("6. The site's gateway, deployed with the gateway role (every node on the etcd BSS)")
    cutover_lab.deploy_gateway(prepared, log=os.path.join(state_dir, "ansible.log"))
    indented(f"haproxy unit {prepared['gateway_unit']} on 127.0.0.1:{prepared['gateway_port']}; "
             f"canary {canary['xname']} (MAC {canary['macs'][0]}) boots the lab kernel")

    playbook = os.path.join(cutover_lab.REPO, "playbooks", "cutover.yml")
    log = os.path.join(state_dir, "ansible.log")
    heading("7. Dry run: ansible-playbook -i inventory.yml hpc_boot.bss.cutover --check")
    dry = cutover_lab.run_playbook(playbook, prepared["inventory"], "--check", log=log)
    for line in dry.stdout.splitlines():
        text = line.strip().strip('",')
        text = text[len('msg": "'):] if text.startswith('msg": "') else text
        if " would " in text or text.startswith(("counts:", "losses by kind:", "not accepted:")):
            indented(text)
    if dry.returncode != 0:
        raise procs.LabError("the dry run failed; see " + log)

    heading("8. The cutover: backup, schema, import, parity, canary boot in QEMU, freeze, delta sync, rollout")
    began = time.monotonic()
    real = cutover_lab.run_playbook(playbook, prepared["inventory"], log=log)
    with open(os.path.join(prepared["state_dir"], "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    for name in state["order"]:
        phase = state["phases"][name]
        indented(f"{name:<10} {phase['status']:<8} {phase['duration']:>7.1f}s  {phase.get('reason', '')[:60]}")
    indented(f"({time.monotonic() - began:.0f}s in all)")
    os.makedirs(REPORT_DIR, exist_ok=True)
    for name in ("report.md", "report.html", "state.json", "losses.json"):
        source = os.path.join(prepared["state_dir"], name)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(REPORT_DIR, name))
    if real.returncode != 0:
        raise procs.LabError(f"the cutover stopped; report in {REPORT_DIR}/report.md, log in {log}")
    return state


def _reap_children():
    """Collect the exit status of lab processes this process started and that have already stopped."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=64, help="synthetic cluster size (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic cluster seed (default 0)")
    parser.add_argument("--bss", choices=("auto", "upstream", "double"), default="auto",
                        help="BSS for both instances (default auto: upstream when installed, else the double)")
    args = parser.parse_args(argv)
    print("hpc_boot.bss demo: the local lab, an etcd-mode BSS full of real-world record shapes, and an empty")
    print("postgres-mode BSS beside it.")
    began = time.monotonic()
    state_dir = tempfile.mkdtemp(prefix="hpclab-demo-")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    outcome = 1
    prepared = None
    try:
        etcd_kernel, pg_kernel, total = run(args.nodes, args.seed, state_dir, args.bss)
        indented(f"The etcd-mode BSS boots {etcd_kernel} of {total} nodes: from their own records, and through SMD")
        indented("(MAC -> xname), role records and Default. The same data copied key by key into PostgreSQL")
        indented("would boot far fewer: postgres mode looks up only the identifier sent, with no SMD mapping,")
        indented("no role or Default fallback, no image params and no cloud-init. Hence the cutover converts")
        indented(f"and proves parity node by node. (The empty postgres BSS booted {pg_kernel}.)")
        prepared = cutover_lab.prepare(state_dir)
        state = run_cutover(state_dir, prepared)
        heading("Summary")
        parity = state["phases"]["parity"]["data"].get("parity", {})
        freeze = state["phases"]["rollout"]["data"].get("parity", {})
        losses = state["phases"]["import"]["data"].get("loss_counts", {})
        indented(f"All boot traffic now goes to the PostgreSQL BSS; parity {parity.get('equal')}/{parity.get('compared')} lookups equal,")
        indented(f"and {freeze.get('equal')}/{freeze.get('compared')} re-checked equal in the write freeze (what changed, and a sample).")
        indented(f"Canary {state['phases']['canary']['data']['node']} booted with: {state['phases']['canary']['data']['cmdline'][:90]}")
        indented("Not carried over (accepted in the lab, listed in the report): "
                 + (", ".join(f"{count} {kind}" for kind, count in sorted(losses.items())) or "nothing"))
        indented(f"Report: {REPORT_DIR}/report.md and report.html")
        outcome = 0
    except KeyboardInterrupt:
        print("\ninterrupted: tearing the lab down")
        outcome = 130
    except (procs.LabError, cluster.ClusterError, OSError, ValueError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        heading("Tear down")
        try:
            if prepared is not None:
                cutover_lab.remove_gateway(prepared)
            cli.down(state_dir, out=from_lab)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
            _reap_children()
    print(f"\ndemo {'finished' if outcome == 0 else 'ended'} in {time.monotonic() - began:.1f}s")
    return outcome


if __name__ == "__main__":
    sys.exit(main())
