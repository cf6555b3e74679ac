"""Real JWT auth: BSS started with BSS_JWKS_URL against a key set served on loopback, tokens signed here.

Runs against the lab's double and the real upstream BSS (``bss_impl``). A valid token lets every BSS module
and the import from the BSS API work; a missing, expired, forged or claim-less token gives an error that names
the service and the reason and never shows the token.
"""

import json
import os

import pytest
import requests

from bss_play import run_module
from golden_replay import CHAIN_ENV

K1 = "http://10.0.0.1/boot/vmlinuz-6.1"
DECLARED = [{"kernel": K1, "params": "console=ttyS0", "macs": ["de:ad:be:ef:00:06"]}]


@pytest.fixture(scope="module")
def issuer():
    from hpclab import jwks
    service = jwks.Issuer()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def bss(issuer, golden_dir, postgres_server, bss_impl):
    """A postgres-mode BSS (double or upstream) that requires tokens of ``issuer``."""
    import uuid
    from hpclab import procs, smd
    from hpclab.bss.launch import start_bss
    smd_service = smd.start_smd(os.path.join(golden_dir, "smd-nodes.json"))
    dbname = "jwt_" + uuid.uuid4().hex[:10]
    procs.psql(postgres_server, f"CREATE DATABASE {dbname} OWNER {postgres_server.extra['user']}")
    service = start_bss("bss-jwt", "postgres", smd_service.url, postgres=postgres_server, impl=bss_impl,
                        env=dict(CHAIN_ENV, BSS_DBNAME=dbname, BSS_JWKS_URL=issuer.url))
    yield service
    service.stop()
    smd_service.stop()
    procs.psql(postgres_server, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def bad_tokens(issuer):
    return {"missing": (None, "no token found"), "expired": (issuer.expired_token(), "token is expired"),
            "forged": (issuer.stranger_token(), "token is unauthorized"),
            "no audience": (issuer.token(aud=None), "missing required claim")}


def test_only_boot_parameters_need_a_token(bss, issuer):
    url = bss.url + "/boot/v1/bootparameters"
    for label, (token, text) in bad_tokens(issuer).items():
        headers = {"Authorization": "Bearer " + token} if token else {}
        for method in ("GET", "PUT"):
            answer = requests.request(method, url, headers=headers, json=DECLARED[0], timeout=10)
            assert (answer.status_code, answer.text) == (401, text + "\n"), (label, method)
    assert requests.get(url, headers={"Authorization": "Bearer " + issuer.token()}, timeout=10).status_code == 200
    for public in ("/boot/v1/bootscript?mac=de:ad:be:ef:00:06", "/boot/v1/service/status", "/boot/v1/hosts"):
        assert requests.get(bss.url + public, timeout=10).status_code == 200, public


def test_modules_work_with_a_valid_token(bss, issuer, monkeypatch):
    from test_import_golden import run_module as run_in_process
    from ansible_collections.hpc_boot.bss.plugins.modules import bootparams, bootparams_info, bootscript_info, service_info
    token = issuer.token()
    args = {"url": bss.url, "token": token, "declarations": DECLARED}
    assert run_in_process(bootparams, args, check=True)["changed"] is True
    applied = run_module("bootparams", args, diff=True)          # as a user runs it: ansible-playbook --diff
    assert applied["changed"] is True and token.split(".")[2] not in json.dumps(applied) + applied["_stdout"]
    assert run_in_process(bootparams, args)["changed"] is False
    info = run_in_process(bootparams_info, {"url": bss.url, "token": token})
    assert not info.get("failed") and K1 in json.dumps(info)
    script = run_in_process(bootscript_info, {"url": bss.url, "token": token, "macs": ["de:ad:be:ef:00:06"]})
    assert not script.get("failed") and K1 in json.dumps(script)
    assert run_in_process(service_info, {"url": bss.url, "token": token})["status"] == "running"
    # the ochami CLI's convention: the token of cluster "demo" is in DEMO_ACCESS_TOKEN
    monkeypatch.setenv("DEMO_ACCESS_TOKEN", token)
    by_env = run_in_process(bootparams, {"url": bss.url, "cluster": "demo", "declarations": DECLARED})
    assert by_env["changed"] is False and not by_env.get("failed")


def test_bad_tokens_fail_clearly_without_showing_the_token(bss, issuer):
    from test_import_golden import run_module as run_in_process
    from ansible_collections.hpc_boot.bss.plugins.modules import bootparams
    for label, (token, text) in bad_tokens(issuer).items():
        args = dict({"url": bss.url, "declarations": DECLARED}, **({"token": token} if token else {}))
        result = run_in_process(bootparams, args, diff=True)
        assert result.get("failed"), (label, result)
        assert "BSS at " + bss.url in result["msg"] and "HTTP 401 (%s)" % text in result["msg"], (label, result["msg"])
        assert ("get a new token" if token else "no token was sent") in result["msg"], (label, result["msg"])
        if token:
            assert token.split(".")[2] not in json.dumps(result), label
    expired = issuer.expired_token()
    played = run_module("bootparams", {"url": bss.url, "token": expired, "declarations": DECLARED}, diff=True)
    assert played.get("failed") and "token is expired" in played["msg"]
    assert expired.split(".")[2] not in json.dumps(played) + played["_stdout"]


def test_import_from_the_bss_api_with_a_token(bss, issuer, bss_database, golden_dir):
    from test_import_golden import db_args
    from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert
    token = issuer.token()
    from test_import_golden import run_module as run_in_process
    from ansible_collections.hpc_boot.bss.plugins.modules import bootparams, import_bootparams, schema
    declared = run_in_process(bootparams, {"url": bss.url, "token": token, "declarations": DECLARED})
    assert not declared.get("failed"), declared
    assert run_in_process(schema, db_args(bss_database))["changed"] is True
    base = dict(db_args(bss_database), source="bss_api", bss_url=bss.url,
                smd_export=os.path.join(golden_dir, "smd-nodes.json"), accept_loss_kinds=list(bss_convert.LOSS_KINDS))
    refused = run_in_process(import_bootparams, dict(base, bss_token=issuer.expired_token()))
    assert refused.get("failed") and "401" in refused["msg"] and "token is expired" in refused["msg"], refused["msg"]
    imported = run_in_process(import_bootparams, dict(base, bss_token=token))
    assert imported["changed"] is True and not imported.get("failed"), {k: v for k, v in imported.items() if k not in ("losses",)}
    assert token.split(".")[2] not in json.dumps(imported)
