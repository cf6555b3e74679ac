"""The rollout's write freeze re-checks what changed since the parity proof, plus a sample: one lab, two runs.

Run 1: a boot-parameter change made after the parity phase is imported and re-checked inside the freeze, while the new
BSS serves one sampled node wrongly (its row re-pointed in PostgreSQL behind the BSS's back): the rollout is blocked, all
traffic stays on the old BSS, writes are unfrozen. Run 2, with that row repaired: the rollout switches. Both runs count
the writes a client kept sending through the gateway and compare them with the gateway's own count in the state file.
"""

import threading
import time

import psycopg
import pytest
import requests

from ansible_collections.hpc_boot.bss.plugins.filter.parity_scope import parity_scope
from ansible_collections.hpc_boot.bss.plugins.filter.smd_nodes import smd_nodes
from cutover_harness import CUTOVER, CutoverLab

PRE_CANARY = "preflight,backup,postgres,schema,import,new_bss,parity"
# A host no SMD node has: the writer's records never change what a node is served.
WRITER_BODY = {"hosts": ["x9999c7s7b0n0"], "kernel": "http://10.1.0.1/freeze/vmlinuz", "params": "freeze.writer=1"}


class Writer(threading.Thread):
    """Keeps PUTting through the gateway while the rollout phase runs; counts the answers by status."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab = lab
        self.url = f"http://127.0.0.1:{lab.prepared['gateway_port']}/boot/v1/bootparameters"
        self.statuses = {}
        self.stop = threading.Event()

    def run(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                rollout = ((self.lab.state() or {}).get("phases") or {}).get("rollout", {})
                if rollout.get("status") != "started":
                    time.sleep(0.05)
                    continue
                status = session.put(self.url, json=WRITER_BODY, timeout=30).status_code
                self.statuses[status] = self.statuses.get(status, 0) + 1
                time.sleep(0.25)


def run_with_writer(lab, *args):
    writer = Writer(lab)
    writer.start()
    try:
        result = lab.playbook(CUTOVER, *args)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    return result, writer.statuses.get(503, 0)


def lab_nodes(lab):
    """The nodes as the cutover role sees them (the same SMD answers through the same filter)."""
    smd = lab.env["HPCLAB_SMD_URL"].rstrip("/")
    components = requests.get(f"{smd}/hsm/v2/State/Components", params={"type": "Node"}, timeout=30).json()
    interfaces = requests.get(f"{smd}/hsm/v2/Inventory/EthernetInterfaces", timeout=30).json()
    return smd_nodes(components, interfaces)


def pick_sampled_mac(nodes, changed, avoid):
    """A seed whose sample holds a MAC of a node in neither ``changed`` nor ``avoid``, and that MAC."""
    by_mac = {mac: node["xname"] for node in nodes for mac in node["macs"]}
    for seed in range(1000, 1100):
        for label in parity_scope(nodes, changed, share=0.01, minimum=20, seed=seed)["sample_labels"]:
            if label in by_mac and by_mac[label] not in avoid | set(changed):
                return seed, label
    raise AssertionError("no seed samples a MAC of an unchanged node")


def serve_wrongly(conninfo, mac):
    """Re-point the node row of ``mac`` at a copy of its configuration with one parameter more; returns the undo."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        node_id, group_id, config_id = conn.execute(
            "SELECT n.id, a.boot_group_id, g.boot_config_id FROM nodes n JOIN boot_group_assignments a ON a.node_id = n.id"
            " JOIN boot_groups g ON g.id = a.boot_group_id WHERE n.boot_mac = %s", (mac,)).fetchone()
        conn.execute("INSERT INTO boot_configs SELECT 'freeze-wrong', kernel_uri, initrd_uri, cmdline || ' wrong.on.purpose=1'"
                     " FROM boot_configs WHERE id = %s", (config_id,))
        conn.execute("INSERT INTO boot_groups VALUES ('freeze-wrong', 'freeze-wrong', 'freeze-wrong', '')")
        conn.execute("UPDATE boot_group_assignments SET boot_group_id = 'freeze-wrong' WHERE node_id = %s", (node_id,))

    def undo():
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("UPDATE boot_group_assignments SET boot_group_id = %s WHERE node_id = %s", (group_id, node_id))
            conn.execute("DELETE FROM boot_groups WHERE id = 'freeze-wrong'")
            conn.execute("DELETE FROM boot_configs WHERE id = 'freeze-wrong'")
    return undo


