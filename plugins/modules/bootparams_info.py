#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bootparams_info
short_description: Read every BSS boot parameter entry, normalised and sorted, as data and as YAML or JSON text
version_added: 0.1.0
description:
  - Reads C(GET /boot/v1/bootparameters) once and returns the same normalised view on either storage backend.
  - Entries are grouped by (kernel, initrd, params), with sorted C(hosts), C(macs) and C(nids); this is the shape
    that M(hpc_boot.bss.bootparams) accepts in O(hpc_boot.bss.bootparams#module:src), so RV(text) can be kept in git and applied back.
  - RV(checksum) is the SHA-256 of RV(text); equal checksums mean equal boot parameters.
author:
  - hpc_boot.bss developers (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_api
  - hpc_boot.bss.bss_api.attributes_read
options:
  nodes:
    description:
      - Only report these nodes, each an xname, a MAC (any case) or a NID. Default is every node.
    type: list
    elements: str
    default: []
  format:
    description:
      - Format of RV(text).
    type: str
    choices: [yaml, json]
    default: yaml
"""

EXAMPLES = r"""
- name: Export the boot parameters for review in git
  hpc_boot.bss.bootparams_info:
    url: http://127.0.0.1:27778
  register: __bss_export

- name: Save them
  ansible.builtin.copy:
    content: "{{ __bss_export.text }}"
    dest: /etc/openchami/data/boot/bss/export.yaml
    mode: "0644"

- name: What does one node boot?
  hpc_boot.bss.bootparams_info:
    url: http://127.0.0.1:27778
    nodes: [x1000c0s0b0n0, "de:ca:fc:0f:fe:e1"]
"""

RETURN = r"""
backend:
  description: Storage backend of BSS, detected or as given.
  returned: always
  type: str
  sample: etcd
entries:
  description: Boot parameters grouped by configuration, sorted by kernel, initrd and params.
  returned: always
  type: list
  elements: dict
  sample: [{"macs": ["de:ca:fc:0f:fe:e1"], "kernel": "http://10.1.0.1/vmlinuz", "initrd": "http://10.1.0.1/initrd", "params": "quiet"}]
nodes:
  description: Boot parameters by node label (xname, lower-case MAC, C(nid<N>), or a tag in etcd mode).
  returned: always
  type: dict
  sample: {"de:ca:fc:0f:fe:e1": {"kernel": "http://10.1.0.1/vmlinuz", "initrd": "http://10.1.0.1/initrd", "params": "quiet"}}
images:
  description: etcd mode only, image records (kernel or initrd without nodes) and their image-level params, sorted.
  returned: always
  type: list
  elements: dict
  sample: []
text:
  description: RV(entries) as YAML or JSON text.
  returned: always
  type: str
checksum:
  description: SHA-256 (hex) of RV(text).
  returned: always
  type: str
"""

import hashlib
import json

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.module_utils.bss_module import BssModule

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core always ships PyYAML
    HAS_YAML = False


def node_filter(values):
    """The labels asked for: MACs lower-cased, NIDs as nid<N>; BootParamsError naming a bad value."""
    labels = set()
    for index, value in enumerate(values):
        where, field = "nodes", "[%d]" % index
        text = str(value).strip()
        if model.MAC_RE.match(text):
            labels.add(model.normalise_mac(text, where, field))
        elif text.isdigit():
            labels.add(model.nid_label(model.normalise_nid(int(text), where, field)))
        else:
            labels.add(model.check_host(text, where, field))
    return labels


def render(entries, fmt):
    if fmt == "json" or not HAS_YAML:
        return json.dumps(entries, indent=2, sort_keys=False) + "\n"
    return yaml.safe_dump(entries, default_flow_style=False, sort_keys=False)


def gather(bss):
    labels = node_filter(bss.params["nodes"])
    backend = bss.backend
    current, _cloud_init, images = model.current_nodes(bss.client.list_bootparams())
    chosen = sorted(label for label in current if not labels or label in labels)
    entries = model.entries_by_config(current, chosen)
    nodes = {}
    for label in chosen:
        configs = current[label]
        nodes[label] = model.config_dict(configs[0]) if len(configs) == 1 else [model.config_dict(c) for c in configs]
    text = render(entries, bss.params["format"])
    return dict(changed=False, backend=backend, entries=entries, nodes=nodes,
                images=sorted(images, key=lambda i: (i["kernel"], i["initrd"], i["params"])),
                text=text, checksum=hashlib.sha256(text.encode("utf-8")).hexdigest())


def main():
    bss = BssModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="str", default=[]),
            format=dict(type="str", default="yaml", choices=["yaml", "json"]),
        ),
        supports_check_mode=True,
    )
    bss.run(gather)


if __name__ == "__main__":
    main()
