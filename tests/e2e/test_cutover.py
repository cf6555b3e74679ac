"""The cutover and rollback playbooks on the lab, end to end, with a canary that network-boots in QEMU.

Each test has a lab of its own: etcd holding a synthetic cluster in every record shape, the SMD double,
the BSS double on etcd (old) and on PostgreSQL (new), PostgreSQL, the gateway deployed by the gateway
role, and a canary node booted by ``lab/bin/hpclab-vm`` through the gateway.
"""

import os
import signal
import time

import pytest
import requests

from cutover_harness import CUTOVER, ROLLBACK, CutoverLab, non_canary_macs

pytestmark = pytest.mark.vm

PRE_CANARY = "preflight,backup,postgres,schema,import,new_bss,parity"


@pytest.fixture
def lab():
    lab = CutoverLab()
    yield lab
    lab.close()


@pytest.fixture
def lab_each_bss(bss_impl):
    """The lab with both BSS instances of ``bss_impl`` (the tests below take the real upstream BSS)."""
    lab = CutoverLab(bss=bss_impl)
    yield lab
    lab.close()


def assert_traffic_on_old_bss(lab):
    assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"}
    assert lab.canary_map() == []
    for mac in non_canary_macs(lab) + [lab.canary["macs"][0]]:
        assert lab.gateway_instance(mac) == "bss_etcd", f"{mac} must still be served by the etcd BSS"


def test_dry_run_prints_the_plan_and_changes_nothing(lab):
    result = lab.playbook(CUTOVER, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "import would convert" in result.stdout and "rollout would freeze" in result.stdout
    assert "losses by kind" in result.stdout, "the dry run shows the loss report"
    assert lab.state() is None, "check mode writes no state file"
    assert not os.path.exists(os.path.join(lab.prepared["work_dir"], "backup")), "check mode takes no backup"
    assert lab.row_count() == 0, "check mode writes no row"
    assert_traffic_on_old_bss(lab)


# The real upstream BSS only, to keep make test short: the double runs every phase in the other tests here,
# in the fault drills and in the secrets audit, and make demo's test runs the whole cutover once more.
@pytest.mark.parametrize("bss_impl", ["upstream"], indirect=True)
def test_cutover_killed_in_import_resumes_then_rolls_out_and_rolls_back_without_loss(lab_each_bss):
    lab = lab_each_bss
    before = {mac: lab.script(lab.env["HPCLAB_BSS_ETCD_URL"], mac) for mac in non_canary_macs(lab)}

    proc = lab.popen_cutover()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        state = lab.state() or {}
        if state.get("phases", {}).get("import", {}).get("status") == "started":
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert (lab.state() or {})["phases"]["import"]["status"] == "started", "the run was killed during the import"

    result = lab.playbook()
    assert result.returncode == 0, result.stdout[-4000:]
    state = lab.state()
    assert [state["phases"][p]["status"] for p in ("preflight", "backup", "import", "parity", "canary", "rollout")] == ["done"] * 6
    assert "skipped" in result.stdout and "preflight: done at" in result.stdout, "the re-run resumed, not restarted"
    canary = state["phases"]["canary"]["data"]
    assert canary["node"] == lab.canary["xname"] and "hpclab.canary=1" in canary["cmdline"]
    report = lab.report()
    assert "Result: **COMPLETE**" in report and "sha256" in report and "Loss report" in report
    assert os.path.exists(os.path.join(lab.prepared["state_dir"], "report.html"))

    # Every node now boots from PostgreSQL (no referral token), with the same kernel line as before.
    assert lab.gateway_state() == {"active": "bss_postgres", "freeze": "off"}
    for mac, old in before.items():
        new = lab.gateway_script(mac)
        assert lab.gateway_instance(mac) == "bss_postgres"
        strip = [tok for tok in old.split("\n")[1].split() if not tok.startswith(("bss_referral_token=", "ds="))]
        assert [tok for tok in new.split("\n")[1].split() if not tok.startswith("ds=")] == strip

    rerun = lab.playbook()
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout.splitlines()[-2] + rerun.stdout[-400:]

    # A change written after the rollout (through the gateway, so to PostgreSQL) survives a rollback.
    mac = non_canary_macs(lab)[0]
    body = {"macs": [mac], "kernel": "http://10.1.0.1/boot/vmlinuz-rollback", "params": "console=ttyS0 changed.after=rollout"}
    gateway = f"http://127.0.0.1:{lab.prepared['gateway_port']}"
    assert requests.put(f"{gateway}/boot/v1/bootparameters", json=body, timeout=30).status_code == 200
    assert "changed.after=rollout" in lab.gateway_script(mac)

    rollback = lab.playbook(ROLLBACK)
    assert rollback.returncode == 0, rollback.stdout[-4000:]
    assert lab.gateway_state() == {"active": "bss_etcd", "freeze": "off"}
    served = lab.gateway_script(mac)
    assert lab.gateway_instance(mac) == "bss_etcd"
    assert "changed.after=rollout" in served and "vmlinuz-rollback" in served
    assert lab.state()["phases"]["rollback"]["data"]["parity"]["different"] in (0, "0")


def test_canary_served_wrong_params_blocks_the_rollout(lab):
    assert lab.playbook(CUTOVER, "--tags", PRE_CANARY).returncode == 0
    mac = lab.canary["macs"][0]
    served = lab.script(lab.env["HPCLAB_BSS_POSTGRES_URL"], mac).split("\n")[1].split()
    body = {"macs": [mac], "kernel": served[3], "params": "console=ttyS0 hpclab.canary=1 wrong.on.purpose=1"}
    assert requests.put(f"{lab.env['HPCLAB_BSS_POSTGRES_URL']}/boot/v1/bootparameters", json=body, timeout=30).status_code == 200

    result = lab.playbook()
    assert result.returncode != 0
    state = lab.state()
    assert state["phases"]["canary"]["status"] == "failed"
    assert "rollout" not in state["phases"]
    assert "served something else than the old BSS" in state["phases"]["canary"]["reason"]
    assert "Result: **FAILED**" in lab.report()
    assert_traffic_on_old_bss(lab)


def test_new_bss_stopped_before_the_canary_stops_the_cutover(lab):
    assert lab.playbook(CUTOVER, "--tags", PRE_CANARY).returncode == 0
    lab.service("bss-postgres").stop()

    result = lab.playbook()
    assert result.returncode != 0
    state = lab.state()
    assert state["phases"]["canary"]["status"] == "failed"
    assert "rollout" not in state["phases"]
    assert_traffic_on_old_bss(lab)


def test_preflight_refuses_a_database_holding_rows_it_did_not_write(lab):
    import psycopg  # pylint: disable=import-outside-toplevel
    with psycopg.connect(lab.env["HPCLAB_PG_CONNINFO"], autocommit=True) as conn:
        conn.execute("INSERT INTO boot_configs VALUES ('site-own', 'http://10.1.0.1/k', '', 'console=tty0')")
    result = lab.playbook(CUTOVER)
    assert result.returncode != 0
    state = lab.state()
    assert state["phases"]["preflight"]["status"] == "failed"
    assert "this collection did not write" in state["phases"]["preflight"]["reason"]
    assert list(state["phases"]) == ["preflight"], "nothing after preflight ran"
    assert not os.path.exists(os.path.join(lab.prepared["work_dir"], "backup"))
    assert_traffic_on_old_bss(lab)
