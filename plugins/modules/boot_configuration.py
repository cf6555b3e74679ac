#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: boot_configuration
short_description: Declare boot-service BootConfigurations and the Node records that let it resolve nodes
version_added: 0.1.0
description:
  - Makes OpenCHAMI's boot-service (the successor of BSS since OpenCHAMI v0.2.0) hold the declared C(BootConfiguration)
    resources and, where needed, the C(Node) records it resolves a node by before it picks a configuration.
  - Reads each collection with one GET, computes a pure plan and sends one write per resource that really changes
    (POST to create, PUT to replace the spec, DELETE); a run with nothing to change sends no write.
  - "Identity: boot-service keys resources by a C(metadata.uid) of its own and does not keep names unique. A BootConfiguration
    is found by its C(metadata.name), a Node by its C(spec.xname). When boot-service holds two resources for one declared name or
    xname the module fails, naming their uids, instead of guessing."
  - Every declaration is checked before any write against what boot-service refuses (kernel and initrd must be http(s) URLs or
    absolute paths, host entries xnames, xname wildcards or C(default), MACs parseable, priority 0 to 100, Node xnames valid) and
    against the boot-script structure (no iPXE operator or comment word in params, no whitespace in an image reference). The error
    names the field and the value.
  - Only declared resources are touched unless O(exclusive=true).
