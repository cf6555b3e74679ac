# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils.smd_inventory import (
    SmdInventoryError,
    build_hosts,
    normalise_mac,
)


def smd_payload():
    return {
        "components": {"Components": [
            {"ID": "x3000c0s1b0n0", "Type": "Node", "State": "Ready", "Role": "Compute", "NID": 1, "Enabled": True},
            {"ID": "x3000c0s3b0n0", "Type": "Node", "State": "Ready", "Role": "Application", "SubRole": "UAN", "NID": 4},
            {"ID": "x3000c0s2b0n0", "Type": "Node", "State": "Off", "Role": "Compute", "NID": 3},
            {"ID": "x3000c0s1b0", "Type": "NodeBMC", "State": "Ready"},
        ]},
        "interfaces": [
            {"ComponentID": "x3000c0s1b0n0", "MACAddress": "A4:BF:01:3E:1F:A0", "IPAddresses": [{"IPAddress": "10.1.1.1"}]},
            {"ComponentID": "x3000c0s1b0n0", "MACAddress": "a4bf013e1fa9", "IPAddresses": []},
            {"ComponentID": "x3000c0s3b0n0", "MACAddress": "not available"},
            {"ComponentID": "x3000c0s2b0n0", "MACAddress": "a4-bf-01-3e-1f-b0"},
        ],
        "memberships": [
            {"id": "x3000c0s1b0n0", "groupLabels": ["compute", "gpu"], "partitionName": ""},
            {"id": "x3000c0s3b0n0", "groupLabels": ["login"], "partitionName": ""},
        ],
    }


@pytest.mark.parametrize("raw, expected", [
    ("A4:BF:01:3E:1F:A0", "a4:bf:01:3e:1f:a0"),
    ("a4bf013e1fa0", "a4:bf:01:3e:1f:a0"),
    ("a4-bf-01-3e-1f-a0", "a4:bf:01:3e:1f:a0"),
    ("not available", None),
    ("ff:ff:ff:ff:ff:ff", None),
    ("", None),
    (None, None),
    ("zz:bf:01:3e:1f:a0", None),
])
def test_normalise_mac(raw, expected):
    assert normalise_mac(raw) == expected


def test_nodes_only_sorted_by_nid_with_identity_vars():
    hosts = build_hosts(smd_payload())
    assert [h["name"] for h in hosts] == ["x3000c0s1b0n0", "x3000c0s2b0n0", "x3000c0s3b0n0"]
    first = hosts[0]["vars"]
    assert first["bss_xname"] == "x3000c0s1b0n0"
    assert first["bss_nid"] == 1
    assert first["bss_macs"] == ["a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a9"]
    assert first["bss_ips"] == ["10.1.1.1"]
    assert hosts[0]["labels"] == ["compute", "gpu"]
    uan = hosts[2]["vars"]
    assert uan["bss_macs"] == [] and uan["bss_subrole"] == "UAN" and hosts[2]["labels"] == ["login"]


@pytest.mark.parametrize("filters, names", [
    ({"roles": ["compute"]}, ["x3000c0s1b0n0", "x3000c0s2b0n0"]),
    ({"subroles": ["uan"]}, ["x3000c0s3b0n0"]),
    ({"states": ["Ready"]}, ["x3000c0s1b0n0", "x3000c0s3b0n0"]),
    ({"roles": ["Compute"], "states": ["ready"]}, ["x3000c0s1b0n0"]),
    ({"types": ["NodeBMC"]}, ["x3000c0s1b0"]),
    ({"roles": ["Storage"]}, []),
])
def test_filters(filters, names):
    assert [h["name"] for h in build_hosts(smd_payload(), **filters)] == names


def test_nid_hostname_pattern():
    hosts = build_hosts(smd_payload(), hostname="nid{nid:06d}")
    assert [h["name"] for h in hosts] == ["nid000001", "nid000003", "nid000004"]


def test_hostname_collision_is_an_error_naming_both_nodes():
    with pytest.raises(SmdInventoryError, match="x3000c0s2b0n0.*x3000c0s1b0n0|already used by x3000c0s1b0n0"):
        build_hosts(smd_payload(), hostname="{role}")


def test_bad_hostname_pattern_names_the_pattern():
    with pytest.raises(SmdInventoryError, match="nodename"):
        build_hosts(smd_payload(), hostname="{nodename}")


def test_components_must_be_a_list():
    with pytest.raises(SmdInventoryError, match="State/Components"):
        build_hosts({"components": {"error": "nope"}, "interfaces": [], "memberships": []})
