# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared libpq connection options for the modules that talk to BSS's PostgreSQL database."""

from __future__ import annotations

import traceback

try:
    import psycopg
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    psycopg = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()


class DatabaseError(RuntimeError):
    """A PostgreSQL operation failed; the message names what was being done."""


def postgres_argument_spec():
    """Connection options, documented by the ``hpc_boot.bss.postgres`` doc fragment."""
    return {
        "db_host": {"type": "str", "default": "localhost"},
        "db_port": {"type": "int", "default": 5432},
        "db_name": {"type": "str", "default": "bssdb"},
        "db_user": {"type": "str", "default": "bssuser"},
        "db_password": {"type": "str", "no_log": True},
        "db_sslmode": {"type": "str", "default": "verify-full",
                       "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]},
        "db_sslrootcert": {"type": "path"},
        "db_connect_timeout": {"type": "int", "default": 10},
    }


def connect_params(params):
    """psycopg keyword arguments from module parameters (no password in any message)."""
    kwargs = {
        "host": params["db_host"], "port": params["db_port"], "dbname": params["db_name"],
        "user": params["db_user"], "sslmode": params["db_sslmode"],
        "connect_timeout": params["db_connect_timeout"], "application_name": "hpc_boot.bss",
    }
    if params.get("db_password"):
        kwargs["password"] = params["db_password"]
    if params.get("db_sslrootcert"):
        kwargs["sslrootcert"] = params["db_sslrootcert"]
    return kwargs


def connect(params):
    """Open a psycopg 3 connection in autocommit mode; every write goes through an explicit
    ``conn.transaction()`` block, so a transaction is exactly what the caller says. Raises
    DatabaseError naming the target (never the password)."""
    if not HAS_PSYCOPG:
        raise DatabaseError("psycopg (version 3) is required")
    kwargs = connect_params(params)
    try:
        return psycopg.connect(autocommit=True, **kwargs)
    except psycopg.Error as exc:
        where = "%s:%s" % (kwargs["host"], kwargs["port"])
        advice = tls_advice(str(exc), where, kwargs["sslmode"], kwargs.get("sslrootcert"))
        if advice:
            raise DatabaseError(advice) from exc
        raise DatabaseError("Failed to connect to database '%s' at %s as '%s': %s" % (
            kwargs["dbname"], where, kwargs["user"], _first_line(exc))) from exc


def tls_advice(text, where, sslmode, sslrootcert):
    """A message naming the option to set when libpq's error is about TLS, else None."""
    lowered = text.lower()
    if "does not support ssl" in lowered:
        return ("PostgreSQL at %s does not offer TLS, and db_sslmode=%s requires it; set db_sslmode "
                "(disable to connect in plain text, or enable ssl on the server and use verify-full "
                "with db_sslrootcert)" % (where, sslmode))
    if "root certificate file" in lowered:
        return ("PostgreSQL at %s: db_sslmode=%s verifies the server certificate but no CA was found "
                "(%s); set db_sslrootcert to the CA certificate that signed the server's certificate"
                % (where, sslmode, _first_line(text)))
    if "certificate verify failed" in lowered or "could not load" in lowered or "does not match host name" in lowered:
        return ("PostgreSQL at %s: TLS certificate not accepted with db_sslmode=%s and db_sslrootcert=%s: %s; "
                "set db_sslrootcert to the CA that signed the server's certificate (and db_host to a name "
                "or address in it)" % (where, sslmode, sslrootcert or "(default)", _first_line(text)))
    return None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
