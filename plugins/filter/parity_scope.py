# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: parity_scope
short_description: Pick the boot-script lookups a rollout re-checks in its write freeze
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Lists every lookup a node can boot by (each MAC, the xname, the NID when above 0) and splits them into the lookups of
    the changed nodes (all of them) and a seeded random sample of the other nodes' lookups, as a guard.
  - The sample holds O(share) of the other lookups, rounded up, and at least O(minimum) of them (or all when there are fewer).
    The same O(seed) and the same nodes always give the same sample.
  - The C(digest) it returns fingerprints the lookups of all nodes (sha256), so a later run can tell whether SMD's nodes changed.
options:
  _input:
    description: Nodes as the P(hpc_boot.bss.smd_nodes#filter) filter returns them (C(xname), C(nid), C(macs)).
    type: list
    elements: dict
    required: true
  changed:
    description: Xnames of the nodes whose lookups are all re-checked.
    type: list
    elements: str
    default: []
  share:
    description: Share of the other lookups to sample, above 0 and at most 1.
    type: float
    default: 0.01
  minimum:
    description: Sample at least this many lookups (0 or more).
    type: int
    default: 20
  seed:
    description: Seed of the sample.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: The changed nodes' lookups and 1 % of the rest, at least 20
  ansible.builtin.set_fact:
    scope: "{{ nodes | hpc_boot.bss.parity_scope(delta.affected_xnames, share=0.01, minimum=20, seed=4242) }}"

- name: Compare exactly those lookups
  hpc_boot.bss.bootscript_info:
    url: http://old-bss:27778
    compare_url: http://new-bss:27778
    macs: "{{ scope.macs }}"
    hosts: "{{ scope.hosts }}"
    nids: "{{ scope.nids }}"
"""

RETURN = r"""
_value:
  description:
    - C(macs), C(hosts), C(nids) - every lookup chosen (changed and sampled), ready for M(hpc_boot.bss.bootscript_info).
    - C(changed_labels), C(sample_labels) - the chosen lookups as M(hpc_boot.bss.bootscript_info) names them in its parity rows
      (lower-case MAC, xname, C(nid<N>)).
    - C(counts) - C(nodes), C(lookups) (of all nodes), C(changed_nodes), C(changed_lookups), C(other_lookups), C(sample_lookups).
    - C(digest) - sha256 of every node's lookups.
  type: dict
"""

import hashlib
import math
import random

from ansible.errors import AnsibleFilterError


def node_lookups(node):
    """``(kind, value, label)`` of each lookup of one node, in the order MAC(s), xname, NID."""
    lookups = []
    for mac in node.get("macs") or []:
        if mac:
            lookups.append(("mac", str(mac).lower(), str(mac).lower()))
    if node.get("xname"):
        lookups.append(("host", node["xname"], node["xname"]))
    nid = node.get("nid")
    if isinstance(nid, int) and not isinstance(nid, bool) and nid > 0:
        lookups.append(("nid", nid, "nid%d" % nid))
    return lookups


def _check(share, minimum, seed):
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise AnsibleFilterError("parity_scope: share must be a number above 0 and at most 1, got %r" % (share,))
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise AnsibleFilterError("parity_scope: minimum must be a whole number of 0 or more, got %r" % (minimum,))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise AnsibleFilterError("parity_scope: seed must be a whole number, got %r" % (seed,))


def parity_scope(nodes, changed=None, share=0.01, minimum=20, seed=0):
    if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
        raise AnsibleFilterError("parity_scope: the input must be a list of nodes (dicts with xname, nid, macs)")
    _check(share, minimum, seed)
    changed = set(changed or [])
    known = {node.get("xname") for node in nodes}
    digest = hashlib.sha256()
    picked, other = [], []
    total = 0
    for node in sorted(nodes, key=lambda item: str(item.get("xname"))):
        lookups = node_lookups(node)
        total += len(lookups)
        for kind, value, label in lookups:
            digest.update(("%s=%s@%s\n" % (kind, value, node.get("xname"))).encode("utf-8"))
        (picked if node.get("xname") in changed else other).extend(lookups)
    size = min(len(other), max(minimum, int(math.ceil(share * len(other)))))
    sample = random.Random(seed).sample(other, size) if size else []
    sample.sort(key=lambda item: (item[0], str(item[1])))
    chosen = picked + sample
    return {
        "macs": [value for kind, value, _label in chosen if kind == "mac"],
        "hosts": [value for kind, value, _label in chosen if kind == "host"],
        "nids": [value for kind, value, _label in chosen if kind == "nid"],
        "changed_labels": [label for _kind, _value, label in picked],
        "sample_labels": [label for _kind, _value, label in sample],
        "counts": {"nodes": len(nodes), "lookups": total, "changed_nodes": len(changed & known), "changed_lookups": len(picked),
                   "other_lookups": len(other), "sample_lookups": len(sample)},
        "digest": digest.hexdigest(),
    }


class FilterModule:
    def filters(self):
        return {"parity_scope": parity_scope}
