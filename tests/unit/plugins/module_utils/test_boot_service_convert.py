# -*- coding: utf-8 -*-
"""The pure BSS -> boot-service mapping: Node records, configurations and their selectors, losses, refusals."""

from __future__ import annotations

import json

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_convert as bsc
from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_sync as sync
from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_source, cloud_init_export
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_convert import bss_image_hash

K1, K2, I1 = "http://10.1.0.1/k1", "http://10.1.0.1/k2", "http://10.1.0.1/i1"


def kv(**records):
    """params, kernels, initrds for records given as name=(kernel, initrd, params[, cloud-init])."""
    params, kernels, initrds = {}, {}, {}
    for name, value in records.items():
        name = name.replace("_", ":") if name.count("_") == 5 else name
        kernel, initrd, cmdline = value[:3]
        record = {"params": cmdline}
        if kernel:
            record["kernel"] = "/kernel/" + bss_image_hash(kernel)
            kernels[record["kernel"]] = json.dumps({"path": kernel})
        if initrd:
            record["initrd"] = "/initrd/" + bss_image_hash(initrd)
            initrds[record["initrd"]] = json.dumps({"path": initrd})
        if len(value) > 3:
            record["cloud-init"] = value[3]
        params[name] = json.dumps(record)
    return params, kernels, initrds


def node(xname, nid, macs, role="Compute"):
    return {"xname": xname, "nid": nid, "macs": macs, "role": role, "subrole": "", "endpoint_enabled": True}


N1 = node("x1000c0s0b0n0", 1, ["aa:00:00:00:00:01", "aa:00:00:00:00:02"])
N2 = node("x1000c0s0b0n1", 2, ["aa:00:00:00:00:03"])
N3 = node("x1000c0s0b1n0", 3, ["aa:00:00:00:00:04"], role="Service")


def served_by(conversion, record_name):
    """Which configuration boot-service picks for a Node record (its scoring, reimplemented for the test)."""
    spec = conversion["nodes"][record_name]
    best = None
    for name, config in sorted(conversion["configs"].items()):
        score = 50 * config.get("hosts", []).count(spec["xname"]) + 100 * config.get("macs", []).count(spec.get("bootMac"))
        score += 75 * config.get("nids", []).count(spec.get("nid")) + 25 * len(set(config.get("groups", [])) & set(spec.get("groups", [])))
        if not score and not any(config.get(key) for key in ("hosts", "macs", "nids", "groups")):
            score = 1
        if score and (best is None or (score, config.get("priority", 0)) > best[0]):
            best = ((score, config.get("priority", 0)), name)
    return best and best[1]


def test_xname_record_gives_one_node_record_per_mac_and_a_per_node_configuration_with_bss_params():
    conversion = bsc.convert(*kv(x1000c0s0b0n0=(K1, I1, "quiet")), [N1], datasource_url="http://ci:27777/")
    assert sorted(conversion["nodes"]) == ["bss-x1000c0s0b0n0", "bss-x1000c0s0b0n0-aa0000000002"]
    assert conversion["nodes"]["bss-x1000c0s0b0n0"] == {"xname": "x1000c0s0b0n0", "nid": 1, "bootMac": "aa:00:00:00:00:01",
                                                        "role": "Compute", "groups": ["bss-role-Compute"]}
    assert "nid" not in conversion["nodes"]["bss-x1000c0s0b0n0-aa0000000002"], "only one record answers ?nid="
    config = conversion["configs"]["bss-node-x1000c0s0b0n0"]
    assert config == {"kernel": K1, "initrd": I1, "hosts": ["x1000c0s0b0n0"],
                      "params": "quiet xname=x1000c0s0b0n0 nid=1 ds=nocloud-net;s=http://ci:27777/"}
    assert conversion["expected"]["mac:aa:00:00:00:00:02"] == (K1, I1, config["params"])
    assert not [loss for loss in conversion["losses"] if loss["kind"] == "divergent_identities"]


def test_params_already_naming_xname_and_nid_are_not_doubled():
    conversion = bsc.convert(*kv(x1000c0s0b0n1=(K1, "", "xname=custom nid=9")), [N2])
    assert conversion["configs"]["bss-node-x1000c0s0b0n1"]["params"] == "xname=custom nid=9"


def test_shared_configurations_keep_default_as_catch_all_and_role_as_group():
    records = kv(Default=(K2, "", "default=1"), Compute=(K1, I1, "compute=1"), x1000c0s0b0n1=(K1, I1, "own=1"))
    conversion = bsc.convert(*records, [N1, N2, N3], node_params=False)
    configs = conversion["configs"]
    assert configs["bss-default"] == {"kernel": K2, "params": "default=1"}
    assert configs["bss-role-Compute"]["groups"] == ["bss-role-Compute"]
    assert served_by(conversion, "bss-x1000c0s0b0n0") == "bss-role-Compute"      # no own record: role
    assert served_by(conversion, "bss-x1000c0s0b1n0") == "bss-default"           # role Service has no record
    own = served_by(conversion, "bss-x1000c0s0b0n1")
    assert own.startswith("bss-cfg-") and configs[own]["hosts"] == ["x1000c0s0b0n1"]
    kinds = {(loss["kind"], loss["name"]) for loss in conversion["losses"]}
    assert ("tag_record", "Default") not in kinds and ("tag_record", "Compute") not in kinds
    assert ("script_time_params", "xname") in kinds


