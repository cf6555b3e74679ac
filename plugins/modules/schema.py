#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: schema
short_description: Bring a PostgreSQL database to the BSS schema, with golang-migrate bookkeeping
version_added: 0.1.0
description:
  - Creates or migrates the tables of OpenCHAMI BSS's PostgreSQL backend (versions 1 to 3) with this
    collection's own SQL, giving the same tables, columns, types and column order as upstream, and records
    the version in C(schema_migrations(version, dirty)) exactly as golang-migrate does, so upstream's
    C(bss-init) and BSS recognise the database.
  - Detects an interrupted migration (dirty flag), tables missing for the recorded version, BSS tables without
    bookkeeping, and the state upstream's C(bss-init) leaves after its second run (version 2, C(endpoint_access)
    dropped); it repairs them only with O(repair=true).
  - Dropping every BSS table needs O(state=absent) and O(confirm_drop=true).
author:
  - hpc_boot.bss contributors (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.postgres
attributes:
  check_mode:
    support: full
    description: Lists the pending steps; runs no DDL at all.
  diff_mode:
    support: full
    description: Version, dirty flag and tables before and after.
options:
  state:
    description:
      - V(latest) migrates to the newest version this collection knows (3).
      - V(present) migrates up or down to O(version).
      - V(absent) drops every BSS table and C(schema_migrations); needs O(confirm_drop=true).
    type: str
    choices: [latest, present, absent]
    default: latest
  version:
    description: Target version for O(state=present).
    type: int
    choices: [0, 1, 2, 3]
  repair:
    description: Repair a dirty flag, missing tables, unrecorded tables or a bss-init downgrade instead of failing.
    type: bool
    default: false
  confirm_drop:
    description: Must be V(true) for O(state=absent); a guard against dropping boot data by accident.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: BSS schema at the latest version
  hpc_boot.bss.schema:
    db_host: pg.cluster.local
    db_password: "{{ bss_db_password }}"

- name: See what would run
  hpc_boot.bss.schema:
    db_password: "{{ bss_db_password }}"
  check_mode: true
  register: pending

- name: Undo upstream bss-init's second-run downgrade (version 2, endpoint_access dropped)
  hpc_boot.bss.schema:
    db_password: "{{ bss_db_password }}"
    repair: true

- name: Drop everything (lab teardown)
  hpc_boot.bss.schema:
    db_password: "{{ bss_db_password }}"
    state: absent
    confirm_drop: true
'''

RETURN = r'''
version:
  description: Recorded version after the run (null when none), or the version it would reach in check mode.
  returned: always
  type: int
version_before:
  description: Recorded version before the run.
  returned: always
  type: int
condition:
  description: What was found (empty, clean, dirty, bss_init_downgrade, tables_missing, unrecorded_tables).
  returned: always
  type: str
data_owner:
  description:
    - Who wrote the boot rows found before the run. V(none) when there are none, V(hpc_boot.bss) when
      M(hpc_boot.bss.import_bootparams) logged an import into this database (in the C(hpc_boot) schema, outside BSS's own),
      V(foreign) when rows exist that no import of this collection wrote.
  returned: always
  type: str
  sample: none
steps:
  description: Steps applied (or pending in check mode) as C(<action> <version> <name>).
  returned: always
  type: list
  elements: str
  sample: ["up 1 create_db_init", "up 2 create_version1", "up 3 create_version2"]
tables:
  description: BSS tables present after the run (before, in check mode).
  returned: always
  type: list
  elements: str
dropped:
  description: Tables dropped with O(state=absent).
  returned: when state is absent
  type: list
  elements: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema, pg_connection


def ensure_schema(conn, params, check_mode):
    """``(changed, result, diff)`` for the requested state."""
    before = bss_schema.inspect_schema(conn)
    result = {"version_before": before["version"], "condition": before["condition"], "tables": before["tables"],
              "data_owner": before["data_owner"]}
    if params["state"] == "absent":
        if not params["confirm_drop"]:
            raise bss_schema.SchemaError("state=absent drops every BSS table and its boot data; set confirm_drop=true to do it")
        present = before["tables"] + (["schema_migrations"] if before["bookkeeping"] else [])
        dropped = present if check_mode else bss_schema.drop_schema(conn)
        after = {"version": None, "dirty": False, "tables": []}
        result.update(dropped=dropped, steps=["drop " + table for table in dropped], version=None)
        return bool(dropped), result, _diff(before, after)
    target = bss_schema.LATEST_VERSION if params["state"] == "latest" else params["version"]
    if target is None:
        raise bss_schema.SchemaError("state=present needs version (0 to %d)" % bss_schema.LATEST_VERSION)
    steps = bss_schema.plan_schema(before, target, repair=params["repair"])
    result["steps"] = ["%s %d %s" % (action, version, name) for action, version, name, _statements in steps]
    if not steps:
        result["version"] = before["version"]
        return False, result, None
    if check_mode:
        result["version"] = target or None
        return True, result, _diff(before, {"version": target or None, "dirty": False, "tables": bss_schema.expected_tables(target)})
    bss_schema.apply_schema_plan(conn, steps)
    after = bss_schema.inspect_schema(conn)
    result.update(version=after["version"], tables=after["tables"])
    return True, result, _diff(before, after)


def _diff(before, after):
    keys = ("version", "dirty", "tables")
    return {"before": {key: before[key] for key in keys}, "after": {key: after[key] for key in keys}}


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["latest", "present", "absent"], default="latest"),
        version=dict(type="int", choices=[0, 1, 2, 3]),
        repair=dict(type="bool", default=False),
        confirm_drop=dict(type="bool", default=False),
    )
    argument_spec.update(pg_connection.postgres_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["version"])])
    if not pg_connection.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=pg_connection.PSYCOPG_IMPORT_ERROR)
    try:
        conn = pg_connection.connect(module.params)
        try:
            changed, result, diff = ensure_schema(conn, module.params, module.check_mode)
        finally:
            conn.close()
    except (bss_schema.SchemaError, pg_connection.DatabaseError) as exc:
        module.fail_json(msg="Failed to bring the BSS schema to state '%s': %s" % (module.params["state"], exc))
    except pg_connection.psycopg.Error as exc:
        module.fail_json(msg="Failed to bring the BSS schema to state '%s': %s" % (module.params["state"], exc),
                         exception=traceback.format_exc())
    if module._diff and diff:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
