"""db_sslmode=verify-full (the default) against PostgreSQL with a certificate from a CA made here.

The TLS server accepts TCP logins only over TLS (``hostssl``), so a passing module run proves the
connection was encrypted and verified. A wrong CA, a host name outside the certificate, no CA at all
and a server without TLS each fail with a message naming the option to set, never the password.
"""

import os

import psycopg
import pytest

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.modules import schema as schema_module

from test_import_golden import db_args, run_module
from tls_certs import TestCA

PASSWORD = "tls-Secret-7f3a"


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory):
    certs = tmp_path_factory.mktemp("pg-tls")
    ca = TestCA(str(certs), "right")
    wrong = TestCA(str(certs), "wrong")
    cert, key = ca.issue_server("postgres", ips=("127.0.0.1",))
    service = procs.start_postgres(name="postgres-tls", password=PASSWORD, ssl_cert=cert, ssl_key=key)
    try:
        hba = os.path.join(service.workdir, "data", "pg_hba.conf")
        with open(hba, "w", encoding="utf-8") as handle:
            handle.write("local all all peer\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        procs.psql(service, "SELECT pg_reload_conf()")
        yield {"service": service, "ca": ca.cert_path, "wrong_ca": wrong.cert_path}
    finally:
        service.stop()


def tls_args(tls_postgres, **extra):
    service = tls_postgres["service"]
    args = {"db_host": "127.0.0.1", "db_port": service.port, "db_name": "bssdb", "db_user": "bssuser",
            "db_password": PASSWORD}
    args.update(extra)
    return args


def bss_tables(tls_postgres):
    service = tls_postgres["service"]
    return procs.psql(service, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
                      dbname="bssdb").split()


def test_verify_full_with_the_right_ca_creates_the_schema_over_tls(tls_postgres):
    args = tls_args(tls_postgres, db_sslrootcert=tls_postgres["ca"])
    assert "db_sslmode" not in args  # the default is under test
    created = run_module(schema_module, args)
    assert not created.get("failed"), created.get("msg")
    assert created["changed"] is True and "nodes" in bss_tables(tls_postgres)
    assert run_module(schema_module, args)["changed"] is False
    conninfo = (f"host=127.0.0.1 port={tls_postgres['service'].port} dbname=bssdb user=bssuser "
                f"password={PASSWORD} sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(conninfo).close()


@pytest.mark.parametrize("case", ["wrong_ca", "host_not_in_certificate"])
def test_an_unverifiable_server_is_refused_naming_db_sslrootcert(tls_postgres, case):
    before = bss_tables(tls_postgres)
    if case == "wrong_ca":
        args = tls_args(tls_postgres, db_sslrootcert=tls_postgres["wrong_ca"], db_name="other")
    else:
        args = tls_args(tls_postgres, db_sslrootcert=tls_postgres["ca"], db_host="localhost", db_name="other")
    result = run_module(schema_module, args)
    assert result["failed"] is True
    msg = result["msg"]
    assert f":{tls_postgres['service'].port}" in msg and "db_sslrootcert" in msg and "db_sslmode=verify-full" in msg
    expected = "certificate verify failed" if case == "wrong_ca" else "does not match host name"
    assert expected in msg
    assert PASSWORD not in msg and PASSWORD not in repr(result)
    assert bss_tables(tls_postgres) == before


def test_verify_full_without_a_ca_file_says_to_set_db_sslrootcert(tls_postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # libpq looks for ~/.postgresql/root.crt
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    result = run_module(schema_module, tls_args(tls_postgres))
    assert result["failed"] is True
    assert "set db_sslrootcert" in result["msg"] and "root.crt" in result["msg"]
    assert PASSWORD not in repr(result)


def test_a_server_without_tls_is_refused_saying_what_to_set(bss_database):
    args = db_args(bss_database)
    del args["db_sslmode"]
    result = run_module(schema_module, args)
    assert result["failed"] is True
    msg = result["msg"]
    assert f"PostgreSQL at {args['db_host']}:{args['db_port']} does not offer TLS" in msg
    assert "set db_sslmode" in msg and "disable" in msg and "db_sslrootcert" in msg
    assert args["db_password"] not in repr(result)
    assert run_module(schema_module, dict(args, db_sslmode="disable"))["changed"] is True