def test_per_node_configurations_still_outscore_the_kept_fallbacks():
    records = kv(Default=(K2, "", "default=1"), Compute=(K1, I1, "compute=1"))
    conversion = bsc.convert(*records, [N1, N3])
    assert served_by(conversion, "bss-x1000c0s0b0n0") == "bss-node-x1000c0s0b0n0"
    assert conversion["configs"]["bss-node-x1000c0s0b0n0"]["params"] == "compute=1 xname=x1000c0s0b0n0 nid=1"
    assert served_by(conversion, "bss-x1000c0s0b1n0") == "bss-node-x1000c0s0b1n0"
    assert "bss-default" in conversion["configs"] and "bss-role-Compute" in conversion["configs"]


def test_a_raw_mac_record_is_selected_by_mac_and_the_divergence_is_reported():
    records = kv(Compute=(K1, "", "compute=1"), aa_00_00_00_00_02=(K2, "", "rescue=1"))
    conversion = bsc.convert(*records, [N1])
    assert served_by(conversion, "bss-x1000c0s0b0n0-aa0000000002") == "bss-node-x1000c0s0b0n0-aa0000000002"
    assert conversion["configs"]["bss-node-x1000c0s0b0n0-aa0000000002"]["macs"] == ["aa:00:00:00:00:02"]
    assert served_by(conversion, "bss-x1000c0s0b0n0") == "bss-node-x1000c0s0b0n0-aa0000000001"
    divergent = [loss for loss in conversion["losses"] if loss["kind"] == "divergent_identities"]
    assert [loss["name"] for loss in divergent] == ["x1000c0s0b0n0"]
    assert "name:x1000c0s0b0n0" in divergent[0]["detail"] and "one of 2 configurations" in divergent[0]["detail"]


def test_a_node_whose_macs_are_unserved_keeps_its_xname_and_nid():
    records = kv(Compute=(K1, "", "compute=1"), aa_00_00_00_00_03=("", "", "no kernel"))
    conversion = bsc.convert(*records, [N2])
    assert conversion["nodes"] == {"bss-x1000c0s0b0n1": {"xname": "x1000c0s0b0n1", "nid": 2, "role": "Compute",
                                                         "groups": ["bss-role-Compute"]}}
    assert conversion["expected"]["mac:aa:00:00:00:00:03"] is None
    assert "kernel_missing" in {loss["kind"] for loss in conversion["losses"]}


def test_html_escaping_initrd_cut_and_disabled_endpoints_are_losses():
    records = kv(x1000c0s0b0n1=(K1 + "?a=1&b=2", I1, "rd.hint=a+b initrd=x"))
    conversion = bsc.convert(*records, [dict(N2, endpoint_enabled=False)])
    by_kind = {}
    for loss in conversion["losses"]:
        by_kind.setdefault(loss["kind"], []).append(loss)
    assert len(by_kind["html_escaped"]) == 2
    assert "&amp;" in by_kind["html_escaped"][0]["detail"] and "&#43;" in by_kind["html_escaped"][1]["detail"]
    assert [loss["name"] for loss in by_kind["initrd_quirk"]] == ["x1000c0s0b0n1"]
    assert [loss["name"] for loss in by_kind["endpoint_disabled"]] == ["x1000c0s0b0n1"]


@pytest.mark.parametrize("nodes, records, priority, message", [
    ([node("x1000c0s0b0", 1, ["aa:00:00:00:00:09"])], {"Default": (K1, "", "")}, 0, "xname 'x1000c0s0b0'"),
    ([N2], {"x1000c0s0b0n1": ("s3://bucket/k", "", "")}, 0, "kernel 's3://bucket/k' is neither"),
    ([N2], {"x1000c0s0b0n1": (K1, "initrd.img", "")}, 0, "initrd 'initrd.img'"),
    ([N2], {"x1000c0s0b0n1": (K1, "", "")}, 101, "priority 101 is out of range"),
])
def test_what_boot_service_refuses_is_named(nodes, records, priority, message):
    conversion = bsc.convert(*kv(**records), nodes, priority=priority)
    found = bsc.refusals(conversion, priority)
    assert any(message in text for text in found), found


def resource(kind, name, uid, spec):
    return {"metadata": {"name": name, "uid": uid}, "spec": spec, "kind": kind}


