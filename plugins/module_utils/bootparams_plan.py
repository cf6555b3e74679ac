# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure plan: from declared and current boot parameters, the fewest BSS writes that reconcile them.

Rules by backend (see the BSS behaviour spec, sections 2.5 and 3.6):

* etcd: a PUT replaces whole ``/params/<name>`` records, so one PUT with ``hosts`` = every record
  that should hold the same configuration; records that carry cloud-init data are changed with PATCH
  (which keeps cloud-init) unless the caller allows replacing them. DELETE takes all names at once.
* postgres: a PUT with selectors upserts, but keeps fields the request leaves empty, so a node whose
  initrd or params must become empty is deleted first. A PUT updates the nodes that exist by all of
  its ``hosts``, ``macs`` and ``nids`` together, but adds new ones from the first non-empty list only
  (``hosts``, then ``macs``, then ``nids``; bss-spec 1.3 and 3.6.2). So one PUT per configuration
  carries every node that BSS already holds plus the new nodes of one selector kind; new nodes of the
  other kinds get a PUT per kind. DELETE uses only the first non-empty list: one per kind. A PUT or
  PATCH without selectors would rewrite every node: :func:`check_selectors` refuses it.
"""

from __future__ import annotations

import collections

from ansible_collections.hpc_boot.bss.plugins.module_utils.bootparams_model import (
    config_dict,
    label_kind,
    label_value,
)

BackendRequest = collections.namedtuple("BackendRequest", ["method", "body"])
SELECTOR_KINDS = ("hosts", "macs", "nids")


class PlanError(ValueError):
    """The declared change cannot be made safely; nothing has been sent."""


class Plan(object):
    """Requests to send (in order), per-node before/after, and warnings for the user."""

    def __init__(self):
        self.requests = []
        self.before = {}
        self.after = {}
        self.warnings = []

    @property
    def changed(self):
        return bool(self.requests)

    def record(self, label, before, after):
        self.before[label] = _describe(before)
        self.after[label] = _describe(after)

    def diff(self):
        return {"before": dict(sorted(self.before.items())), "after": dict(sorted(self.after.items()))}

    def request_list(self):
        return [{"method": r.method, "body": r.body} for r in self.requests]


def _describe(configs):
    if not configs:
        return None
    if len(configs) == 1:
        return config_dict(configs[0])
    return [config_dict(c) for c in configs]


def _selector_values(kind, labels):
    """Record names as-is under ``hosts`` (etcd, tags); MACs as strings and NIDs as integers otherwise."""
    return sorted(labels) if kind == "hosts" else sorted(label_value(label) for label in labels)


def _write_body(kind, labels, config):
    return _selectors_body({kind: labels}, config)


def _selectors_body(groups, config):
    """A write of ``config`` to the labels of ``groups`` (kind -> labels), selectors in BootParams order."""
    body = dict((kind, _selector_values(kind, groups[kind])) for kind in SELECTOR_KINDS if groups.get(kind))
    body["kernel"] = config.kernel
    if config.initrd:
        body["initrd"] = config.initrd
    if config.params:
        body["params"] = config.params
    return body


def _by_kind(labels, backend):
    """etcd takes every record name under ``hosts``; postgres needs one list per selector kind."""
    groups = collections.OrderedDict()
    for label in sorted(labels):
        kind = "hosts" if backend == "etcd" else label_kind(label)
        groups.setdefault(kind, []).append(label)
    return [(kind, groups[kind]) for kind in SELECTOR_KINDS if kind in groups]


def _needs_clear(current_configs, config):
    """True when postgres PUT/PATCH (which keep empty fields) cannot reach ``config`` from the current row."""
    return any((c.initrd and not config.initrd) or (c.params and not config.params) for c in current_configs)


def _deletes(plan, labels, backend):
    for kind, group in _by_kind(labels, backend):
        plan.requests.append(BackendRequest("DELETE", {kind: _selector_values(kind, group)}))


def check_selectors(requests, backend):
    """Refuse any write that names no node (postgres would apply a PUT/PATCH to every node)."""
    for request in requests:
        if not any(request.body.get(kind) for kind in SELECTOR_KINDS):
            raise PlanError("refusing %s %s without hosts, macs or nids: in %s mode it would change %s"
                            % (request.method, request.body, backend,
                               "every node" if backend == "postgres" else "image records shared by many nodes"))


def plan_present(desired, current, backend, cloud_init=(), keep_cloud_init=True):
    """Requests that make every label in ``desired`` boot with its config; other nodes are untouched."""
    plan = Plan()
    changed = [label for label in sorted(desired) if current.get(label) != [desired[label]]]
    puts = collections.OrderedDict()
    patches = collections.OrderedDict()
    clears = []
    for label in changed:
        config = desired[label]
        existing = current.get(label) or []
        plan.record(label, existing, [config])
        if backend == "etcd" and existing and label in cloud_init:
            if keep_cloud_init:
                if _needs_clear(existing, config):
                    raise PlanError("node %s carries cloud-init data and must lose its initrd or params: a PATCH cannot clear "
                                    "them and a PUT would erase the cloud-init data; set keep_cloud_init=false to replace "
                                    "the whole record" % label)
                patches.setdefault(config, []).append(label)
                continue
            plan.warnings.append("record %s is replaced whole: its cloud-init data is discarded (keep_cloud_init=false)" % label)
        elif backend == "postgres" and existing and _needs_clear(existing, config):
            clears.append(label)
        puts.setdefault(config, []).append(label)
    if clears:
        _deletes(plan, clears, backend)
    for method, groups in (("PUT", puts), ("PATCH", patches)):
        for config in sorted(groups):
            if method == "PUT" and backend == "postgres":
                held = set(label for label in current if current[label]) - set(clears)
                plan.requests.extend(BackendRequest("PUT", _selectors_body(body, config)) for body in _postgres_puts(groups[config], held))
                continue
            for kind, labels in _by_kind(groups[config], backend):
                plan.requests.append(BackendRequest(method, _write_body(kind, labels, config)))
    check_selectors(plan.requests, backend)
    return plan


def _postgres_puts(labels, held):
    """The selectors of the fewest postgres PUTs writing one configuration to ``labels``: kind -> labels, per PUT.

    BSS updates the nodes it holds (``held``) by every selector kind of a PUT, and adds the new ones of its
    first non-empty kind only; the new nodes of the other kinds need a PUT of their own each.
    """
    first = collections.OrderedDict()
    others = []
    new_kinds = [kind for kind, _labels in _by_kind([label for label in labels if label not in held], "postgres")]
    for kind, group in _by_kind(labels, "postgres"):
        kept = [label for label in group if label in held]
        added = [label for label in group if label not in held]
        if kept:
            first.setdefault(kind, []).extend(kept)
        if added and kind == new_kinds[0]:
            first.setdefault(kind, []).extend(added)
        elif added:
            others.append({kind: added})
    return ([first] if first else []) + others


def plan_absent(labels, current, backend):
    """Requests that delete the boot parameters of every label in ``labels`` that BSS holds."""
    plan = Plan()
    present = sorted(label for label in set(labels) if current.get(label))
    for label in present:
        plan.record(label, current[label], None)
    _deletes(plan, present, backend)
    return plan


def plan_exclusive(plan, declared, current, backend, max_delete_share=0.25, allow_large_delete=False):
    """Add deletions of every node that BSS holds but nobody declared, behind a share guard."""
    undeclared = sorted(set(current) - set(declared))
    if not undeclared:
        return plan
    share = float(len(undeclared)) / len(current)
    if share > max_delete_share and not allow_large_delete:
        raise PlanError("exclusive would delete %d of %d boot parameter entries (%.0f%% > max_delete_share %.0f%%), e.g. %s; "
                        "set allow_large_delete=true if that is intended" % (len(undeclared), len(current), share * 100,
                                                                             max_delete_share * 100, ", ".join(undeclared[:5])))
    for label in undeclared:
        plan.record(label, current[label], None)
    deletes = Plan()
    _deletes(deletes, undeclared, backend)
    plan.requests = deletes.requests + plan.requests
    plan.warnings.append("exclusive: deleting %d undeclared entries" % len(undeclared))
    return plan
