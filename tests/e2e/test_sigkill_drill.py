"""Fault drill: SIGKILL of ansible-playbook in every cutover phase in turn, then a rerun to completion.

One lab; each run is killed (the whole process group, SIGKILL) as soon as the state file shows the
next phase started, and the following run resumes there. After every kill the gateway still sends
all traffic to the old BSS unfrozen and etcd holds the same records. The canary phase needs the QEMU
VM (tests/e2e/test_cutover.py covers it), so this drill runs every other phase and the rollout.
"""

import os
import signal
import subprocess
import time

import pytest

from cutover_harness import CUTOVER, CutoverLab, non_canary_macs
from hpclab import cutover_lab
from test_gateway_reload_drill import etcd_records

PHASES = ["preflight", "backup", "postgres", "schema", "import", "new_bss", "parity", "rollout"]
TAGS = ",".join(PHASES + ["report"])

pytestmark = pytest.mark.slow


@pytest.fixture
def lab():
    lab = CutoverLab(nodes=16, power="true")
    yield lab
    lab.close()


def run_until_started(lab, phase, timeout=300):
    """Start the cutover and SIGKILL its process group once ``phase`` is recorded as started."""
    argv = [os.path.join(cutover_lab.VENV_BIN, "ansible-playbook"), "-i", lab.prepared["inventory"], CUTOVER, "--tags", TAGS]
    with open(lab.log, "a", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=cutover_lab.ansible_env(),  # pylint: disable=consider-using-with
                                cwd=cutover_lab.REPO, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            record = ((lab.state() or {}).get("phases") or {}).get(phase) or {}
            if record.get("status") == "started":
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return proc.returncode


def test_sigkill_in_every_phase_then_a_rerun_completes(lab):
    records = etcd_records(lab)
    macs = non_canary_macs(lab)
    for phase in PHASES:
        returncode = run_until_started(lab, phase)
        assert returncode == -signal.SIGKILL, "the run was killed in phase %s (it ended with %s)" % (phase, returncode)
        state = lab.state()
        assert state["phases"][phase]["status"] == "started", phase
        done = [name for name in PHASES[:PHASES.index(phase)] if state["phases"][name]["status"] == "done"]
        assert done == PHASES[:PHASES.index(phase)], "the phases before %s were done, each once" % phase
        assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"} or phase == "rollout", phase
        assert etcd_records(lab) == records, "etcd as before after the kill in %s" % phase

    # Killed in the rollout: the freeze may be on; the rerun must lift it and finish.
    final = lab.playbook(CUTOVER, "--tags", TAGS)
    assert final.returncode == 0, final.stdout[-4000:]
    state = lab.state()
    assert [state["phases"][phase]["status"] for phase in PHASES] == ["done"] * len(PHASES)
    assert lab.gateway_state() == {"active": "bss_postgres", "freeze": "off"}
    for mac in macs:
        assert lab.gateway_instance(mac) == "bss_postgres"
    assert etcd_records(lab) == records, "etcd as before"
    assert lab.row_count() > 0
    again = lab.playbook(CUTOVER, "--tags", TAGS)
    assert again.returncode == 0 and "changed=0" in again.stdout[-600:], again.stdout[-2000:]
