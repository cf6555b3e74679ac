"""Upstream behaviours of the BSS double in etcd mode that the golden transcripts do not exercise (bss-spec 2.5, 4, 5)."""

import json
import os

import pytest

from golden_replay import CHAIN_ENV, GOLDEN, NO_RESPONSE, request

K1, I1 = "http://10.0.0.1/k1", "http://10.0.0.1/i1"


@pytest.fixture
def bss(etcd_server, golden_smd):
    import etcd3
    from hpclab.bss.launch import start_bss
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    for _value, meta in client.get_all():
        client.delete(meta.key)
    service = start_bss("bss-etcd-behaviour", "etcd", golden_smd.url, etcd=etcd_server,
                        env=dict(CHAIN_ENV, HPCLAB_BSS_TOKEN="s3cret"))
    service.kv = client
    yield service
    service.stop()
    client.close()


def call(bss, method, path, body=None, token="s3cret", headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request(bss.url, method, path, json.dumps(body) if isinstance(body, dict) else body, headers)


def script_line(bss, query, index=1):
    resp = call(bss, "GET", "/boot/v1/bootscript?" + query)
    assert resp["status"] == 200, resp
    return resp["body"].decode().split("\n")[index]


def test_kernel_only_put_sets_image_params_seen_in_scripts_but_not_in_get(bss):
    assert call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1, "params": "a=1"})["status"] == 201
    resp = call(bss, "PUT", "/boot/v1/bootparameters", {"kernel": K1, "params": "quiet"})
    assert resp["status"] == 200 and "Bss-Referral-Token" not in resp["headers"]
    assert script_line(bss, "name=x3000c0s1b0n0").startswith(f"kernel --name kernel {K1} a=1 quiet xname=x3000c0s1b0n0 ")
    entry = json.loads(call(bss, "GET", "/boot/v1/bootparameters?name=x3000c0s1b0n0")["body"])[0]
    assert entry["params"] == "a=1"
    empty = call(bss, "PUT", "/boot/v1/bootparameters", {"params": "nothing"})
    assert empty["status"] == 200 and "Bss-Referral-Token" not in empty["headers"]
    assert [m.key for _v, m in bss.kv.get_prefix("/params/")] == [b"/params/x3000c0s1b0n0"]


