#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: gateway_stats_info
short_description: Read the request counters of the BSS gateway (haproxy) from its runtime socket
version_added: 0.1.0
description:
  - Sends C(show info) and C(show stat) to the haproxy runtime socket the P(hpc_boot.bss.gateway#role) role configures
    (C(gateway_runtime_socket)) and returns the counters of one frontend and the worker's process id and uptime.
  - C(intercepted) counts the requests haproxy answered itself. In the gateway role's configuration the only such answer is
    the write freeze's 503, so during a freeze it is the number of writes refused.
  - haproxy starts its counters at zero in every new worker, that is after every reload of the gateway.
author:
  - hpc_boot.bss contributors (@hpc-boot)
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Reads only.
options:
  socket:
    description: Path of haproxy's runtime (stats) socket.
    type: path
    required: true
  frontend:
    description: Name of the frontend whose counters are returned.
    type: str
    default: bss
  timeout:
    description: Seconds allowed for each command.
    type: int
    default: 10
'''

EXAMPLES = r'''
- name: Count the writes the gateway refused so far in this worker
  hpc_boot.bss.gateway_stats_info:
    socket: /run/haproxy-bss/admin.sock
  register: gateway_stats

- name: Show them
  ansible.builtin.debug:
    msg: "{{ gateway_stats.counters.intercepted }} writes refused since {{ gateway_stats.uptime_sec }} s"
'''

RETURN = r'''
counters:
  description: The frontend's counters from C(show stat) (C(req_tot), C(intercepted), C(hrsp_5xx), C(hrsp_2xx), ...), as integers.
  returned: always
  type: dict
  sample: {"req_tot": 1520, "intercepted": 3, "hrsp_5xx": 3, "hrsp_2xx": 1517}
pid:
  description: Process id of the haproxy worker that answered.
  returned: always
  type: int
uptime_sec:
  description: Seconds since that worker started (since the last reload).
  returned: always
  type: int
'''

import socket

from ansible.module_utils.basic import AnsibleModule


class GatewayStatsError(RuntimeError):
    """The runtime socket could not be read; the message names it."""


def ask(path, command, timeout):
    """The text haproxy answers to one runtime command (the socket closes after it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode("ascii") + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        raise GatewayStatsError("Failed to ask the gateway's runtime socket %s for '%s': %s" % (path, command, exc)) from exc
    return b"".join(chunks).decode("utf-8", "replace")


def parse_info(text):
    info = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            info[name.strip()] = value.strip()
    return info


def frontend_counters(text, frontend):
    """Integer counters of ``frontend`` from ``show stat`` CSV; GatewayStatsError when it is not there."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise GatewayStatsError("'show stat' answered no CSV header: %.200r" % text)
    header = lines[0][2:].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == frontend and row.get("svname") == "FRONTEND":
            return {key: int(value) for key, value in row.items() if key not in ("pxname", "svname") and value.isdigit()}
    raise GatewayStatsError("the gateway has no frontend named '%s'" % frontend)


def read_stats(path, frontend, timeout):
    info = parse_info(ask(path, "show info", timeout))
    counters = frontend_counters(ask(path, "show stat", timeout), frontend)
    try:
        pid, uptime = int(info["Pid"]), int(info["Uptime_sec"])
    except (KeyError, ValueError) as exc:
        raise GatewayStatsError("'show info' on %s gave no Pid and Uptime_sec: %s" % (path, exc)) from exc
    return {"counters": counters, "pid": pid, "uptime_sec": uptime}


def main():
    module = AnsibleModule(
        argument_spec={"socket": {"type": "path", "required": True}, "frontend": {"type": "str", "default": "bss"},
                       "timeout": {"type": "int", "default": 10}},
        supports_check_mode=True,
    )
    try:
        result = read_stats(module.params["socket"], module.params["frontend"], module.params["timeout"])
    except GatewayStatsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
