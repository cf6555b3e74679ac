# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BSS PostgreSQL schema, written for this collection, by golang-migrate version.

Upstream BSS (OpenCHAMI/bss) scans rows positionally, so tables, columns, types and column order
must match its migrations 1 to 3 exactly; the SQL below is our own text producing that schema.
Bookkeeping follows golang-migrate's Postgres driver: one row in ``schema_migrations``.
"""

from __future__ import annotations

LATEST_VERSION = 3

# version -> (name, up statements, down statements); each list runs in one transaction.
MIGRATIONS = {
    1: ("create_db_init", [], []),
    2: (
        "create_version1",
        [
            "CREATE TABLE IF NOT EXISTS nodes ("
            "id VARCHAR PRIMARY KEY, boot_mac VARCHAR, xname VARCHAR, nid INT)",
            "CREATE TABLE IF NOT EXISTS boot_group_assignments ("
            "boot_group_id VARCHAR, node_id VARCHAR)",
            "CREATE TABLE IF NOT EXISTS boot_groups ("
            "id VARCHAR PRIMARY KEY, boot_config_id VARCHAR, name VARCHAR, description VARCHAR)",
            "CREATE TABLE IF NOT EXISTS boot_configs ("
            "id VARCHAR PRIMARY KEY, kernel_uri VARCHAR, initrd_uri VARCHAR, cmdline VARCHAR)",
        ],
        [
            "DROP TABLE IF EXISTS boot_group_assignments",
            "DROP TABLE IF EXISTS boot_groups",
            "DROP TABLE IF EXISTS boot_configs",
            "DROP TABLE IF EXISTS nodes",
        ],
    ),
    3: (
        "create_version2",
        ["CREATE TABLE IF NOT EXISTS endpoint_access (name VARCHAR, endpoint VARCHAR, last_epoch INT)"],
        ["DROP TABLE IF EXISTS endpoint_access"],
    ),
}

BOOKKEEPING_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)"
)

BSS_TABLES = ("nodes", "boot_group_assignments", "boot_groups", "boot_configs", "endpoint_access")


def migration_steps(current, target):
    """Ordered steps ``(direction, version, name, statements)`` to go from ``current`` to ``target``.

    ``current`` is ``None`` for a database with no recorded version. Going down from version N runs
    N's down statements and records N-1 (no row at all below version 1), as golang-migrate does.
    """
    if target is not None and (target < 0 or target > LATEST_VERSION):
        raise ValueError(f"target version {target} is outside 0..{LATEST_VERSION}")
    start = current or 0
    end = target or 0
    steps = []
    if end > start:
        for version in range(start + 1, end + 1):
            name, up, _down = MIGRATIONS[version]
            steps.append(("up", version, name, list(up)))
    elif end < start:
        for version in range(start, end, -1):
            name, _up, down = MIGRATIONS[version]
            steps.append(("down", version, name, list(down)))
    return steps


def apply_migrations(conn, target=LATEST_VERSION):
    """Bring a psycopg 3 connection's database to ``target``, recording each step like golang-migrate.

    Every step is its own transaction: set (version, dirty=true), run the statements, set
    (version, dirty=false). Returns the list of steps applied. Refuses to run on a dirty database.
    """
    with conn.transaction():
        conn.execute(BOOKKEEPING_DDL)
    row = conn.execute("SELECT version, dirty FROM schema_migrations LIMIT 1").fetchone()
    if row is not None and row[1]:
        raise RuntimeError(f"schema_migrations is dirty at version {row[0]}")
    current = row[0] if row else None
    steps = migration_steps(current, target)
    for direction, version, _name, statements in steps:
        recorded = version if direction == "up" else version - 1
        with conn.transaction():
            _record(conn, version if direction == "up" else recorded, True)
            for statement in statements:
                conn.execute(statement)
            _record(conn, recorded, False)
    return steps


def _record(conn, version, dirty):
    conn.execute("TRUNCATE schema_migrations")
    if version is not None and version > 0:
        conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)", (version, dirty))
