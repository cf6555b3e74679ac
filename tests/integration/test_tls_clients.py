"""TLS is verified by default towards etcd (when etcd_ca_cert is given), BSS and SMD over HTTPS.

etcd serves TLS with a certificate from a CA made here; a small HTTPS server stands in for BSS and SMD
with a certificate from the same CA. The right CA passes, a wrong CA (or no CA for HTTPS) fails
with a message naming the endpoint; turning verification off is an explicit choice.
"""

import http.server
import json
import os
import ssl
import threading
import time

import pytest
import yaml

from hpclab import procs

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_client, bss_module, etcd_source, smd_source
from ansible_collections.hpc_boot.bss.plugins.modules import etcd_snapshot, import_bootparams

from test_import_golden import run_module
from tls_certs import TestCA

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMD_ANSWERS = {
    "/hsm/v2/State/Components": {"Components": [{"ID": "x1000c0s0b0n0", "NID": 1, "Role": "Compute", "State": "Ready",
                                                 "Type": "Node", "Enabled": True}]},
    "/hsm/v2/Inventory/ComponentEndpoints": {"ComponentEndpoints": [{"ID": "x1000c0s0b0n0", "Enabled": True}]},
    "/hsm/v2/Inventory/EthernetInterfaces": [{"ComponentID": "x1000c0s0b0n0", "MACAddress": "02:00:00:00:00:01"}],
    "/boot/v1/service/status": {"bss-status": "running"},
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tls-clients"))
    ca, wrong = TestCA(directory, "right"), TestCA(directory, "wrong")
    cert, key = ca.issue_server("server", ips=("127.0.0.1",), dns_names=("localhost",))
    return {"ca": ca.cert_path, "wrong_ca": wrong.cert_path, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_etcd(pki):
    service = procs.start_etcd(name="etcd-tls", ssl_cert=pki["cert"], ssl_key=pki["key"])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                etcd_source.connect({"etcd_host": "127.0.0.1", "etcd_port": service.port, "etcd_ca_cert": pki["ca"],
                                     "etcd_timeout": 5}).put("/params/audit", "{}")
                break
            except etcd_source.EtcdSourceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield service
    finally:
        service.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        answer = SMD_ANSWERS.get(self.path.split("?")[0])
        body = json.dumps(answer).encode() if answer is not None else b"#!ipxe\nkernel http://k ro\nboot\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if answer is not None else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def https_url(pki):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "https://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def etcd_args(tls_etcd, tmp_path, **extra):
    args = {"etcd_host": "127.0.0.1", "etcd_port": tls_etcd.port, "etcd_timeout": 5, "path": str(tmp_path / "snap.db")}
    args.update(extra)
    return args


def test_etcd_with_the_right_ca_is_read_over_verified_tls(tls_etcd, pki, tmp_path):
    result = run_module(etcd_snapshot, etcd_args(tls_etcd, tmp_path, etcd_ca_cert=pki["ca"]))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and os.path.getsize(result["path"]) > 0


@pytest.mark.parametrize("case", ["wrong_ca", "no_ca"])
def test_etcd_that_cannot_be_verified_is_refused_naming_etcd_ca_cert(tls_etcd, pki, tmp_path, case):
    extra = {"etcd_ca_cert": pki["wrong_ca"]} if case == "wrong_ca" else {}
    result = run_module(etcd_snapshot, etcd_args(tls_etcd, tmp_path, **extra))
    assert result["failed"] is True
    assert "etcd at 127.0.0.1:%d" % tls_etcd.port in result["msg"] and "etcd_ca_cert" in result["msg"]
    assert not os.path.exists(tmp_path / "snap.db")


def test_bss_over_https_is_verified_unless_told_otherwise(https_url, pki):
    with pytest.raises(bss_client.BssApiError, match="CERTIFICATE_VERIFY_FAILED"):
        bss_client.BssClient(https_url, retries=0).service("status")
    with pytest.raises(bss_client.BssApiError, match="CERTIFICATE_VERIFY_FAILED"):
        bss_client.BssClient(https_url, ca_path=pki["wrong_ca"], retries=0).service("status")
    assert bss_client.BssClient(https_url, ca_path=pki["ca"], retries=0).service("status")[0] == 200
    assert bss_client.BssClient(https_url, validate_certs=False, retries=0).service("status")[0] == 200
    with pytest.raises(bss_client.BssApiError, match="CERTIFICATE_VERIFY_FAILED"):
        bss_client.ScriptGetter(https_url, retries=0).get("mac", "02:00:00:00:00:01")
    assert bss_client.ScriptGetter(https_url, ca_path=pki["ca"], retries=0).get("mac", "02:00:00:00:00:01")[0] == 200


def test_smd_over_https_is_verified_unless_told_otherwise(https_url):
    with pytest.raises(smd_source.SmdSourceError, match="CERTIFICATE_VERIFY_FAILED"):
        smd_source.SmdClient(https_url).nodes()
    assert [node["xname"] for node in smd_source.SmdClient(https_url, validate_certs=False).nodes()] == ["x1000c0s0b0n0"]


def test_certificate_validation_is_on_by_default_everywhere():
    assert bss_module.bss_argument_spec()["validate_certs"]["default"] is True
    assert import_bootparams.argument_spec()["validate_certs"]["default"] is True
    from ansible_collections.hpc_boot.bss.plugins.inventory import smd as smd_inventory
    assert yaml.safe_load(smd_inventory.DOCUMENTATION)["options"]["validate_certs"]["default"] is True
    for role, variable in (("cutover", "cutover_validate_certs"), ("boot_config", "boot_config_bss_validate_certs")):
        with open(os.path.join(REPO, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
            assert yaml.safe_load(handle)[variable] is True
