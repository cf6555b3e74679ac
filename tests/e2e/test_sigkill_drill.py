"""Fault drill: SIGKILL of ansible-playbook in every cutover phase in turn, then a rerun to completion.

One lab (shared with the other drill, reset in between) with a canary that network-boots in QEMU.
Each run is killed (the whole process group, SIGKILL) as soon as the state file shows the next phase
started, and the following run resumes there. The canary phase is killed twice: when it starts, and
in the middle of the canary's boot, once the gateway routes the canary to the new BSS and the VM runs.
After every kill etcd and the database are as before the killed run, and the gateway still sends all
traffic to the old BSS unfrozen (killed mid-boot, the canary alone stays routed to the new BSS: a
SIGKILL leaves nothing to undo it, and the rerun is what does). The rerun completes the cutover, the
canary really booted from the new BSS, and a further run changes nothing.
"""

import os
import signal

import pytest

from cutover_harness import non_canary_macs
from drill_lab import DRILL_GROUP, OLD_GATEWAY, database_rows, etcd_records, run_until, wait_for_canary_vm_exit

PHASES = ["preflight", "backup", "postgres", "schema", "import", "new_bss", "parity", "canary", "rollout"]

pytestmark = [pytest.mark.slow, pytest.mark.vm, pytest.mark.xdist_group(DRILL_GROUP)]


def status(lab, phase):
    return (((lab.state() or {}).get("phases") or {}).get(phase) or {}).get("status")


def started(phase):
    return lambda lab: status(lab, phase) == "started"


def canary_booting(lab):
    """The canary phase runs its power command: the gateway routes the canary to the new BSS and QEMU starts."""
    return status(lab, "canary") == "started" and os.path.exists(os.path.join(lab.prepared["work_dir"], "canary-vm", "qemu.argv"))


def assert_killed_in(lab, phase, returncode):
    assert returncode == -signal.SIGKILL, "the run was killed in phase %s (it ended with %s)" % (phase, returncode)
    state = lab.state()
    assert state["phases"][phase]["status"] == "started", phase
    before = PHASES[:PHASES.index(phase)]
    assert [name for name in before if state["phases"][name]["status"] == "done"] == before, \
        "the phases before %s were done" % phase


def test_sigkill_in_every_phase_then_a_rerun_completes(drill_lab):
    lab = drill_lab
    records = etcd_records(lab)
    macs = non_canary_macs(lab)
    canary_mac = lab.canary["macs"][0].lower()
    rows = database_rows(lab)  # a new lab's database: no boot rows
    for phase in PHASES:
        assert_killed_in(lab, phase, run_until(lab, started(phase)))
        assert etcd_records(lab) == records, "etcd as before after the kill in %s" % phase
        if phase == "new_bss":  # the run killed here finished the import first
            rows = database_rows(lab)
            assert rows, "the import filled the database"
        assert database_rows(lab) == rows, "the database as the last phase done left it, after the kill in %s" % phase
        if phase != "rollout":  # killed in the rollout, the freeze may be on: the rerun must lift it
            assert lab.gateway_state() == OLD_GATEWAY, phase
            assert lab.canary_map() == [], phase
            for mac in macs + [canary_mac]:
                assert lab.gateway_instance(mac) == "bss_etcd", "%s on the old BSS after the kill in %s" % (mac, phase)
        if phase == "canary":
            # The canary's run again, killed this time while the canary boots from the new BSS.
            assert_killed_in(lab, phase, run_until(lab, canary_booting))
            assert etcd_records(lab) == records, "etcd as before after the kill in the canary's boot"
            assert database_rows(lab) == rows, "the database as before after the kill in the canary's boot"
            assert lab.gateway_state() == OLD_GATEWAY, "no freeze, every node but the canary on the old BSS"
            assert [mac.lower() for mac in lab.canary_map()] == [canary_mac], "the canary alone routed to the new BSS"
            for mac in macs:
                assert lab.gateway_instance(mac) == "bss_etcd", "%s on the old BSS after the kill in the canary's boot" % mac
            wait_for_canary_vm_exit(lab)

    final = lab.playbook()
    assert final.returncode == 0, final.stdout[-4000:]
    state = lab.state()
    assert [state["phases"][phase]["status"] for phase in PHASES] == ["done"] * len(PHASES)
    canary = state["phases"]["canary"]["data"]
    assert canary["node"] == lab.canary["xname"] and "hpclab.canary=1" in canary["cmdline"], "the canary booted in QEMU"
    assert lab.gateway_state() == {"active": "bss_postgres", "freeze": "off"}
    for mac in macs + [canary_mac]:
        assert lab.gateway_instance(mac) == "bss_postgres"
    assert etcd_records(lab) == records, "etcd as before"
    assert database_rows(lab) == rows, "the rollout's delta sync found nothing new in etcd to add"
    again = lab.playbook()
    assert again.returncode == 0 and "changed=0" in again.stdout[-600:], again.stdout[-2000:]
