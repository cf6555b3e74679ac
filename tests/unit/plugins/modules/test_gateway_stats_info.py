# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gateway_stats_info against a fake haproxy runtime socket answering as haproxy 2.6 does."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest

from ansible_collections.hpc_boot.bss.plugins.modules import gateway_stats_info

# Recorded from haproxy 2.6.12 (Debian 12): three PUTs refused by an "http-request return status 503" rule and one
# GET answered 503 by a backend without a live server (counted in hrsp_5xx, not in intercepted).
with open(os.path.join(os.path.dirname(__file__), "fixtures", "haproxy-2.6-show-stat.csv"), encoding="utf-8") as _handle:
    STAT = _handle.read()
INFO = "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 4242\nUptime_sec: 17\nUptime: 0d 0h00m17s\n"


@pytest.fixture
def fake_haproxy():
    """A unix socket answering 'show stat' and 'show info' once per connection, like haproxy's non-interactive mode."""
    directory = tempfile.mkdtemp(prefix="gw-stats-")
    path = os.path.join(directory, "admin.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    asked = []

    def serve():
        while True:
            try:
                conn, _addr = server.accept()
            except OSError:
                return
            with conn:
                command = conn.recv(1024).decode().strip()
                asked.append(command)
                conn.sendall({"show stat": STAT, "show info": INFO}.get(command, "Unknown command.\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, asked
    server.close()
    os.unlink(path)
    os.rmdir(directory)


def test_frontend_counters_pid_and_uptime_are_read(fake_haproxy):
    path, asked = fake_haproxy
    result = gateway_stats_info.read_stats(path, "bss", 5)
    assert result["pid"] == 4242 and result["uptime_sec"] == 17
    assert result["counters"]["intercepted"] == 3, "the freeze's 503s, not the backend's"
    assert result["counters"]["req_tot"] == 4 and result["counters"]["hrsp_5xx"] == 4
    assert asked == ["show info", "show stat"]


def test_a_frontend_that_does_not_exist_is_named(fake_haproxy):
    path, _asked = fake_haproxy
    with pytest.raises(gateway_stats_info.GatewayStatsError, match="no frontend named 'bss_old'"):
        gateway_stats_info.read_stats(path, "bss_old", 5)


def test_a_missing_socket_is_named(tmp_path):
    missing = str(tmp_path / "nowhere.sock")
    with pytest.raises(gateway_stats_info.GatewayStatsError, match="runtime socket %s" % missing):
        gateway_stats_info.read_stats(missing, "bss", 5)
