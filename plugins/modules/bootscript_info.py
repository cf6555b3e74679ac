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
  - When either instance is OpenCHAMI's boot-service (O(service) or O(compare_service)), both scripts are run the way
    iPXE runs them and the parity compares what the node would boot (kernel, initrds, command line); only the differences
    that exist by design are removed (referral token, advertise address, the initrd image name, C(BOOTIF=) naming the
    node's own MAC, neither side booting) and each row names the rules it used in C(normalised). An HTML-escaped value
    is a difference. See docs/cutover.md.
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
  nodes:
    description:
      - Node identities as dicts with C(xname), C(nid) and C(macs) (the shape of the P(hpc_boot.bss.smd_nodes#filter) filter).
      - They add no lookup; they tell the C(bootif) rule which MACs belong to a node looked up by xname or NID (without them, a
        C(BOOTIF=) on one side only of such a lookup is a difference).
    type: list
    elements: dict
    default: []
  compare_url:
    description: Base URL of a second BSS (for example the PostgreSQL canary) to compare with, using the same TLS and token options.
    type: str
  service:
    description:
      - What O(url) is. V(boot_service) asks for xnames with C(host=) (boot-service ignores C(name=)) at C(/boot/v1/bootscript),
        which boot-service serves when its legacy API is on (the default).
    type: str
    choices: [bss, boot_service]
    default: bss
  compare_service:
    description: What O(compare_url) is; see O(service).
    type: str
    choices: [bss, boot_service]
    default: bss
  ignore_script_time_params:
    description:
      - With BSS on one side and boot-service on the other, C(xname=), C(nid=) and C(ds=) that the BSS side has and the
        boot-service side lacks are not differences (rule C(script_time_params)), since BSS adds them to every script it serves.
      - Meant for checking a rollback, where BSS adds them again to what was carried back from boot-service. Leave it off
        when proving a move to boot-service, where boot-service must serve them too.
    type: bool
    default: false
  workers:
    description: Concurrent keep-alive connections per BSS instance; both instances are read at the same time.
    type: int
    default: 32
  compare_workers:
    description:
      - Concurrent keep-alive connections to O(compare_url); default O(workers).
      - A postgres-mode upstream BSS keeps only two idle database connections, so more concurrent requests make it open
        and authenticate a new PostgreSQL session for most of them; fewer workers there cost PostgreSQL less CPU per
        lookup (docs/performance.md).
    type: int
  return_scripts:
    description: Also return the raw script text of each node from the first instance.
    type: bool
    default: false
  differences_only:
    description:
      - Return no RV(scripts) and, in RV(parity), only the rows that differ; RV(parity_summary) still counts every lookup.
      - For a parity check of a whole cluster, where the parsed script of every lookup would only make the result large.
    type: bool
    default: false
  progress_file:
    description:
      - While the lookups run, keep in this file (JSON, replaced whole about every O(progress_interval) seconds) how many lookups each
        instance has answered, out of how many, and the seconds since the start; the last version has C(finished=true) and the
        parity counts.
      - For a caller that runs the module with C(async) and shows the counts while it runs (the P(hpc_boot.bss.cutover#role) role's
        parity phase does). The file holds counts only, never a script, URL or token.
    type: path
  progress_interval:
    description: Seconds between two writes of O(progress_file).
    type: float
    default: 2.0
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
    With boot-service on either side, C(kind) may also be C(halt) (the script ends without booting) and C(message) keeps its error text.
  returned: unless O(differences_only)
  type: dict
  sample: {"aa:bb:cc:00:11:22": {"kind": "boot", "kernel": "http://10.1.0.1/vmlinuz", "initrd": "", "params": "quiet xname=x1 nid=1",
           "retry_delay": "30", "chain": "https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?mac=aa:bb:cc:00:11:22&retry=1"}}
parity:
  description:
    - With O(compare_url), one row per node; C(first)/C(second) (normalised scripts) only for differing nodes.
    - With O(differences_only), only the rows of differing nodes.
    - With boot-service on either side, C(normalised) lists the by-design rules applied to the row
      (C(referral_token), C(advertise_address), C(initrd_name), C(bootif), C(neither_boots), and C(script_time_params) with
      O(ignore_script_time_params)).
  returned: when O(compare_url) is set
  type: list
  elements: dict
  sample: [{"node": "aa:bb:cc:00:11:22", "same": true, "differences": []}]
parity_summary:
  description: Counts of compared, identical and different nodes; with boot-service on either side, C(normalised) counts the rows each rule applied to.
  returned: when O(compare_url) is set
  type: dict
  sample: {"nodes": 1000, "same": 1000, "different": 0, "normalised": {"referral_token": 1000, "bootif": 400}}
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_script as boot
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse as parse
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_client import BssApiError, BssClient, ScriptGetter, resolve_token
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_module import BssModule


def requested_nodes(params):
    """(label, query key, query value, the node's MACs) for every lookup; BootParamsError names a bad value."""
    macs, hosts, nids = list(params["macs"]), list(params["hosts"]), list(params["nids"])
    node_macs = {}
    for index, node in enumerate(params["nodes"]):
        if not isinstance(node, dict) or not node.get("xname"):
            raise model.BootParamsError("bootscript_info: nodes[%d] must be a dict with an xname, got %r" % (index, node))
        own = [model.normalise_mac(mac, "bootscript_info", "nodes[%d].macs" % index) for mac in node.get("macs") or []]
        node_macs[node["xname"]] = own
        if node.get("nid") not in (None, "", 0, "0", -1, "-1"):
            nid = model.normalise_nid(node["nid"], "bootscript_info", "nodes[%d].nid" % index)
            node_macs[model.nid_label(nid)] = own
    nodes = []
    for index, mac in enumerate(macs):
        label = model.normalise_mac(mac, "bootscript_info", "macs[%d]" % index)
        nodes.append((label, "mac", label, [label]))
    for index, host in enumerate(hosts):
        label = model.check_host(host, "bootscript_info", "hosts[%d]" % index)
        nodes.append((label, "name", host, node_macs.get(host, [])))
    for index, nid in enumerate(nids):
        value = model.normalise_nid(nid, "bootscript_info", "nids[%d]" % index)
        nodes.append((model.nid_label(value), "nid", str(value), node_macs.get(model.nid_label(value), [])))
    return nodes


class ScriptFetcher(object):
    """One keep-alive connection per worker thread to one BSS instance."""

    def __init__(self, url, params, service="bss"):
        BssClient(url)  # validates the URL before any request
        self.url = url
        self.params = params
        self.service = service
        self.boot_view = params["service"] == "boot_service" or params["compare_service"] == "boot_service"
        self.local = threading.local()

    def getter(self):
        if getattr(self.local, "getter", None) is None:
            params = self.params
            self.local.getter = ScriptGetter(self.url, token=resolve_token(params["token"], params["cluster"]),
                                             validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                                             timeout=params["timeout"], retries=params["retries"])
        return self.local.getter

    def fetch(self, node):
        label, key, value = node[:3]
        if key == "name" and self.service == "boot_service":
            key = "host"
        try:
            status, text = self.getter().get(key, value)
        except BssApiError as exc:
            return label, {"kind": "error", "error": str(exc)}, None
        if status == 404:
            return label, {"kind": "missing"}, None
        if status != 200:
            return label, {"kind": "error", "error": "GET %s/boot/v1/bootscript?%s=%s returned HTTP %d: %s"
                           % (self.url, key, value, status, text.strip()[:300] or "empty body")}, None
        return label, boot.effective_boot(text) if self.boot_view else parse.parse_script(text), text


class Progress(object):
    """Counts of answered lookups per instance, written to ``path`` (when set) every ``interval`` seconds by a thread."""

    def __init__(self, path, total, sides, interval):
        self.path = path
        self.total = total
        self.done = [0] * sides
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.interval = max(0.2, interval)
        self.stopped = threading.Event()
        self.thread = None

    def counted(self, side, call):
        def wrapped(node):
            answer = call(node)
            with self.lock:
                self.done[side] += 1
            return answer
        return wrapped

    def write(self, **extra):
        if not self.path:
            return
        with self.lock:
            done = list(self.done)
        record = dict(total=self.total, answered=done, seconds=round(time.monotonic() - self.started, 1), finished=False)
        record.update(extra)
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        with open(temporary, "w") as handle:
            json.dump(record, handle, sort_keys=True)
        os.replace(temporary, self.path)

    def _loop(self):
        while not self.stopped.wait(self.interval):
            self.write()

    def __enter__(self):
        if self.path:
            self.write()
            self.thread = threading.Thread(target=self._loop, name="progress")
            self.thread.daemon = True
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        return False


def fetch_all(fetcher, nodes, workers, progress=None, side=0):
    call = progress.counted(side, fetcher.fetch) if progress is not None else fetcher.fetch
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(call, nodes))


def gather(bss):
    params = bss.params
    nodes = requested_nodes(params)
    fetchers = [ScriptFetcher(params["url"], params, params["service"])]
    if params["compare_url"]:
        fetchers.append(ScriptFetcher(params["compare_url"], params, params["compare_service"]))
    progress = Progress(params["progress_file"], len(nodes), len(fetchers), params["progress_interval"])
    with progress, ThreadPoolExecutor(max_workers=len(fetchers)) as instances:
        workers = [params["workers"], params["compare_workers"] or params["workers"]]
        answers = list(instances.map(lambda side: fetch_all(fetchers[side], nodes, workers[side], progress, side),
                                     range(len(fetchers))))
    scripts = {}
    for label, parsed, text in answers[0]:
        scripts[label] = dict(parsed, text=text) if params["return_scripts"] else parsed
    result = dict(changed=False) if params["differences_only"] else dict(changed=False, scripts=scripts)
    if params["compare_url"]:
        rows = []
        script_time_side = None
        if params["ignore_script_time_params"] and params["service"] != params["compare_service"]:
            script_time_side = "first" if params["service"] == "bss" else "second"
        for node, (label, parsed_a, _text_a), (_label, parsed_b, _text_b) in zip(nodes, answers[0], answers[1]):
            if fetchers[0].boot_view:
                rows.append(boot.compare_boots(label, _boot_or_none(parsed_a), _boot_or_none(parsed_b), node[3], script_time_side))
            else:
                rows.append(parse.parity_row(label, _comparable(parsed_a), _comparable(parsed_b)))
        same = sum(1 for row in rows if row["same"])
        result["parity"] = [row for row in rows if not row["same"]] if params["differences_only"] else rows
        result["parity_summary"] = {"nodes": len(rows), "same": same, "different": len(rows) - same}
        if fetchers[0].boot_view:
            result["parity_summary"]["normalised"] = dict(
                (rule, sum(1 for row in rows if rule in row["normalised"])) for rule in boot.NORMALISATIONS)
    progress.write(finished=True, **dict((key, result["parity_summary"][key]) for key in ("same", "different")
                                         if "parity_summary" in result))
    return result


def _boot_or_none(parsed):
    return None if parsed.get("kind") == "missing" else parsed


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
            nodes=dict(type="list", elements="dict", default=[]),
            compare_url=dict(type="str"),
            service=dict(type="str", default="bss", choices=["bss", "boot_service"]),
            compare_service=dict(type="str", default="bss", choices=["bss", "boot_service"]),
            ignore_script_time_params=dict(type="bool", default=False),
            workers=dict(type="int", default=32),
            compare_workers=dict(type="int"),
            return_scripts=dict(type="bool", default=False),
            differences_only=dict(type="bool", default=False),
            progress_file=dict(type="path"),
            progress_interval=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    bss.run(gather)


if __name__ == "__main__":
    main()
