# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure row plan: content matching, idempotence, replace vs merge, delta scope."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import pg_rows
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_convert import group_description, group_name

A = ("http://k/a", "http://i/a", "console=ttyS0 a=1")
B = ("http://k/b", "", "b=1")


def conversion(*rows, access=()):
    return {"nodes": [{"boot_mac": m, "xname": x, "nid": n, "config": c} for m, x, n, c in rows], "endpoint_access": list(access)}


COUNTER = itertools.count(1)


def ids():
    """Fresh ids, unique across every plan of a test (as UUIDs are)."""
    return lambda: "id%d" % next(COUNTER)


def apply(current, plan):
    """What the database holds after ``plan`` (the same effect as pg_rows._write, in memory)."""
    gone = set(plan["delete_nodes"]) | set(plan["reassign_nodes"])
    state = {
        "configs": {k: v for k, v in current["configs"].items() if k not in plan["delete_configs"]},
        "groups": {k: v for k, v in current["groups"].items() if k not in plan["delete_groups"]},
        "nodes": {k: v for k, v in current["nodes"].items() if k not in plan["delete_nodes"]},
        "assignments": [a for a in current["assignments"] if a[1] not in gone],
        "endpoint_access": list(current["endpoint_access"]) + plan["insert_endpoint_access"],
    }
    for config_id, kernel, initrd, cmdline in plan["insert_configs"]:
        state["configs"][config_id] = (kernel, initrd, cmdline)
    for group_id, config_id, name, description in plan["insert_groups"]:
        state["groups"][group_id] = (config_id, name, description)
    for node_id, mac, xname, nid in plan["insert_nodes"]:
        state["nodes"][node_id] = (mac, xname, nid)
    state["assignments"] += plan["insert_assignments"]
    if plan.get("delete_stray_assignments"):
        state["assignments"] = [a for a in state["assignments"] if a[0] in state["groups"] and a[1] in state["nodes"]]
    return state


def served(state):
    result = {}
    for group_id, node_id in state["assignments"]:
        result.setdefault(state["nodes"][node_id], []).append(state["configs"][state["groups"][group_id][0]])
    return result


EMPTY = {"configs": {}, "groups": {}, "nodes": {}, "assignments": [], "endpoint_access": []}


def test_fresh_import_shares_one_group_per_triple_with_upstream_names():
    conv = conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, A), ("aa:00:00:00:00:02", "x1c0s0b0n1", 2, A),
                      ("aa:00:00:00:00:03", "x1c0s0b1n0", 3, B), access=[("x1c0s0b0n0", "bootscript", 17)])
    plan = pg_rows.plan_rows(EMPTY, conv, new_id=ids())
    assert plan["changed"] and len(plan["insert_configs"]) == 2 and len(plan["insert_nodes"]) == 3
    assert {g[2] for g in plan["insert_groups"]} == {group_name(*A), group_name(*B)}
    assert {g[3] for g in plan["insert_groups"]} == {group_description(*A), group_description(*B)}
    state = apply(EMPTY, plan)
    assert served(state)[("aa:00:00:00:00:03", "x1c0s0b1n0", 3)] == [B]
    again = pg_rows.plan_rows(state, conv, new_id=ids())
    assert again["changed"] is False and not any(again["counts"].values())


def test_changed_config_reassigns_the_node_and_replace_drops_the_orphan_group():
    conv1 = conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, A))
    state = apply(EMPTY, pg_rows.plan_rows(EMPTY, conv1, new_id=ids()))
    node_id = next(iter(state["nodes"]))
    plan = pg_rows.plan_rows(state, conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, B)), new_id=ids())
    assert plan["reassign_nodes"] == [node_id] and plan["insert_nodes"] == []
    after = apply(state, plan)
    assert served(after) == {("aa:00:00:00:00:01", "x1c0s0b0n0", 1): [B]}
    assert len(after["groups"]) == 1 and len(after["configs"]) == 1


