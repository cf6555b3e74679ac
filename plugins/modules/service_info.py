#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_info
short_description: Report BSS status, storage backend, version and SMD connectivity
version_added: 0.1.0
description:
  - Reads C(/boot/v1/service/status), C(/service/storage/status), C(/service/version) and C(/service/hsm).
  - "Flags a BSS on its non-persistent in-memory store where that is observable. BSS reports that store as C(etcd), so
    the module reads all boot parameters twice: real etcd returns C(/params) records sorted by name and in the same order every
    time, the in-memory store does not. With fewer than three records this cannot be seen and RV(in_memory) is null."
author:
  - hpc_boot.bss developers (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_api
  - hpc_boot.bss.bss_api.attributes_read
options: {}
notes:
  - C(/service/version) answers HTTP 500 on the published container images (no C(.version) file); RV(version) is then null.
  - C(/service/hsm) answers HTTP 500 when BSS reads SMD from C(mem:) or C(file:); RV(smd) then reports it as not connected.
"""

EXAMPLES = r"""
- name: Which backend does production BSS use?
  hpc_boot.bss.service_info:
    url: http://bss.local:27778
  register: __bss_service

- name: Refuse to manage a BSS that would lose everything on restart
  ansible.builtin.assert:
    that: not __bss_service.in_memory
"""

RETURN = r"""
status:
  description: Value of C(bss-status), C(running) when BSS answers.
  returned: always
  type: str
  sample: running
backend:
  description: Storage backend name and state from C(/service/storage/status).
  returned: always
  type: dict
  sample: {"name": "postgres", "status": "connected"}
version:
  description: C(bss-version), or null when BSS cannot report it.
  returned: always
  type: str
  sample: v1.32.2
smd:
  description: Whether BSS reaches SMD (C(/service/hsm)), with the HTTP status.
  returned: always
  type: dict
  sample: {"connected": true, "http_status": 200}
in_memory:
  description: True when BSS is detected on its in-memory store, false when it is seen to be on real etcd or PostgreSQL, null when unknown.
  returned: always
  type: bool
in_memory_evidence:
  description: What the in-memory verdict is based on.
  returned: always
  type: str
  sample: "/params records listed unsorted"
"""

from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_client import BssApiError
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_module import BssModule


def params_record_order(entries):
    return [entry["hosts"][0] for entry in entries or [] if isinstance(entry, dict) and entry.get("hosts")]


def in_memory_verdict(backend_name, first_order, second_order):
    """(verdict, evidence) from two GET-all listings of an etcd-mode BSS; pure."""
    if backend_name == "postgres":
        return False, "postgres backend"
    if backend_name != "etcd":
        return None, "storage backend not reported"
    if first_order != second_order:
        return True, "/params records listed in a different order on two reads (real etcd lists them sorted)"
    if first_order != sorted(first_order):
        return True, "/params records listed unsorted (real etcd lists them sorted by name)"
    if len(first_order) < 3:
        return None, "fewer than three /params records: etcd and the in-memory store look the same"
    return False, "/params records listed sorted on two reads, as real etcd does"


def gather(bss):
    client = bss.client
    status_code, status = client.service("status")
    _storage_code, storage = client.service("storage/status")
    version_code, version = client.service("version")
    hsm_code, _hsm = client.service("hsm")
    backend = ((storage or {}).get("bss-storage-backend") or {}) if isinstance(storage, dict) else {}
    verdict, evidence = None, "storage backend not reported"
    if backend.get("name") == "etcd":
        try:
            first = params_record_order(client.list_bootparams())
            second = params_record_order(client.list_bootparams())
            verdict, evidence = in_memory_verdict("etcd", first, second)
        except BssApiError as exc:
            evidence = "cannot list boot parameters: %s" % exc
    elif backend.get("name"):
        verdict, evidence = in_memory_verdict(backend.get("name"), [], [])
    version_value = (version or {}).get("bss-version") if isinstance(version, dict) else None
    return dict(
        changed=False,
        status=(status or {}).get("bss-status", "unknown") if isinstance(status, dict) else "HTTP %s" % status_code,
        backend={"name": backend.get("name"), "status": backend.get("status")},
        version=None if version_code != 200 or version_value in (None, "error") else version_value,
        smd={"connected": hsm_code == 200, "http_status": hsm_code},
        in_memory=verdict,
        in_memory_evidence=evidence,
    )


def main():
    bss = BssModule(argument_spec=dict(), supports_check_mode=True)
    bss.run(gather)


if __name__ == "__main__":
    main()
