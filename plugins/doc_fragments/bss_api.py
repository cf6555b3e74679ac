# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module of the C(hpc_boot.bss.bss) action group."""

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the BSS instance, without C(/boot/v1), for example C(https://demo.openchami.cluster:8443) or C(http://127.0.0.1:27778).
      - If not set, the environment variable E(BSS_URL) is used.
    type: str
    required: true
  token:
    description:
      - Bearer token (JWT) sent as C(Authorization) header. Only C(/boot/v1/bootparameters) requires it, and only when BSS runs with JWKS.
      - If not set, E(BSS_TOKEN) is used, then the ochami convention E(<CLUSTER>_ACCESS_TOKEN) when O(cluster) is given.
    type: str
  cluster:
    description:
      - ochami cluster name; the token is read from E(<CLUSTER>_ACCESS_TOKEN) (upper case, dashes as underscores) when O(token) is not set.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of BSS. Applied to every request, so E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) cannot override it.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA that signed the BSS certificate. Used instead of the system bundle when O(validate_certs=true).
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: float
    default: 30
  retries:
    description:
      - How often an idempotent request (GET, PUT) is retried after a connection error or HTTP 502/503/504, with exponential backoff.
      - POST, PATCH and DELETE are never retried.
    type: int
    default: 3
  backend:
    description:
      - Storage backend of BSS. V(auto) asks C(/boot/v1/service/storage/status).
    type: str
    choices: [auto, etcd, postgres]
    default: auto
requirements:
  - requests
"""

    ATTRIBUTES_WRITE = r"""
attributes:
  check_mode:
    support: full
    description: Computes the plan and returns the requests that would be sent, without sending any write.
  diff_mode:
    support: full
    description: Returns the boot parameters of every node the run changes, before and after.
  action_group:
    support: full
    membership: [hpc_boot.bss.bss]
    description: Use C(module_defaults) with C(group/hpc_boot.bss.bss) to set the connection options once.
"""

    ATTRIBUTES_READ = r"""
attributes:
  check_mode:
    support: full
    description: Only reads from BSS; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  action_group:
    support: full
    membership: [hpc_boot.bss.bss]
    description: Use C(module_defaults) with C(group/hpc_boot.bss.bss) to set the connection options once.
"""
