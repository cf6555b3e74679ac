# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A few variables of many hosts, as ``hostvars[host][name]`` gives them, without Ansible's whole merge per host.

``hostvars[host]`` runs ``VariableManager.get_vars`` for the host: every variable of every layer merged, the
facts cleaned (a glob over the connection plugins each time) and the host's group variables merged again for
every host, although thousands of nodes share the same groups. At 10,000 nodes that was most of the
``boot_config`` role's run. :class:`NodeVarsReader` reads only the variables asked for, layer by layer in
Ansible's order (``VariableManager.get_vars`` with a host and no play or task, which is what ``hostvars`` uses):

1. group layers, merged once per distinct set of groups, in the order of ``VARIABLE_PRECEDENCE``
   (``all`` first, then the host's groups sorted by depth, ``ansible_group_priority`` and name);
2. the host's inventory variables, then its ``host_vars`` from the inventory and playbook directories;
3. include_vars and set_fact/register results of the run, then extra vars.

It falls back to ``hostvars[host]`` itself for a host with gathered or cached facts, for a value holding a
template (it must be templated with that host's variables) and when Ansible's internals it relies on are not
there, so its answer is always Ansible's. ``slow_hosts`` counts the fallbacks.
"""

from __future__ import annotations

from ansible import constants as C
from ansible.inventory.helpers import get_group_vars, sort_groups
from ansible.utils.vars import combine_vars
from ansible.vars.plugins import get_vars_from_inventory_sources, get_vars_from_path

TEMPLATE_MARKS = ("{{", "{%", "{#")
GROUP_LAYERS = ("all_inventory", "all_plugins_inventory", "all_plugins_play",
                "groups_inventory", "groups_plugins_inventory", "groups_plugins_play")


def may_be_template(value):
    """True when ``value`` holds a string Ansible could template (checked through lists and mappings)."""
    if isinstance(value, str):
        return any(mark in value for mark in TEMPLATE_MARKS)
    if isinstance(value, dict):
        return any(may_be_template(key) or may_be_template(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(may_be_template(item) for item in value)
    return False


def _only(data, names):
    return {name: data[name] for name in names if name in data}


class NodeVarsReader(object):
    """Reads ``names`` for one host after another from Ansible's ``hostvars`` object."""

    def __init__(self, hostvars, names):
        self.names = tuple(names)
        self.slow_hosts = 0
        self._hostvars = hostvars
        self._groups_cache = {}
        try:
            self._manager = hostvars._variable_manager
            self._inventory = hostvars._inventory
            self._loader = hostvars._loader
            self._sources = self._inventory._sources
            self._caches = (self._manager._fact_cache, self._manager._vars_cache, self._manager._nonpersistent_fact_cache)
            self._extra = _only(self._manager._extra_vars, self.names)
            self._basedirs = [self._loader.get_basedir()] if self._manager.safe_basedir else []
            self.fast = set(C.VARIABLE_PRECEDENCE) <= set(GROUP_LAYERS)
        except AttributeError:
            self.fast = False

    def read(self, name):
        """The host's values of ``names`` that it has, as a dict."""
        if self.fast:
            values = self._read_layers(name)
            if values is not None and not may_be_template(values):
                return values
        self.slow_hosts += 1
        node = self._hostvars[name]
        return {key: node[key] for key in self.names if key in node}

    def _plugins(self, entities):
        data = _only(get_vars_from_inventory_sources(self._loader, self._sources, entities, "task"), self.names)
        for path in self._basedirs:
            data = combine_vars(data, _only(get_vars_from_path(self._loader, path, entities, "task"), self.names))
        return data

    def _group_layers(self, host):
        groups = [group for group in host.get_groups() if group.name != "all"]
        key = tuple(sorted(group.name for group in groups))
        if key not in self._groups_cache:
            all_group = self._inventory.groups.get("all")
            ordered = sort_groups(groups)
            layers = {
                "all_inventory": all_group.get_vars,
                "all_plugins_inventory": lambda: get_vars_from_inventory_sources(self._loader, self._sources, [all_group], "task"),
                "all_plugins_play": lambda: self._play_plugins([all_group]),
                "groups_inventory": lambda: get_group_vars(ordered),
                "groups_plugins_inventory": lambda: get_vars_from_inventory_sources(self._loader, self._sources, ordered, "task"),
                "groups_plugins_play": lambda: self._play_plugins(ordered),
            }
            data = {}
            for entry in C.VARIABLE_PRECEDENCE:
                data = combine_vars(data, _only(layers[entry](), self.names))
            self._groups_cache[key] = data
        return self._groups_cache[key]

    def _play_plugins(self, entities):
        data = {}
        for path in self._basedirs:
            data = combine_vars(data, get_vars_from_path(self._loader, path, entities, "task"))
        return data

    def _read_layers(self, name):
        host = self._inventory.get_host(name)
        if host is None:
            return None
        facts, vars_cache, set_facts = self._caches
        try:
            if facts.get(name):
                return None
        except KeyError:
            pass
        data = self._group_layers(host)
        data = combine_vars(data, _only(host.get_vars(), self.names))
        data = combine_vars(data, self._plugins([host]))
        data = combine_vars(data, _only(vars_cache.get(name, {}), self.names))
        data = combine_vars(data, _only(set_facts.get(name, {}), self.names))
        return combine_vars(data, self._extra)
