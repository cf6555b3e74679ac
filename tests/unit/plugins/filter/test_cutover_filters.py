# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.filter.rollback_declarations import rollback_declarations
from ansible_collections.hpc_boot.bss.plugins.filter.smd_nodes import smd_nodes

NEW_NODES = {
    "x1c0s0b0n0": {"kernel": "http://k/new", "initrd": "http://i/new", "params": "console=ttyS0 quiet"},
    "x1c0s0b0n1": {"kernel": "http://k/new", "initrd": "http://i/new", "params": "console=ttyS0 quiet"},
    "x1c0s1b0n0": {"kernel": "http://k/old", "initrd": "", "params": "console=tty0 rd.debug"},
}


def test_only_differing_nodes_are_carried_grouped_by_configuration():
    parity = [
        {"node": "x1c0s0b0n0", "same": False},
        {"node": "x1c0s0b0n1", "same": False},
        {"node": "x1c0s1b0n0", "same": True},
        {"node": "x1c0s2b0n0", "same": False},
    ]
    result = rollback_declarations(parity, NEW_NODES)
    assert result["declarations"] == [
        {"hosts": ["x1c0s0b0n0", "x1c0s0b0n1"], "kernel": "http://k/new", "initrd": "http://i/new", "params": "console=ttyS0 quiet"},
    ]
    assert result["not_carried"] == ["x1c0s2b0n0"], "a node the new BSS no longer has cannot be written back and is reported"


def test_image_params_of_the_old_etcd_records_are_not_served_twice():
    parity = [{"node": "x1c0s1b0n0", "same": False}]
    images = [{"kernel": "http://k/old", "params": "rd.debug"}, {"kernel": "http://k/other", "params": "console=tty0"}]
    result = rollback_declarations(parity, NEW_NODES, images)
    assert result["declarations"] == [{"hosts": ["x1c0s1b0n0"], "kernel": "http://k/old", "params": "console=tty0"}]


def test_nothing_differs_nothing_to_write():
    assert rollback_declarations([{"node": "x1c0s0b0n0", "same": True}], NEW_NODES) == {"declarations": [], "not_carried": []}


def test_smd_nodes_joins_components_and_interfaces():
    components = {"Components": [{"ID": "x1c0s0b0n1", "Type": "Node", "NID": 2, "Role": "Compute", "State": "Ready"},
                                 {"ID": "x1c0s0b0n0", "Type": "Node", "NID": 1, "Role": "Compute", "State": "Ready"}]}
    interfaces = [{"ComponentID": "x1c0s0b0n0", "MACAddress": "AA:BB:CC:00:00:01"}]
    assert smd_nodes(components, interfaces) == [
        {"xname": "x1c0s0b0n0", "nid": 1, "macs": ["aa:bb:cc:00:00:01"], "role": "Compute", "subrole": "", "state": "Ready"},
        {"xname": "x1c0s0b0n1", "nid": 2, "macs": [], "role": "Compute", "subrole": "", "state": "Ready"},
    ]


def test_smd_nodes_rejects_an_answer_without_components():
    with pytest.raises(AnsibleFilterError, match="State/Components"):
        smd_nodes({"detail": "unauthorized"}, [])


def test_rewrite_url_first_matching_prefix_only():
    from ansible_collections.hpc_boot.bss.plugins.filter.rewrite_url import rewrite_url
    rules = [{"from": "http://10.0.2.101/", "to": "http://127.0.0.1:8000/"}, {"from": "http://10.0.2.101/", "to": "http://x/"}]
    assert rewrite_url(rules, "http://10.0.2.101/vmlinuz") == "http://127.0.0.1:8000/vmlinuz"
    assert rewrite_url(rules, "https://images.example/vmlinuz") == "https://images.example/vmlinuz"
    with pytest.raises(AnsibleFilterError, match="'from' and 'to'"):
        rewrite_url([{"from": "http://a/"}], "http://a/b")