author:
  - hpc_boot.bss developers (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.boot_service_api
  - hpc_boot.bss.boot_service_api.attributes_write
options:
  boot_configurations:
    description:
      - BootConfigurations, each found by O(boot_configurations[].name).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The C(metadata.name) that identifies the configuration.
        type: str
        required: true
      hosts:
        description:
          - Node xnames (or host names); a match scores 50.
          - boot-service accepts xname wildcards (C(x1000c0s0b0n*), C(x1000c0s*), C(x1000c*), C(x*); the star stands for a whole
            last number) and C(default), but v0.3.2 compares host entries for equality, so these match no node; the module warns.
            Use O(boot_configurations[].groups) for sets of nodes.
        type: list
        elements: str
      macs:
        description: MAC addresses (stored lower case, colon form); a node whose boot MAC matches scores 100.
        type: list
        elements: str
      nids:
        description: NIDs; a match scores 75.
        type: list
        elements: int
      groups:
        description: Node groups; each group the node is in scores 25.
        type: list
        elements: str
      profile:
        description: Boot profile; empty and C(default) are the same.
        type: str
      kernel:
        description: Kernel, an http(s) URL or an absolute path. Required with O(state=present).
        type: str
      initrd:
        description: Initrd, an http(s) URL or an absolute path.
        type: str
      params:
        description:
          - Kernel parameters, one line; runs of spaces collapse to one.
          - boot-service renders its script with Go's html/template, so C(&), C(<), C(>), quotes and C(+) reach iPXE
            HTML-escaped (C(a&b) becomes C(a&amp;b)); the module warns when a value has one.
        type: str
      priority:
        description: Tie-break between configurations with the same score, 0 to 100, higher wins.
        type: int
  nodes:
    description:
      - Node records, each found by O(nodes[].xname). boot-service answers a boot script only for a node it can resolve,
        from these records or from SMD when it runs with C(hsm_url).
      - boot-service resolves a MAC only through the boot MAC, so iPXE asking by another MAC of the node gets an error script.
      - Only the fields given are managed. A field left out keeps what boot-service holds (an import or its SMD sync may fill
        C(role) or C(groups)); an empty value clears it. MACs given through O(nodes[].macs) keep the C(ip) and C(type) stored for them.
    type: list
    elements: dict
    default: []
    suboptions:
      xname:
        description: The node xname.
        type: str
        required: true
      name:
        description: The C(metadata.name); a new record defaults to the xname, an existing one keeps its name.
        type: str
      nid:
        description: The NID.
        type: int
      boot_mac:
        description: The MAC the node boots from; defaults to the first MAC of O(nodes[].interfaces) or O(nodes[].macs).
        type: str
      interfaces:
        description: Network interfaces, each with C(mac), C(ip) and C(type).
        type: list
        elements: dict
      macs:
        description: Shorthand for interfaces that only have a MAC.
        type: list
        elements: str
      role:
        description: Node role.
        type: str
      sub_role:
        description: Node sub-role (C(subRole)).
        type: str
      hostname:
        description: Host name; configuration host patterns also match it.
        type: str
      groups:
        description: Groups the node is in (matched by configuration C(groups)).
        type: list
        elements: str
  declarations:
    description:
      - Per-node declarations in the format of M(hpc_boot.bss.bootparams) (C(kernel), C(initrd), C(params), C(macs), C(hosts),
        C(nids)), as the P(hpc_boot.bss.boot_declarations#filter) filter builds them.
      - Each becomes one BootConfiguration named O(declaration_prefix) followed by its first xname (else its first MAC, else
        C(nid<N>)) with all its selectors, so a rerun finds it by name and a change of class is a PUT of the same resource.
      - With O(declaration_nodes=true), a declaration naming exactly one node xname also declares that node's Node record
        (xname, NID, the first MAC as boot MAC, every MAC as an interface; other fields of an existing record are kept).
    type: list
    elements: dict
    default: []
  declaration_prefix:
    description: Name prefix of the BootConfigurations made from O(declarations).
    type: str
    default: node-
  declaration_nodes:
    description: Declare a Node record for each of O(declarations) that names one node xname. Set V(false) when boot-service resolves nodes from SMD.
    type: bool
    default: true
  state:
    description:
      - V(present) creates or replaces the declared resources.
      - V(absent) deletes the declared BootConfigurations and Node records (found by name and xname; other fields are ignored).
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - Also delete every BootConfiguration that is not declared, and every Node record that is not declared when at least one
        Node is declared. Guarded by O(max_delete_share), kind by kind.
    type: bool
    default: false
  max_delete_share:
    description: With O(exclusive=true), refuse to delete more than this share (0 to 1) of a kind's resources unless O(allow_large_delete=true).
    type: float
    default: 0.25
  allow_large_delete:
    description: Allow O(exclusive=true) to delete more than O(max_delete_share).
    type: bool
    default: false
notes:
  - Run it once against the controller (C(run_once), C(delegate_to=localhost)) with every resource in one call; looping over
    resources defeats the single read.
  - boot-service v0.3.2 scores a configuration for a node by MAC (100), NID (75), host pattern (50) and group (25), adds them up,
    and breaks ties by priority, then by name. A configuration without selectors is a catch-all (score 1).
seealso:
  - module: hpc_boot.bss.bootparams
    description: The same declarations for BSS.
"""

EXAMPLES = r"""
- name: Nodes of group compute boot Rocky 9; one node is pinned to a test image
  hpc_boot.bss.boot_configuration:
    url: http://127.0.0.1:8080
    boot_configurations:
      - name: compute
        groups: [compute]
        kernel: http://172.16.0.254:9000/boot-images/compute/rocky9/vmlinuz
        initrd: http://172.16.0.254:9000/boot-images/compute/rocky9/initramfs.img
        params: ro root=live:http://172.16.0.254:9000/boot-images/compute/rocky9/rootfs ip=dhcp console=ttyS0,115200
        priority: 10
      - name: compute-test
        macs: [de:ca:fc:0f:fe:e1]
        kernel: http://172.16.0.254:9000/boot-images/test/vmlinuz
    nodes:
      - xname: x1000c0s0b0n0
        nid: 1
        macs: [de:ca:fc:0f:fe:e1]
        groups: [compute]

- name: The boot_config role's declarations, with the Node records boot-service needs
  hpc_boot.bss.boot_configuration:
    url: "{{ boot_service_url }}"
    declarations: "{{ (hostvars | hpc_boot.bss.boot_declarations(ansible_play_hosts_all)).declarations }}"
  run_once: true
  delegate_to: localhost

- name: Remove a configuration
  hpc_boot.bss.boot_configuration:
    url: http://127.0.0.1:8080
    state: absent
    boot_configurations:
      - name: compute-test
"""

RETURN = r"""
requests:
  description: The writes sent (or, in check mode, that would be sent), in order; bodies as sent, without the token.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "PUT", "path": "/bootconfigurations/bootconfiguration-1a2b3c4d",
            "body": {"metadata": {"name": "compute"}, "spec": {"groups": ["compute"], "kernel": "http://10.1.0.1/vmlinuz"}}}]
configurations_declared:
  description: Number of BootConfigurations declared (from O(boot_configurations) and O(declarations)).
  returned: always
  type: int
  sample: 2
nodes_declared:
  description: Number of Node records declared (from O(nodes) and O(declarations)).
  returned: always
  type: int
  sample: 1
changes:
  description: Resources created, replaced and deleted, per kind.
  returned: always
  type: dict
  sample: {"bootconfigurations": {"created": 1, "replaced": 0, "deleted": 0}, "nodes": {"created": 1, "replaced": 0, "deleted": 0}}
