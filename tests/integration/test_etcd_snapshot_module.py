"""hpc_boot.bss.etcd_snapshot against a real etcd, and the import reading a snapshot file with no live etcd."""

import json
import os
import subprocess

import etcd3
import psycopg
import pytest

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.modules import etcd_snapshot, import_bootparams

from test_import_golden import GOLDEN_LOSSES, db_args, run_module, table_rows

pytest_plugins = []


@pytest.fixture
def golden_etcd_port(etcd_server, golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
        decoded = json.load(handle)
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.delete_prefix("/")
    for key, value in decoded.items():
        client.put(key, value)
    client.close()
    return etcd_server.port


@pytest.mark.parametrize("verify", ["etcdctl", "restore"])
def test_snapshot_sidecar_and_idempotence(golden_etcd_port, tmp_path, verify):
    path = str(tmp_path / "bss.db")
    args = {"etcd_host": "127.0.0.1", "etcd_port": golden_etcd_port, "path": path, "verify": verify}
    planned = run_module(etcd_snapshot, args, check=True)
    assert planned["changed"] is True and not os.path.exists(path)
    first = run_module(etcd_snapshot, args)
    assert first["changed"] is True and first["verified_with"] == verify
    assert first["key_counts"] == {"/params/": 10, "/kernel/": 3, "/initrd/": 3, "/endpoint-access/": 8}
    with open(path + ".json", encoding="utf-8") as handle:
        sidecar = json.load(handle)
    assert sidecar["sha256"] == first["sha256"] and sidecar["revision"] == first["revision"] > 0
    assert [name for name in os.listdir(tmp_path) if name.endswith(".part")] == []
    second = run_module(etcd_snapshot, args)
    assert second["changed"] is False and second["sha256"] == first["sha256"]
    forced = run_module(etcd_snapshot, dict(args, force=True))
    assert forced["changed"] is True


def test_truncated_snapshot_and_checksum_mismatch_are_refused(golden_etcd_port, tmp_path, bss_database, golden_dir):
    path = str(tmp_path / "bss.db")
    args = {"etcd_host": "127.0.0.1", "etcd_port": golden_etcd_port, "path": path}
    run_module(etcd_snapshot, args)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    reused = run_module(etcd_snapshot, args)
    assert reused["failed"] and "does not match its sidecar" in reused["msg"]
    imported = run_module(import_bootparams, dict(db_args(bss_database), source="snapshot", snapshot_path=path,
                                                  smd_export=os.path.join(golden_dir, "smd-nodes.json"), strict=False))
    assert imported["failed"] and "does not match its sidecar" in imported["msg"]
    os.unlink(path + ".json")
    status = run_module(etcd_snapshot, dict(args, path=path))     # no sidecar: a new snapshot replaces the bad file
    assert status["changed"] is True
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    os.unlink(path + ".json")
    no_sidecar = run_module(import_bootparams, dict(db_args(bss_database), source="snapshot", snapshot_path=path,
                                                    smd_export=os.path.join(golden_dir, "smd-nodes.json"), strict=False))
    assert no_sidecar["failed"] and "Failed to restore etcd snapshot" in no_sidecar["msg"], no_sidecar["msg"]


def test_import_from_snapshot_alone_equals_live_import(golden_etcd_port, tmp_path, bss_database, postgres_server, golden_dir):
    from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_schema
    path = str(tmp_path / "bss.db")
    run_module(etcd_snapshot, {"etcd_host": "127.0.0.1", "etcd_port": golden_etcd_port, "path": path})
    other = "t_snap_" + os.urandom(4).hex()
    procs.psql(postgres_server, f"CREATE DATABASE {other} OWNER bssuser")
    live_db = procs.postgres_conninfo(postgres_server, dbname=other)
    for conninfo in (bss_database, live_db):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            bss_schema.apply_migrations(conn)
    smd = os.path.join(golden_dir, "smd-nodes.json")
    from_file = run_module(import_bootparams, dict(db_args(bss_database), source="snapshot", snapshot_path=path,
                                                   smd_export=smd, accept_loss_kinds=GOLDEN_LOSSES))
    live = run_module(import_bootparams, dict(db_args(live_db), etcd_host="127.0.0.1", etcd_port=golden_etcd_port,
                                              smd_export=smd, accept_loss_kinds=GOLDEN_LOSSES))
    assert from_file["changed"] and live["changed"], (from_file, live)
    a, b = table_rows(bss_database), table_rows(live_db)
    for key in ("nodes", "configs", "served", "endpoint_access"):
        assert a[key] == b[key]
    assert from_file["revision"] == live["revision"]
    procs.psql(postgres_server, f"DROP DATABASE {other} WITH (FORCE)")


def test_wrong_etcd_credentials_are_a_clear_error(tmp_path):
    service = procs.start_etcd()
    try:
        env = dict(os.environ, ETCDCTL_API="3")
        endpoint = ["--endpoints", service.url]
        for argv in (["user", "add", "root:right-password"], ["auth", "enable"]):
            subprocess.run(["etcdctl"] + endpoint + argv, env=env, check=True, capture_output=True)
        args = {"etcd_host": "127.0.0.1", "etcd_port": service.port, "path": str(tmp_path / "s.db"),
                "etcd_user": "root", "etcd_password": "wrong-password"}
        denied = run_module(etcd_snapshot, args)
        assert denied["failed"] and "Failed to connect to etcd at 127.0.0.1:%d" % service.port in denied["msg"]
        assert "authentication failed" in denied["msg"] and "wrong-password" not in json.dumps(denied)
        assert not os.path.exists(args["path"])
        allowed = run_module(etcd_snapshot, dict(args, etcd_password="right-password"))
        assert allowed.get("changed") is True, allowed.get("msg")
    finally:
        service.stop()


def _openssl(*argv, cwd):
    subprocess.run(["openssl"] + list(argv), cwd=cwd, check=True, capture_output=True)


def make_pki(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all throwaway."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=lab-ca", cwd=directory)
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(directory, name + ".ext"), "w", encoding="ascii") as handle:
            handle.write(extension + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name,
                 cwd=directory)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=directory)
    return {name: os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def test_tls_client_certificates(tmp_path):
    pki = make_pki(str(tmp_path))
    workdir = procs.make_workdir("etcd-tls")
    client_port, peer_port = procs.free_port(), procs.free_port()
    url, peer = "https://127.0.0.1:%d" % client_port, "http://127.0.0.1:%d" % peer_port
    proc, _log = procs.spawn("etcd-tls", ["etcd", "--name", "tls", "--data-dir", os.path.join(workdir, "data"),
                                          "--listen-client-urls", url, "--advertise-client-urls", url,
                                          "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                          "--initial-cluster", "tls=" + peer, "--cert-file", pki["server.crt"],
                                          "--key-file", pki["server.key"], "--client-cert-auth",
                                          "--trusted-ca-file", pki["ca.crt"], "--log-level", "error"], workdir)
    service = procs.Service("etcd-tls", proc.pid, client_port, workdir, os.path.join(workdir, "etcd-tls.log"))
    try:
        procs.wait_for_tcp(client_port, proc=proc)
        args = {"etcd_host": "127.0.0.1", "etcd_port": client_port, "etcd_ca_cert": pki["ca.crt"], "etcd_timeout": 5,
                "path": str(tmp_path / "tls.db")}
        refused = run_module(etcd_snapshot, args)
        assert refused["failed"] and "Failed to connect to etcd at 127.0.0.1:%d" % client_port in refused["msg"]
        assert not os.path.exists(args["path"])
        tls = etcd3.client(host="127.0.0.1", port=client_port, ca_cert=pki["ca.crt"], cert_cert=pki["client.crt"],
                           cert_key=pki["client.key"])
        tls.put("/params/x1000c0s0b0n0", "{}")
        tls.close()
        done = run_module(etcd_snapshot, dict(args, etcd_client_cert=pki["client.crt"], etcd_client_key=pki["client.key"]))
        assert done.get("changed") is True, done.get("msg")
        assert done["revision"] >= 2 and done["key_counts"]["/params/"] == 1
    finally:
        service.stop()