# The canary "boots" by fetching its boot script through the gateway, as iPXE would: the QEMU boot is covered by
# test_cutover.py, and this test is about the freeze, so it spares the suite a VM.
CANARY_FETCH = "curl -sf -o /dev/null {{ cutover_gateway_url }}/boot/v1/bootscript?mac={mac}"


@pytest.fixture
def lab():
    lab = CutoverLab(power=CANARY_FETCH)
    yield lab
    lab.close()


def test_freeze_rechecks_the_change_and_a_sample_blocks_on_a_wrong_node_then_switches(lab):
    assert lab.playbook(CUTOVER, "--tags", PRE_CANARY).returncode == 0
    proof = lab.state()["phases"]["parity"]["data"]["proof"]
    assert proof["revision"] > lab.state()["phases"]["backup"]["data"]["revision"]
    assert proof["lookups"] == proof["equal"] > 0 and len(proof["digest"]) == 64

    nodes = lab_nodes(lab)
    changed = next(node for node in nodes if node["xname"] != lab.canary["xname"] and node["macs"] and node["nid"] > 0)
    body = {"hosts": [changed["xname"]], "kernel": "http://10.1.0.1/freeze/vmlinuz-after-parity", "params": "console=ttyS0 changed.after=parity"}
    gateway = f"http://127.0.0.1:{lab.prepared['gateway_port']}"
    assert requests.put(f"{gateway}/boot/v1/bootparameters", json=body, timeout=30).status_code == 200
    seed, wrong_mac = pick_sampled_mac(nodes, [changed["xname"]], {lab.canary["xname"]})
    undo = serve_wrongly(lab.env["HPCLAB_PG_CONNINFO"], wrong_mac)
    assert "wrong.on.purpose=1" in lab.script(lab.env["HPCLAB_BSS_POSTGRES_URL"], wrong_mac)

    # Run 1: blocked by the sampled node; the change was imported and re-checked inside the freeze.
    result, refused_seen = run_with_writer(lab, "-e", f"cutover_rollout_parity_seed={seed}")
    assert result.returncode != 0, result.stdout[-3000:]
    rollout = lab.state()["phases"]["rollout"]
    assert rollout["status"] == "failed" and wrong_mac in rollout["reason"]
    freeze = rollout["data"]["freeze"]
    assert freeze["parity_mode"] == "delta" and freeze["seed"] == seed and freeze["outcome"].startswith("blocked")
    assert freeze["delta_xnames"] == [changed["xname"]] and freeze["delta_nodes"] == 1
    assert freeze["lookups_changed"] == len(changed["macs"]) + 2, "every MAC, the xname and the NID of the changed node"
    assert freeze["lookups_sampled"] == 20 and freeze["lookups_rechecked"] == freeze["lookups_changed"] + 20
    assert freeze["different_sampled"] == [wrong_mac] and freeze["different_changed"] == []
    assert 1 <= freeze["refused_writes"] <= refused_seen, (freeze, refused_seen)
    assert "changed.after=parity" in lab.script(lab.env["HPCLAB_BSS_POSTGRES_URL"], changed["macs"][0]), "imported in the freeze"
    assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"}
    assert lab.gateway_instance(changed["macs"][0]) == "bss_etcd"
    assert requests.put(f"{gateway}/boot/v1/bootparameters", json=WRITER_BODY, timeout=30).status_code == 200, "unfrozen"
    assert "Write freeze" in lab.report()

    # Run 2: the row repaired, the same seed samples it again and the rollout switches.
    undo()
    result, refused_seen = run_with_writer(lab, "-e", f"cutover_rollout_parity_seed={seed}")
    assert result.returncode == 0, result.stdout[-3000:]
    freeze = lab.state()["phases"]["rollout"]["data"]["freeze"]
    assert freeze["outcome"] == "switched to the new BSS" and freeze["different"] == 0
    assert freeze["lookups_sampled"] == 20 and 1 <= freeze["refused_writes"] <= refused_seen
    assert isinstance(freeze["duration"], float) and freeze["started"] < freeze["ended"]
    assert lab.gateway_state() == {"active": "bss_postgres", "freeze": "off"}
    assert lab.gateway_instance(changed["macs"][0]) == "bss_postgres"
    assert "changed.after=parity" in lab.gateway_script(changed["macs"][0])
