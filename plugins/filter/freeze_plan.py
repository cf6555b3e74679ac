# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: freeze_plan
short_description: Decide whether a rollout's write freeze re-checks the delta or every lookup
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - The cutover's rollout freezes writes, imports what changed in etcd since the backup and re-checks parity. A re-check of
    only the changed nodes (and a sample) is sound when the parity phase proved every lookup, at an etcd revision not older
    than the backup's, for the same SMD nodes. Otherwise every lookup is re-checked.
  - Returns the mode and the reason, for the report.
options:
  _input:
    description: The parity phase's proof (C(revision), C(lookups), C(equal), C(digest)); empty when none was recorded.
    type: dict
    required: true
  mode:
    description: What the operator asked for (C(cutover_rollout_parity)).
    type: str
    choices: [delta, full]
    required: true
  source:
    description: The import source (C(cutover_import_source)); only C(etcd) has revisions to sync a delta from.
    type: str
    required: true
  backup_revision:
    description: The etcd revision of the backup, which the delta sync starts from.
    type: int
  digest:
    description: The digest of the SMD nodes' lookups now (P(hpc_boot.bss.parity_scope#filter)'s C(digest)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Decide
  ansible.builtin.set_fact:
    plan: "{{ proof | hpc_boot.bss.freeze_plan('delta', 'etcd', 1200, (nodes | hpc_boot.bss.parity_scope).digest) }}"
"""

RETURN = r"""
_value:
  description: C(mode) (C(delta) or C(full)), C(reason), and C(proof_revision) (the proof's etcd revision or null).
  type: dict
"""

from ansible.errors import AnsibleFilterError


def _int_or_none(value):
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def freeze_plan(proof, mode, source, backup_revision=None, digest=""):
    if mode not in ("delta", "full"):
        raise AnsibleFilterError("freeze_plan: cutover_rollout_parity must be delta or full, got %r" % (mode,))
    proof = proof if isinstance(proof, dict) else {}
    revision = _int_or_none(proof.get("revision"))
    backup = _int_or_none(backup_revision)

    def full(reason):
        return {"mode": "full", "reason": reason, "proof_revision": revision}

    if mode == "full":
        return full("cutover_rollout_parity is full")
    if source != "etcd":
        return full("the import source is %s: there is no etcd revision to sync a delta from" % source)
    if revision is None:
        return full("the parity phase recorded no proof with an etcd revision")
    if backup is None:
        return full("the backup phase recorded no etcd revision")
    if revision < backup:
        return full("the parity proof (etcd revision %d) is older than the backup (revision %d)" % (revision, backup))
    lookups, equal = _int_or_none(proof.get("lookups")), _int_or_none(proof.get("equal"))
    if not lookups or lookups != equal:
        return full("the parity proof does not show every lookup equal (%s of %s)" % (equal, lookups))
    if not digest or proof.get("digest") != digest:
        return full("SMD's nodes or their MACs and NIDs changed since the parity proof")
    return {"mode": "delta", "proof_revision": revision,
            "reason": "parity proved all %d lookups at etcd revision %d: re-checking the nodes that depend on keys changed since "
                      "the backup (revision %d) and a sample of the others" % (lookups, revision, backup)}


class FilterModule:
    def filters(self):
        return {"freeze_plan": freeze_plan}