def test_plan_is_empty_when_boot_service_holds_the_conversion_and_fixes_duplicates_and_drift():
    conversion = bsc.convert(*kv(x1000c0s0b0n1=(K1, "", "quiet")), [N2])
    desired = {"bootconfigurations": conversion["configs"], "nodes": conversion["nodes"]}
    current = {"bootconfigurations": [resource("c", n, "c-%d" % i, s) for i, (n, s) in enumerate(conversion["configs"].items())],
               "nodes": [resource("n", n, "n-%d" % i, s) for i, (n, s) in enumerate(conversion["nodes"].items())]}
    assert sync.plan_changes(current, desired)["operations"] == []
    current["nodes"].append(resource("n", "bss-x1000c0s0b0n1", "n-9", {"xname": "x1000c0s0b0n1"}))
    current["nodes"].append(resource("n", "foreign", "n-8", {"xname": "x1000c0s0b0n1"}))
    current["bootconfigurations"][0]["spec"] = dict(current["bootconfigurations"][0]["spec"], params="drift")
    ops = sync.plan_changes(current, desired, mode="merge")["operations"]
    assert [(op[0], op[2]) for op in ops] == [("replace", "c-0"), ("delete", "n-9"), ("delete", "n-8")]
    replaced = sync.plan_changes(current, desired, mode="replace")["operations"]
    assert ("delete", "n-8") in [(op[0], op[2]) for op in replaced]


def test_delta_scope_only_touches_the_affected_nodes_selectors():
    current_spec = {"kernel": K1, "hosts": ["x1", "x2"], "params": "p"}
    desired = {"bootconfigurations": {"bss-cfg-a": {"kernel": K1, "hosts": ["x1"], "params": "p"},
                                      "bss-cfg-b": {"kernel": K2, "hosts": ["x2", "x3"]}}, "nodes": {}}
    current = {"bootconfigurations": [resource("c", "bss-cfg-a", "c-1", current_spec)], "nodes": []}
    scope = {"xnames": {"x2"}, "macs": set(), "nids": set()}
    ops = sync.plan_changes(current, desired, mode="merge", scope=scope)["operations"]
    assert ops == [("create", "bootconfigurations", None, "bss-cfg-b", {"kernel": K2, "hosts": ["x2"]}),
                   ("replace", "bootconfigurations", "c-1", "bss-cfg-a", {"kernel": K1, "hosts": ["x1"], "params": "p"})]


def test_postgres_rows_become_the_records_serving_each_identifier():
    current = {"configs": {"c1": (K1, I1, "quiet")}, "groups": {"g1": ("c1", "n", "d")},
               "nodes": {"r1": ("AA:00:00:00:00:03", "x1000c0s0b0n1", 2), "r2": ("", "", 7)},
               "assignments": [("g1", "r1")], "endpoint_access": [("x1000c0s0b0n1", "bootscript", 5)]}
    kvs = bss_source.kvs_from_pg_rows(current)
    assert {key for key in kvs if key.startswith("/params/")} == {"/params/x1000c0s0b0n1", "/params/aa:00:00:00:00:03", "/params/nid2"}
    conversion = bsc.convert(*[{k[len("/params/"):]: v for k, v in kvs.items() if k.startswith("/params/")},
                               {k: v for k, v in kvs.items() if k.startswith("/kernel/")},
                               {k: v for k, v in kvs.items() if k.startswith("/initrd/")}], [N2], node_params=False,
                             served_by="postgres")
    assert conversion["expected"]["nid:2"] == conversion["expected"]["mac:aa:00:00:00:00:03"] == (K1, I1, "quiet")
    assert [loss["kind"] for loss in conversion["losses"] if loss["kind"] in ("shadowed_record", "divergent_identities")] == []


def test_postgres_rows_of_one_node_served_differently_stay_apart():
    records = kv(x1000c0s0b0n1=(K1, "", "by-name"), aa_00_00_00_00_03=(K2, "", "by-mac"))
    conversion = bsc.convert(*records, [N2], served_by="postgres")
    assert conversion["expected"]["mac:aa:00:00:00:00:03"][2].startswith("by-mac")
    assert served_by(conversion, "bss-x1000c0s0b0n1") == "bss-node-x1000c0s0b0n1-aa0000000003"
    assert [loss["name"] for loss in conversion["losses"] if loss["kind"] == "divergent_identities"] == ["x1000c0s0b0n1"]


def test_cloud_init_export_holds_exactly_the_counted_records():
    cloud = {"meta-data": {"rack": "x1000"}, "user-data": {"runcmd": ["true"]}}
    records = kv(x1000c0s0b0n1=(K1, "", "", cloud), Global=("", "", "", cloud), Compute=(K1, "", "", {}))
    entries = cloud_init_export.collect(records[0], [N2])
    conversion = bsc.convert(*records, [N2])
    counted = [loss for loss in conversion["losses"] if loss["kind"] in ("cloud_init", "global_cloud_init")]
    assert sorted(entries) == sorted(loss["name"] for loss in counted) == ["Global", "x1000c0s0b0n1"]
    assert entries["x1000c0s0b0n1"]["user-data"] == {"runcmd": ["true"]} and entries["x1000c0s0b0n1"]["nodes"] == ["x1000c0s0b0n1"]
