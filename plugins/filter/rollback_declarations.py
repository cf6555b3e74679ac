# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_declarations
short_description: Boot parameters to write back to the etcd BSS so a rollback loses nothing
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Given the parity table of the new (PostgreSQL) BSS against the old (etcd) one, compared by xname, and the new BSS's
    boot parameters by node, returns M(hpc_boot.bss.bootparams) declarations (one per distinct configuration, keyed by
    xname) that make the etcd BSS serve what the PostgreSQL BSS serves now.
  - Image-level params of the etcd kernel and initrd records are appended by the etcd BSS to every script, so they are
    removed from the end of the carried params to avoid serving them twice.
options:
  _input:
    description: The C(parity) list of M(hpc_boot.bss.bootscript_info) run with C(url) = new BSS, C(compare_url) = old BSS, C(hosts) = xnames.
    type: list
    elements: dict
    required: true
  new_nodes:
    description: The C(nodes) dictionary of M(hpc_boot.bss.bootparams_info) of the new BSS.
    type: dict
    required: true
  old_images:
    description: The C(images) list of M(hpc_boot.bss.bootparams_info) of the old BSS.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Declarations that carry post-rollout changes back to etcd
  ansible.builtin.set_fact:
    carry_back: "{{ parity.parity | hpc_boot.bss.rollback_declarations(new_info.nodes, old_info.images) }}"
"""

RETURN = r"""
_value:
  description: C(declarations) for M(hpc_boot.bss.bootparams), and C(not_carried), the differing nodes the new BSS has no entry for.
  type: dict
"""


def _strip_image_params(params, kernel, initrd, images):
    suffix = []
    for image in images or []:
        if image.get("params") and ((image.get("kernel") and image.get("kernel") == kernel)
                                    or (image.get("initrd") and image.get("initrd") == initrd)):
            suffix.append((0 if image.get("kernel") else 1, image["params"]))
    for _order, extra in sorted(suffix, reverse=True):
        if params.endswith(" " + extra):
            params = params[: -len(extra) - 1]
        elif params == extra:
            params = ""
    return params


def rollback_declarations(parity, new_nodes, old_images=None):
    groups = {}
    not_carried = []
    for row in parity or []:
        if row.get("same"):
            continue
        xname = row.get("node")
        entry = (new_nodes or {}).get(xname)
        if not entry or not entry.get("kernel"):
            not_carried.append(xname)
            continue
        kernel = entry.get("kernel", "")
        initrd = entry.get("initrd", "")
        params = _strip_image_params(entry.get("params", ""), kernel, initrd, old_images)
        groups.setdefault((kernel, initrd, params), []).append(xname)
    declarations = []
    for (kernel, initrd, params), hosts in sorted(groups.items()):
        declaration = {"hosts": sorted(hosts), "kernel": kernel, "params": params}
        if initrd:
            declaration["initrd"] = initrd
        declarations.append(declaration)
    return {"declarations": declarations, "not_carried": sorted(not_carried)}


class FilterModule:
    def filters(self):
        return {"rollback_declarations": rollback_declarations}
