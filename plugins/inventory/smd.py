# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: smd
short_description: Build inventory from OpenCHAMI's State Manager (SMD / HSM v2)
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Creates one host per SMD node component, named after its xname or after a NID pattern such as C(nid{nid:06d}).
  - Host variables carry the node identity this collection's roles use (C(bss_xname), C(bss_nid), C(bss_macs)), plus role, subrole,
    state and the SMD group labels.
  - Creates one Ansible group per SMD group label, per role and per subrole, so boot configuration declared in C(group_vars)
    follows SMD groups.
  - Reads C(State/Components), C(Inventory/EthernetInterfaces) and C(memberships) from the HSM v2 API, three requests in all.
  - The inventory file name must end with C(smd.yml) or C(smd.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [hpc_boot.bss.smd]
  url:
    description:
      - Base URL of SMD, for example C(https://smd.example.org:27779); C(/hsm/v2) is appended unless already present.
    type: str
    required: true
    env:
      - name: SMD_URL
      - name: HSM_URL
  token:
    description:
      - Bearer token sent to SMD.
      - When not set, the token is read from the environment variable named by O(token_env), or, when O(cluster) is set, from
        C(<CLUSTER>_ACCESS_TOKEN) as the C(ochami) CLI does.
    type: str
  token_env:
    description: Name of an environment variable holding the bearer token.
    type: str
    default: SMD_ACCESS_TOKEN
  cluster:
    description: Cluster name; the token is then read from C(<CLUSTER>_ACCESS_TOKEN) (upper-cased, dashes as underscores) if O(token) is not set.
    type: str
  validate_certs:
    description: Verify SMD's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle used to verify SMD's certificate.
    type: path
  timeout:
    description: Seconds to wait for each SMD request.
    type: int
    default: 30
  hostname:
    description:
      - How hosts are named. A Python format string over the node's fields C(xname), C(nid), C(role), C(subrole).
      - Examples are C({xname}) (the default) and C(nid{nid:06d}).
    type: str
    default: "{xname}"
  types:
    description: SMD component types to include.
    type: list
    elements: str
    default: [Node]
  roles:
    description: Only include nodes with one of these SMD roles (case-insensitive). Empty means all.
    type: list
    elements: str
    default: []
  subroles:
    description: Only include nodes with one of these SMD subroles (case-insensitive). Empty means all.
    type: list
    elements: str
    default: []
  states:
    description: Only include nodes in one of these SMD states (case-insensitive), for example C(Ready). Empty means all.
    type: list
    elements: str
    default: []
  nodes_group:
    description: Group holding every host this plugin adds (C(playbooks/site.yml) configures the boot of this group's nodes).
    type: str
    default: smd_nodes
  group_prefix:
    description: Prefix of the Ansible groups made from SMD group labels.
    type: str
    default: ""
  role_group_prefix:
    description: Prefix of the Ansible groups made from SMD roles; the role is lower-cased.
    type: str
    default: role_
  subrole_group_prefix:
    description: Prefix of the Ansible groups made from SMD subroles; the subrole is lower-cased.
    type: str
    default: subrole_
"""

EXAMPLES = r"""
---
# smd.yml: every Ready compute node, named by xname, grouped by SMD labels, role and subrole
plugin: hpc_boot.bss.smd
url: https://smd.cluster.example.org
cluster: demo            # token from DEMO_ACCESS_TOKEN
roles: [Compute]
states: [Ready]

---
# nid-style host names, with a cache and an extra constructed group
plugin: hpc_boot.bss.smd
url: http://127.0.0.1:27779
hostname: "nid{nid:06d}"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/ansible/smd
keyed_groups:
  - key: bss_state
    prefix: state
"""

import json
import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.hpc_boot.bss.plugins.module_utils.smd_inventory import (
    SmdInventoryError,
    build_hosts,
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """SMD components as Ansible hosts, SMD groups, roles and subroles as Ansible groups."""

    NAME = "hpc_boot.bss.smd"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("smd.yml", "smd.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        payload = None
        if use_cache:
            try:
                payload = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if payload is None:
            payload = self._fetch()
        if update_cache:
            self._cache[cache_key] = payload
        try:
            hosts = build_hosts(
                payload,
                hostname=self.get_option("hostname"),
                types=self.get_option("types"),
                roles=self.get_option("roles"),
                subroles=self.get_option("subroles"),
                states=self.get_option("states"),
            )
        except SmdInventoryError as exc:
            raise AnsibleParserError(f"SMD inventory from {self.get_option('url')}: {exc}") from exc
        self._populate(hosts)

    def _token(self):
        token = self.get_option("token")
        if token:
            return token
        cluster = self.get_option("cluster")
        if cluster:
            token = os.environ.get(cluster.upper().replace("-", "_") + "_ACCESS_TOKEN")
            if token:
                return token
        return os.environ.get(self.get_option("token_env") or "") or None

    def _get(self, base, path):
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = "Bearer " + token
        url = base + path
        try:
            response = open_url(url, headers=headers, validate_certs=self.get_option("validate_certs"),
                                ca_path=self.get_option("ca_path"), timeout=self.get_option("timeout"),
                                method="GET")
            return json.loads(response.read())
        except ValueError as exc:
            raise AnsibleError(f"Failed to read SMD answer from GET {url}: {to_native(exc)}") from exc
        except Exception as exc:  # open_url raises several error types; keep the cause, never the token
            raise AnsibleError(f"Failed to GET {url}: {to_native(exc)}") from exc

    def _fetch(self):
        base = self.get_option("url").rstrip("/")
        if not base.endswith("/hsm/v2"):
            base += "/hsm/v2"
        return {
            "components": self._get(base, "/State/Components"),
            "interfaces": self._get(base, "/Inventory/EthernetInterfaces"),
            "memberships": self._get(base, "/memberships"),
        }

    def _group(self, name):
        safe = self._sanitize_group_name(name)
        self.inventory.add_group(safe)
        return safe

    def _populate(self, hosts):
        strict = self.get_option("strict")
        for host in hosts:
            name = host["name"]
            self.inventory.add_host(name)
            for key, value in host["vars"].items():
                self.inventory.set_variable(name, key, value)
            groups = [self.get_option("nodes_group")] + [self.get_option("group_prefix") + label for label in host["labels"]]
            if host["vars"]["bss_role"]:
                groups.append(self.get_option("role_group_prefix") + host["vars"]["bss_role"].lower())
            if host["vars"]["bss_subrole"]:
                groups.append(self.get_option("subrole_group_prefix") + host["vars"]["bss_subrole"].lower())
            for group in groups:
                self.inventory.add_child(self._group(group), name)
            hostvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
