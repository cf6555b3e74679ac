# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Where an import reads BSS's records and SMD's nodes from (besides etcd and PostgreSQL, in their own fragments)."""

    DOCUMENTATION = r'''
options:
  snapshot_path:
    description: etcd snapshot file, for O(source=snapshot).
    type: path
  bss_url:
    description: Base URL of the live BSS (without C(/boot/v1)), for O(source=bss_api).
    type: str
  bss_token:
    description: Bearer token for the BSS API.
    type: str
  smd_url:
    description: Base URL of SMD (with or without C(/hsm/v2)). One of O(smd_url) and O(smd_export) is required.
    type: str
  smd_token:
    description: Bearer token for SMD.
    type: str
  smd_export:
    description: An SMD JSON export (node list, BSS SMD cache file, or HSM v2 collections) instead of a live SMD.
    type: path
'''
