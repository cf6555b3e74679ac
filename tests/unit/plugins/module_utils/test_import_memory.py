# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the import does to hold less at 100,000 nodes (issue 11), checked for what a user would see."""

from __future__ import annotations

import json
import uuid

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, etcd_source, pg_rows, smd_source


class OnePageEtcd:
    """Answers get_range_response like etcd3 for a dict of keys, all in one page."""

    def __init__(self, data):
        self.data = {key.encode(): value.encode() for key, value in data.items()}

    def get_range_response(self, start, end, keys_only=False, limit=0, revision=None):  # pylint: disable=unused-argument
        start, end = start.encode() if isinstance(start, str) else start, end.encode()
        kvs = [type("KV", (), {"key": key, "value": b"" if keys_only else self.data[key], "mod_revision": 5})()
               for key in sorted(self.data) if start <= key < end]
        return type("Range", (), {"kvs": kvs, "more": False, "header": type("H", (), {"revision": 9})()})()


def test_key_space_without_mod_revisions_is_the_same_key_space():
    data = {"/params/x1c0s0b0n0": '{"params": "quiet"}', "/kernel/k": '{"path": "http://k"}',
            "/endpoint-access/x1c0s0b0n0/bootscript": "17"}
    with_mods = etcd_source.read_bss_keys(OnePageEtcd(data))
    without = etcd_source.read_bss_keys(OnePageEtcd(data), with_mod_revisions=False)
    assert without == (with_mods[0], 9, None)
    assert with_mods[2] == {key: 5 for key in data}


def test_streamed_export_gives_the_nodes_and_shares_repeated_strings(tmp_path):
    nodes = [{"xname": "x1000c0s0b0n%d" % i, "nid": i + 1, "role": "Compute", "macs": ["A4:BF:01:00:00:%02X" % i],
              "ip": "10.0.0.%d" % i, "groups": ["compute"]} for i in range(3)]
    path = tmp_path / "smd.json"
    path.write_text(json.dumps(nodes, indent=2), encoding="utf-8")
    got = smd_source.read_export(str(path))
    assert got == smd_source.nodes_from_export(nodes)
    assert got[2] == {"xname": "x1000c0s0b0n2", "nid": 3, "macs": ["a4:bf:01:00:00:02"], "role": "Compute", "subrole": "",
                      "state": "Ready", "endpoint_enabled": True}
    assert got[0]["role"] is got[1]["role"] is got[2]["role"], "one string object for a role every node carries"


def test_records_share_image_paths_and_params():
    kernel = "/kernel/" + bss_convert.bss_image_hash("http://k")
    params = {"x1c0s0b0n%d" % i: json.dumps({"params": "console=ttyS0", "kernel": kernel}) for i in range(3)}
    records, losses = bss_convert.resolve_records(params, {kernel: '{"path": "http://k", "params": "quiet"}'}, {})
    assert not losses
    first, second = records["x1c0s0b0n0"], records["x1c0s0b0n1"]
    assert (first["kernel"], first["kernel_params"], first["params"]) == ("http://k", "quiet", "console=ttyS0")
    assert first["kernel"] is second["kernel"] and first["params"] is second["params"]


def test_rows_of_one_configuration_share_one_triple():
    kernel = "/kernel/" + bss_convert.bss_image_hash("http://k")
    params = {"x1c0s0b0n%d" % i: json.dumps({"params": "console=ttyS0", "kernel": kernel}) for i in range(2)}
    nodes = [{"xname": "x1c0s0b0n%d" % i, "nid": i + 1, "macs": ["a4:bf:01:00:00:0%d" % i, "a4:bf:01:00:01:0%d" % i]}
             for i in range(2)]
    rows = bss_convert.convert(params, {kernel: '{"path": "http://k"}'}, {}, [], nodes)["nodes"]
    assert len(rows) == 4 and all(row["config"] == ("http://k", "", "console=ttyS0") for row in rows)
    assert len({id(row["config"]) for row in rows}) == 1


def test_new_row_ids_are_distinct_version_4_uuids():
    made = [pg_rows.new_uuid() for _count in range(2000)]
    assert len(set(made)) == 2000
    for text in made[:200]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


TRIPLE = ("http://k/a", "", "quiet")
OTHER = ("http://k/b", "", "quiet")


def _current(assignments):
    return {"configs": {"ca": TRIPLE, "cb": OTHER},
            "groups": {"ga": ("ca", bss_convert.group_name(*TRIPLE), bss_convert.group_description(*TRIPLE)),
                       "gb": ("cb", bss_convert.group_name(*OTHER), bss_convert.group_description(*OTHER))},
            "nodes": {"n1": ("a4:bf:01:00:00:01", "x1c0s0b0n0", 1)}, "assignments": assignments, "endpoint_access": []}


def test_node_row_in_two_groups_or_in_none_is_reassigned_and_one_in_its_group_is_left_alone():
    conversion = {"nodes": [{"boot_mac": "a4:bf:01:00:00:01", "xname": "x1c0s0b0n0", "nid": 1, "config": TRIPLE}],
                  "endpoint_access": []}
    for assignments, reassigned in (([("ga", "n1"), ("gb", "n1")], ["n1"]), ([("ga", "n1"), ("ga", "n1")], ["n1"]),
                                    ([], ["n1"]), ([("gb", "n1")], ["n1"]), ([("ga", "n1")], [])):
        plan = pg_rows.plan_rows(_current(assignments), conversion, new_id=iter(["new%d" % i for i in range(9)]).__next__)
        assert plan["reassign_nodes"] == reassigned, assignments
        assert plan["changed_nodes"] == ([("a4:bf:01:00:00:01", "x1c0s0b0n0", 1)] if reassigned else [])
        assert not plan["insert_nodes"]


def test_duplicate_node_rows_keep_the_first_by_id_and_drop_the_others():
    current = _current([("ga", "n1"), ("ga", "n0"), ("ga", "n2")])
    current["nodes"].update({"n0": current["nodes"]["n1"], "n2": current["nodes"]["n1"]})
    conversion = {"nodes": [{"boot_mac": "a4:bf:01:00:00:01", "xname": "x1c0s0b0n0", "nid": 1, "config": TRIPLE}],
                  "endpoint_access": []}
    plan = pg_rows.plan_rows(current, conversion, new_id=iter(["new"]).__next__)
    assert plan["delete_nodes"] == ["n1", "n2"] and not plan["reassign_nodes"] and plan["changed"]


def test_keys_handed_to_a_sink_as_read_split_like_the_flat_key_space():
    data = {"/params/x1c0s0b0n0": '{"params": "quiet"}', "/kernel/k": '{"path": "http://k"}', "/initrd/i": '{"path": "http://i"}',
            "/endpoint-access/x1c0s0b0n0/bootscript": "17", "/endpoint-access/x1c0s0b0n0/user-data": "not an epoch"}
    space = bss_convert.KeySpace()
    kvs, revision, mods = etcd_source.read_bss_keys(OnePageEtcd(data), with_mod_revisions=False, sink=space.add)
    assert (kvs, revision, mods) == (None, 9, None)
    assert space.split() == bss_convert.split_etcd_keys(data) == (
        {"x1c0s0b0n0": '{"params": "quiet"}'}, {"/kernel/k": '{"path": "http://k"}'}, {"/initrd/i": '{"path": "http://i"}'},
        [("x1c0s0b0n0", "bootscript", 17)])
