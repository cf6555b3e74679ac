"""Fault drill: haproxy's reload fails during the rollout switch.

The cutover runs up to parity on the lab, then the rollout with a ``systemctl`` in front of the lab's
shim that fails the gateway's second reload (the first is the freeze, the second the switch). The
rollout must stop, put the gateway back on the old BSS unfrozen, leave etcd and the database as they
were, and a rerun must complete the rollout.
"""

import json
import os
import stat

import psycopg
import pytest

from cutover_harness import CUTOVER, CutoverLab, non_canary_macs
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


pytestmark = pytest.mark.slow


@pytest.fixture
def lab():
    lab = CutoverLab(nodes=16, power="true")
    yield lab
    lab.close()


def database_rows(lab):
    with psycopg.connect(lab.env["HPCLAB_PG_CONNINFO"]) as conn:
        return sorted(conn.execute("SELECT n.boot_mac, n.xname, c.kernel_uri, c.cmdline FROM nodes n"
                                   " JOIN boot_group_assignments a ON a.node_id = n.id"
                                   " JOIN boot_groups g ON g.id = a.boot_group_id"
                                   " JOIN boot_configs c ON c.id = g.boot_config_id").fetchall())


def etcd_records(lab):
    """etcd's boot records as the cutover must leave them. BSS's own bookkeeping is left out: the
    /endpoint-access/ stamps and the referral token it adds to a record when serving a boot script
    (each request, this test's included, writes them) and its /bss/ health key."""
    import etcd3  # pylint: disable=import-outside-toplevel
    client = etcd3.client(host="127.0.0.1", port=int(lab.env["HPCLAB_ETCD_PORT"]))
    try:
        records = []
        for value, meta in client.get_all():
            if meta.key.startswith((b"/endpoint-access/", b"/bss/")):
                continue
            if meta.key.startswith(b"/params/"):
                record = json.loads(value)
                record.pop("referral-token", None)
                value = json.dumps(record, sort_keys=True).encode()
            records.append((meta.key, value))
        return sorted(records)
    finally:
        client.close()


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


def test_haproxy_reload_failing_during_the_rollout_switch(lab):
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
