# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure etcd -> postgres conversion (bss-spec 3.5, 3.8, 5.1, 5.2; golden data)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert as conv

EMPTY_CI = {"meta-data": None, "user-data": None,
            "phone-home": {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}}
K61, I61 = "http://10.0.0.1/boot/vmlinuz-6.1.0", "http://10.0.0.1/boot/initrd-6.1.0.img"
K514, I514 = "http://10.0.0.1/boot/vmlinuz-5.14.0", "http://10.0.0.1/boot/initrd-5.14.0.img"
KDEF, IDEF = "http://10.0.0.1/boot/vmlinuz-default", "http://10.0.0.1/boot/initrd-default.img"


def _images(*paths, params=None):
    out = {}
    for path in paths:
        value = {"path": path}
        if params and path in params:
            value["params"] = params[path]
        out[path] = json.dumps(value)
    return out


def _record(params, kernel, initrd="", cloud_init=None, token_key="referral-token"):
    value = {"params": params, "kernel": "/kernel/" + conv.bss_image_hash(kernel) if kernel else "",
             "initrd": "/initrd/" + conv.bss_image_hash(initrd) if initrd else "", "cloud-init": cloud_init or EMPTY_CI}
    value[token_key] = "3d9e773c-4e82-4a5e-a965-8c87f667cc0c"
    return json.dumps({k: v for k, v in value.items() if v != ""})


def _keyed(prefix, images):
    return {prefix + conv.bss_image_hash(path): value for path, value in images.items()}


SMD = [
    {"xname": "x3000c0s1b0n0", "nid": 1, "role": "Compute", "macs": ["a4:bf:01:3e:1f:a0"]},
    {"xname": "x3000c0s1b0n1", "nid": 2, "role": "Compute", "macs": ["a4:bf:01:3e:1f:a1"]},
    {"xname": "x3000c0s2b0n0", "nid": 3, "role": "Compute", "macs": ["a4:bf:01:3e:1f:b0"]},
    {"xname": "x3000c0s3b0n0", "nid": 4, "role": "Application", "subrole": "UAN", "macs": ["de:ad:be:ef:00:04"]},
    {"xname": "x3000c0s4b0n0", "nid": 5, "role": "Compute", "macs": ["de:ad:be:ef:00:05"]},
    {"xname": "x3000c0s5b0n0", "nid": 6, "role": "Compute", "macs": ["de:ad:be:ef:00:06"]},
]


def golden_like():
    """The golden etcd state (golden/etcd/raw/etcd_decoded.json), rebuilt in a few lines."""
    params = {
        "x3000c0s1b0n0": _record("console=ttyS0,115200 quiet", K61, I61),
        "x3000c0s1b0n1": _record("console=ttyS0,115200 quiet", K61, I61),
        "x3000c0s2b0n0": _record("console=ttyS0,115200 quiet rd.shell", K514, I514),
        "x3000c0s3b0n0": _record("console=tty0 nid_posted=1", K514, I514),
        "x3000c0s4b0n0": _record("console=ttyS0 ci=1", K61, I61, cloud_init=dict(EMPTY_CI, **{"meta-data": {"a": 1}})),
        "0a:1B:2c:3D:4e:5F": _record("console=ttyS0,115200 quiet rd.shell", K514, I514),
        "02:00:00:0a:bc:99": _record("console=ttyS0,115200 quiet rd.shell", K514, I514),
        "nid100": _record("console=tty0 nid_posted=1", K514, I514),
        "Default": _record("console=ttyS0 default_boot=1", KDEF, IDEF),
        "Global": json.dumps({"params": "global_param=1", "cloud-init": dict(EMPTY_CI, **{"meta-data": {"cluster-name": "lab"}})}),
    }
    kernels = _keyed("/kernel/", _images(K61, K514, KDEF))
    initrds = _keyed("/initrd/", _images(I61, I514, IDEF))
    access = [("x3000c0s1b0n0", "bootscript", 1795566826), ("", "user-data", 1795566826)]
    return params, kernels, initrds, access


