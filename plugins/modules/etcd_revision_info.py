#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: etcd_revision_info
short_description: Read the current revision of the etcd that holds an etcd-mode BSS's records
version_added: 0.1.0
description:
  - Asks etcd for the number of C(/params/) keys and returns the revision etcd answered at, and that count.
  - The cutover's parity phase records this revision before it compares the two BSS instances, so its proof says which
    etcd state it covers; every later change has a higher revision.
author:
  - hpc_boot.bss contributors (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.etcd
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Reads only.
options: {}
'''

EXAMPLES = r'''
- name: Which etcd revision does the parity check prove?
  hpc_boot.bss.etcd_revision_info:
    etcd_host: etcd.cluster.local
  register: proved
'''

RETURN = r'''
revision:
  description: etcd's revision at the time of the read.
  returned: always
  type: int
  sample: 48211
params_keys:
  description: Number of C(/params/) records at that revision.
  returned: always
  type: int
  sample: 10003
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils import etcd_source


def read_revision(client):
    """``(revision, number of /params/ keys)``; EtcdSourceError names the cause."""
    try:
        response = client.get_range_response("/params/", "/params0", count_only=True)
    except Exception as exc:  # grpc errors of many types
        raise etcd_source.EtcdSourceError("Failed to read etcd's revision: %s" % etcd_source.describe(exc)) from exc
    return int(response.header.revision), int(response.count)


def main():
    module = AnsibleModule(argument_spec=etcd_source.etcd_argument_spec(), supports_check_mode=True)
    if not etcd_source.HAS_ETCD3:
        module.fail_json(msg=missing_required_lib("etcd3 (python3-etcd3)"), exception=etcd_source.ETCD3_IMPORT_ERROR)
    try:
        client = etcd_source.connect(module.params)
        try:
            revision, count = read_revision(client)
        finally:
            client.close()
    except etcd_source.EtcdSourceError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, revision=revision, params_keys=count)


if __name__ == "__main__":
    main()
