# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan (pure) and apply the change from boot-service's current resources to an import's conversion.

Resources are matched by ``metadata.name`` (boot-service does not keep names unique, so a second
resource of the same name is a duplicate to delete) and compared by their normalised spec, so an
unchanged input plans nothing and writes nothing. Names of this import start with ``bss-``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_convert import PREFIX

KINDS = ("bootconfigurations", "nodes")
MODES = ("replace", "merge")
CONFIG_KEYS = ("hosts", "macs", "nids", "groups", "profile", "kernel", "initrd", "params", "priority")
NODE_KEYS = ("xname", "nid", "bootMac", "role", "subRole", "hostname", "interfaces", "groups")
SELECTORS = ("hosts", "macs", "nids", "groups")


def normalise(kind, spec):
    """A spec without empty values (boot-service leaves them out), lists sorted where order has no meaning."""
    keys = CONFIG_KEYS if kind == "bootconfigurations" else NODE_KEYS
    out = {}
    for key in keys:
        value = (spec or {}).get(key)
        if value in (None, "", 0, [], {}):
            continue
        if key in SELECTORS:
            value = sorted(set(value))
        out[key] = value
    return out


def _fallback(name):
    return name == PREFIX + "default" or name.startswith(PREFIX + "role-")


def _delta_config(name, current, desired, scope):
    """Delta sync of one configuration: selectors of identities in scope follow the conversion, others stay."""
    if _fallback(name):
        return desired
    absent = current is None
    current = current or {}
    desired = desired or {}
    if not (_touches(current, scope) or _touches(desired, scope)):
        return None if absent else current
    merged = dict(desired or current)
    for key, members in (("hosts", scope["xnames"]), ("macs", scope["macs"]), ("nids", scope["nids"])):
        kept = [item for item in current.get(key, []) if item not in members]
        added = [item for item in desired.get(key, []) if item in members]
        merged[key] = sorted(set(kept + added))
    if not desired:
        for key in ("kernel", "initrd", "params", "priority", "groups"):
            if key in current:
                merged[key] = current[key]
    merged = normalise("bootconfigurations", merged)
    if not any(merged.get(key) for key in SELECTORS):
        return None
    return merged


def _touches(spec, scope):
    return bool(set(spec.get("hosts", [])) & scope["xnames"] or set(spec.get("macs", [])) & scope["macs"]
                or set(spec.get("nids", [])) & scope["nids"])


def _desired_state(current_by_name, desired, kind, scope):
    """name -> wanted normalised spec (None: delete) for delta sync; the whole conversion otherwise."""
    wanted = {name: normalise(kind, spec) for name, spec in desired.items()}
    if scope is None:
        return wanted
    result = {}
    names = set(wanted) | {name for name in current_by_name if name.startswith(PREFIX)}
    for name in names:
        current = current_by_name.get(name)
        current_spec = normalise(kind, current[0]["spec"]) if current else None
        if kind == "nodes":
            xname = (wanted.get(name) or current_spec or {}).get("xname")
            result[name] = wanted.get(name) if xname in scope["xnames"] else current_spec
        else:
            result[name] = _delta_config(name, current_spec, wanted.get(name), scope)
    return result


def plan_changes(current, desired, mode="replace", scope=None):
    """Pure plan: ``{"operations": [...], "counts": {...}, "changed": bool, "changed_names": [...]}``.

    ``current`` maps kind -> list of resources as boot-service lists them; ``desired`` maps kind -> name -> spec.
    ``mode`` replace: every resource not in the conversion is deleted; merge: only this import's (``bss-``)
    resources no longer wanted are deleted, and other Node records claiming an xname, boot MAC or NID of
    an imported Node record (boot-service would resolve that identity to either). ``scope`` (delta sync):
    only Node records of these xnames and configuration selectors naming their identities change.
    """
    operations = []
    for kind in KINDS:
        by_name = {}
        for resource in sorted(current.get(kind) or [], key=lambda r: (r.get("metadata") or {}).get("uid") or ""):
            by_name.setdefault((resource.get("metadata") or {}).get("name") or "", []).append(resource)
        wanted = _desired_state(by_name, desired.get(kind) or {}, kind, scope)
        claimed = _claims(wanted) if kind == "nodes" else None
        for name in sorted(set(wanted) | set(by_name)):
            present = by_name.get(name, [])
            spec = wanted.get(name)
            if name not in wanted:
                if scope is None and (mode == "replace" or name.startswith(PREFIX) or _conflicts(present, claimed)):
                    operations.extend(("delete", kind, r["metadata"]["uid"], name, None) for r in present)
                continue
            if spec is None:
                operations.extend(("delete", kind, r["metadata"]["uid"], name, None) for r in present)
                continue
            same = [r for r in present if normalise(kind, r.get("spec")) == spec]
            if same:
                keep = same[0]
            elif present:
                keep = present[0]
                operations.append(("replace", kind, keep["metadata"]["uid"], name, spec))
            else:
                keep = None
                operations.append(("create", kind, None, name, spec))
            operations.extend(("delete", kind, r["metadata"]["uid"], name, None) for r in present if r is not keep)
    order = {("create", "bootconfigurations"): 0, ("replace", "bootconfigurations"): 1, ("create", "nodes"): 2,
             ("replace", "nodes"): 3, ("delete", "nodes"): 4, ("delete", "bootconfigurations"): 5}
    operations.sort(key=lambda op: (order[(op[0], op[1])], op[3]))
    counts = {}
    for op in operations:
        key = "%s_%s" % (op[0], op[1])
        counts[key] = counts.get(key, 0) + 1
    return {"operations": operations, "counts": counts, "changed": bool(operations),
            "changed_names": sorted({"%s/%s" % (op[1], op[3]) for op in operations})}


def _claims(wanted):
    claims = {"xname": set(), "bootMac": set(), "nid": set()}
    for spec in wanted.values():
        for key in claims:
            if spec and spec.get(key):
                claims[key].add(str(spec[key]).lower())
    return claims


def _conflicts(resources, claimed):
    if claimed is None:
        return False
    for resource in resources:
        spec = resource.get("spec") or {}
        for key in claimed:
            if spec.get(key) and str(spec[key]).lower() in claimed[key]:
                return True
    return False


def apply_plan(client, plan, workers=4):
    """Send the planned writes: configurations before Node records, deletions last; ``workers`` in parallel per step."""
    steps = []
    for op in plan["operations"]:
        if not steps or steps[-1][0] != (op[0], op[1]):
            steps.append(((op[0], op[1]), []))
        steps[-1][1].append(op)

    def send(op):
        action, kind, uid, name, spec = op
        if action == "create":
            client.create(kind, name, spec)
        elif action == "replace":
            client.replace(kind, uid, name, spec)
        else:
            client.delete(kind, uid, missing_ok=True)

    for _step, ops in steps:
        if workers > 1 and len(ops) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _done in pool.map(send, ops):
                    pass
        else:
            for op in ops:
                send(op)


def summarize(current, plan):
    """A short diff: resource counts before and after, and up to 50 changed resource names."""
    before = {kind: len(current.get(kind) or []) for kind in KINDS}
    after = dict(before)
    for op in plan["operations"]:
        if op[0] == "create":
            after[op[1]] += 1
        elif op[0] == "delete":
            after[op[1]] -= 1
    return {"before": before, "after": dict(after, changed=plan["changed_names"][:50])}
