# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: smd_nodes
short_description: Turn SMD answers into a list of nodes with their xname, NID and MACs
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Joins the answers of SMD's C(/hsm/v2/State/Components) and C(/hsm/v2/Inventory/EthernetInterfaces) into one entry per node,
    sorted by NID, with MACs in lower-case colon form (the first is the boot MAC).
  - The same mapping as the P(hpc_boot.bss.smd#inventory) inventory plugin.
options:
  _input:
    description: The JSON answer of C(State/Components) (an object with C(Components), or a list).
    type: raw
    required: true
  interfaces:
    description: The JSON answer of C(Inventory/EthernetInterfaces).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Every node SMD knows
  ansible.builtin.set_fact:
    nodes: "{{ components.json | hpc_boot.bss.smd_nodes(interfaces.json) }}"
"""

RETURN = r"""
_value:
  description: One entry per node with C(xname), C(nid), C(macs), C(role), C(subrole), C(state).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.module_utils.smd_inventory import SmdInventoryError, build_hosts


def smd_nodes(components, interfaces):
    try:
        hosts = build_hosts({"components": components, "interfaces": interfaces, "memberships": []})
    except SmdInventoryError as exc:
        raise AnsibleFilterError(f"smd_nodes: {exc}") from exc
    return [{"xname": host["vars"]["bss_xname"], "nid": host["vars"]["bss_nid"], "macs": host["vars"]["bss_macs"],
             "role": host["vars"]["bss_role"], "subrole": host["vars"]["bss_subrole"], "state": host["vars"]["bss_state"]}
            for host in hosts]


class FilterModule:
    def filters(self):
        return {"smd_nodes": smd_nodes}