def test_merge_keeps_unrelated_rows_but_removes_rows_that_would_shadow_imported_ones():
    state = apply(EMPTY, pg_rows.plan_rows(EMPTY, conversion(("bb:00:00:00:00:09", "", 0, B), ("", "x1c0s0b0n0", 0, B)), new_id=ids()))
    conv = conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, A))
    merged = apply(state, pg_rows.plan_rows(state, conv, mode="merge", new_id=ids()))
    assert set(served(merged)) == {("bb:00:00:00:00:09", "", 0), ("aa:00:00:00:00:01", "x1c0s0b0n0", 1)}
    replaced = apply(state, pg_rows.plan_rows(state, conv, mode="replace", new_id=ids()))
    assert set(served(replaced)) == {("aa:00:00:00:00:01", "x1c0s0b0n0", 1)}


def test_duplicate_rows_and_dangling_assignments_are_cleaned_in_replace_mode():
    state = {"configs": {"c1": A}, "groups": {"g1": ("c1", group_name(*A), group_description(*A))},
             "nodes": {"n1": ("aa:00:00:00:00:01", "x1c0s0b0n0", 1), "n2": ("aa:00:00:00:00:01", "x1c0s0b0n0", 1)},
             "assignments": [("g1", "n1"), ("g1", "n2"), ("g-gone", "n-gone")], "endpoint_access": []}
    plan = pg_rows.plan_rows(state, conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, A)), new_id=ids())
    assert plan["delete_nodes"] == ["n2"] and plan["insert_groups"] == [] and plan["delete_stray_assignments"]
    assert served(apply(state, plan)) == {("aa:00:00:00:00:01", "x1c0s0b0n0", 1): [A]}


def test_group_with_foreign_name_is_not_reused():
    state = {"configs": {"c1": A}, "groups": {"g1": ("c1", "hand-made", "")}, "nodes": {}, "assignments": [], "endpoint_access": []}
    plan = pg_rows.plan_rows(state, conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, A)), new_id=ids())
    assert len(plan["insert_groups"]) == 1 and plan["delete_groups"] == ["g1"]


def test_endpoint_history_only_grows():
    state = dict(EMPTY, endpoint_access=[("x1c0s0b0n0", "bootscript", 10), ("x1c0s0b0n0", "bootscript", 20)])
    plan = pg_rows.plan_rows(state, conversion(access=[("x1c0s0b0n0", "bootscript", 20), ("x1c0s0b0n1", "bootscript", 5)]))
    assert plan["insert_endpoint_access"] == [("x1c0s0b0n1", "bootscript", 5)]


def test_delta_scope_touches_only_rows_of_affected_nodes():
    smd = [{"xname": "x1c0s0b0n0", "nid": 1, "macs": ["AA:00:00:00:00:01"]}, {"xname": "x1c0s0b0n1", "nid": 2, "macs": ["aa:00:00:00:00:02"]}]
    state = apply(EMPTY, pg_rows.plan_rows(EMPTY, conversion(("aa:00:00:00:00:01", "", 0, A), ("", "x1c0s0b0n0", 1, A),
                                                             ("aa:00:00:00:00:02", "x1c0s0b0n1", 2, A)), new_id=ids()))
    scope = pg_rows.scope_of(smd, {"x1c0s0b0n0"})
    conv = conversion(("aa:00:00:00:00:01", "x1c0s0b0n0", 1, B), ("aa:00:00:00:00:02", "x1c0s0b0n1", 2, B))
    after = apply(state, pg_rows.plan_rows(state, conv, mode="merge", scope=scope, new_id=ids()))
    assert served(after) == {("aa:00:00:00:00:01", "x1c0s0b0n0", 1): [B], ("aa:00:00:00:00:02", "x1c0s0b0n1", 2): [A]}


def test_unknown_mode_is_an_error_naming_the_value():
    with pytest.raises(pg_rows.RowStoreError, match="'upsert'"):
        pg_rows.plan_rows(EMPTY, conversion(), mode="upsert")
