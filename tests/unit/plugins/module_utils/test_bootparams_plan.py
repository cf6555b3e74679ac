"""The pure plan: which PUT, PATCH and DELETE requests reconcile declared and current boot parameters."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils.bootparams_model import BootConfig
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_plan as planner

K = "http://10.1.0.1/vmlinuz"
I = "http://10.1.0.1/initrd.img"
ROCKY = BootConfig(K, I, "console=ttyS0 quiet")
DEBUG = BootConfig(K, I, "console=ttyS0 rd.shell")
BARE = BootConfig(K, "", "")
M1, M2, M3 = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:03"


def _requests(plan):
    return [(r.method, r.body) for r in plan.requests]


@pytest.mark.parametrize("backend", ["etcd", "postgres"])
def test_nothing_to_change_sends_nothing(backend):
    desired = {M1: ROCKY, "x1000c0s0b0n0": DEBUG}
    plan = planner.plan_present(desired, {M1: [ROCKY], "x1000c0s0b0n0": [DEBUG], M2: [BARE]}, backend)
    assert not plan.changed and plan.requests == [] and plan.diff() == {"before": {}, "after": {}}


def test_postgres_groups_by_config_and_selector_kind():
    desired = {M1: ROCKY, M2: ROCKY, "nid7": ROCKY, "x1000c0s0b0n0": ROCKY, M3: DEBUG}
    plan = planner.plan_present(desired, {M3: [ROCKY]}, "postgres")
    body = {"kernel": K, "initrd": I}
    assert _requests(plan) == [
        ("PUT", dict(body, hosts=["x1000c0s0b0n0"], params="console=ttyS0 quiet")),
        ("PUT", dict(body, macs=[M1, M2], params="console=ttyS0 quiet")),
        ("PUT", dict(body, nids=[7], params="console=ttyS0 quiet")),
        ("PUT", dict(body, macs=[M3], params="console=ttyS0 rd.shell")),
    ]
    assert plan.diff()["before"][M3] == {"kernel": K, "initrd": I, "params": "console=ttyS0 quiet"}
    assert plan.diff()["before"][M1] is None


def test_etcd_sends_one_put_per_config_with_record_names():
    desired = {M1: ROCKY, "nid7": ROCKY, "x1000c0s0b0n0": ROCKY}
    plan = planner.plan_present(desired, {}, "etcd")
    assert _requests(plan) == [("PUT", {"hosts": ["aa:bb:cc:00:00:01", "nid7", "x1000c0s0b0n0"], "kernel": K, "initrd": I,
                                        "params": "console=ttyS0 quiet"})]


def test_one_changed_node_is_one_write():
    current = dict(("x1000c0s0b0n%d" % n, [ROCKY]) for n in range(50))
    desired = dict((label, ROCKY) for label in current)
    desired["x1000c0s0b0n7"] = DEBUG
    for backend in ("etcd", "postgres"):
        plan = planner.plan_present(desired, current, backend)
        assert _requests(plan) == [("PUT", {"hosts": ["x1000c0s0b0n7"], "kernel": K, "initrd": I, "params": "console=ttyS0 rd.shell"})]


def test_postgres_deletes_before_clearing_fields_a_put_would_keep():
    plan = planner.plan_present({M1: BARE, M2: BARE}, {M1: [ROCKY], M2: [BARE]}, "postgres")
    assert _requests(plan) == [("DELETE", {"macs": [M1]}), ("PUT", {"macs": [M1], "kernel": K})]


def test_etcd_put_replaces_so_no_delete_is_needed_to_clear():
    plan = planner.plan_present({M1: BARE}, {M1: [ROCKY]}, "etcd")
    assert _requests(plan) == [("PUT", {"hosts": [M1], "kernel": K})]


def test_etcd_cloud_init_records_are_patched():
    plan = planner.plan_present({"x1": DEBUG, "x2": DEBUG}, {"x1": [ROCKY], "x2": [ROCKY]}, "etcd", cloud_init={"x1"})
    assert _requests(plan) == [
        ("PUT", {"hosts": ["x2"], "kernel": K, "initrd": I, "params": "console=ttyS0 rd.shell"}),
        ("PATCH", {"hosts": ["x1"], "kernel": K, "initrd": I, "params": "console=ttyS0 rd.shell"}),
    ]


def test_etcd_cloud_init_record_that_must_lose_fields_is_refused():
    with pytest.raises(planner.PlanError, match="node x1 carries cloud-init data"):
        planner.plan_present({"x1": BARE}, {"x1": [ROCKY]}, "etcd", cloud_init={"x1"})
    plan = planner.plan_present({"x1": BARE}, {"x1": [ROCKY]}, "etcd", cloud_init={"x1"}, keep_cloud_init=False)
    assert _requests(plan) == [("PUT", {"hosts": ["x1"], "kernel": K})]
    assert "cloud-init data is discarded" in plan.warnings[0]


def test_postgres_duplicate_rows_with_two_configs_are_rewritten():
    # PUT updates every row that matches the MAC, so one PUT unifies duplicate rows.
    plan = planner.plan_present({M1: ROCKY}, {M1: [ROCKY, DEBUG]}, "postgres")
    assert _requests(plan) == [("PUT", {"macs": [M1], "kernel": K, "initrd": I, "params": "console=ttyS0 quiet"})]
    assert len(plan.diff()["before"][M1]) == 2


@pytest.mark.parametrize("backend, expected", [
    ("etcd", [("DELETE", {"hosts": [M1, "nid4", "x1000c0s0b0n0"]})]),
    ("postgres", [("DELETE", {"hosts": ["x1000c0s0b0n0"]}), ("DELETE", {"macs": [M1]}), ("DELETE", {"nids": [4]})]),
])
def test_absent_deletes_only_what_exists(backend, expected):
    current = {M1: [ROCKY], "nid4": [ROCKY], "x1000c0s0b0n0": [BARE], M3: [BARE]}
    plan = planner.plan_absent([M1, M2, "nid4", "x1000c0s0b0n0"], current, backend)
    assert _requests(plan) == expected
    assert plan.diff()["after"] == {M1: None, "nid4": None, "x1000c0s0b0n0": None}


def test_absent_when_already_gone_sends_nothing():
    assert planner.plan_absent([M1], {M2: [ROCKY]}, "postgres").requests == []


def test_exclusive_deletes_undeclared_first_and_respects_the_guard():
    current = dict(("aa:bb:cc:00:01:%02x" % n, [ROCKY]) for n in range(10))
    declared = sorted(current)[:8]
    plan = planner.plan_present(dict((m, DEBUG) for m in declared), current, "postgres")
    plan = planner.plan_exclusive(plan, declared, current, "postgres", max_delete_share=0.25)
    assert _requests(plan)[0] == ("DELETE", {"macs": sorted(current)[8:]})
    assert _requests(plan)[1][0] == "PUT"
    with pytest.raises(planner.PlanError, match=r"exclusive would delete 3 of 10 .*allow_large_delete"):
        planner.plan_exclusive(planner.Plan(), declared[:7], current, "postgres", max_delete_share=0.25)
    plan = planner.plan_exclusive(planner.Plan(), declared[:7], current, "postgres", max_delete_share=0.25, allow_large_delete=True)
    assert len(plan.requests[0].body["macs"]) == 3


def test_write_without_selectors_is_refused():
    with pytest.raises(planner.PlanError, match="refusing PUT .* in postgres mode it would change every node"):
        planner.check_selectors([planner.BackendRequest("PUT", {"kernel": K, "hosts": []})], "postgres")
