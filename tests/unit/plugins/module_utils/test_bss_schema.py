# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure schema plan: migration steps, repairs only when asked."""

from __future__ import annotations

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema

ALL = ["nodes", "boot_group_assignments", "boot_groups", "boot_configs", "endpoint_access"]


def status(version, tables, dirty=False, bookkeeping=True):
    missing = [t for t in bss_schema.expected_tables(version) if t not in tables]
    condition = ("dirty" if dirty else "bss_init_downgrade" if version == 2 and "endpoint_access" not in tables
                 else "tables_missing" if missing else "unrecorded_tables" if version is None and tables
                 else "empty" if version is None else "clean")
    return {"version": version, "dirty": dirty, "bookkeeping": bookkeeping, "tables": tables, "missing_tables": missing,
            "condition": condition}


def names(steps):
    return ["%s %d" % (action, version) for action, version, _name, _statements in steps]


@pytest.mark.parametrize("version,target,expected", [
    (None, 3, ["up 1", "up 2", "up 3"]),
    (3, 3, []),
    (3, 2, ["down 3"]),
    (3, 0, ["down 3", "down 2", "down 1"]),
])
def test_plain_migrations(version, target, expected):
    assert names(bss_schema.plan_schema(status(version, bss_schema.expected_tables(version)), target)) == expected


@pytest.mark.parametrize("found,message", [
    (status(3, ALL, dirty=True), "dirty at version 3"),
    (status(2, ALL[:4]), "bss-init"),
    (status(3, ALL[:4]), "endpoint_access are missing"),
    (status(None, ALL[:4], bookkeeping=False), "without golang-migrate bookkeeping"),
])
def test_abnormal_states_need_repair(found, message):
    with pytest.raises(bss_schema.SchemaError, match=message):
        bss_schema.plan_schema(found, 3)


def test_repair_reruns_idempotent_steps_then_migrates():
    assert names(bss_schema.plan_schema(status(3, ALL, dirty=True), 3, repair=True)) == ["repair 1", "repair 2", "repair 3"]
    assert names(bss_schema.plan_schema(status(2, ALL[:4]), 3, repair=True)) == ["up 3"]
    assert names(bss_schema.plan_schema(status(None, ALL[:4], bookkeeping=False), 3, repair=True)) == ["repair 1", "repair 2", "up 3"]


def test_target_outside_known_versions_is_refused():
    with pytest.raises(ValueError, match="target version 4"):
        bss_schema.plan_schema(status(None, []), 4)
