"""The boot-service client against a tiny local HTTP server that answers like boot-service v0.3.2."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_client as bsc

TOKEN = "s3cr3t-token-value"


class FakeBootService(object):
    """Resources in memory, plus a queue of forced answers ``(status, body)`` served before the normal ones."""

    def __init__(self):
        self.resources = {"bootconfigurations": {}, "nodes": {}, "bmcs": {}}
        self.forced = []
        self.requests = []
        self.counter = 0


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            return

        def _answer(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlparse(self.path)
            state.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                   "body": json.loads(raw) if raw else None,
                                   "authorization": self.headers.get("Authorization")})
            if state.forced:
                status, body = state.forced.pop(0)
                return self._answer(status, body)
            parts = [p for p in url.path.split("/") if p]
            if parts and parts[-1] == "bootscript":
                host = parse_qs(url.query).get("host", [""])[0]
                return self._answer(200, ("#!ipxe\nkernel for %s %s\n" % (host, url.path)).encode(), "text/plain")
            kind = parts[0]
            store = state.resources[kind]
            if len(parts) == 1 and self.command == "GET":
                return self._answer(200, list(store.values()))
            if len(parts) == 1 and self.command == "POST":
                state.counter += 1
                uid = "%s-%08x" % (kind[:-1], state.counter)
                body = json.loads(raw)
                store[uid] = {"kind": kind, "metadata": {"name": body["metadata"]["name"], "uid": uid}, "spec": body["spec"]}
                return self._answer(201, store[uid])
            uid = parts[1]
            if uid not in store:
                return self._answer(404, {"error": "not found: %s" % uid, "code": 404})
            if self.command == "PUT":
                body = json.loads(raw)
                store[uid]["spec"] = body["spec"]
                store[uid]["metadata"]["name"] = body["metadata"]["name"]
                return self._answer(200, store[uid])
            if self.command == "DELETE":
                del store[uid]
                return self._answer(200, {"message": "deleted", "uid": uid})
            return self._answer(200, store[uid])

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


@pytest.fixture
def service():
    state = FakeBootService()
    server = HTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = "http://127.0.0.1:%d" % server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()


def test_create_list_replace_delete_round_trip(service):
    client = bsc.BootServiceClient(service.url + "/")
    assert client.list("bootconfigurations") == []
    made = client.create("bootconfigurations", "compute", {"hosts": ["x1000c0s0b0n0"], "kernel": "http://k/vmlinuz"})
    uid = made["metadata"]["uid"]
    expected = {"metadata": {"name": "compute"}, "spec": {"hosts": ["x1000c0s0b0n0"], "kernel": "http://k/vmlinuz"}}
    assert service.requests[-1]["body"] == expected
    replaced = client.replace("bootconfigurations", uid, "compute", {"kernel": "http://k/vmlinuz2", "priority": 7})
    assert replaced["spec"] == {"kernel": "http://k/vmlinuz2", "priority": 7}
    assert service.requests[-1]["method"] == "PUT" and service.requests[-1]["path"] == "/bootconfigurations/" + uid
    assert [r["spec"]["kernel"] for r in client.list("bootconfigurations")] == ["http://k/vmlinuz2"]
    assert client.get("bootconfigurations", uid)["metadata"]["name"] == "compute"
    assert client.delete("bootconfigurations", uid) is True
    assert client.get("bootconfigurations", uid) is None
    assert client.delete("bootconfigurations", uid, missing_ok=True) is False
    assert [(w["method"], w["path"]) for w in client.sent] == [
        ("POST", "/bootconfigurations"), ("PUT", "/bootconfigurations/" + uid),
        ("DELETE", "/bootconfigurations/" + uid), ("DELETE", "/bootconfigurations/" + uid)]


def test_refusal_names_url_status_and_boot_service_error(service):
    client = bsc.BootServiceClient(service.url)
    service.forced.append((400, {"error": "validation failed: priority must be between 0 and 100", "code": 400}))
    with pytest.raises(bsc.BootServiceError) as caught:
        client.create("bootconfigurations", "bad", {"kernel": "http://k", "priority": 101})
    message = str(caught.value)
    assert "POST %s/bootconfigurations" % service.url in message
    assert "HTTP 400" in message and "priority must be between 0 and 100" in message
    assert caught.value.status == 400


def test_delete_of_unknown_uid_fails_unless_missing_ok(service):
    client = bsc.BootServiceClient(service.url)
    with pytest.raises(bsc.BootServiceError, match="HTTP 404: not found: node-00000001"):
        client.delete("nodes", "node-00000001")


def test_token_is_sent_but_never_in_messages_or_sent_log(service):
    client = bsc.BootServiceClient(service.url, token=TOKEN)
    client.create("nodes", "x1000c0s0b0n0", {"xname": "x1000c0s0b0n0"})
    assert service.requests[-1]["authorization"] == "Bearer " + TOKEN
    assert TOKEN not in json.dumps(client.sent)
    service.forced.append((401, {"error": "token expired", "code": 401}))
    with pytest.raises(bsc.BootServiceError) as caught:
        client.list("nodes")
    assert TOKEN not in str(caught.value)
    assert "refused GET" in str(caught.value) and "token expired" in str(caught.value) and "get a new token" in str(caught.value)
    anonymous = bsc.BootServiceClient(service.url)
    service.forced.append((403, {"error": "forbidden", "code": 403}))
    with pytest.raises(bsc.BootServiceError, match="no token was sent"):
        anonymous.list("nodes")


def test_get_and_put_are_retried_on_gateway_errors_post_and_delete_are_not(service):
    client = bsc.BootServiceClient(service.url, backoff=0)
    service.forced.extend([(503, {"error": "busy"}), (502, {"error": "busy"})])
    assert client.list("bmcs") == []
    assert [r["method"] for r in service.requests] == ["GET", "GET", "GET"]
    service.forced.append((503, {"error": "busy"}))
    with pytest.raises(bsc.BootServiceError, match="HTTP 503"):
        client.create("bmcs", "b", {})
    assert service.resources["bmcs"] == {} and [r["method"] for r in service.requests[3:]] == ["POST"]
    made = client.create("nodes", "n", {"xname": "x1000c0s0b0n0"})
    service.forced.append((504, {"error": "slow"}))
    client.replace("nodes", made["metadata"]["uid"], "n", {"xname": "x1000c0s0b0n1"})
    assert [r["method"] for r in service.requests[-2:]] == ["PUT", "PUT"]
    assert service.resources["nodes"][made["metadata"]["uid"]]["spec"]["xname"] == "x1000c0s0b0n1"
    service.forced.append((503, {"error": "busy"}))
    with pytest.raises(bsc.BootServiceError, match="HTTP 503"):
        client.delete("nodes", made["metadata"]["uid"])
    assert made["metadata"]["uid"] in service.resources["nodes"]


def test_connection_failure_names_the_url_after_retries():
    client = bsc.BootServiceClient("http://127.0.0.1:9", retries=1, backoff=0, timeout=2)
    with pytest.raises(bsc.BootServiceError, match=r"GET http://127.0.0.1:9/nodes failed"):
        client.list("nodes")


def test_bootscript_returns_status_and_text_by_host_mac_nid_and_legacy_path(service):
    client = bsc.BootServiceClient(service.url)
    status, text = client.bootscript(host="x1000c0s0b0n0")
    assert status == 200 and text == "#!ipxe\nkernel for x1000c0s0b0n0 /bootscript\n"
    client.bootscript(mac="aa:bb:cc:dd:ee:01", profile="compute", legacy=True)
    assert service.requests[-1]["path"] == "/boot/v1/bootscript"
    assert service.requests[-1]["query"] == {"mac": ["aa:bb:cc:dd:ee:01"], "profile": ["compute"]}
    client.bootscript(nid=0)
    assert service.requests[-1]["query"] == {"nid": ["0"]}
    service.forced.append((500, {"error": "boom", "code": 500}))
    assert client.bootscript(host="x1000c0s0b0n0")[0] == 500
    with pytest.raises(bsc.BootServiceError, match="one of host, mac or nid"):
        client.bootscript(profile="compute")


def test_non_list_answer_and_non_json_body_are_errors(service):
    client = bsc.BootServiceClient(service.url)
    service.forced.append((200, {"not": "a list"}))
    with pytest.raises(bsc.BootServiceError, match="returned dict, expected a JSON list"):
        client.list("nodes")
    service.forced.append((200, b"<html>proxy</html>"))
    with pytest.raises(bsc.BootServiceError, match="not JSON"):
        client.list("nodes")
    service.forced.append((200, b"null"))
    assert client.list("nodes") == []


@pytest.mark.parametrize("bad", ["", "ftp://x", "localhost:8080", None])
def test_bad_url_is_refused_without_io(bad):
    with pytest.raises(bsc.BootServiceError, match="url: "):
        bsc.BootServiceClient(bad)


def test_unknown_kind_and_unsafe_uid_are_refused_before_any_request(service):
    client = bsc.BootServiceClient(service.url)
    with pytest.raises(bsc.BootServiceError, match="kind: 'bootparameters'"):
        client.list("bootparameters")
    with pytest.raises(bsc.BootServiceError, match="uid: '../nodes'"):
        client.delete("nodes", "../nodes")
    assert service.requests == []


def test_tls_verification_is_an_explicit_bundle_the_environment_cannot_replace(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/evil.pem")
    assert bsc.BootServiceClient("https://bs.example").verify == requests.certs.where()
    assert bsc.BootServiceClient("https://bs.example", ca_path="/etc/pki/ochami.pem").verify == "/etc/pki/ochami.pem"
    assert bsc.BootServiceClient("https://bs.example", validate_certs=False).verify is False
