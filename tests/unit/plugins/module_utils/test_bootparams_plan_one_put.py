"""postgres: one PUT per configuration for the nodes BSS holds, whatever their selector kinds (bss-spec 1.3, 3.6.2)."""

from ansible_collections.hpc_boot.bss.plugins.module_utils.bootparams_model import BootConfig
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_plan as planner

K = "http://10.1.0.1/vmlinuz"
I = "http://10.1.0.1/initrd.img"
ROCKY = BootConfig(K, I, "console=ttyS0 quiet")
DEBUG = BootConfig(K, I, "console=ttyS0 rd.shell")
BARE = BootConfig(K, "", "")
X1, X2 = "x1000c0s0b0n1", "x1000c0s0b0n2"
M1, M2 = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"
SHELL = {"kernel": K, "initrd": I, "params": "console=ttyS0 rd.shell"}


def _requests(plan):
    return [(r.method, r.body) for r in plan.requests]


def test_a_held_node_changed_by_xname_and_mac_is_one_put():
    current = {X1: [ROCKY], M1: [ROCKY], X2: [ROCKY], M2: [ROCKY]}
    plan = planner.plan_present({X1: DEBUG, M1: DEBUG, X2: ROCKY, M2: ROCKY}, current, "postgres")
    assert _requests(plan) == [("PUT", dict(SHELL, hosts=[X1], macs=[M1]))]
    assert sorted(plan.after) == [M1, X1], "the diff still names the node by both selectors"


def test_new_nodes_get_one_put_per_selector_kind_because_bss_adds_by_the_first_list_only():
    plan = planner.plan_present({X1: DEBUG, M1: DEBUG, "nid7": DEBUG}, {}, "postgres")
    assert _requests(plan) == [("PUT", dict(SHELL, hosts=[X1])), ("PUT", dict(SHELL, macs=[M1])), ("PUT", dict(SHELL, nids=[7]))]


def test_held_nodes_ride_with_the_new_nodes_of_the_first_kind():
    current = {X1: [ROCKY], M1: [ROCKY]}
    plan = planner.plan_present({X1: DEBUG, M1: DEBUG, X2: DEBUG, M2: DEBUG}, current, "postgres")
    assert _requests(plan) == [("PUT", dict(SHELL, hosts=[X1, X2], macs=[M1])), ("PUT", dict(SHELL, macs=[M2]))]


def test_new_macs_first_when_no_new_xname():
    current = {X1: [ROCKY]}
    plan = planner.plan_present({X1: DEBUG, M1: DEBUG}, current, "postgres")
    assert _requests(plan) == [("PUT", dict(SHELL, hosts=[X1], macs=[M1]))]


def test_nodes_deleted_to_clear_fields_are_new_again():
    current = {X1: [ROCKY], M1: [ROCKY]}
    plan = planner.plan_present({X1: BARE, M1: BARE}, current, "postgres")
    assert _requests(plan) == [("DELETE", {"hosts": [X1]}), ("DELETE", {"macs": [M1]}),
                               ("PUT", {"hosts": [X1], "kernel": K}), ("PUT", {"macs": [M1], "kernel": K})]


def test_etcd_is_unchanged_one_put_of_record_names():
    current = {X1: [ROCKY]}
    plan = planner.plan_present({X1: DEBUG, M1: DEBUG}, current, "etcd")
    assert _requests(plan) == [("PUT", dict(SHELL, hosts=[M1, X1]))]
