"""A lab site on etcd BSS moves to OpenCHAMI's boot-service with the cutover playbook, end to end, and rolls back.

One lab: etcd holding the synthetic cluster, the SMD double, the real upstream BSS on etcd (old side), the real
boot-service (new side, started by the lab and adopted), the gateway in front of both, and a canary node that
network-boots in QEMU through the gateway.
"""

import json
import os

import pytest
import requests

from cutover_harness import CUTOVER, ROLLBACK, CutoverLab
from hpclab import cli, cutover_lab, procs

pytestmark = pytest.mark.vm

PHASES = ["preflight", "backup", "boot_service", "import", "parity", "canary", "rollout"]


class BootServiceCutoverLab(CutoverLab):
    """The cutover lab with boot-service as the new side (cutover_destination: boot_service)."""

    def __init__(self, nodes=24, bss="upstream"):  # pylint: disable=super-init-not-called
        self.state_dir = procs.make_workdir("e2e-cutover-bs")
        self.log = os.path.join(self.state_dir, "ansible.log")
        self.prepared = None
        try:
            cli.up(self.state_dir, nodes=nodes, out=lambda *_a, **_k: None, bss=bss)
            cli.load(self.state_dir, out=lambda *_a, **_k: None)
            self.prepared = cutover_lab.prepare(self.state_dir, destination="boot_service")
            cutover_lab.deploy_gateway(self.prepared, log=self.log)
        except BaseException:
            self.close()
            raise
        self.env = self.prepared["lab_env"]
        self.canary = self.prepared["canaries"][0]
        self.boot_service_url = self.service("boot-service").url
        with open(self.env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
            self.nodes = json.load(handle)

    def resources(self):
        """boot-service's resources as (kind, uid, updatedAt), to see that a run wrote nothing."""
        return sorted((kind, item["metadata"]["uid"], item["metadata"].get("updatedAt", ""))
                      for kind in ("bootconfigurations", "nodes")
                      for item in requests.get(f"{self.boot_service_url}/{kind}", timeout=30).json())


@pytest.fixture
def lab(bss_impl):
    from hpclab import upstream  # pylint: disable=import-outside-toplevel
    manifest, reason = upstream.availability("boot-service")
    if manifest is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("boot-service: " + reason)
    lab = BootServiceCutoverLab(bss=bss_impl)
    yield lab
    lab.close()


def single_mac_node(lab):
    """A bootable compute node other than the canary with exactly one MAC."""
    for node in lab.nodes:
        macs = node.get("macs") or [node.get("mac")]
        if (node["xname"] != lab.canary["xname"] and node.get("role") == "Compute" and node.get("state") == "Ready"
                and node.get("endpoint", True) and node.get("endpoint_enabled", True) and len(macs) == 1 and macs[0]):
            return node["xname"], macs[0], node["nid"]
    raise AssertionError("the lab has no single-MAC compute node besides the canary")


def kernel_line(script):
    """kernel URL and command line tokens a script boots, without what differs by design."""
    lines = script.split("\n")
    sets = dict(line.split(" ", 2)[1:] for line in lines if line.startswith("set ") and len(line.split(" ", 2)) == 3)
    if sets:
        return sets["kernel"], [tok for tok in sets.get("params", "").split() if not tok.startswith(("BOOTIF=", "ds="))]
    tokens = [line for line in lines if line.startswith("kernel ")][0].split(" || ")[0].split()
    return tokens[3], [tok for tok in tokens[4:] if not tok.startswith(("bss_referral_token=", "ds=", "initrd="))]


@pytest.mark.parametrize("bss_impl", ["upstream"], indirect=True)
def test_etcd_bss_moves_to_boot_service_then_rolls_back_keeping_a_later_change(lab):
    xname, mac, nid = single_mac_node(lab)
    before = kernel_line(lab.script(lab.env["HPCLAB_BSS_ETCD_URL"], mac))

    dry_run = lab.playbook(CUTOVER, "--check")
    assert dry_run.returncode == 0, dry_run.stdout[-5000:]
    assert "import would convert" in dry_run.stdout and "create_bootconfigurations" in dry_run.stdout
    assert lab.state() is None and lab.resources() == [], "the dry run writes no state and nothing to boot-service"

    result = lab.playbook()
    assert result.returncode == 0, result.stdout[-5000:]
    state = lab.state()
    assert [state["phases"][p]["status"] for p in PHASES] == ["done"] * len(PHASES)
    assert not {"postgres", "schema", "new_bss"} & set(state["phases"]), "the PostgreSQL phases do not run"
    parity = state["phases"]["parity"]["data"]["parity"]
    assert int(parity["different"]) == 0 and int(parity["equal"]) == int(parity["compared"]) > 24, parity

    # The canary booted in QEMU from boot-service through the gateway: BSS v1.32.2 never adds BOOTIF=, boot-service does.
    canary = state["phases"]["canary"]["data"]
    assert canary["node"] == lab.canary["xname"] and "hpclab.canary=1" in canary["cmdline"]
    assert f"BOOTIF=01-{lab.canary['macs'][0].replace(':', '-').lower()}" in canary["cmdline"]
    assert "Generated boot script for node %s " % lab.canary["xname"] in open(lab.service("boot-service").log, encoding="utf-8").read()

    assert lab.gateway_state() == {"active": "boot_service", "freeze": "off"}
    assert lab.gateway_instance(mac) == "boot_service"
    assert kernel_line(lab.gateway_script(mac)) == before

    resources = lab.resources()
    rerun = lab.playbook()
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout[-600:], rerun.stdout[-3000:]
    assert lab.resources() == resources, "a rerun writes nothing to boot-service"

    # A change made on boot-service after the rollout, through the gateway, survives the rollback.
    gateway = f"http://127.0.0.1:{lab.prepared['gateway_port']}"
    change = {"metadata": {"name": "after-rollout"},
              "spec": {"macs": [mac], "kernel": "http://10.1.0.1/boot/vmlinuz-rollback", "params": "console=ttyS0 changed.after=rollout"}}
    assert requests.post(f"{gateway}/bootconfigurations", json=change, timeout=30).status_code in (200, 201)
    assert "changed.after=rollout" in lab.gateway_script(mac)

    rollback = lab.playbook(ROLLBACK)
    assert rollback.returncode == 0, rollback.stdout[-5000:]
    assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"}
    assert lab.gateway_instance(mac) == "bss_etcd"
    expected = ["console=ttyS0", "changed.after=rollout", f"xname={xname}", f"nid={nid}"]
    assert kernel_line(lab.gateway_script(mac)) == ("http://10.1.0.1/boot/vmlinuz-rollback", expected)
    record = lab.state()["phases"]["rollback"]
    assert int(record["data"]["parity"]["different"]) == 0 and int(record["data"]["carried_back_nodes"]) == 1, record
