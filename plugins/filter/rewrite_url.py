# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rewrite_url
short_description: Rewrite a URL's prefix by the first matching rule
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Nodes and the host running a playbook may reach the same image server under different addresses. Given rules
    C({from, to}), returns the URL with the first matching C(from) prefix replaced by C(to), or unchanged.
options:
  _input:
    description: The rules, a list of mappings with C(from) and C(to).
    type: list
    elements: dict
    required: true
  url:
    description: The URL to rewrite.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check a kernel URL from the head node
  ansible.builtin.uri:
    url: "{{ [{'from': 'http://10.0.2.101/', 'to': 'http://127.0.0.1:8000/'}] | hpc_boot.bss.rewrite_url(kernel_url) }}"
    method: HEAD
"""

RETURN = r"""
_value:
  description: The rewritten URL.
  type: str
"""

from ansible.errors import AnsibleFilterError


def rewrite_url(rules, url):
    for rule in rules or []:
        if not isinstance(rule, dict) or "from" not in rule or "to" not in rule:
            raise AnsibleFilterError(f"rewrite_url: each rule needs 'from' and 'to', got {rule!r}")
        if url.startswith(rule["from"]):
            return rule["to"] + url[len(rule["from"]):]
    return url


class FilterModule:
    def filters(self):
        return {"rewrite_url": rewrite_url}
