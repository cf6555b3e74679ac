"""The pure plan of boot_configuration: one write per changed resource, diffs of changed keys, refusals."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_plan as planner
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_model import parse_node

K1 = "http://10.0.0.1/boot/vmlinuz-6.1"
K2 = "http://10.0.0.1/boot/vmlinuz-6.6"
XN = "x1000c0s0b0n0"


def stored_config(uid, name, **spec):
    return {"apiVersion": "v1", "kind": "BootConfiguration", "metadata": {"uid": uid, "name": name, "createdAt": "2026-01-01T00:00:00Z"},
            "spec": spec, "status": {}}


def stored_node(uid, xname, **spec):
    return {"metadata": {"uid": uid, "name": xname}, "spec": dict(spec, xname=xname), "status": {}}


def desired(**configs):
    return dict((name, (name, spec)) for name, spec in configs.items())


def test_missing_resources_are_created_configurations_before_nodes():
    plan = planner.make_plan(desired(compute={"kernel": K1, "groups": ["compute"]}),
                             {XN: parse_node({"xname": XN, "nid": 1}, "n")}, [], [])
    assert plan.changed
    assert plan.requests() == [
        {"method": "POST", "path": "/bootconfigurations",
         "body": {"metadata": {"name": "compute"}, "spec": {"kernel": K1, "groups": ["compute"]}}},
        {"method": "POST", "path": "/nodes", "body": {"metadata": {"name": XN}, "spec": {"xname": XN, "nid": 1}}}]
    assert plan.diff() == {"before": {}, "after": {"bootconfigurations": {"compute": {"kernel": K1, "groups": ["compute"], "name": "compute"}},
                                                   "nodes": {XN: {"xname": XN, "nid": 1, "name": XN}}}}
    assert plan.counts()["nodes"] == {"created": 1, "replaced": 0, "deleted": 0}


def test_what_boot_service_already_holds_makes_no_write_even_with_other_mac_case_and_server_fields():
    current = [stored_config("bootconfiguration-0001", "compute", kernel=K1, macs=["DE:CA:FC:0F:FE:E1"])]
    nodes = [stored_node("node-0001", XN, bootMac="DE:CA:FC:0F:FE:E1")]
    plan = planner.make_plan(desired(compute={"kernel": K1, "macs": ["de:ca:fc:0f:fe:e1"]}),
                             {XN: parse_node({"xname": XN, "boot_mac": "de:ca:fc:0f:fe:e1"}, "n")}, current, nodes)
    assert not plan.changed and plan.requests() == [] and plan.diff() == {"before": {}, "after": {}}


def test_a_change_is_one_put_to_the_stored_uid_with_a_diff_of_the_changed_keys_only():
    current = [stored_config("bootconfiguration-0001", "compute", kernel=K1, params="ro", priority=5),
               stored_config("bootconfiguration-0002", "other", kernel=K1)]
    plan = planner.make_plan(desired(compute={"kernel": K2, "params": "ro", "priority": 5}), {}, current, [])
    assert plan.requests() == [{"method": "PUT", "path": "/bootconfigurations/bootconfiguration-0001",
                                "body": {"metadata": {"name": "compute"}, "spec": {"kernel": K2, "params": "ro", "priority": 5}}}]
    assert plan.diff() == {"before": {"bootconfigurations": {"compute": {"kernel": K1}}},
                           "after": {"bootconfigurations": {"compute": {"kernel": K2}}}}


def test_a_removed_field_is_a_change_because_put_replaces_the_whole_spec():
    current = [stored_config("bootconfiguration-0001", "compute", kernel=K1, initrd="/initrd")]
    plan = planner.make_plan(desired(compute={"kernel": K1}), {}, current, [])
    assert plan.diff()["before"] == {"bootconfigurations": {"compute": {"initrd": "/initrd"}}}
    assert plan.diff()["after"] == {"bootconfigurations": {"compute": {"initrd": None}}}


def test_two_stored_resources_with_one_declared_name_are_refused_naming_their_uids():
    current = [stored_config("bootconfiguration-0002", "compute", kernel=K1), stored_config("bootconfiguration-0001", "compute", kernel=K1)]
    with pytest.raises(planner.PlanError, match="2 bootconfigurations for name 'compute' \\(uids bootconfiguration-0001, bootconfiguration-0002\\)"):
        planner.make_plan(desired(compute={"kernel": K1}), {}, current, [])
    nodes = [stored_node("node-1", XN), stored_node("node-2", XN)]
    with pytest.raises(planner.PlanError, match="2 nodes for xname 'x1000c0s0b0n0'"):
        planner.make_plan({}, {XN: parse_node({"xname": XN}, "n")}, [], nodes, state="absent")


def test_absent_deletes_the_declared_resources_nodes_first_and_ignores_missing_ones():
    current = [stored_config("bootconfiguration-0001", "compute", kernel=K1)]
    nodes = [stored_node("node-1", XN)]
    plan = planner.make_plan(desired(compute={}, gone={}), {XN: parse_node({"xname": XN}, "n")}, current, nodes, state="absent")
    assert [(r["method"], r["path"]) for r in plan.requests()] == [("DELETE", "/nodes/node-1"),
                                                                   ("DELETE", "/bootconfigurations/bootconfiguration-0001")]
    assert plan.diff()["before"]["bootconfigurations"] == {"compute": {"kernel": K1, "name": "compute", "uid": "bootconfiguration-0001"}}
    assert plan.diff()["after"] == {}


def test_exclusive_deletes_undeclared_resources_within_the_guard():
    current = [stored_config("bootconfiguration-%04d" % i, "c%d" % i, kernel=K1) for i in range(8)]
    keep = desired(**dict(("c%d" % i, {"kernel": K1}) for i in range(6)))
    plan = planner.make_plan(keep, {}, current, [stored_node("node-1", XN)], exclusive=True)
    assert [r["path"] for r in plan.requests()] == ["/bootconfigurations/bootconfiguration-0006", "/bootconfigurations/bootconfiguration-0007"]
    with pytest.raises(planner.PlanError, match="exclusive would delete 3 of the 8 bootconfigurations .* max_delete_share=0.25"):
        planner.make_plan(desired(**dict(("c%d" % i, {"kernel": K1}) for i in range(5))), {}, current, [], exclusive=True)
    plan = planner.make_plan({}, {}, current, [], exclusive=True, allow_large_delete=True)
    assert len(plan.requests()) == 8


def test_exclusive_leaves_nodes_alone_when_none_is_declared():
    nodes = [stored_node("node-1", XN)]
    plan = planner.make_plan(desired(c={"kernel": K1}), {}, [], nodes, exclusive=True)
    assert [r["path"] for r in plan.requests()] == ["/bootconfigurations"]


def test_a_node_change_is_one_put_that_keeps_the_fields_the_declaration_leaves_out():
    nodes = [stored_node("node-1", XN, nid=1, role="Compute", groups=["bss-role-compute"])]
    plan = planner.make_plan({}, {XN: parse_node({"xname": XN, "nid": 2}, "n")}, [], nodes)
    assert plan.requests() == [{"method": "PUT", "path": "/nodes/node-1",
                                "body": {"metadata": {"name": XN}, "spec": {"xname": XN, "nid": 2, "role": "Compute",
                                                                            "groups": ["bss-role-compute"]}}}]
    assert plan.diff() == {"before": {"nodes": {XN: {"nid": 1}}}, "after": {"nodes": {XN: {"nid": 2}}}}
    assert not planner.make_plan({}, {XN: parse_node({"xname": XN, "nid": 1}, "n")}, [], nodes).changed


def test_a_listing_that_is_not_resources_is_an_error():
    with pytest.raises(planner.PlanError, match="boot-service listed 'x' among its bootconfigurations"):
        planner.make_plan({}, {}, ["x"], [])