@pytest.mark.parametrize("text,expected", [
    ("", '""'),
    ("console=ttyS0,115200", '"console=ttyS0,115200"'),
    ('a="b c"\\d', '"a=\\"b c\\"\\\\d"'),
    ("tab\there\nnl", '"tab\\there\\nnl"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("grüße €", '"grüße €"'),
    ("nb\u00a0sp\u200bzw", '"nb\\u00a0sp\\u200bzw"'),
    ("\U000e0001", '"\\U000e0001"'),
])
def test_go_quote_matches_strconv_quote(text, expected):
    assert conv.go_quote(text) == expected


def test_group_name_and_description_match_upstream_format():
    kernel, initrd, params = "http://10.1.0.1/boot/vmlinuz-6.1", "http://10.1.0.1/boot/initramfs-6.1.img", "console=ttyS0,115200 ip=dhcp"
    assert conv.group_name(kernel, initrd, params) == (
        'BootGroup(kernel="http://10.1.0.1/boot/vmlinuz-6.1",initrd="http://10.1.0.1/boot/initramfs-6.1.img",'
        'params="console=ttyS0,115200 ip=dhcp")')
    assert conv.group_description("s3://boot-images/k/kernel", "", "root=live:s3://boot-images/k/rootfs quiet") == (
        'Boot group for nodes with kernel="s3://boot-images/k/kernel" initrd="" params="root=live:s3://boot-images/k/rootfs quiet"')


@pytest.mark.parametrize("path,digest", [
    ("http://10.1.0.1/boot/vmlinuz-6.1", "9fa148c1857881b3"),
    ("/test/path/vmlinuz", "2be9b99ec6734890"),
    ("http://10.0.0.1/boot/vmlinuz-6.1.0", "33907ad120d58e70"),
])
def test_image_hash(path, digest):
    assert conv.bss_image_hash(path) == digest


def _rows_by_xname(result):
    return {row["xname"]: row for row in result["nodes"]}


def test_every_smd_node_gets_one_row_with_mac_xname_and_nid():
    result = conv.convert(*golden_like(), SMD)
    rows = _rows_by_xname(result)
    assert sorted(rows) == [node["xname"] for node in SMD]
    assert rows["x3000c0s1b0n0"] == {"boot_mac": "a4:bf:01:3e:1f:a0", "xname": "x3000c0s1b0n0", "nid": 1,
                                     "config": (K61, I61, "console=ttyS0,115200 quiet")}
    # x3000c0s5b0n0 has no record: etcd served it Default, so Default is materialised on its row
    assert rows["x3000c0s5b0n0"]["config"] == (KDEF, IDEF, "console=ttyS0 default_boot=1")
    assert all(row["nid"] > 0 and row["boot_mac"] == row["boot_mac"].lower() for row in result["nodes"])


def test_configs_are_shared_per_distinct_triple_with_upstream_names():
    result = conv.convert(*golden_like(), SMD)
    triples = [(c["kernel"], c["initrd"], c["cmdline"]) for c in result["configs"]]
    assert len(triples) == len(set(triples)) == 5
    for config in result["configs"]:
        assert config["name"] == conv.group_name(config["kernel"], config["initrd"], config["cmdline"])


def test_losses_name_every_record_that_cannot_be_carried_over():
    losses = {(loss["kind"], loss["name"]) for loss in conv.convert(*golden_like(), SMD)["losses"]}
    assert losses == {
        ("cloud_init", "x3000c0s4b0n0"),
        ("global_cloud_init", "Global"),
        ("unknown_mac_record", "0a:1B:2c:3D:4e:5F"),
        ("unknown_mac_record", "02:00:00:0a:bc:99"),
        ("unknown_nid_record", "nid100"),
        ("tag_record", "Default"),
    }


def test_raw_mac_record_serves_node_without_xname_record():
    params = {"A4:BF:01:3E:1F:B0": _record("by_upper_mac=1", K61), "a4:bf:01:3e:1f:a0": _record("by_mac=1", K61)}
    result = conv.convert(params, _keyed("/kernel/", _images(K61)), {}, [], SMD[:3])
    # lower-case MAC record: iPXE asks with lower case, so etcd served it by MAC only; name=/nid= found
    # nothing (no role, no Default), so the row carries the MAC alone
    assert result["nodes"] == [{"boot_mac": "a4:bf:01:3e:1f:a0", "xname": "", "nid": 0, "config": (K61, "", "by_mac=1")}]
    kinds = {(loss["kind"], loss["name"]) for loss in result["losses"]}
    assert ("divergent_identities", "x3000c0s1b0n0") in kinds
    # an upper-case MAC record is never reached by a lower-case request
    assert ("shadowed_record", "A4:BF:01:3E:1F:B0") in kinds


def test_identities_served_differently_get_separate_rows():
    params = {"a4:bf:01:3e:1f:a0": _record("by_mac=1", K61), "nid1": _record("by_nid=1", K61), "Compute": _record("role=1", K514)}
    result = conv.convert(params, _keyed("/kernel/", _images(K61, K514)), {}, [], SMD[:1])
    assert sorted((r["boot_mac"], r["xname"], r["nid"], r["config"][2]) for r in result["nodes"]) == [
        ("", "", 1, "by_nid=1"), ("", "x3000c0s1b0n0", 0, "role=1"), ("a4:bf:01:3e:1f:a0", "", 0, "by_mac=1")]


def test_role_record_is_materialised_before_default():
    params = {"Application": _record("uan=1", K514), "Default": _record("default=1", KDEF)}
    result = conv.convert(params, _keyed("/kernel/", _images(K514, KDEF)), {}, [], SMD)
    rows = _rows_by_xname(result)
    assert rows["x3000c0s3b0n0"]["config"] == (K514, "", "uan=1")
    assert rows["x3000c0s1b0n0"]["config"] == (KDEF, "", "default=1")
    assert {(l["kind"], l["name"]) for l in result["losses"]} == {("tag_record", "Application"), ("tag_record", "Default")}


def test_image_params_are_appended_in_upstream_order_and_reported():
    kernels = _keyed("/kernel/", _images(K61, params={K61: "kparam=1"}))
    initrds = _keyed("/initrd/", _images(I61, params={I61: "iparam=2"}))
    params = {"x3000c0s1b0n0": _record("console=ttyS0", K61, I61)}
    result = conv.convert(params, kernels, initrds, [], SMD[:1])
    assert result["nodes"][0]["config"] == (K61, I61, "console=ttyS0 kparam=1 iparam=2")
    assert [l["kind"] for l in result["losses"]] == ["image_params_merged"]


def test_two_macs_give_two_rows_each_with_xname_and_nid():
    smd = [{"xname": "x1000c0s1b0n1", "nid": 4, "role": "Compute", "macs": ["B4:2E:99:00:00:03", "b4:2e:9a:00:00:03"]}]
    result = conv.convert({"x1000c0s1b0n1": _record("p=1", K61)}, _keyed("/kernel/", _images(K61)), {}, [], smd)
    assert [(r["boot_mac"], r["xname"], r["nid"]) for r in result["nodes"]] == [
        ("b4:2e:99:00:00:03", "x1000c0s1b0n1", 4), ("b4:2e:9a:00:00:03", "x1000c0s1b0n1", 4)]
    assert len(result["configs"]) == 1


def test_node_without_mac_keeps_xname_and_nid_and_is_reported():
    smd = [{"xname": "x1000c0s0b0n0", "nid": 7, "role": "Compute", "macs": []}]
    result = conv.convert({"x1000c0s0b0n0": _record("p=1", K61)}, _keyed("/kernel/", _images(K61)), {}, [], smd)
    assert result["nodes"] == [{"boot_mac": "", "xname": "x1000c0s0b0n0", "nid": 7, "config": (K61, "", "p=1")}]
    assert [l["kind"] for l in result["losses"]] == ["node_without_mac"]


def test_record_without_kernel_writes_no_row():
    params = {"x3000c0s1b0n0": _record("p=1", "")}
    result = conv.convert(params, {}, {}, [], SMD[:1])
    assert result["nodes"] == []
    assert [(l["kind"], l["name"]) for l in result["losses"]] == [("kernel_missing", "x3000c0s1b0n0")]


def test_legacy_referral_token_spelling_and_quotes_and_unicode_survive():
    params = {"x3000c0s1b0n0": _record('root=live:"x y" motd=grüße', K61, token_key="ReferralToken")}
    result = conv.convert(params, _keyed("/kernel/", _images(K61)), {}, [], SMD[:1])
    config = result["configs"][0]
    assert config["cmdline"] == 'root=live:"x y" motd=grüße'
    assert config["name"].endswith('params="root=live:\\"x y\\" motd=grüße")')


def test_undecodable_record_is_a_loss_not_a_crash():
    result = conv.convert({"x3000c0s1b0n0": "{not json"}, {}, {}, [], SMD[:1])
    assert result["nodes"] == []
    assert [l["kind"] for l in result["losses"]] == ["undecodable_record"]


@pytest.mark.parametrize("smd,message", [
    ([{"xname": "x1c0s0b0n0", "nid": 1, "macs": ["aa:bb:cc:dd:ee:01"]},
      {"xname": "x1c0s0b0n1", "nid": 2, "macs": ["AA:BB:CC:DD:EE:01"]}], "MAC 'AA:BB:CC:DD:EE:01' on two nodes"),
    ([{"xname": "x1c0s0b0n0", "nid": 1, "macs": []}, {"xname": "x1c0s0b0n1", "nid": 1, "macs": []}], "NID 1 on two nodes"),
])
def test_inconsistent_smd_inventory_is_an_error(smd, message):
    with pytest.raises(conv.ConversionError, match=message):
        conv.convert({}, {}, {}, [], smd)


def test_unaccepted_losses_by_kind_or_name():
    losses = conv.convert(*golden_like(), SMD)["losses"]
    left = conv.unaccepted_losses(losses, ["unknown_mac_record", "tag_record"], ["Global", "nid100"])
    assert [(l["kind"], l["name"]) for l in left] == [("cloud_init", "x3000c0s4b0n0")]


def test_split_etcd_keys_and_endpoint_history():
    kvs = {"/params/x1": "{}", "/kernel/ab": "{}", "/initrd/cd": "{}", "/bss/etcdTest": "215",
           "/endpoint-access//user-data": "17", "/endpoint-access/x3000c0s1b0n0/bootscript": "18"}
    params, kernels, initrds, access = conv.split_etcd_keys(kvs)
    assert list(params) == ["x1"] and list(kernels) == ["/kernel/ab"] and list(initrds) == ["/initrd/cd"]
    assert sorted(access) == [("", "user-data", 17), ("x3000c0s1b0n0", "bootscript", 18)]


def test_affected_nodes_follow_records_images_and_fallbacks():
    changed = {"/params/x3000c0s1b0n0", "/kernel/aa"}
    pointers = {"x3000c0s2b0n0": {"/kernel/aa"}, "x3000c0s3b0n0": {"/kernel/bb"}}
    assert conv.affected_nodes(SMD, changed, pointers) == {"x3000c0s1b0n0", "x3000c0s2b0n0"}
    assert conv.affected_nodes(SMD, {"/params/Default"}, {}) == {node["xname"] for node in SMD}
