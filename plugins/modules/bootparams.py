#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bootparams
short_description: Declare the boot parameters (kernel, initrd, params) of BSS nodes
version_added: 0.1.0
description:
  - Makes the boot parameters held by OpenCHAMI's Boot Script Service (BSS) match a list of declarations, on either storage backend.
  - Reads every entry with one GET, computes a pure plan, and sends the fewest writes; a run with nothing to change sends no write.
  - Nodes that share a configuration are written with one request. Only declared nodes are touched unless O(exclusive=true).
  - "etcd mode: records are named as BSS names them (a MAC or NID known to SMD becomes the xname record, using C(/boot/v1/hosts));
    records holding cloud-init data are changed with PATCH so that data survives (see O(keep_cloud_init))."
  - "postgres mode: never sends a PUT or PATCH without selectors (BSS would rewrite every node), refuses tag names such as C(Default)
    or C(Global) (BSS silently drops them), and warns about declarations keyed only by xname, because iPXE asks by MAC."
author:
  - hpc_boot.bss developers (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_api
  - hpc_boot.bss.bss_api.attributes_write
options:
  declarations:
    description:
      - Boot parameters, each a mapping with the keys of an ochami/BSS C(BootParams) payload.
      - C(kernel) (required when O(state=present)) and C(initrd) are http(s) or s3 URLs or paths, never inline data.
      - C(params) is one line of kernel parameters without control characters; runs of spaces collapse to one.
        BSS puts it on the iPXE C(kernel) line before C(|| goto boot_retry), so a word that iPXE reads as an operator
        (C(||), C(&&), C(;)) or that starts a comment (C(#...)) is refused, as is a C(kernel) or C(initrd) starting
        with C(-). Settings such as C(${SPIRE_JOIN_TOKEN}) and C(;) or C(#) inside a word (C(ds=nocloud-net;s=...)) are fine.
      - C(macs) (colon form, any case, stored lower case), C(hosts) (node xnames, or in etcd mode tag names such as C(Default)) and
        C(nids) (positive integers) select the nodes; at least one is required.
    type: list
    elements: dict
    default: []
  src:
    description:
      - ochami-style payload files (YAML or JSON) read on the host that runs the module, each a single C(BootParams) object or a list.
      - Their entries are added to O(declarations). C(cloud-init) data in them is ignored with a warning.
    type: list
    elements: path
    default: []
  state:
    description:
      - V(present) makes the declared nodes boot with the declared kernel, initrd and params.
      - V(absent) deletes the boot parameters of the declared nodes; kernel, initrd and params are then ignored.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - Also delete the boot parameters of every node that BSS holds and no declaration names (image records in etcd mode are kept).
      - Guarded by O(max_delete_share).
    type: bool
    default: false
  max_delete_share:
    description:
      - With O(exclusive=true), refuse to delete more than this share (0 to 1) of the entries BSS holds, unless O(allow_large_delete=true).
    type: float
    default: 0.25
  allow_large_delete:
    description:
      - Allow O(exclusive=true) to delete more than O(max_delete_share) of the entries.
    type: bool
    default: false
  keep_cloud_init:
    description:
      - etcd mode only. Records that carry cloud-init data are updated with PATCH, which keeps that data. When a PATCH cannot express the
        change (an initrd or params must become empty) the module fails instead of erasing the data.
      - Set V(false) to replace such records with PUT; their cloud-init data is lost and a warning says so.
    type: bool
    default: true
notes:
  - With more than 100 O(declarations) the result's C(invocation) gives their number instead of echoing them.
  - Run it once per play against the controller (C(run_once), C(delegate_to=localhost)) with all nodes in one call; looping over nodes
    defeats the single read and the grouping of writes.
"""

EXAMPLES = r"""
- name: Compute nodes boot Rocky 9 from S3
  hpc_boot.bss.bootparams:
    url: https://demo.openchami.cluster:8443
    cluster: demo
    declarations:
      - kernel: http://172.16.0.254:9000/boot-images/compute/rocky9/vmlinuz
        initrd: http://172.16.0.254:9000/boot-images/compute/rocky9/initramfs.img
        params: nomodeset ro root=live:http://172.16.0.254:9000/boot-images/compute/rocky9/rootfs ip=dhcp console=ttyS0,115200
        macs: [de:ca:fc:0f:fe:e1, de:ca:fc:0f:fe:e2]

- name: Apply the payload files kept in git, and remove every undeclared node
  hpc_boot.bss.bootparams:
    url: http://127.0.0.1:27778
    src:
      - /etc/openchami/data/boot/bss/compute.yaml
      - /etc/openchami/data/boot/bss/io.yaml
    exclusive: true

- name: Forget a decommissioned node
  hpc_boot.bss.bootparams:
    url: http://127.0.0.1:27778
    state: absent
    declarations:
      - macs: [de:ca:fc:0f:fe:e9]
"""

RETURN = r"""
backend:
  description: Storage backend of BSS, detected or as given.
  returned: always
  type: str
  sample: postgres
requests:
  description: The writes sent (or, in check mode, that would be sent), in order, with their JSON bodies.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "PUT", "body": {"macs": ["de:ca:fc:0f:fe:e1"], "kernel": "http://10.1.0.1/vmlinuz"}}]
nodes_declared:
  description: Number of nodes (xnames, MACs, NIDs or tags) named by the declarations.
  returned: always
  type: int
  sample: 1000
nodes_changed:
  description: Number of nodes whose boot parameters the run changes (or deletes).
  returned: always
  type: int
  sample: 1
"""

import json
import os

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_plan as planner
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_module import BssModule

try:
    import yaml
    HAS_YAML = True
    PARSE_ERRORS = (ValueError, yaml.YAMLError)
except ImportError:  # pragma: no cover - ansible-core always ships PyYAML
    HAS_YAML = False
    PARSE_ERRORS = (ValueError,)


ECHO_LIMIT = 100


def read_payload_file(path):
    """The BootParams payloads of an ochami-style YAML or JSON file, as a list of mappings."""
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise model.BootParamsError("src: cannot read %r: %s" % (path, exc))
    try:
        data = yaml.safe_load(text) if HAS_YAML else json.loads(text)
    except PARSE_ERRORS as exc:
        raise model.BootParamsError("src: %r is not valid YAML or JSON: %s" % (path, exc))
    if data is None:
        return []
    payloads = data if isinstance(data, list) else [data]
    for payload in payloads:
        if not isinstance(payload, dict):
            raise model.BootParamsError("src: %r holds %r, expected BootParams mappings" % (path, payload))
    return payloads


def gather_declarations(bss):
    params = bss.params
    require_kernel = params["state"] == "present"
    declarations = model.parse_declarations(params["declarations"], require_kernel)
    for path in params["src"]:
        payloads = read_payload_file(path)
        for payload in payloads:
            if model.has_cloud_init(payload):
                bss.warn("src %s: cloud-init data is ignored; bootparams manages kernel, initrd and params" % path)
        declarations += model.parse_declarations([dict((k, v) for k, v in p.items() if k != "cloud-init") for p in payloads],
                                                 require_kernel, prefix="src %s" % os.path.basename(path))
    return declarations


def image_param_warnings(declarations, images):
    """etcd mode: image records with their own params append them to every node booting that image."""
    used = set()
    for declaration in declarations:
        used.update(path for path in (declaration.config.kernel, declaration.config.initrd) if path)
    return ["image record %s carries image-level params %r: BSS appends them to the command line of every node booting it"
            % (image["kernel"] or image["initrd"], image["params"])
            for image in images if image["params"] and (image["kernel"] or image["initrd"]) in used]


def reconcile(bss):
    params = bss.params
    declarations = gather_declarations(bss)
    backend = bss.backend
    for warning in model.check_backend_rules(declarations, backend):
        bss.warn(warning)
    client = bss.client
    entries = client.list_bootparams()
    resolve = None
    if backend == "etcd" and any(model.label_kind(label) != "hosts" for d in declarations for label in d.labels):
        resolve = model.smd_resolver(client.list_hosts())
    current, cloud_init, images = model.current_nodes(entries)
    declared = model.declared_targets(declarations, resolve)
    for warning in image_param_warnings(declarations, images):
        bss.warn(warning)
    if params["state"] == "present":
        desired = model.desired_nodes(declarations, resolve)
        plan = planner.plan_present(desired, current, backend, cloud_init, params["keep_cloud_init"])
    else:
        plan = planner.plan_absent(declared, current, backend)
    if params["exclusive"]:
        plan = planner.plan_exclusive(plan, declared, current, backend, params["max_delete_share"], params["allow_large_delete"])
    for warning in plan.warnings:
        bss.warn(warning)
    planner.check_selectors(plan.requests, backend)
    if not bss.check_mode:
        for request in plan.requests:
            client.write_bootparams(request.method, request.body)
    result = dict(changed=plan.changed, backend=backend, requests=plan.request_list(),
                  nodes_declared=len(declared), nodes_changed=len(plan.after))
    if bss.diff_mode:
        result["diff"] = plan.diff()
    if len(params["declarations"]) > ECHO_LIMIT:
        # Ansible echoes a module's arguments back in ``invocation``, then copies and converts that result on the
        # controller: thousands of declarations cost seconds a run. ``requests`` and the diff say what changed.
        result["invocation"] = {"module_args": dict(params, declarations="%d declarations (not echoed)" % len(params["declarations"]))}
    return result


def main():
    bss = BssModule(
        argument_spec=dict(
            declarations=dict(type="list", elements="dict", default=[]),
            src=dict(type="list", elements="path", default=[]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            exclusive=dict(type="bool", default=False),
            max_delete_share=dict(type="float", default=0.25),
            allow_large_delete=dict(type="bool", default=False),
            keep_cloud_init=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    bss.run(reconcile)


if __name__ == "__main__":
    main()
