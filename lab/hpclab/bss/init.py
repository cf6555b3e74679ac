"""bss-init double: upstream's schema initialiser (bss-spec 3.3), using plugins/module_utils/bss_schema.py.

Kept quirks: default target step 2 (SCHEMA_STEPS) so a second run on a version-3 database migrates
DOWN to 2 and drops ``endpoint_access``; ``--force-step`` accepted only in 0..2; ``--fresh`` on an
empty database is fatal ("no change"); a dirty version is force-cleared without repair; the
``*_RETRY_*`` env vars are ignored (flags only). Not kept: the password is not logged.
"""

import argparse
import importlib.util
import os
import sys
import time

APP_VERSION = "1"
SCHEMA_VERSION = 1
SCHEMA_STEPS = 2


def load_schema_module():
    """plugins/module_utils/bss_schema.py, from the collection, the repo checkout, or a bundled copy."""
    try:
        from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema  # pylint: disable=import-outside-toplevel
        return bss_schema
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "_bss_schema.py"),
                 os.path.join(here, "..", "..", "..", "plugins", "module_utils", "bss_schema.py")):
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("hpclab_bss_schema", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    try:
        from hpclab.bss import _bss_schema  # pylint: disable=import-outside-toplevel,no-name-in-module
        return _bss_schema
    except ImportError as exc:
        raise RuntimeError("bss_schema.py not found") from exc


def _env_bool(env, name):
    return env.get(name, "").lower() in ("1", "on", "yes", "true", "t", "y")


def parse_args(argv, env):
    for name in ("BSS_SQL_RETRY_COUNT", "BSS_SQL_RETRY_WAIT"):
        if env.get(name):
            sys.stderr.write(f"{name}: Invalid type for receiving ENV variable value *uint64\n")

    def int_env(name, default):
        try:
            return int(env.get(name) or default)
        except ValueError:
            sys.stderr.write(f"Invalid value for {name}: {env.get(name)!r} (ignored)\n")
            return default

    parser = argparse.ArgumentParser(prog="bss-init", allow_abbrev=False)
    for flag, default in (("postgres-host", env.get("BSS_DBHOST") or "localhost"),
                          ("postgres-dbname", env.get("BSS_DBNAME") or "bssdb"),
                          ("postgres-user", env.get("BSS_DBUSER") or "bssuser"),
                          ("postgres-password", env.get("BSS_DBPASS") or "bssuser"),
                          ("postgres-dbopts", env.get("BSS_DBOPTS", "")),
                          ("postgres-migrations", env.get("BSS_MIGRATIONDIR") or "/migrations")):
        parser.add_argument(f"-{flag}", f"--{flag}", dest=flag.replace("-", "_"), default=default)
    for flag, default in (("postgres-port", int_env("BSS_DBPORT", 5432)), ("step", int_env("BSS_DBSTEP", SCHEMA_STEPS)),
                          ("force-step", int_env("BSS_DBFORCESTEP", -1)), ("postgres-retry-count", 10),
                          ("postgres-retry-interval", 5)):
        parser.add_argument(f"-{flag}", f"--{flag}", dest=flag.replace("-", "_"), type=int, default=default)
    for flag, default in (("postgres-insecure", _env_bool(env, "BSS_INSECURE")), ("fresh", _env_bool(env, "BSS_FRESH"))):
        parser.add_argument(f"-{flag}", f"--{flag}", dest=flag.replace("-", "_"), action="store_true", default=default)
    parser.add_argument("-version", "--version", action="store_true")
    return parser.parse_args(argv)


def conninfo(args, mask=False):
    sslmode = "disable" if args.postgres_insecure else "verify-full"
    password = "****" if mask else args.postgres_password
    text = (f"user={args.postgres_user} password={password} host={args.postgres_host} port={args.postgres_port} "
            f"dbname={args.postgres_dbname} sslmode={sslmode}")
    return text + (" " + args.postgres_dbopts if args.postgres_dbopts else "")


def _connect(args):
    import psycopg  # pylint: disable=import-outside-toplevel
    attempts = max(args.postgres_retry_count, 1)
    for attempt in range(attempts):
        try:
            return psycopg.connect(conninfo(args), autocommit=True)
        except psycopg.OperationalError as exc:
            sys.stderr.write(f"Attempt {attempt + 1}/{attempts} to connect failed: {exc}\n")
            if attempt == attempts - 1:
                raise
            time.sleep(args.postgres_retry_interval)
    raise RuntimeError("unreachable")


def _version(conn):
    row = conn.execute("SELECT version, dirty FROM schema_migrations LIMIT 1").fetchone()
    return (None, False) if row is None else (row[0], row[1])


def _force(conn, version):
    with conn.transaction():
        conn.execute("TRUNCATE schema_migrations")
        if version >= 0:
            conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, false)", (version,))


def run(args):
    schema = load_schema_module()
    if args.force_step != -1 and not 0 <= args.force_step <= SCHEMA_STEPS:
        sys.stderr.write(f"FATAL: force-step {args.force_step} out of range (0..{SCHEMA_STEPS} or -1)\n")
        return 1
    sys.stderr.write(f"Connecting to postgres: {conninfo(args, mask=True)}\n")
    conn = _connect(args)
    try:
        with conn.transaction():
            conn.execute(schema.BOOKKEEPING_DDL)
        if args.fresh:
            version, _dirty = _version(conn)
            if version is None:
                sys.stderr.write("FATAL: migration down failed: no change\n")
                return 1
            _force(conn, version)
            schema.apply_migrations(conn, 0)
        if args.force_step != -1:
            _force(conn, args.force_step)
        version, dirty = _version(conn)
        if dirty and args.force_step == -1:
            sys.stderr.write(f"Database is dirty at version {version}; forcing it clean\n")
            _force(conn, version)
        if version is None:
            schema.apply_migrations(conn, schema.LATEST_VERSION)
        elif version != args.step:
            if not 0 <= args.step <= schema.LATEST_VERSION:
                sys.stderr.write(f"FATAL: migration to step {args.step} failed: file does not exist\n")
                return 1
            schema.apply_migrations(conn, args.step)
        version, dirty = _version(conn)
        sys.stderr.write(f"Schema version: {version}, dirty: {str(dirty).lower()}\n")
    finally:
        conn.close()
    return 0


def main(argv=None, env=None):
    env = os.environ if env is None else env
    args = parse_args(argv, env)
    if args.version:
        print(f"Version: {APP_VERSION}, Schema Version: {SCHEMA_VERSION}")
        return 0
    try:
        return run(args)
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write(f"FATAL: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
