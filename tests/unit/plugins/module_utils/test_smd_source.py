# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for reading the SMD node inventory from its export shapes."""

from __future__ import annotations

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import smd_source


def test_node_file_list_with_mac_or_macs():
    nodes = smd_source.nodes_from_export([
        {"xname": "x3000c0s1b0n0", "nid": 1, "role": "Compute", "mac": "A4:BF:01:3E:1F:A0"},
        {"xname": "x3000c0s3b0n0", "nid": 4, "role": "Application", "subrole": "UAN", "macs": ["de:ad:be:ef:00:04", "not available"],
         "endpoint": False}])
    assert nodes[0]["macs"] == ["a4:bf:01:3e:1f:a0"] and nodes[0]["endpoint_enabled"] is True
    assert nodes[1]["macs"] == ["de:ad:be:ef:00:04"] and nodes[1]["subrole"] == "UAN" and nodes[1]["endpoint_enabled"] is False


def test_hsm_collections_build_macs_like_bss():
    data = {"Components": {"Components": [{"ID": "x1c0s0b0n0", "Type": "Node", "NID": 7, "Role": "Compute"},
                                          {"ID": "x1c0s0b0", "Type": "NodeBMC"}]},
            "ComponentEndpoints": {"ComponentEndpoints": [{"ID": "x1c0s0b0n0", "MACAddr": "ff:ff:ff:ff:ff:ff", "Enabled": True,
                                                           "RedfishSystemInfo": {"EthernetNICInfo": [{"MACAddress": "B4:2E:99:00:00:01"}]}}]},
            "EthernetInterfaces": [{"ComponentID": "x1c0s0b0n0", "MACAddress": "b42e99000002"}]}
    assert smd_source.nodes_from_export(data) == [{"xname": "x1c0s0b0n0", "nid": 7, "macs": ["b4:2e:99:00:00:01", "b4:2e:99:00:00:02"],
                                                   "role": "Compute", "subrole": "", "state": "", "endpoint_enabled": True}]


def test_bss_cache_file_shape():
    data = {"Components": [{"ID": "x1c0s0b0n0", "NID": 1, "MAC": ["aa:bb:cc:00:11:22"], "EndpointEnabled": True}], "IPAddresses": {}}
    assert smd_source.nodes_from_export(data)[0]["macs"] == ["aa:bb:cc:00:11:22"]


@pytest.mark.parametrize("data,message", [
    ({"nodes": []}, "unrecognised SMD export"),
    ([{"xname": "x1c0s0b0n0", "nid": "seven"}], "NID that is not a number: 'seven'"),
    ([{"nid": 1}], "no xname"),
])
def test_bad_exports_name_the_problem(data, message):
    with pytest.raises(smd_source.SmdSourceError, match=message):
        smd_source.nodes_from_export(data)
