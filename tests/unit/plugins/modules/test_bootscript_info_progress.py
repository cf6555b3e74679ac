# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bootscript_info's progress file: counts while the lookups run, the parity counts at the end, never a secret."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hpc_boot.bss.plugins.modules import bootscript_info

SCRIPT = ("#!ipxe\nkernel --name kernel http://10.1.0.1/vmlinuz quiet xname=x1 bss_referral_token=%s || goto boot_retry\n"
          "boot || goto boot_retry\n:boot_retry\nsleep 30\nchain http://h/boot/v1/bootscript?mac=aa:bb:cc:00:00:01&retry=1\n")


class Bss(object):
    """Answers every boot script, after ``release`` is set when ``hold`` is given (to look at the file mid-run)."""

    def __init__(self, params="quiet", hold=None):
        server = self
        self.params = params
        self.hold = hold
        self.count = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
                with server.lock:
                    server.count += 1
                    count = server.count
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                if server.hold is not None and count > 3:
                    server.hold.wait(10)
                threading.Event().wait(server.delay)
                with server.lock:
                    server.in_flight -= 1
                data = (SCRIPT % ("token-%d" % count)).replace("quiet", server.params).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pair():
    servers = [Bss(), Bss()]
    yield servers
    for server in servers:
        server.stop()


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            bootscript_info.main()
    return json.loads(capsys.readouterr().out)


MACS = ["aa:bb:cc:00:00:%02x" % index for index in range(1, 41)]


def test_the_last_progress_is_finished_with_the_parity_counts(pair, tmp_path, capsys):
    path = tmp_path / "progress.json"
    result = run({"url": pair[0].url, "compare_url": pair[1].url, "macs": MACS, "nids": [1, 2], "workers": 4,
                  "progress_file": str(path), "token": "s3cret-token"}, capsys)
    assert result["parity_summary"] == {"nodes": 42, "same": 42, "different": 0}
    progress = json.loads(path.read_text())
    assert progress["finished"] is True
    assert progress["total"] == 42 and progress["answered"] == [42, 42]
    assert progress["same"] == 42 and progress["different"] == 0
    assert "s3cret" not in path.read_text() and "http" not in path.read_text()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_differences_are_counted_in_the_last_progress(pair, tmp_path, capsys):
    pair[1].params = "splash"
    path = tmp_path / "progress.json"
    result = run({"url": pair[0].url, "compare_url": pair[1].url, "macs": MACS[:5], "progress_file": str(path)}, capsys)
    assert result["parity_summary"]["different"] == 5
    assert json.loads(path.read_text())["different"] == 5


def test_the_counts_are_written_while_the_lookups_run(tmp_path, capsys):
    hold = threading.Event()
    server = Bss(hold=hold)
    path = tmp_path / "progress.json"
    seen = []

    def watch():
        # The server answers 3 lookups, then holds the others: the file must show 3 of 40 before the end.
        for _attempt in range(200):
            if path.exists():
                record = json.loads(path.read_text())
                seen.append(record)
                if record["answered"] == [3]:
                    break
            threading.Event().wait(0.05)
        hold.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run({"url": server.url, "macs": MACS, "workers": 1, "progress_file": str(path), "progress_interval": 0.2}, capsys)
    finally:
        hold.set()
        watcher.join()
        server.stop()
    assert len(result["scripts"]) == 40
    assert {"total": 40, "answered": [3], "finished": False}.items() <= seen[-1].items()
    final = json.loads(path.read_text())
    assert final["finished"] is True and final["answered"] == [40] and "different" not in final


def test_no_progress_file_unless_asked(pair, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run({"url": pair[0].url, "macs": MACS[:2]}, capsys)
    assert len(result["scripts"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_compare_workers_limits_the_requests_at_once_to_the_second_instance(pair, capsys):
    for server in pair:
        server.delay = 0.05
    result = run({"url": pair[0].url, "compare_url": pair[1].url, "macs": MACS[:16], "workers": 8, "compare_workers": 1}, capsys)
    assert result["parity_summary"] == {"nodes": 16, "same": 16, "different": 0}
    assert pair[1].most_in_flight == 1 and pair[0].most_in_flight > 1


def test_differences_only_returns_the_differing_rows_and_no_scripts(pair, capsys):
    pair[1].params = "splash"
    both = {"url": pair[0].url, "compare_url": pair[1].url, "macs": MACS[:3]}
    full = run(both, capsys)
    pair[1].params = "quiet"
    same = run(dict(both, differences_only=True), capsys)
    assert len(full["parity"]) == 3 and len(full["scripts"]) == 3
    assert same["parity"] == [] and "scripts" not in same
    assert same["parity_summary"] == {"nodes": 3, "same": 3, "different": 0}
    pair[1].params = "splash"
    different = run(dict(both, macs=MACS[:3] + [MACS[0].upper()]), capsys)
    only = run(dict(both, macs=MACS[:3] + [MACS[0].upper()], differences_only=True), capsys)
    assert only["parity"] == [row for row in different["parity"] if not row["same"]] and len(only["parity"]) == 4
    assert only["parity_summary"] == {"nodes": 4, "same": 0, "different": 4}
