# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by the modules that talk to OpenCHAMI's boot-service."""

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of boot-service (the server that answers C(/bootconfigurations) and C(/bootscript)), for example
        C(http://127.0.0.1:8080) or C(https://demo.openchami.cluster/boot-service).
      - If not set, the environment variable E(BOOT_SERVICE_URL) is used.
    type: str
    required: true
  token:
    description:
      - Bearer token (JWT) sent as C(Authorization) header, needed when boot-service runs with C(enable_auth).
      - If not set, E(BOOT_SERVICE_TOKEN) is used. It never appears in results, messages or logs.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of boot-service. Applied to every request, so E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) cannot override it.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA that signed the boot-service certificate. Used instead of the system bundle when O(validate_certs=true).
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: float
    default: 30
  retries:
    description:
      - How often an idempotent request (GET, PUT) is retried after a connection error or HTTP 502/503/504, with exponential backoff.
      - POST and DELETE are never retried.
    type: int
    default: 3
requirements:
  - requests
"""

    ATTRIBUTES_WRITE = r"""
attributes:
  check_mode:
    support: full
    description: Reads boot-service, computes the plan and returns the requests that would be sent, without sending any write.
  diff_mode:
    support: full
    description: Returns, for every resource the run creates, changes or deletes, the keys that change, before and after.
  action_group:
    support: full
    membership: [hpc_boot.bss.boot_service]
    description: Use C(module_defaults) with C(group/hpc_boot.bss.boot_service) to set the connection options once.
"""
