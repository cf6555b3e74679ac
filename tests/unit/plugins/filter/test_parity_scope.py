# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.filter.parity_scope import parity_scope


def cluster(count):
    """``count`` nodes with two MACs, an xname and a NID each (4 lookups per node)."""
    return [{"xname": "x1000c0s%db0n0" % index, "nid": index + 1,
             "macs": ["02:00:00:00:%02x:%02x" % (index // 256, index % 256), "02:01:00:00:%02x:%02x" % (index // 256, index % 256)]}
            for index in range(count)]


def test_every_lookup_of_a_changed_node_is_chosen_and_never_sampled_twice():
    nodes = cluster(50)
    scope = parity_scope(nodes, ["x1000c0s7b0n0"], share=0.01, minimum=20, seed=1)
    assert scope["changed_labels"] == ["02:00:00:00:00:07", "02:01:00:00:00:07", "x1000c0s7b0n0", "nid8"]
    assert "x1000c0s7b0n0" in scope["hosts"] and 8 in scope["nids"] and "02:01:00:00:00:07" in scope["macs"]
    assert not set(scope["changed_labels"]) & set(scope["sample_labels"])
    assert scope["counts"] == {"nodes": 50, "lookups": 200, "changed_nodes": 1, "changed_lookups": 4,
                               "other_lookups": 196, "sample_lookups": 20}
    chosen = len(scope["macs"]) + len(scope["hosts"]) + len(scope["nids"])
    assert chosen == 24, "the changed node's 4 lookups and the 20 sampled ones, nothing else"


def test_the_sample_is_a_share_of_the_other_lookups_with_a_floor():
    nodes = cluster(1000)           # 4,000 lookups
    assert parity_scope(nodes, [], share=0.01, minimum=20)["counts"]["sample_lookups"] == 40
    assert parity_scope(nodes, [], share=0.001, minimum=20)["counts"]["sample_lookups"] == 20
    assert parity_scope(nodes, [], share=1.0, minimum=20)["counts"]["sample_lookups"] == 4000
    assert parity_scope(cluster(3), [], share=0.01, minimum=20)["counts"]["sample_lookups"] == 12, "all of them when fewer"


def test_the_same_seed_gives_the_same_sample_and_another_seed_another():
    nodes = cluster(500)
    first = parity_scope(nodes, ["x1000c0s1b0n0"], seed=42)
    assert parity_scope(list(reversed(nodes)), ["x1000c0s1b0n0"], seed=42)["sample_labels"] == first["sample_labels"]
    assert parity_scope(nodes, ["x1000c0s1b0n0"], seed=43)["sample_labels"] != first["sample_labels"]


def test_nodes_without_mac_or_nid_give_only_the_lookups_they_have():
    nodes = [{"xname": "x1c0s0b0n0", "nid": 0, "macs": []}, {"xname": "x1c0s0b0n1", "nid": None, "macs": ["AA:BB:CC:00:00:01"]}]
    scope = parity_scope(nodes, ["x1c0s0b0n0", "x1c0s0b0n1"])
    assert scope["changed_labels"] == ["x1c0s0b0n0", "aa:bb:cc:00:00:01", "x1c0s0b0n1"]
    assert scope["nids"] == [] and scope["counts"]["sample_lookups"] == 0


def test_the_digest_changes_when_a_node_gains_a_mac_and_not_with_the_order():
    nodes = cluster(10)
    digest = parity_scope(nodes)["digest"]
    assert parity_scope(list(reversed(nodes)))["digest"] == digest
    nodes[3] = dict(nodes[3], macs=nodes[3]["macs"] + ["02:02:00:00:00:03"])
    assert parity_scope(nodes)["digest"] != digest


@pytest.mark.parametrize("kwargs, message", [
    ({"share": 0}, "share must be a number above 0 and at most 1, got 0"),
    ({"share": 1.5}, "share must be a number above 0 and at most 1, got 1.5"),
    ({"minimum": -1}, "minimum must be a whole number of 0 or more, got -1"),
    ({"seed": "abc"}, "seed must be a whole number, got 'abc'"),
])
def test_bad_settings_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        parity_scope(cluster(2), [], **kwargs)
