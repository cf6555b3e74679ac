# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: boot_service_rollback
short_description: Boot parameters to write back to the etcd BSS so a rollback from boot-service loses nothing
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Given the parity table of boot-service against the old (etcd) BSS by every MAC, xname and NID, the scripts boot-service
    serves those lookups, boot-service's BootConfigurations and the nodes, returns M(hpc_boot.bss.bootparams) declarations
    (one per distinct configuration, keyed by xname) that make the etcd BSS serve each node with a differing lookup what
    boot-service serves it now.
  - The etcd BSS serves a node known to SMD its xname record whichever way it is asked, so a node is carried only when all
    its lookups get the same configuration from boot-service (a configuration selecting one MAC of a node with several is
    not carried).
  - The values come from the BootConfiguration boot-service chose (named in its script), not from the script, whose
    values are HTML-escaped and carry the C(BOOTIF=) boot-service appends. The chosen configuration's kernel and initrd must
    render to what the script loads, else the node is not carried.
  - Nodes boot-service does not boot, whose lookups get different configurations, or whose configuration cannot be told
    apart (several of the same name that render differently), are returned in C(not_carried) with what boot-service serves
    each lookup, to re-apply by hand.
  - Image-level params of the etcd kernel and initrd records are removed from the end of the carried params, as the etcd
    BSS appends them itself.
options:
  _input:
    description: The C(parity) list of M(hpc_boot.bss.bootscript_info) run with C(url) = boot-service (C(service=boot_service)),
      C(compare_url) = old BSS, and the nodes' MACs, xnames and NIDs.
    type: list
    elements: dict
    required: true
  scripts:
    description: The C(scripts) dictionary of that same M(hpc_boot.bss.bootscript_info) run.
    type: dict
    required: true
  configurations:
    description: Every BootConfiguration boot-service holds (C(GET /bootconfigurations)).
    type: list
    elements: dict
    required: true
  nodes:
    description: The nodes (C(xname), C(nid), C(macs)), as the P(hpc_boot.bss.smd_nodes#filter) filter gives them.
    type: list
    elements: dict
    required: true
  old_images:
    description: The C(images) list of M(hpc_boot.bss.bootparams_info) of the old BSS.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Declarations that carry post-rollout changes made on boot-service back to etcd
  ansible.builtin.set_fact:
    carry_back: "{{ parity.parity | hpc_boot.bss.boot_service_rollback(parity.scripts, configurations.json, nodes, old_info.images) }}"
"""

RETURN = r"""
_value:
  description:
    - C(declarations) for M(hpc_boot.bss.bootparams) (C(hosts), C(kernel), C(initrd), C(params)).
    - C(not_carried), one dict per node not written back, with C(node), C(reason) and C(served), what boot-service serves
      each of its lookups (C(kernel), C(initrd), C(params) as served, HTML escaping included).
  type: dict
"""

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_script import go_html_escape


def _strip_image_params(params, kernel, initrd, images):
    for image in sorted(images or [], key=lambda item: 0 if item.get("kernel") else 1, reverse=True):
        extra = image.get("params") or ""
        matches = (image.get("kernel") and image.get("kernel") == kernel) or (image.get("initrd") and image.get("initrd") == initrd)
        if not extra or not matches:
            continue
        if params.endswith(" " + extra):
            params = params[: -len(extra) - 1]
        elif params == extra:
            params = ""
    return params


def _renders_to(spec, served):
    """Whether a configuration's kernel and initrd are what the script loads (after boot-service's escaping)."""
    return go_html_escape(spec.get("kernel") or "") == served.get("kernel", "") and \
        go_html_escape(spec.get("initrd") or "") == served.get("initrd", "")


def chosen_spec(served, configurations):
    """(spec, None) of the configuration boot-service chose for this script, or (None, why not)."""
    served = served or {}
    if served.get("kind") != "boot":
        why = served.get("message") or served.get("ended_by") or served.get("kind") or "no answer"
        return None, "boot-service boots nothing for this node (%s)" % why
    name = served.get("config_name", "")
    named = [item.get("spec") or {} for item in configurations or []
             if go_html_escape((item.get("metadata") or {}).get("name") or "") == name]
    fitting = [spec for spec in named if _renders_to(spec, served)]
    distinct = dict(((spec.get("kernel"), spec.get("initrd") or "", spec.get("params") or ""), spec) for spec in fitting)
    if len(distinct) == 1:
        return list(distinct.values())[0], None
    if not named:
        return None, "no BootConfiguration named %r (the one boot-service's script names)" % name
    if not fitting:
        return None, "BootConfiguration %r does not render to the kernel and initrd boot-service serves" % name
    return None, "%d BootConfigurations named %r with different values: which one boot-service chose cannot be told" % (len(distinct), name)


def _labels(node):
    labels = [node.get("xname")] + [str(mac).lower() for mac in node.get("macs") or []]
    if str(node.get("nid") or "").isdigit() and int(node["nid"]) > 0:
        labels.append("nid%d" % int(node["nid"]))
    return labels


def _carry_node(node, scripts, configurations):
    """(spec, None) boot-service serves every lookup of this node, or (None, why not)."""
    specs = {}
    for label in _labels(node):
        if label not in (scripts or {}):
            continue
        spec, why_not = chosen_spec(scripts[label], configurations)
        if spec is None:
            return None, "%s: %s" % (label, why_not)
        specs[(spec.get("kernel"), spec.get("initrd") or "", spec.get("params") or "")] = spec
    if len(specs) != 1:
        return None, ("boot-service serves this node's lookups %d different configurations; the etcd BSS serves a node "
                      "one record by xname" % len(specs)) if specs else "boot-service was not asked for this node"
    return list(specs.values())[0], None


def boot_service_rollback(parity, scripts, configurations, nodes, old_images=None):
    differing = set(row.get("node") for row in parity or [] if not row.get("same"))
    groups = {}
    not_carried = []
    for node in nodes or []:
        labels = _labels(node)
        if not differing.intersection(labels):
            continue
        spec, why_not = _carry_node(node, scripts, configurations)
        if spec is None:
            served = dict((label, dict((key, (scripts or {}).get(label, {}).get(key, "")) for key in ("kind", "kernel", "initrd", "params")))
                          for label in labels if label in (scripts or {}))
            not_carried.append({"node": node.get("xname"), "reason": why_not, "served": served})
            continue
        kernel, initrd = spec.get("kernel") or "", spec.get("initrd") or ""
        params = _strip_image_params(spec.get("params") or "", kernel, initrd, old_images)
        groups.setdefault((kernel, initrd, params), []).append(node["xname"])
    declarations = []
    for (kernel, initrd, params), hosts in sorted(groups.items()):
        declaration = {"hosts": sorted(hosts), "kernel": kernel, "params": params}
        if initrd:
            declaration["initrd"] = initrd
        declarations.append(declaration)
    return {"declarations": declarations, "not_carried": sorted(not_carried, key=lambda item: item["node"])}


class FilterModule:
    def filters(self):
        return {"boot_service_rollback": boot_service_rollback}
