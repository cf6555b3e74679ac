# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""BSS rows in PostgreSQL: read them, plan the change to a conversion (pure), write it in ONE transaction.

The plan matches rows by content, not by id: a node row is identified by (boot_mac, xname, nid),
a boot group by upstream's generated name and description plus its config triple (bss-spec 3.5).
Unchanged input therefore plans nothing and writes nothing.
"""

from __future__ import annotations

import os
import sys

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_convert import group_description, group_name
from ansible_collections.hpc_boot.bss.plugins.module_utils.pg_connection import psycopg

BSS_ROW_TABLES = ("nodes", "boot_group_assignments", "boot_groups", "boot_configs", "endpoint_access")
MODES = ("replace", "merge")


class RowStoreError(RuntimeError):
    """Reading or writing BSS rows failed; nothing was written."""


def check_tables(conn):
    """RowStoreError unless every BSS table of schema version 3 exists."""
    present = {row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
    missing = [table for table in BSS_ROW_TABLES if table not in present]
    if missing:
        raise RowStoreError("the BSS schema is not at version 3: table(s) %s missing; run hpc_boot.bss.schema first" % ", ".join(missing))


def read_rows(conn):
    """Current BSS rows as plain Python data (NULLs read as '' / 0, as BSS would need them).

    An id read twice (a node's, in its row and in its assignment) is one string object, and MACs,
    xnames, endpoint names and endpoints are interned (shared with the SMD nodes and the conversion):
    at 100,000 nodes that halves what the rows take.
    """
    check_tables(conn)
    ids = {}
    configs = {r[0]: (r[1] or "", r[2] or "", r[3] or "") for r in conn.execute(
        "SELECT id, kernel_uri, initrd_uri, cmdline FROM boot_configs")}
    groups = {ids.setdefault(r[0], r[0]): (r[1] or "", r[2] or "", r[3] or "") for r in conn.execute(
        "SELECT id, boot_config_id, name, description FROM boot_groups")}
    nodes = {ids.setdefault(r[0], r[0]): (_interned(r[1]), _interned(r[2]), r[3] or 0) for r in conn.execute(
        "SELECT id, boot_mac, xname, nid FROM nodes")}
    assignments = [(ids.setdefault(r[0], r[0]) if r[0] else "", ids.setdefault(r[1], r[1]) if r[1] else "") for r in conn.execute(
        "SELECT boot_group_id, node_id FROM boot_group_assignments")]
    del ids
    access = [(_interned(r[0]), _interned(r[1]), r[2] or 0) for r in conn.execute(
        "SELECT name, endpoint, last_epoch FROM endpoint_access")]
    return {"configs": configs, "groups": groups, "nodes": nodes, "assignments": assignments, "endpoint_access": access}


def _interned(text):
    return sys.intern(text) if text else ""


_SEVERAL = object()


def _node_triples(current):
    """node id -> the config triple of its one assignment (None: unresolvable), or ``_SEVERAL`` for more than one."""
    triples = {}
    for group_id, node_id in current["assignments"]:
        group = current["groups"].get(group_id)
        config = current["configs"].get(group[0]) if group else None
        triples[node_id] = _SEVERAL if node_id in triples else config
    return triples


def _ids(found):
    """The node ids ``existing`` holds for one key: one id as itself, several as a list (most keys have one)."""
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def new_uuid():
    """A random (version 4) UUID as text, like ``str(uuid.uuid4())`` at a fraction of its cost."""
    text = os.urandom(16).hex()
    return "%s-%s-4%s-%s%s-%s" % (text[:8], text[8:12], text[13:16], "89ab"[int(text[16], 16) & 3], text[17:20], text[20:])


def scope_of(smd_nodes, xnames):
    """Delta-sync scope: every identifier (xname, MACs, NID) of the given nodes."""
    scope = {"xnames": set(), "macs": set(), "nids": set()}
    for node in smd_nodes:
        if node["xname"] in xnames:
            scope["xnames"].add(node["xname"])
            scope["macs"].update(mac.lower() for mac in node.get("macs") or [])
            if node.get("nid"):
                scope["nids"].add(node["nid"])
    return scope


def _in_scope(key, scope):
    mac, xname, nid = key
    return bool((mac and mac in scope["macs"]) or (xname and xname in scope["xnames"]) or (nid and nid in scope["nids"]))


def _conflicts(key, desired_keys):
    """Does an existing node row share an identifier with any desired row (BSS would then find two rows)?"""
    mac, xname, nid = key
    return (mac and mac in desired_keys["macs"]) or (xname and xname in desired_keys["xnames"]) or (nid and nid in desired_keys["nids"])


def plan_rows(current, conversion, mode="replace", scope=None, new_id=None):
    """Pure plan turning ``current`` rows into the ``conversion``'s rows.

    ``mode`` replace: the tables end equal to the conversion (orphaned groups/configs removed);
    merge: rows of nodes absent from the conversion are kept unless they share an identifier with it.
    ``scope`` (delta sync, from ``scope_of``): only rows carrying one of its identifiers are touched.
    """
    if mode not in MODES:
        raise RowStoreError("mode must be one of %s, got '%s'" % (", ".join(MODES), mode))
    new_id = new_id or new_uuid
    wanted = [row for row in conversion["nodes"] if scope is None or _in_scope((row["boot_mac"], row["xname"], row["nid"]), scope)]
    desired = {}
    for row in wanted:
        desired[(row["boot_mac"], row["xname"], row["nid"] or 0)] = tuple(row["config"])
    existing = {}
    for node_id in sorted(current["nodes"]):
        key = current["nodes"][node_id]
        found = existing.get(key)
        existing[key] = node_id if found is None else _ids(found) + [node_id]
    node_triples = _node_triples(current)
    plan = {"insert_configs": [], "insert_groups": [], "insert_nodes": [], "insert_assignments": [],
            "delete_nodes": [], "reassign_nodes": [], "delete_groups": [], "delete_configs": [],
            "insert_endpoint_access": [], "changed_nodes": []}
    group_for = _group_finder(current, plan, new_id)
    for key in sorted(desired):
        triple = desired[key]
        ids = _ids(existing.pop(key, None))
        if ids:
            keep, extra = ids[0], ids[1:]
            plan["delete_nodes"].extend(extra)
            found = node_triples.get(keep, _SEVERAL)
            if found is _SEVERAL or found != triple:
                plan["reassign_nodes"].append(keep)
                plan["insert_assignments"].append((group_for(triple), keep))
                plan["changed_nodes"].append(key)
            elif extra:
                plan["changed_nodes"].append(key)
        else:
            node_id = new_id()
            plan["insert_nodes"].append((node_id, key[0], key[1], key[2]))
            plan["insert_assignments"].append((group_for(triple), node_id))
            plan["changed_nodes"].append(key)
    desired_keys = None   # only rows left over need it (none on a re-run or a first import)
    for key, found in sorted(existing.items()):
        in_scope = scope is not None and _in_scope(key, scope)
        if not ((mode == "replace" and scope is None) or in_scope) and desired_keys is None:
            desired_keys = {"macs": {k[0] for k in desired if k[0]}, "xnames": {k[1] for k in desired if k[1]},
                            "nids": {k[2] for k in desired if k[2]}}
        if (mode == "replace" and scope is None) or in_scope or _conflicts(key, desired_keys):
            plan["delete_nodes"].extend(_ids(found))
            plan["changed_nodes"].append(key)
    if mode == "replace" and scope is None:
        _plan_orphans(current, plan)
    _plan_endpoint_access(current, conversion, plan)
    plan["changed"] = any(plan[name] for name in plan if name != "changed_nodes")
    plan["counts"] = {name: len(value) for name, value in plan.items() if isinstance(value, list) and name != "changed_nodes"}
    return plan


def _group_finder(current, plan, new_id):
    reusable = {}
    for group_id in sorted(current["groups"]):
        config_id, name, description = current["groups"][group_id]
        triple = current["configs"].get(config_id)
        if triple is not None:
            reusable.setdefault((name, description, triple), group_id)
    created = {}

    def group_for(triple):
        if triple in created:
            return created[triple]
        name, description = group_name(*triple), group_description(*triple)
        found = reusable.get((name, description, triple))
        if found:
            created[triple] = found
            return found
        config_id, group_id = new_id(), new_id()
        plan["insert_configs"].append((config_id,) + triple)
        plan["insert_groups"].append((group_id, config_id, name, description))
        created[triple] = group_id
        return group_id

    return group_for


def _plan_orphans(current, plan):
    """replace mode: drop groups/configs (and stray assignments) nothing will use afterwards."""
    gone = set(plan["delete_nodes"]) | set(plan["reassign_nodes"])
    used_groups = {group_id for group_id, _config, _n, _d in plan["insert_groups"]}
    used_groups.update(group_id for group_id, _node in plan["insert_assignments"])
    stray = False
    for group_id, node_id in current["assignments"]:
        if node_id in gone:
            continue
        if node_id not in current["nodes"] or group_id not in current["groups"]:
            stray = True
            continue
        used_groups.add(group_id)
    plan["delete_stray_assignments"] = stray
    plan["delete_groups"] = sorted(g for g in current["groups"] if g not in used_groups)
    used_configs = {current["groups"][g][0] for g in current["groups"] if g in used_groups}
    plan["delete_configs"] = sorted(c for c in current["configs"] if c not in used_configs)


def _plan_endpoint_access(current, conversion, plan):
    """Endpoint history only grows: postgres-mode BSS appends a row per access, so rows it wrote after
    an earlier import are history too. Accesses from etcd not yet present are added, nothing is removed."""
    present = set(current["endpoint_access"])
    plan["insert_endpoint_access"] = [row for row in sorted(tuple(row) for row in conversion["endpoint_access"]) if row not in present]


def sync_rows(conn, conversion, mode="replace", scope=None, check_mode=False, hook=None, source="etcd", revision=0):
    """Read, plan and (unless ``check_mode``) write in ONE transaction, holding table locks throughout.

    Returns ``(current, plan)``. Any failure rolls everything back and raises RowStoreError, so the
    database is either fully converted or exactly as it was. ``hook(stage)`` is called between
    statements (tests use it to cut the connection mid-write).
    """
    hook = hook or (lambda stage: None)
    try:
        with conn.transaction() as txn:
            check_tables(conn)
            if not check_mode:
                conn.execute("LOCK TABLE nodes, boot_group_assignments, boot_groups, boot_configs, endpoint_access"
                             " IN SHARE ROW EXCLUSIVE MODE")
            current = read_rows(conn)
            plan = plan_rows(current, conversion, mode=mode, scope=scope)
            if check_mode or not plan["changed"]:
                txn.force_rollback = True
                return current, plan
            _write(conn, plan, hook)
            bss_schema.record_import(conn, source, revision or 0, len(conversion.get("nodes", [])))
        return current, plan
    except RowStoreError:
        raise
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        context = getattr(getattr(exc, "diag", None), "context", None)
        if context:
            cause += " (%s)" % context.strip().splitlines()[0]
        raise RowStoreError("Failed to write BSS rows (transaction rolled back, nothing written): %s" % cause) from exc


def _write(conn, plan, hook):
    steps = [
        ("DELETE FROM boot_group_assignments WHERE node_id = ANY(%s)", plan["delete_nodes"] + plan["reassign_nodes"]),
        ("DELETE FROM nodes WHERE id = ANY(%s)", plan["delete_nodes"]),
        ("DELETE FROM boot_groups WHERE id = ANY(%s)", plan["delete_groups"]),
        ("DELETE FROM boot_configs WHERE id = ANY(%s)", plan["delete_configs"]),
    ]
    for statement, ids in steps:
        if ids:
            conn.execute(statement, (list(ids),))
            hook(statement.split(" WHERE", maxsplit=1)[0])
    if plan.get("delete_stray_assignments"):
        conn.execute("DELETE FROM boot_group_assignments a WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = a.node_id)"
                     " OR NOT EXISTS (SELECT 1 FROM boot_groups g WHERE g.id = a.boot_group_id)")
    for table, columns, rows in (
            ("boot_configs", ("id", "kernel_uri", "initrd_uri", "cmdline"), plan["insert_configs"]),
            ("boot_groups", ("id", "boot_config_id", "name", "description"), plan["insert_groups"]),
            ("nodes", ("id", "boot_mac", "xname", "nid"), plan["insert_nodes"]),
            ("boot_group_assignments", ("boot_group_id", "node_id"), plan["insert_assignments"]),
            ("endpoint_access", ("name", "endpoint", "last_epoch"), plan["insert_endpoint_access"])):
        if rows:
            _copy(conn, table, columns, rows)
            hook("COPY " + table)


def _copy(conn, table, columns, rows):
    with conn.cursor() as cur:
        statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
            psycopg.sql.Identifier(table), psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns))
        with cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


def summarize(current, plan):
    """A short, stable description of the change for ``diff`` (counts and up to 50 node keys)."""
    before = {"nodes": len(current["nodes"]), "boot_configs": len(current["configs"]),
              "endpoint_access": len(current["endpoint_access"])}
    after = dict(before)
    after["nodes"] += len(plan["insert_nodes"]) - len(plan["delete_nodes"])
    after["boot_configs"] += len(plan["insert_configs"]) - len(plan["delete_configs"])
    after["endpoint_access"] += len(plan["insert_endpoint_access"])
    changed = ["%s/%s/%s" % key for key in plan["changed_nodes"][:50]]
    return {"before": before, "after": dict(after, changed_nodes=changed)}