"""

import collections

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_plan as planner
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_module import BootServiceModule

SAMPLES = 3


def _add(table, key, value, where, what):
    if key in table:
        raise model.BootServiceDeclarationError("%s: %s '%s' is declared twice (also at %s)" % (where, what, key, table[key][0]))
    table[key] = (where, value)


def gather(params):
    """``(configs, nodes, warnings)``: declared resources by name and by xname, validated, and what to warn about."""
    require_kernel = params["state"] == "present"
    configs = collections.OrderedDict()
    nodes = collections.OrderedDict()
    for index, raw in enumerate(params["boot_configurations"]):
        where = "boot_configurations[%d]" % index
        name, spec = model.parse_configuration(raw, where, require_kernel)
        _add(configs, name, (name, spec), where, "configuration")
    for index, raw in enumerate(params["nodes"]):
        where = "nodes[%d]" % index
        node = model.parse_node(raw, where)
        _add(nodes, node.xname, node, where, "node")
    nameless = []
    for index, raw in enumerate(params["declarations"]):
        where = "declarations[%d]" % index
        (name, spec), node = model.from_declaration(raw, where, params["declaration_prefix"], require_kernel,
                                                    params["declaration_nodes"])
        _add(configs, name, (name, spec), where, "configuration")
        if node is not None:
            _add(nodes, node.xname, node, where, "node")
        elif params["declaration_nodes"]:
            nameless.append(name)
    configs = collections.OrderedDict((key, value) for key, (_where, value) in configs.items())
    nodes = collections.OrderedDict((key, value) for key, (_where, value) in nodes.items())
    return configs, nodes, declaration_warnings(configs, nodes, nameless) if require_kernel else []


def _some(names):
    return ", ".join(names[:SAMPLES]) + (" and %d more" % (len(names) - SAMPLES) if len(names) > SAMPLES else "")


def declaration_warnings(configs, nodes, nameless):
    """What boot-service will do differently from the declaration, one line per kind of surprise."""
    warnings = []
    escaped = []
    for name, (_name, spec) in configs.items():
        for field in ("kernel", "initrd", "params"):
            rendered = model.html_escaped(spec.get(field))
            if rendered:
                escaped.append("%s.%s %r is served as %r" % (name, field, spec[field], rendered))
    if escaped:
        warnings.append("boot-service renders boot scripts with Go's html/template, so these values reach iPXE HTML-escaped: %s"
                        % _some(escaped))
    patterns = sorted(set(host for _name, spec in configs.values() for host in spec.get("hosts", []) if model.is_host_pattern(host)))
    if patterns:
        warnings.append("boot-service v0.3.2 accepts the host entries %s but compares host entries for equality, so they match "
                        "no node; use groups or exact xnames" % _some(patterns))
    extra_macs = [xname for xname, node in nodes.items() if len(node.spec.get("interfaces", [])) > 1]
    if extra_macs:
        warnings.append("boot-service resolves a node by its boot MAC only; iPXE asking by another MAC of %s gets an error script"
                        % _some(extra_macs))
    if nameless:
        warnings.append("no Node record for %s (no single node xname in the declaration): boot-service serves them only if it "
                        "resolves the node from SMD (hsm_url)" % _some(nameless))
    return warnings


def reconcile(service):
    params = service.params
    configs, nodes, warnings = gather(params)
    for warning in warnings:
        service.warn(warning)
    if params["max_delete_share"] < 0 or params["max_delete_share"] > 1:
        raise planner.PlanError("max_delete_share: %r is not a share between 0 and 1" % params["max_delete_share"])
    client = service.client
    current_configs = client.list(planner.CONFIGS)
    current_nodes = client.list(planner.NODES) if (nodes or params["exclusive"]) else []
    plan = planner.make_plan(configs, nodes, current_configs, current_nodes, params["state"], params["exclusive"],
                             params["max_delete_share"], params["allow_large_delete"])
    if not service.check_mode:
        for action in plan.actions:
            if action.verb == "create":
                client.create(action.kind, action.name, action.spec)
            elif action.verb == "replace":
                client.replace(action.kind, action.uid, action.name, action.spec)
            else:
                client.delete(action.kind, action.uid, missing_ok=True)
    result = dict(changed=plan.changed, requests=plan.requests(), configurations_declared=len(configs),
                  nodes_declared=len(nodes), changes=plan.counts())
    if service.diff_mode:
        result["diff"] = plan.diff()
    return result


def main():
    service = BootServiceModule(
        argument_spec=dict(
            boot_configurations=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True), hosts=dict(type="list", elements="str"),
                macs=dict(type="list", elements="str"), nids=dict(type="list", elements="int"),
                groups=dict(type="list", elements="str"), profile=dict(type="str"), kernel=dict(type="str"),
                initrd=dict(type="str"), params=dict(type="str"), priority=dict(type="int"))),
            nodes=dict(type="list", elements="dict", default=[], options=dict(
                xname=dict(type="str", required=True), name=dict(type="str"), nid=dict(type="int"),
                boot_mac=dict(type="str"), interfaces=dict(type="list", elements="dict"), macs=dict(type="list", elements="str"),
                role=dict(type="str"), sub_role=dict(type="str"), hostname=dict(type="str"),
                groups=dict(type="list", elements="str"))),
            declarations=dict(type="list", elements="dict", default=[]),
            declaration_prefix=dict(type="str", default="node-"),
            declaration_nodes=dict(type="bool", default=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            exclusive=dict(type="bool", default=False),
            max_delete_share=dict(type="float", default=0.25),
            allow_large_delete=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    service.run(reconcile)


if __name__ == "__main__":
    main()
