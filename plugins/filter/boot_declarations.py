# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: boot_declarations
short_description: One boot parameters declaration per node of the play, from host variables or SMD
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - The per-node work of the C(hpc_boot.bss.boot_config) role, done in one pass in Python instead of a Jinja loop,
    so it grows linearly with the number of nodes.
  - For every host of O(hosts) that has the class variable O(class_var), returns a declaration for M(hpc_boot.bss.bootparams)
    with the C(kernel), C(initrd) and C(params) of the class (empty when the class leaves one out) and the selectors of
    O(selectors) the node has.
  - The xname is the host variable C(bss_xname), or the inventory name when it is an xname.
  - With O(identity_source=hostvars) MACs and NID come from the host variables C(bss_macs) and C(bss_nid); with
    O(identity_source=smd) from the SMD answers O(smd_components) and O(smd_interfaces), by xname.
  - Hosts with a class but none of the selectors are listed in C(missing) (their declaration has no selector).
options:
  _input:
    description: The C(hostvars) of the play.
    type: dict
    required: true
  hosts:
    description: Inventory names of the hosts to declare, in order, usually C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  class_var:
    description: Name of the host variable holding the node class declaration, a mapping with C(kernel), C(initrd) and C(params).
    type: str
    default: bss_boot_config
  selectors:
    description: Identities that select each node in BSS.
    type: list
    elements: str
    choices: [macs, hosts, nids]
    default: [macs, hosts]
  identity_source:
    description: Where MACs and NIDs come from.
    type: str
    choices: [hostvars, smd]
    default: hostvars
  smd_components:
    description: With O(identity_source=smd), the C(Components) list of SMD's C(/hsm/v2/State/Components?type=Node).
    type: list
    elements: dict
    default: []
  smd_interfaces:
    description: With O(identity_source=smd), the answer of SMD's C(/hsm/v2/Inventory/EthernetInterfaces?type=Node).
    type: list
    elements: dict
    default: []
  fail_on_missing:
    description: Fail, naming them, when declared hosts have none of the O(selectors), instead of listing them in C(missing).
    type: bool
    default: false
notes:
  - Each host's variables are read as C(hostvars[host]) gives them, variable by variable in Ansible's order of precedence, with
    the group variables merged once per distinct set of groups; a host with facts or a value holding a template is read
    through C(hostvars) itself.
"""

EXAMPLES = r"""
- name: Declarations of every node of the play
  ansible.builtin.set_fact:
    declared: "{{ hostvars | hpc_boot.bss.boot_declarations(ansible_play_hosts_all, class_var='bss_boot_config') }}"

- name: Reconcile them
  hpc_boot.bss.bootparams:
    url: https://bss.example.org:27778
    declarations: "{{ declared.declarations }}"
"""

RETURN = r"""
_value:
  description:
    - C(declarations), one per declared host in the order of O(hosts), for M(hpc_boot.bss.bootparams).
    - C(missing), the declared hosts without any of the O(selectors).
  type: dict
"""

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.plugin_utils.node_vars import NodeVarsReader

XNAME_NAME_RE = re.compile(r"^x[0-9]+c[0-9]s[0-9]+b[0-9]+n[0-9]+$")
SELECTORS = ("macs", "hosts", "nids")
IDENTITY_SOURCES = ("hostvars", "smd")


def as_int(value):
    """Jinja's ``int`` filter: a number, a numeric string, or 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def smd_identities(components, interfaces):
    """NID and MACs (lower-case, in SMD's order) by xname, from the two SMD answers."""
    nids = {}
    for component in components or []:
        if isinstance(component, Mapping) and component.get("ID"):
            nids[component["ID"]] = component.get("NID", 0)
    macs = {}
    for nic in interfaces or []:
        if not isinstance(nic, Mapping):
            continue
        mac = nic.get("MACAddress") or ""
        if mac:
            macs.setdefault(nic.get("ComponentID"), []).append(str(mac).lower())
    return nids, macs


def node_declaration(name, node, class_var, selectors, identity):
    """The declaration of one host and whether it has a selector; ``node`` maps the host's variables."""
    xname = node["bss_xname"] if "bss_xname" in node else (name if XNAME_NAME_RE.match(name) else "")
    xname = xname or ""
    if identity is None:
        macs = node["bss_macs"] if "bss_macs" in node else []
        nid = node["bss_nid"] if "bss_nid" in node else 0
    else:
        macs = identity[1].get(xname, [])
        nid = identity[0].get(xname, 0)
    declaration = {}
    if "macs" in selectors and macs:
        declaration["macs"] = macs
    if "hosts" in selectors and xname:
        declaration["hosts"] = [xname]
    if "nids" in selectors and as_int(nid) > 0:
        declaration["nids"] = [as_int(nid)]
    has_selector = bool(declaration)
    declared = node[class_var]
    for field in ("kernel", "initrd", "params"):
        declaration[field] = declared.get(field, "") if isinstance(declared, Mapping) else ""
    return declaration, has_selector


def boot_declarations(hostvars, hosts, class_var="bss_boot_config", selectors=("macs", "hosts"), identity_source="hostvars",
                      smd_components=None, smd_interfaces=None, fail_on_missing=False):
    unknown = [selector for selector in selectors or [] if selector not in SELECTORS]
    if unknown:
        raise AnsibleFilterError(f"boot_declarations: selectors must be among {', '.join(SELECTORS)}, got {unknown[0]!r}")
    if identity_source not in IDENTITY_SOURCES:
        raise AnsibleFilterError(f"boot_declarations: identity_source must be one of {', '.join(IDENTITY_SOURCES)}, "
                                 f"got {identity_source!r}")
    identity = smd_identities(smd_components, smd_interfaces) if identity_source == "smd" else None
    wanted = frozenset(selectors or [])
    reader = NodeVarsReader(hostvars, (class_var, "bss_xname", "bss_macs", "bss_nid"))
    declarations = []
    missing = []
    for name in hosts or []:
        node = reader.read(name)
        if class_var not in node:
            continue
        declaration, has_selector = node_declaration(name, node, class_var, wanted, identity)
        if not has_selector:
            missing.append(name)
        declarations.append(declaration)
    if missing and fail_on_missing:
        raise AnsibleFilterError("No %s known for %s (identity source %s)" % (" or ".join(selectors), ", ".join(missing), identity_source))
    return {"declarations": declarations, "missing": missing}


class FilterModule:
    def filters(self):
        return {"boot_declarations": boot_declarations}
