"""Fault drill: haproxy's reload fails during the rollout switch.

The cutover runs up to the import on the lab (shared with the SIGKILL drill, reset in between), then
the rollout with a ``systemctl`` in front of the lab's shim that fails the gateway's second reload
(the first is the freeze, the second the switch). The rollout must stop, put the gateway back on the
old BSS unfrozen, leave etcd and the database as they were, and a rerun must complete the rollout.
"""

import os
import stat

import pytest

from cutover_harness import CUTOVER, non_canary_macs
from drill_lab import DRILL_GROUP, database_rows, etcd_records
from hpclab import cutover_lab

BEFORE_ROLLOUT = "preflight,backup,postgres,schema,import"

WRAPPER = """#!/bin/sh
# Drill: fail the {fail_at}th 'systemctl reload' of {unit}; everything else goes to the lab's shim.
case " $* " in
  *" reload "*{unit}*)
    n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo "$n" > {count}
    if [ "$n" -eq {fail_at} ]; then echo "drill: injected reload failure of {unit}" >&2; exit 1; fi ;;
esac
exec {real} "$@"
"""


pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(DRILL_GROUP)]


def failing_reload_path(lab, fail_at):
    directory = os.path.join(lab.state_dir, "drill-bin")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "systemctl")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(WRAPPER.format(fail_at=fail_at, unit=lab.prepared["gateway_unit"],
                                    count=os.path.join(directory, "reloads"),
                                    real=os.path.join(cutover_lab.REPO, ".build", "bin", "systemctl")))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return directory + os.pathsep + cutover_lab.ansible_env()["PATH"]


def test_haproxy_reload_failing_during_the_rollout_switch(drill_lab):
    lab = drill_lab
    prepared = lab.playbook(CUTOVER, "--tags", BEFORE_ROLLOUT)
    assert prepared.returncode == 0, prepared.stdout[-3000:]
    macs = non_canary_macs(lab)
    rows, records = database_rows(lab), etcd_records(lab)
    assert rows, "the import filled the database"

    result = cutover_lab.run_playbook(CUTOVER, lab.prepared["inventory"], "--tags", "rollout,report",
                                      extra={"PATH": failing_reload_path(lab, fail_at=2)}, log=lab.log)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "drill: injected reload failure" in result.stdout + result.stderr, "the switch's reload was the one refused"
    assert "all traffic is on the old BSS" in result.stdout
    state = lab.state()
    assert state["phases"]["rollout"]["status"] == "failed"
    assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"}, "the gateway's maps as before"
    for mac in macs:
        assert lab.gateway_instance(mac) == "bss_etcd", "the running gateway still sends %s to the old BSS" % mac
    assert etcd_records(lab) == records, "etcd as before"
    assert database_rows(lab) == rows, "the database as before"

    rerun = lab.playbook(CUTOVER, "--tags", "rollout,report")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert lab.state()["phases"]["rollout"]["status"] == "done"
    assert lab.gateway_state() == {"active": "bss_postgres", "freeze": "off"}
    for mac in macs:
        assert lab.gateway_instance(mac) == "bss_postgres"