def test_patch_merges_cloud_init_and_needs_existing_hosts(bss):
    body = {"hosts": ["x3000c0s4b0n0"], "kernel": K1, "cloud-init": {"meta-data": {"a": 1, "b": {"c": 2}}}}
    assert call(bss, "POST", "/boot/v1/bootparameters", body)["status"] == 201
    patch = {"hosts": ["x3000c0s4b0n0"], "cloud-init": {"meta-data": {"b": {"c": None, "d": 3}, "e": "x"}}}
    assert call(bss, "PATCH", "/boot/v1/bootparameters", patch)["status"] == 200
    raw = json.loads(bss.kv.get("/params/x3000c0s4b0n0")[0])
    assert raw["cloud-init"]["meta-data"] == {"a": 1, "b": {"d": 3}, "e": "x"}
    missing = call(bss, "PATCH", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n1"], "params": "p"})
    assert missing["status"] == 404
    assert json.loads(missing["body"])["detail"] == "Not Found: Error looking up x3000c0s1b0n1: Key /params/x3000c0s1b0n1 does not exist"


def test_delete_reports_missing_records_and_kernel_delete_strips_pointers(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1, "initrd": I1})
    resp = call(bss, "DELETE", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n1"]})
    assert resp["status"] == 400
    assert json.loads(resp["body"])["detail"] == "Key x3000c0s1b0n1 deletion: Key /params/x3000c0s1b0n1 does not exist"
    assert call(bss, "DELETE", "/boot/v1/bootparameters", {"kernel": K1})["status"] == 200
    raw = json.loads(bss.kv.get("/params/x3000c0s1b0n0")[0])
    assert "kernel" not in raw and raw["initrd"].startswith("/initrd/")
    assert not list(bss.kv.get_prefix("/kernel/"))


def test_fallbacks_role_default_and_unknown_arch(bss):
    call(bss, "PUT", "/boot/v1/bootparameters", {"hosts": ["Application"], "kernel": "http://k/app"})
    call(bss, "PUT", "/boot/v1/bootparameters", {"hosts": ["Default"], "kernel": "http://k/default"})
    call(bss, "PUT", "/boot/v1/bootparameters", {"hosts": ["Unknown-x86_64"], "kernel": "http://k/disc", "params": "d=1"})
    assert script_line(bss, "nid=4").startswith("kernel --name kernel http://k/app xname=x3000c0s3b0n0 nid=4 ")
    assert script_line(bss, "nid=1").startswith("kernel --name kernel http://k/default xname=x3000c0s1b0n0 nid=1 ")
    resp = call(bss, "GET", "/boot/v1/bootscript?mac=ff:ff:ff:00:00:09&arch=x86_64&ts=17")
    assert resp["body"].decode() == (
        "#!ipxe\nkernel --name kernel http://k/disc d=1 ds=nocloud-net;s=" + bss.extra["advertise_address"] +
        "/ || goto boot_retry\nboot || goto boot_retry\n:boot_retry\nsleep 30\n"
        "chain http://127.0.0.1/boot/v1/bootscript?mac=ff:ff:ff:00:00:09&arch=${buildarch}&ts=17\n\n")
    assert bss.kv.get("/endpoint-access//bootscript")[0] is not None


def test_scn_makes_the_next_known_script_a_sleep(bss):
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0n0"], "kernel": K1})
    assert script_line(bss, "name=x3000c0s1b0n0").startswith("kernel ")  # SMD cache filled now
    assert call(bss, "POST", "/boot/v1/scn", {"Components": ["x3000c0s1b0n0"], "State": "Ready"})["status"] == 200
    bss.kv.put("/UpdateTimestamp", "4102444800")  # a notification newer than the cache
    body = call(bss, "GET", "/boot/v1/bootscript?name=x3000c0s1b0n0")["body"].decode()
    assert body == "#!ipxe\nsleep 10\nchain http://127.0.0.1/boot/v1/bootscript?mac=a4:bf:01:3e:1f:a0&retry=1\n\n"


def test_routing_auth_and_service_endpoints(bss):
    resp = call(bss, "PATCHX", "/boot/v1/bootscript")
    assert resp["status"] == 405 and resp["headers"]["Allow"] == "GET"
    assert json.loads(resp["body"])["detail"] == "allow GET"
    for path in ("/boot/v1/", "/nope", "/boot/v1/bootscripts"):
        resp = call(bss, "GET", path)
        assert (resp["status"], resp["body"]) == (404, b"404 page not found\n")
    assert call(bss, "GET", "/boot/v1/service/status/")["body"] == b'{"bss-status":"running"}\n'
    unauth = call(bss, "GET", "/boot/v1/bootparameters", token=None)
    assert (unauth["status"], unauth["body"]) == (401, b"no token found\n")
    assert call(bss, "GET", "/boot/v1/bootparameters", token="wrong")["status"] == 401
    assert call(bss, "GET", "/boot/v1/bootparameters")["body"] == b"null\n"
    assert call(bss, "GET", "/boot/v1/bootscript?mac=ff:ff:ff:00:00:01", token=None)["status"] == 200
    version = call(bss, "GET", "/boot/v1/service/version")
    assert (version["status"], version["body"]) == (500, b'{"bss-version":"error"}\n')
    history = call(bss, "GET", "/boot/v1/endpoint-history?endpoint=bootscript")
    assert history["status"] == 500
    assert call(bss, "GET", "/boot/v1/endpoint-history?name=x1&endpoint=bootscript")["body"] == \
        b'[{"name":"x1","endpoint":"bootscript","last_epoch":0}]\n'
    assert call(bss, "GET", "/boot/v1/bootscript")["status"] == 400
    hosts = json.loads(call(bss, "GET", "/boot/v1/hosts?mac=DE:AD:BE:EF:00:04")["body"])
    assert [h["ID"] for h in hosts] == ["x3000c0s3b0n0"]
    assert call(bss, "GET", "/boot/v1/hosts?name=x9")["status"] == 404


def test_bad_requests_are_rejected_without_writing(bss):
    resp = call(bss, "POST", "/boot/v1/bootparameters", {"macs": ["aa-bb-cc-dd-ee-ff"], "kernel": K1})
    assert json.loads(resp["body"])["detail"] == "Bad Request: invalid MAC address format: aa-bb-cc-dd-ee-ff\n"
    resp = call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s1b0"], "kernel": K1})
    assert json.loads(resp["body"])["detail"] == "Bad Request: invalid xname type: NodeBMC"
    assert json.loads(call(bss, "POST", "/boot/v1/bootparameters", "")["body"])["detail"] == "Bad Request: EOF"
    assert not list(bss.kv.get_prefix("/params/"))
    assert call(bss, "GET", "/boot/v1/bootparameters", "{}")["status"] == 400
    assert call(bss, "GET", "/boot/v1/bootparameters?nid=zz")["status"] == 400
    assert call(bss, "GET", "/boot/v1/bootscript?mac=ff:ff:ff:00:00:03&arch=arm64")["status"] == 404


def test_meta_data_key_lookup_and_user_data_unknown(bss):
    call(bss, "PUT", "/boot/v1/bootparameters", {"hosts": ["Global"], "cloud-init": {"meta-data": {"ntp": {"server": "n1"}}}})
    resp = call(bss, "GET", "/meta-data?key=Global.ntp.server", headers={"X-Forwarded-For": "10.1.1.1"})
    assert (resp["status"], resp["body"]) == (200, b'"n1"\n')
    assert call(bss, "GET", "/meta-data?key=nope", headers={"X-Forwarded-For": "10.1.1.1"})["status"] == 404
    assert call(bss, "GET", "/user-data", headers={"X-Forwarded-For": "10.9.9.9"})["status"] != NO_RESPONSE


def test_phone_home_patches_the_node_record(bss):
    home = {"pub_key_rsa": "ssh-rsa AAA", "instance_id": "i-1", "hostname": "n5", "fqdn": "n5.lab"}
    assert call(bss, "POST", "/phone-home", home, headers={"X-Forwarded-For": "10.1.1.5"})["status"] == 404
    call(bss, "POST", "/boot/v1/bootparameters", {"hosts": ["x3000c0s4b0n0"], "kernel": K1})
    resp = call(bss, "POST", "/phone-home", home, headers={"X-Forwarded-For": "10.1.1.5"})
    assert resp["status"] == 200
    assert json.loads(resp["body"])["hosts"] == ["x3000c0s4b0n0"] and "kernel" not in json.loads(resp["body"])
    stored = json.loads(bss.kv.get("/params/x3000c0s4b0n0")[0])["cloud-init"]["phone-home"]
    assert stored == {"pub_key_dsa": "", "pub_key_rsa": "ssh-rsa AAA", "pub_key_ecdsa": "", "instance_id": "i-1",
                      "hostname": "n5", "fqdn": "n5.lab"}
    assert call(bss, "POST", "/phone-home", home, headers={"X-Forwarded-For": "10.9.9.9"})["status"] == 404


def test_smd_token_is_required_by_the_smd_double_and_sent_by_the_bss_double(etcd_server, tmp_path):
    from hpclab.bss.launch import start_bss
    from hpclab.smd import start_smd
    smd = start_smd(os.path.join(GOLDEN, "smd-nodes.json"), token="smd-tok")
    try:
        assert request(smd.url, "GET", "/hsm/v2/State/Components")["status"] == 401
        ok = request(smd.url, "GET", "/hsm/v2/State/Components", headers={"Authorization": "Bearer smd-tok"})
        assert ok["status"] == 200 and len(json.loads(ok["body"])["Components"]) == 6
        bss = start_bss("bss-smd-token", "memory", smd.url, workdir=str(tmp_path), env=dict(CHAIN_ENV, HPCLAB_SMD_TOKEN="smd-tok"))
        try:
            hosts = json.loads(request(bss.url, "GET", "/boot/v1/hosts?nid=4")["body"])
            assert [h["ID"] for h in hosts] == ["x3000c0s3b0n0"]
        finally:
            bss.stop()
    finally:
        smd.stop()


def test_legacy_referral_token_records_are_read_without_their_token(bss):
    legacy = ('{"params":"old=1","kernel":"/kernel/abc","cloud-init":{"meta-data":null,"user-data":null,"phone-home":'
              '{"pub_key_dsa":"","pub_key_rsa":"","pub_key_ecdsa":"","instance_id":"","hostname":"","fqdn":""}},'
              '"ReferralToken":"11111111-2222-4333-8444-555555555555"}')
    bss.kv.put("/kernel/abc", '{"path":"http://k/legacy"}')
    bss.kv.put("/params/x3000c0s1b0n0", legacy)
    line = script_line(bss, "name=x3000c0s1b0n0")
    assert line.startswith("kernel --name kernel http://k/legacy old=1 xname=x3000c0s1b0n0 nid=1 ds=")
    assert "bss_referral_token" not in line
    dump = json.loads(call(bss, "GET", "/boot/v1/dumpstate")["body"])
    assert [c["ID"] for c in dump["Components"]][:2] == ["x3000c0s1b0n0", "x3000c0s1b0n1"]
    assert dump["Params"] == [{"kernel": "http://k/legacy", "cloud-init": dump["Params"][0]["cloud-init"]},
                              {"hosts": ["x3000c0s1b0n0"], "params": "old=1", "kernel": "http://k/legacy",
                               "cloud-init": dump["Params"][0]["cloud-init"]}]


def test_file_smd_and_memory_store(tmp_path):
    from hpclab.bss.launch import start_bss
    smd_file = tmp_path / "smd.json"
    smd_file.write_text(json.dumps({"Components": [{"ID": "x1c0s0b0n0", "Type": "Node", "State": "Ready", "Role": "Compute",
                                                    "NID": 9, "MAC": ["aa:bb:cc:dd:ee:09"], "EndpointEnabled": True}],
                                    "IPAddresses": {}}))
    bss = start_bss("bss-file-smd", "memory", f"file://{smd_file}", workdir=str(tmp_path), env=CHAIN_ENV)
    try:
        assert request(bss.url, "POST", "/boot/v1/bootparameters", json.dumps({"nids": [9], "kernel": K1}))["status"] == 201
        body = request(bss.url, "GET", "/boot/v1/bootscript?mac=AA:BB:CC:DD:EE:09")["body"].decode()
        line = body.split("\n")[1]
        assert line.startswith(f"kernel --name kernel {K1} xname=x1c0s0b0n0 nid=9 bss_referral_token=")
        assert " BOOTIF=01-AA-BB-CC-DD-EE-09 ds=" in line
        assert request(bss.url, "GET", "/boot/v1/service/hsm")["status"] == NO_RESPONSE  # upstream panics without HTTP SMD
        storage = request(bss.url, "GET", "/boot/v1/service/storage/status")
        assert storage["body"] == b'{"bss-storage-backend":{"name":"etcd","status":"connected"}}\n'
    finally:
        bss.stop()


def test_nodes_without_enabled_endpoint_go_through_discovery_first(tmp_path):
    from hpclab.bss.launch import start_bss
    from hpclab.smd import start_smd
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps([
        {"xname": "x1c0s0b0n0", "nid": 1, "role": "Compute", "mac": "aa:00:00:00:00:01", "endpoint": False},
        {"xname": "x1c0s0b0n1", "nid": 2, "role": "Compute", "mac": "aa:00:00:00:00:02", "endpoint_enabled": False},
        {"xname": "x1c0s0b0n2", "nid": 3, "role": "Compute", "mac": "aa:00:00:00:00:03"}]))
    smd = start_smd(str(nodes))
    bss = start_bss("bss-endpoints", "memory", smd.url, env=CHAIN_ENV)
    try:
        for nid in (1, 2):
            request(bss.url, "PUT", "/boot/v1/bootparameters", json.dumps({"nids": [nid], "kernel": K1}))
            first = request(bss.url, "GET", f"/boot/v1/bootscript?nid={nid}&ts=5")["body"].decode()
            assert first == (f"#!ipxe\nsleep 10\nchain http://127.0.0.1/boot/v1/bootscript?mac=aa:00:00:00:00:0{nid}"
                             "&arch=${buildarch}&ts=5\n\n")
            second = request(bss.url, "GET", f"/boot/v1/bootscript?nid={nid}&arch=x86_64&ts=5")["body"].decode().split("\n")
            assert second[1].startswith(f"kernel --name kernel {K1} xname=x1c0s0b0n{nid - 1} nid={nid} ")
            assert second[-3] == f"chain http://127.0.0.1/boot/v1/bootscript?mac=aa:00:00:00:00:0{nid}&retry=1"
        missing = request(bss.url, "GET", "/boot/v1/bootscript?nid=3&arch=x86_64")
        assert json.loads(missing["body"])["detail"] == \
            "Unknown NID 3 (x1c0s0b0n2) architecture x86_64: this host not configured for booting."
    finally:
        bss.stop()
        smd.stop()


def test_bootscript_notify_url_gets_the_requester_address(tmp_path, golden_smd):
    import queue
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from hpclab.bss.launch import start_bss
    received = queue.Queue()

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
            received.put(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            return

    sink = HTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    bss = start_bss("bss-notify", "memory", golden_smd.url, workdir=str(tmp_path),
                    env=dict(CHAIN_ENV, BSS_BOOTSCRIPT_NOTIFY_URL=f"http://127.0.0.1:{sink.server_address[1]}/tpm"))
    try:
        request(bss.url, "DELETE", "/boot/v1/bootscript", headers={"X-Forwarded-For": "10.7.7.7, 10.8.8.8"})
        assert received.get(timeout=10) == b"data=10.7.7.7"
    finally:
        bss.stop()
        sink.shutdown()


def test_auth_is_checked_before_the_method(bss):
    assert call(bss, "OPTIONS", "/boot/v1/bootparameters", token=None)["status"] == 401
    assert call(bss, "OPTIONS", "/boot/v1/bootparameters")["headers"]["Allow"] == "GET,PUT,POST,PATCH,DELETE"
