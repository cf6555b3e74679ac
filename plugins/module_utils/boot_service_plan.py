# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure plan of the boot_configuration module: declared boot-service resources against what it holds.

Identity: boot-service gives every resource a ``metadata.uid`` of its own and does not keep
``metadata.name`` unique (two POSTs with one name make two resources). So a BootConfiguration is
found by its ``metadata.name`` and a Node by its ``spec.xname`` (what boot-service resolves a node
by); when boot-service holds two resources for one declared name or xname, the plan refuses to
guess and fails naming their uids. One write per changed resource: POST to create, PUT (which
replaces the whole spec) to change, DELETE to remove.
"""

from __future__ import annotations

import collections

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_model import (
    node_wanted,
    normalise_current_configuration,
    normalise_current_node,
)

CONFIGS = "bootconfigurations"
NODES = "nodes"
Action = collections.namedtuple("Action", ["kind", "verb", "key", "name", "uid", "spec", "before"])
VERB_METHOD = {"create": "POST", "replace": "PUT", "delete": "DELETE"}


class PlanError(ValueError):
    """The plan cannot be made safely (ambiguous resources, a delete beyond the guard)."""


def _uid(resource):
    return ((resource or {}).get("metadata") or {}).get("uid") or ""


def _name(resource):
    return ((resource or {}).get("metadata") or {}).get("name") or ""


def index_current(kind, resources):
    """``{key: [resource, ...]}``: BootConfigurations by metadata.name, Nodes by spec.xname."""
    index = collections.OrderedDict()
    for resource in resources or []:
        if not isinstance(resource, dict):
            raise PlanError("boot-service listed %r among its %s, expected a resource object" % (resource, kind))
        key = _name(resource) if kind == CONFIGS else ((resource.get("spec") or {}).get("xname") or "")
        index.setdefault(key, []).append(resource)
    return index


def _current_state(kind, resource):
    """``(name, normalised spec)`` of a stored resource, in the form the declarations take."""
    spec = resource.get("spec") or {}
    if kind == CONFIGS:
        return _name(resource), normalise_current_configuration(spec)
    return _name(resource), normalise_current_node(spec)


def _single(kind, key, matches):
    if len(matches) > 1:
        raise PlanError("boot-service holds %d %s for %s '%s' (uids %s): remove the extra ones, the module does not guess "
                        "which one is meant" % (len(matches), kind, "name" if kind == CONFIGS else "xname", key,
                                                ", ".join(sorted(_uid(m) for m in matches))))
    return matches[0] if matches else None


class Plan(object):
    def __init__(self):
        self.actions = []
        self.warnings = []

    @property
    def changed(self):
        return bool(self.actions)

    def requests(self):
        """The writes, in order, as ``{"method", "path", "body"}`` (bodies as the client sends them)."""
        result = []
        for action in self.actions:
            path = "/%s" % action.kind if action.verb == "create" else "/%s/%s" % (action.kind, action.uid)
            request = {"method": VERB_METHOD[action.verb], "path": path}
            if action.verb != "delete":
                request["body"] = {"metadata": {"name": action.name}, "spec": action.spec}
            result.append(request)
        return result

    def diff(self):
        """Before and after of every changed resource, with only the keys that change."""
        before = {CONFIGS: {}, NODES: {}}
        after = {CONFIGS: {}, NODES: {}}
        for action in self.actions:
            old = action.before
            if action.verb == "create":
                after[action.kind][action.key] = dict(action.spec, name=action.name)
            elif action.verb == "delete":
                key = action.key if action.key not in before[action.kind] else "%s (%s)" % (action.key, action.uid)
                before[action.kind][key] = dict(old[1], name=old[0], uid=action.uid)
            else:
                old_full = dict(old[1], name=old[0])
                new_full = dict(action.spec, name=action.name)
                keys = sorted(k for k in set(old_full) | set(new_full) if old_full.get(k) != new_full.get(k))
                before[action.kind][action.key] = dict((k, old_full.get(k)) for k in keys)
                after[action.kind][action.key] = dict((k, new_full.get(k)) for k in keys)
        for side in (before, after):
            for kind in (CONFIGS, NODES):
                if not side[kind]:
                    del side[kind]
        return {"before": before, "after": after}

    def counts(self):
        result = dict((kind, {"created": 0, "replaced": 0, "deleted": 0}) for kind in (CONFIGS, NODES))
        for action in self.actions:
            result[action.kind][action.verb + "d"] += 1
        return result


def _wanted(kind, declared, state):
    """``(name, spec)`` a resource must have: a configuration as declared, a Node with its undeclared fields kept."""
    if kind == NODES:
        return node_wanted(declared, state)
    return declared


def _plan_present(plan, kind, desired, current):
    for key, declared in desired.items():
        existing = _single(kind, key, current.get(key, []))
        if existing is None:
            name, spec = _wanted(kind, declared, None)
            plan.actions.append(Action(kind, "create", key, name, "", spec, None))
            continue
        state = _current_state(kind, existing)
        name, spec = _wanted(kind, declared, state)
        if state != (name, spec):
            plan.actions.append(Action(kind, "replace", key, name, _uid(existing), spec, state))


def _plan_delete(plan, kind, keys, current):
    for key in keys:
        for existing in current.get(key, []):
            plan.actions.append(Action(kind, "delete", key, _name(existing), _uid(existing), None, _current_state(kind, existing)))


def _guard(kind, doomed, total, max_delete_share, allow_large_delete):
    if doomed and not allow_large_delete and doomed > max_delete_share * total:
        raise PlanError("exclusive would delete %d of the %d %s boot-service holds, more than max_delete_share=%s; "
                        "set allow_large_delete=true if that is meant" % (doomed, total, kind, max_delete_share))


def make_plan(desired_configs, desired_nodes, current_configs, current_nodes, state="present", exclusive=False,
              max_delete_share=0.25, allow_large_delete=False):
    """The writes that make boot-service hold the declared resources.

    ``desired_configs`` maps a configuration name to ``(name, spec)``; ``desired_nodes`` maps an xname
    to a :class:`NodeDeclaration` (declared fields replace, the others are kept); ``current_*`` are the
    lists boot-service returned. With ``state=absent`` the declared resources are deleted. ``exclusive``
    also deletes every undeclared BootConfiguration, and every undeclared Node when at least one Node is
    declared, each kind guarded by ``max_delete_share``.
    Order: configurations before nodes when writing, nodes before configurations when deleting.
    """
    configs = index_current(CONFIGS, current_configs)
    nodes = index_current(NODES, current_nodes)
    plan = Plan()
    if state == "present":
        _plan_present(plan, CONFIGS, desired_configs, configs)
        _plan_present(plan, NODES, desired_nodes, nodes)
    else:
        for kind, desired, current in ((CONFIGS, desired_configs, configs), (NODES, desired_nodes, nodes)):
            for key in desired:
                _single(kind, key, current.get(key, []))
        _plan_delete(plan, NODES, [k for k in desired_nodes if k in nodes], nodes)
        _plan_delete(plan, CONFIGS, [k for k in desired_configs if k in configs], configs)
    if exclusive:
        undeclared_nodes = [k for k in nodes if k not in desired_nodes] if desired_nodes else []
        undeclared_configs = [k for k in configs if k not in desired_configs]
        _guard(NODES, sum(len(nodes[k]) for k in undeclared_nodes), sum(len(v) for v in nodes.values()),
               max_delete_share, allow_large_delete)
        _guard(CONFIGS, sum(len(configs[k]) for k in undeclared_configs), sum(len(v) for v in configs.values()),
               max_delete_share, allow_large_delete)
        _plan_delete(plan, NODES, undeclared_nodes, nodes)
        _plan_delete(plan, CONFIGS, undeclared_configs, configs)
    return plan
