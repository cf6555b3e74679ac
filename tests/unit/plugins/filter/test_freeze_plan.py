# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.filter.freeze_plan import freeze_plan

PROOF = {"revision": 120, "nodes": 32, "lookups": 96, "equal": 96, "digest": "abc"}


def test_a_clean_proof_for_the_same_nodes_allows_the_delta():
    plan = freeze_plan(PROOF, "delta", "etcd", 100, "abc")
    assert plan["mode"] == "delta" and plan["proof_revision"] == 120
    assert "all 96 lookups at etcd revision 120" in plan["reason"] and "backup (revision 100)" in plan["reason"]


@pytest.mark.parametrize("proof, mode, source, backup, digest, reason", [
    (PROOF, "full", "etcd", 100, "abc", "cutover_rollout_parity is full"),
    (PROOF, "delta", "bss_api", 100, "abc", "import source is bss_api"),
    ({}, "delta", "etcd", 100, "abc", "recorded no proof"),
    (dict(PROOF, revision="120"), "delta", "etcd", None, "abc", "backup phase recorded no etcd revision"),
    (PROOF, "delta", "etcd", 130, "abc", "proof (etcd revision 120) is older than the backup (revision 130)"),
    (dict(PROOF, equal=95), "delta", "etcd", 100, "abc", "does not show every lookup equal (95 of 96)"),
    (PROOF, "delta", "etcd", 100, "def", "SMD's nodes or their MACs and NIDs changed"),
])
def test_anything_the_proof_does_not_cover_means_every_lookup(proof, mode, source, backup, digest, reason):
    plan = freeze_plan(proof, mode, source, backup, digest)
    assert plan["mode"] == "full" and reason in plan["reason"]


def test_an_unknown_mode_is_refused_naming_it():
    with pytest.raises(AnsibleFilterError, match="cutover_rollout_parity must be delta or full, got 'some'"):
        freeze_plan(PROOF, "some", "etcd", 100, "abc")
