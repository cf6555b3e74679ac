"""The bootparams and bootparams_info modules against a scripted in-process HTTP endpoint.

The endpoint answers GET-all with fixed entries and records every request, so these tests check the
module wiring (validation before any request, check mode, diff, errors) independent of a BSS double.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hpc_boot.bss.plugins.modules import bootparams, bootparams_info, bootscript_info

K = "http://10.1.0.1/vmlinuz"


class ScriptedBss(object):
    def __init__(self, backend, entries):
        self.backend = backend
        self.entries = entries
        self.seen = []
        self.fail_writes = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status, body, content_type="application/json"):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.seen.append((self.command, self.path, body, self.headers.get("Authorization")))
                if self.path == "/boot/v1/service/storage/status":
                    return self._answer(200, {"bss-storage-backend": {"name": server.backend, "status": "connected"}})
                if self.path.startswith("/boot/v1/bootscript?"):
                    return server.bootscript(self)
                if self.path == "/boot/v1/bootparameters" and self.command == "GET":
                    return self._answer(200, server.entries)
                if self.path == "/boot/v1/bootparameters" and server.fail_writes:
                    return self._answer(400, {"type": "about:blank", "title": "Bad Request", "detail": server.fail_writes,
                                              "status": 400}, "application/problem+json")
                return self._answer(200, None)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def bootscript(handler):
        """mac ...:01 boots, ...:02 is unknown (404), anything else is a server error (500, empty)."""
        if handler.path.endswith("mac=aa%3Abb%3Acc%3A00%3A00%3A01"):
            data = ("#!ipxe\nkernel --name kernel %s quiet xname=x1 ds=nocloud-net;s=http://127.0.0.1:1/ || goto boot_retry\n"
                    "boot || goto boot_retry\n:boot_retry\nsleep 30\nchain http://h/boot/v1/bootscript?mac=aa:bb:cc:00:00:01&retry=1\n\n" % K)
            status = 200
        elif "aa%3Abb%3Acc%3A00%3A00%3A02" in handler.path:
            data, status = '{"detail":"Cannot find"}', 404
        else:
            data, status = "", 500
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(data.encode())))
        handler.end_headers()
        handler.wfile.write(data.encode())

    def writes(self):
        return [(method, body) for method, path, body, _auth in self.seen if method not in ("GET", "HEAD")]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def bss():
    server = ScriptedBss("postgres", [{"macs": ["aa:bb:cc:00:00:01"], "kernel": K, "params": "quiet",
                                       "cloud-init": {"meta-data": None, "user-data": None, "phone-home": {}}}])
    yield server
    server.stop()


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("declaration, message", [
    ({"kernel": K, "macs": ["aa:bb:cc:00:00"]}, "declarations[0].macs[0]: 'aa:bb:cc:00:00'"),
    ({"kernel": K, "hosts": ["Default"]}, "declarations[0].hosts: 'Default' is a tag name"),
    ({"kernel": K, "macs": ["aa:bb:cc:00:00:01"], "params": "quiet\n#!ipxe"}, "declarations[0].params: 'quiet\\n#!ipxe'"),
    ({"kernel": "data:;base64,AAAA", "macs": ["aa:bb:cc:00:00:01"]}, "declarations[0].kernel: 'data:;base64,AAAA'"),
    # iPXE operators and comments in params would change the boot script's structure (issue 14)
    ({"kernel": K, "macs": ["aa:bb:cc:00:00:01"], "params": "a || goto x"}, "declarations[0].params: 'a || goto x' has the token '||'"),
    ({"kernel": K, "macs": ["aa:bb:cc:00:00:01"], "params": "quiet && reboot"}, "declarations[0].params: 'quiet && reboot' has the token '&&'"),
    ({"kernel": K, "macs": ["aa:bb:cc:00:00:01"], "params": "quiet ; shell"}, "declarations[0].params: 'quiet ; shell' has the token ';'"),
    ({"kernel": K, "macs": ["aa:bb:cc:00:00:01"], "params": "quiet #x"}, "declarations[0].params: 'quiet #x' has the token '#x'"),
    ({"kernel": "--autofree", "macs": ["aa:bb:cc:00:00:01"]}, "declarations[0].kernel: '--autofree' starts with '-'"),
])
def test_bad_input_fails_and_sends_nothing(bss, capsys, declaration, message):
    result = run(bootparams, {"url": bss.url, "backend": "postgres", "declarations": [declaration]}, capsys)
    assert result["failed"] and message in result["msg"]
    assert bss.seen == []


def test_check_then_apply_then_nothing(bss, capsys):
    args = {"url": bss.url, "declarations": [{"kernel": K, "params": "quiet", "macs": ["AA:BB:CC:00:00:01", "aa:bb:cc:00:00:02"]}],
            "_ansible_check_mode": True, "_ansible_diff": True}
    result = run(bootparams, args, capsys)
    assert result["changed"] and result["backend"] == "postgres"
    assert result["requests"] == [{"method": "PUT", "body": {"macs": ["aa:bb:cc:00:00:02"], "kernel": K, "params": "quiet"}}]
    assert result["diff"] == {"before": {"aa:bb:cc:00:00:02": None},
                              "after": {"aa:bb:cc:00:00:02": {"kernel": K, "initrd": "", "params": "quiet"}}}
    assert bss.writes() == []
    args["_ansible_check_mode"] = False
    args["_ansible_diff"] = False
    result = run(bootparams, args, capsys)
    assert result["changed"] and "diff" not in result
    assert bss.writes() == [("PUT", {"macs": ["aa:bb:cc:00:00:02"], "kernel": K, "params": "quiet"})]
    bss.entries[0]["macs"].append("aa:bb:cc:00:00:02")
    result = run(bootparams, args, capsys)
    assert not result["changed"] and result["requests"] == []
    assert len(bss.writes()) == 1


def test_server_error_names_request_and_detail(bss, capsys):
    bss.fail_writes = "postgres.Add: data already exists"
    result = run(bootparams, {"url": bss.url, "backend": "postgres", "token": "s3cret",
                              "declarations": [{"kernel": K, "macs": ["aa:bb:cc:00:00:09"]}]}, capsys)
    assert result["failed"]
    assert result["msg"] == "PUT %s/boot/v1/bootparameters returned HTTP 400: postgres.Add: data already exists" % bss.url
    assert "s3cret" not in json.dumps(result)
    assert bss.seen[-1][3] == "Bearer s3cret"


def test_cluster_token_from_environment(bss, capsys, monkeypatch):
    monkeypatch.setenv("DEMO_LAB_ACCESS_TOKEN", "from-env")
    run(bootparams_info, {"url": bss.url, "cluster": "demo-lab"}, capsys)
    assert bss.seen[-1][0] == "GET" and bss.seen[-1][3] == "Bearer from-env"


def test_src_payload_files(bss, capsys, tmp_path):
    payload = tmp_path / "compute.yaml"
    payload.write_text("kernel: %s\nparams: quiet\nmacs:\n  - aa:bb:cc:00:00:01\n  - aa:bb:cc:00:00:03\n" % K)
    result = run(bootparams, {"url": bss.url, "src": [str(payload)], "_ansible_check_mode": True}, capsys)
    assert result["requests"] == [{"method": "PUT", "body": {"macs": ["aa:bb:cc:00:00:03"], "kernel": K, "params": "quiet"}}]
    broken = tmp_path / "broken.json"
    broken.write_text('[{"kernel": "%s", "macs": ["zz"]}]' % K)
    result = run(bootparams, {"url": bss.url, "src": [str(broken)]}, capsys)
    assert result["failed"] and "src broken.json[0].macs[0]: 'zz'" in result["msg"]


def test_exclusive_guard_refuses_large_delete(bss, capsys):
    result = run(bootparams, {"url": bss.url, "exclusive": True, "declarations": []}, capsys)
    assert result["failed"] and "exclusive would delete 1 of 1" in result["msg"]
    assert bss.writes() == []


def test_info_is_normalised_sorted_and_filterable(bss, capsys):
    bss.entries.append({"hosts": ["x1000c0s0b0n1"], "nids": [2], "kernel": K, "params": "quiet  ", "initrd": ""})
    result = run(bootparams_info, {"url": bss.url}, capsys)
    assert result["entries"] == [{"hosts": ["x1000c0s0b0n1"], "macs": ["aa:bb:cc:00:00:01"], "nids": [2], "kernel": K, "params": "quiet"}]
    assert result["text"].startswith("- hosts:\n  - x1000c0s0b0n1\n")
    first = result["checksum"]
    result = run(bootparams_info, {"url": bss.url, "nodes": ["AA:BB:CC:00:00:01"], "format": "json"}, capsys)
    assert list(result["nodes"]) == ["aa:bb:cc:00:00:01"]
    assert json.loads(result["text"]) == [{"macs": ["aa:bb:cc:00:00:01"], "kernel": K, "params": "quiet"}]
    assert result["checksum"] != first


def test_bootscript_info_reports_each_node(bss, capsys):
    result = run(bootscript_info, {"url": bss.url, "macs": ["AA:BB:CC:00:00:01", "aa:bb:cc:00:00:02"], "nids": [3],
                                   "retries": 0, "compare_url": bss.url}, capsys)
    scripts = result["scripts"]
    assert scripts["aa:bb:cc:00:00:01"]["kernel"] == K and scripts["aa:bb:cc:00:00:01"]["params"].startswith("quiet xname=x1")
    assert scripts["aa:bb:cc:00:00:02"] == {"kind": "missing"}
    assert scripts["nid3"]["kind"] == "error" and "bootscript?nid=3 returned HTTP 500: empty body" in scripts["nid3"]["error"]
    assert result["parity_summary"] == {"nodes": 3, "same": 3, "different": 0}
    assert [w for w in bss.seen if w[0] != "GET"] == []


def test_bootscript_info_rejects_bad_selectors_before_any_request(bss, capsys):
    result = run(bootscript_info, {"url": bss.url, "macs": ["aa:bb:cc:00:00:01", "not-a-mac"]}, capsys)
    assert result["failed"] and "bootscript_info.macs[1]: 'not-a-mac'" in result["msg"]
    assert bss.seen == []


def test_etcd_image_params_are_reported(bss, capsys):
    bss.backend = "etcd"
    bss.entries.append({"kernel": K, "params": "quiet splash"})
    result = run(bootparams, {"url": bss.url, "declarations": [{"kernel": K, "hosts": ["x1000c0s0b0n0"]}], "_ansible_check_mode": True},
                 capsys)
    assert result["requests"] == [{"method": "PUT", "body": {"hosts": ["x1000c0s0b0n0"], "kernel": K}}]
    declarations = bootparams.model.parse_declarations([{"kernel": K, "hosts": ["x1000c0s0b0n0"]}])
    images = [{"kernel": K, "initrd": "", "params": "quiet splash"}, {"kernel": "http://other/k", "initrd": "", "params": "x"}]
    assert bootparams.image_param_warnings(declarations, images) == [
        "image record %s carries image-level params 'quiet splash': BSS appends them to the command line of every node booting it" % K]


def _many_declarations(count):
    return [{"kernel": K, "params": "quiet", "macs": ["aa:bb:cc:00:%02x:%02x" % divmod(n, 256)]} for n in range(count)]


def test_many_declarations_are_counted_not_echoed(bss, capsys):
    result = run(bootparams, {"url": bss.url, "token": "s3cret", "declarations": _many_declarations(101), "_ansible_check_mode": True}, capsys)
    assert result["invocation"]["module_args"]["declarations"] == "101 declarations (not echoed)"
    assert result["invocation"]["module_args"]["url"] == bss.url and len(result["requests"]) == 1
    assert "s3cret" not in json.dumps(result)


def test_few_declarations_are_echoed_as_ansible_does(bss, capsys):
    result = run(bootparams, {"url": bss.url, "token": "s3cret", "declarations": _many_declarations(2), "_ansible_check_mode": True}, capsys)
    assert [d["macs"] for d in result["invocation"]["module_args"]["declarations"]] == [["aa:bb:cc:00:00:00"], ["aa:bb:cc:00:00:01"]]
    assert "s3cret" not in json.dumps(result)
