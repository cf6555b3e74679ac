"""Lab set-up shared by the end-to-end cutover tests: a lab with a loaded etcd BSS, a gateway, canaries."""

import json
import os
import subprocess

import psycopg
import requests

from hpclab import cli, cutover_lab, procs

REPO = cutover_lab.REPO
CUTOVER = os.path.join(REPO, "playbooks", "cutover.yml")
ROLLBACK = os.path.join(REPO, "playbooks", "rollback.yml")


class CutoverLab:
    """One lab (``hpclab up`` + ``load``), its gateway and the cutover inventory; ``close()`` removes all."""

    def __init__(self, nodes=32, power="vm", bss=None):
        self.state_dir = procs.make_workdir("e2e-cutover")
        self.log = os.path.join(self.state_dir, "ansible.log")
        self.prepared = None
        try:
            cli.up(self.state_dir, nodes=nodes, out=lambda *_a, **_k: None, bss=bss)
            cli.load(self.state_dir, out=lambda *_a, **_k: None)
            self.prepared = cutover_lab.prepare(self.state_dir, power=power)
            cutover_lab.deploy_gateway(self.prepared, log=self.log)
        except BaseException:
            self.close()
            raise
        self.env = self.prepared["lab_env"]
        self.canary = self.prepared["canaries"][0]
        with open(self.env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
            self.nodes = json.load(handle)

    # --- running playbooks ---------------------------------------------------------------------
    def playbook(self, playbook=CUTOVER, *args):
        return cutover_lab.run_playbook(playbook, self.prepared["inventory"], *args, log=self.log)

    def popen_cutover(self, *args):
        """Start the cutover playbook (``args`` added to its command line, e.g. ``--tags``) in a session of its
        own, so that a drill can SIGKILL its whole process group; output goes to the lab's log."""
        argv = [os.path.join(cutover_lab.VENV_BIN, "ansible-playbook"), "-i", self.prepared["inventory"], CUTOVER, *args]
        out = open(self.log, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=cutover_lab.ansible_env(),  # pylint: disable=consider-using-with
                                cwd=REPO, start_new_session=True)

    def state(self):
        path = os.path.join(self.prepared["state_dir"], "state.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def report(self):
        with open(os.path.join(self.prepared["state_dir"], "report.md"), encoding="utf-8") as handle:
            return handle.read()

    # --- observing the lab -----------------------------------------------------------------------
    def gateway_script(self, mac):
        return self.gateway_answer(mac).text

    def gateway_instance(self, mac):
        """Which BSS instance the gateway sent this node's boot-script request to (its X-BSS-Instance header)."""
        return self.gateway_answer(mac).headers.get("X-BSS-Instance")

    def gateway_answer(self, mac):
        url = f"http://127.0.0.1:{self.prepared['gateway_port']}/boot/v1/bootscript"
        return requests.get(url, params={"mac": mac}, timeout=30)

    def script(self, bss_url, mac):
        return requests.get(f"{bss_url}/boot/v1/bootscript", params={"mac": mac}, timeout=30).text

    def gateway_state(self):
        with open(os.path.join(self.prepared["work_dir"], "maps", "state.map"), encoding="utf-8") as handle:
            pairs = [line.split() for line in handle if line.strip() and not line.startswith("#")]
        return dict(pairs)

    def canary_map(self):
        with open(os.path.join(self.prepared["work_dir"], "maps", "canary_macs.map"), encoding="utf-8") as handle:
            return [line.split()[0] for line in handle if line.strip() and not line.startswith("#")]

    def row_count(self):
        with psycopg.connect(self.env["HPCLAB_PG_CONNINFO"]) as conn:
            return conn.execute("SELECT count(*) FROM nodes").fetchone()[0]

    def service(self, name):
        return cli.LabState(self.state_dir).services()[name]

    def close(self):
        if self.prepared:
            cutover_lab.remove_gateway(self.prepared)
        cli.down(self.state_dir, out=lambda *_a, **_k: None)
        procs.shutil.rmtree(self.state_dir, ignore_errors=True)


def non_canary_macs(lab, count=3):
    macs = []
    for node in lab.nodes:
        node_macs = node.get("macs") or [node.get("mac")]
        if node["xname"] != lab.canary["xname"] and node.get("endpoint", True) and node.get("state") == "Ready" and node_macs[0]:
            macs.append(node_macs[0])
    return macs[:count]
