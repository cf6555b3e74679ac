# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BSS PostgreSQL schema, written for this collection, by golang-migrate version.

Upstream BSS (OpenCHAMI/bss) scans rows positionally, so tables, columns, types and column order
must match its migrations 1 to 3 exactly; the SQL below is our own text producing that schema.
Bookkeeping follows golang-migrate's Postgres driver: one row in ``schema_migrations``.
"""

from __future__ import annotations

try:
    from psycopg import sql as pg_sql
except ImportError:  # pragma: no cover - the modules report the missing library
    pg_sql = None

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

# Our own bookkeeping of imports, in a schema of its own so that BSS's schema (public) stays exactly
# upstream's. It tells preflight whether BSS rows in a database were written by this collection.
IMPORT_LOG_DDL = (
    "CREATE SCHEMA IF NOT EXISTS hpc_boot",
    "CREATE TABLE IF NOT EXISTS hpc_boot.bss_imports (imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " source TEXT NOT NULL, revision BIGINT NOT NULL, nodes INT NOT NULL)",
)


def record_import(conn, source, revision, nodes):
    """Log an import in the caller's transaction (creating the log table when missing)."""
    for statement in IMPORT_LOG_DDL:
        conn.execute(statement)
    conn.execute("INSERT INTO hpc_boot.bss_imports (source, revision, nodes) VALUES (%s, %s, %s)", (source, revision, nodes))


def data_owner(conn, tables):
    """``none`` (no boot rows), ``hpc_boot.bss`` (rows and an import logged by this collection) or ``foreign``."""
    if "nodes" not in tables or "boot_configs" not in tables:
        return "none"
    rows = conn.execute("SELECT (SELECT count(*) FROM nodes) + (SELECT count(*) FROM boot_configs)").fetchone()[0]
    if not rows:
        return "none"
    logged = conn.execute("SELECT to_regclass('hpc_boot.bss_imports') IS NOT NULL").fetchone()[0]
    if logged and conn.execute("SELECT count(*) FROM hpc_boot.bss_imports").fetchone()[0]:
        return "hpc_boot.bss"
    return "foreign"


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


# --- inspection, planning and repair for the schema module -------------------------------------

def expected_tables(version):
    """BSS tables that exist at ``version`` (None/0 = none)."""
    version = version or 0
    tables = []
    if version >= 2:
        tables.extend(["nodes", "boot_group_assignments", "boot_groups", "boot_configs"])
    if version >= 3:
        tables.append("endpoint_access")
    return tables


def inspect_schema(conn):
    """Read-only look at the database: recorded version, dirty flag, BSS tables present vs expected.

    ``condition`` is one of ``empty`` (nothing of BSS), ``clean``, ``dirty`` (a migration was
    interrupted), ``bss_init_downgrade`` (version 2 without endpoint_access: upstream bss-init's second
    run with its default step 2), ``tables_missing`` (version recorded but tables absent) or
    ``unrecorded_tables`` (BSS tables without bookkeeping, e.g. made by BSS v1.27 itself).
    """
    present = {row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
    bookkeeping = "schema_migrations" in present
    version, dirty = None, False
    if bookkeeping:
        row = conn.execute("SELECT version, dirty FROM schema_migrations LIMIT 1").fetchone()
        if row is not None:
            version, dirty = int(row[0]), bool(row[1])
    tables = [table for table in BSS_TABLES if table in present]
    missing = [table for table in expected_tables(version) if table not in present]
    if dirty:
        condition = "dirty"
    elif version == 2 and "endpoint_access" not in present and not missing:
        condition = "bss_init_downgrade"
    elif missing:
        condition = "tables_missing"
    elif version is None and tables:
        condition = "unrecorded_tables"
    elif version is None:
        condition = "empty"
    else:
        condition = "clean"
    return {"version": version, "dirty": dirty, "bookkeeping": bookkeeping, "tables": tables,
            "missing_tables": missing, "condition": condition, "data_owner": data_owner(conn, tables)}


class SchemaError(RuntimeError):
    """The schema cannot be brought to the requested state without an explicit option."""


def plan_schema(status, target, repair=False):
    """Pure plan ``[(action, version, name, statements)]`` from ``inspect_schema`` output to ``target``.

    Actions: ``up``/``down`` (a golang-migrate step), ``repair`` (re-run a version's idempotent up
    statements and record it clean). Conditions other than clean/empty need ``repair=True``.
    """
    condition = status["condition"]
    version = status["version"]
    steps = []
    if condition in ("dirty", "tables_missing", "unrecorded_tables"):
        if not repair:
            raise SchemaError(_REPAIR_HINTS[condition] % {"version": version, "missing": ", ".join(status["missing_tables"])})
        redo = version if version is not None else _implied_version(status["tables"])
        for step in range(1, redo + 1):
            name, up, _down = MIGRATIONS[step]
            steps.append(("repair", step, name, list(up)))
        version = redo
    elif condition == "bss_init_downgrade" and (target or 0) > 2 and not repair:
        raise SchemaError(_REPAIR_HINTS[condition])
    for direction, step, name, statements in migration_steps(version, target):
        steps.append((direction, step, name, statements))
    return steps


def _implied_version(tables):
    return 3 if "endpoint_access" in tables else 2


_REPAIR_HINTS = {
    "dirty": "schema_migrations is dirty at version %(version)s (an interrupted migration); set repair=true to re-run it"
             " (its statements are idempotent) and clear the flag",
    "tables_missing": "schema_migrations records version %(version)s but table(s) %(missing)s are missing;"
                      " set repair=true to re-create them",
    "unrecorded_tables": "BSS tables exist without golang-migrate bookkeeping; set repair=true to adopt them",
    "bss_init_downgrade": "the database is at version 2 without endpoint_access: upstream bss-init ran a second time with its"
                          " default step 2 and dropped it; set repair=true to migrate back to 3, and run bss-init with BSS_DBSTEP=3",
}


def apply_schema_plan(conn, steps):
    """Run planned steps, each in its own transaction with golang-migrate's dirty/clean bookkeeping."""
    with conn.transaction():
        conn.execute(BOOKKEEPING_DDL)
    for action, version, _name, statements in steps:
        recorded = version - 1 if action == "down" else version
        with conn.transaction():
            _record(conn, recorded, True)
            for statement in statements:
                conn.execute(statement)
            _record(conn, recorded, False)


def drop_schema(conn):
    """Drop every BSS table and the bookkeeping, in one transaction. Returns the tables dropped."""
    with conn.transaction():
        present = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
        dropped = [table for table in BSS_TABLES + ("schema_migrations",) if table in present]
        for table in dropped:
            conn.execute(pg_sql.SQL("DROP TABLE {}").format(pg_sql.Identifier(table)))
    return dropped
