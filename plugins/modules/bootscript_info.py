#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bootscript_info
short_description: Fetch BSS boot scripts for many nodes at once and compare two BSS instances
version_added: 0.1.0
description:
  - Fetches C(GET /boot/v1/bootscript) for every node given by MAC, xname or NID, concurrently over keep-alive connections,
    and parses each iPXE script into kernel, initrd and params.
  - Given O(compare_url), fetches the same scripts from a second BSS, removes the volatile parts (the C(bss_referral_token=) parameter,
    the advertise address in C(ds=), and the C(retry=)/C(ts=) values of the chain URL) and returns a per-node parity table.
  - Boot scripts are public in BSS; O(token) is sent if set but not needed.
  - Uses one keep-alive connection per worker through Python's C(http.client) (not C(requests)), so proxy environment variables
    do not apply; TLS follows O(validate_certs) and O(ca_path).
author:
  - hpc_boot.bss developers (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_api
  - hpc_boot.bss.bss_api.attributes_read
options:
  macs:
    description: Nodes asked for by MAC (C(mac=)), the way iPXE asks.
    type: list
    elements: str
    default: []
  hosts:
    description: Nodes asked for by xname (C(name=)).
    type: list
    elements: str
    default: []
  nids:
    description: Nodes asked for by NID (C(nid=)).
    type: list
    elements: int
    default: []
  compare_url:
    description: Base URL of a second BSS (for example the PostgreSQL canary) to compare with, using the same TLS and token options.
    type: str
  workers:
    description: Concurrent keep-alive connections per BSS instance; both instances are read at the same time.
    type: int
    default: 32
  return_scripts:
    description: Also return the raw script text of each node from the first instance.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Prove that the PostgreSQL canary serves the same boot scripts as production
  hpc_boot.bss.bootscript_info:
    url: http://bss.local:27778
    compare_url: http://bss-canary.local:27778
    macs: "{{ groups['compute'] | map('extract', hostvars, 'bss_macs') | map('first') | list }}"
  register: __bss_parity

- name: Fail on any difference
  ansible.builtin.assert:
    that: __bss_parity.parity_summary.different == 0
    fail_msg: "{{ __bss_parity.parity | rejectattr('same') | list }}"
"""

RETURN = r"""
scripts:
  description: Parsed boot script of each node from O(url), keyed by node (lower-case MAC, xname or C(nid<N>)).
    C(kind) is C(boot), C(wait) (sleep and chain, as for unknown nodes), C(other), or C(missing) when BSS answered 404; C(error) on failure.
  returned: always
  type: dict
  sample: {"aa:bb:cc:00:11:22": {"kind": "boot", "kernel": "http://10.1.0.1/vmlinuz", "initrd": "", "params": "quiet xname=x1 nid=1",
           "retry_delay": "30", "chain": "https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?mac=aa:bb:cc:00:11:22&retry=1"}}
parity:
  description: With O(compare_url), one row per node; C(first)/C(second) (normalised scripts) only for differing nodes.
  returned: when O(compare_url) is set
  type: list
  elements: dict
  sample: [{"node": "aa:bb:cc:00:11:22", "same": true, "differences": []}]
parity_summary:
  description: Counts of compared, identical and different nodes.
  returned: when O(compare_url) is set
  type: dict
  sample: {"nodes": 1000, "same": 1000, "different": 0}
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse as parse
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_client import BssApiError, BssClient, ScriptGetter, resolve_token
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_module import BssModule


def requested_nodes(params):
    """(label, query key, query value) for every node asked for; BootParamsError names a bad value."""
    nodes = []
    for index, mac in enumerate(params["macs"]):
        label = model.normalise_mac(mac, "bootscript_info", "macs[%d]" % index)
        nodes.append((label, "mac", label))
    for index, host in enumerate(params["hosts"]):
        nodes.append((model.check_host(host, "bootscript_info", "hosts[%d]" % index), "name", host))
    for index, nid in enumerate(params["nids"]):
        value = model.normalise_nid(nid, "bootscript_info", "nids[%d]" % index)
        nodes.append((model.nid_label(value), "nid", str(value)))
    return nodes


class ScriptFetcher(object):
    """One keep-alive connection per worker thread to one BSS instance."""

    def __init__(self, url, params):
        BssClient(url)  # validates the URL before any request
        self.url = url
        self.params = params
        self.local = threading.local()

    def getter(self):
        if getattr(self.local, "getter", None) is None:
            params = self.params
            self.local.getter = ScriptGetter(self.url, token=resolve_token(params["token"], params["cluster"]),
                                             validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                                             timeout=params["timeout"], retries=params["retries"])
        return self.local.getter

    def fetch(self, node):
        label, key, value = node
        try:
            status, text = self.getter().get(key, value)
        except BssApiError as exc:
            return label, {"kind": "error", "error": str(exc)}, None
        if status == 404:
            return label, {"kind": "missing"}, None
        if status != 200:
            return label, {"kind": "error", "error": "GET %s/boot/v1/bootscript?%s=%s returned HTTP %d: %s"
                           % (self.url, key, value, status, text.strip()[:300] or "empty body")}, None
        return label, parse.parse_script(text), text


def fetch_all(fetcher, nodes, workers):
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(fetcher.fetch, nodes))


def gather(bss):
    params = bss.params
    nodes = requested_nodes(params)
    fetchers = [ScriptFetcher(params["url"], params)]
    if params["compare_url"]:
        fetchers.append(ScriptFetcher(params["compare_url"], params))
    with ThreadPoolExecutor(max_workers=len(fetchers)) as instances:
        answers = list(instances.map(lambda fetcher: fetch_all(fetcher, nodes, params["workers"]), fetchers))
    scripts = {}
    for label, parsed, text in answers[0]:
        scripts[label] = dict(parsed, text=text) if params["return_scripts"] else parsed
    result = dict(changed=False, scripts=scripts)
    if params["compare_url"]:
        rows = []
        for (label, parsed_a, _text_a), (_label, parsed_b, _text_b) in zip(answers[0], answers[1]):
            rows.append(parse.parity_row(label, _comparable(parsed_a), _comparable(parsed_b)))
        same = sum(1 for row in rows if row["same"])
        result["parity"] = rows
        result["parity_summary"] = {"nodes": len(rows), "same": same, "different": len(rows) - same}
    return result


def _comparable(parsed):
    if parsed.get("kind") == "missing":
        return None
    if parsed.get("kind") == "error":
        return parsed
    return parse.normalise(parsed)


def main():
    bss = BssModule(
        argument_spec=dict(
            macs=dict(type="list", elements="str", default=[]),
            hosts=dict(type="list", elements="str", default=[]),
            nids=dict(type="list", elements="int", default=[]),
            compare_url=dict(type="str"),
            workers=dict(type="int", default=32),
            return_scripts=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    bss.run(gather)


if __name__ == "__main__":
    main()
