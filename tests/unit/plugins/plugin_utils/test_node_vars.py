# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NodeVarsReader against Ansible's own hostvars, on an inventory that exercises every layer of precedence."""

from __future__ import annotations

import os
import warnings

import pytest

from ansible import context
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
from ansible.vars.hostvars import HostVars

from ansible_collections.hpc_boot.bss.plugins.plugin_utils.node_vars import NodeVarsReader, may_be_template

NAMES = ("v_all", "v_pc", "v_prio", "v_prio2", "v_host", "v_play", "v_extra", "v_tpl", "v_dict", "v_missing")
INI = """
[all:vars]
v_all=all_ini
v_pc=all_ini
[parent:children]
child
[parent:vars]
v_pc=parent_ini
v_dict={"a": 1}
[child]
n1 v_host=host_ini
n2
n3
n4
[child:vars]
v_pc=child_ini
[prio_a]
n2
n4
[prio_a:vars]
ansible_group_priority=10
v_prio=a
v_prio2=a
[prio_b]
n2
n4
[prio_b:vars]
v_prio=b
v_prio2=b
[other]
n5 v_extra=host_ini
"""
FILES = {
    "inventory/group_vars/all.yml": "v_all: all_dir\nv_host: all_dir\n",
    "inventory/group_vars/child.yml": "v_host: child_dir\nv_play: child_dir\n",
    "inventory/group_vars/prio_b.yml": "v_prio: b_dir\n",
    "inventory/host_vars/n2.yml": "v_host: n2_dir\nv_tpl: \"{{ v_all }}-n2\"\n",
    "play/group_vars/parent.yml": "v_play: parent_play\nv_dict: {b: 2}\n",
    "play/host_vars/n1.yml": "v_play: n1_play\n",
}


@pytest.fixture()
def hostvars(tmp_path):
    for path, text in dict(FILES, **{"inventory/hosts.ini": INI}).items():
        os.makedirs(os.path.dirname(str(tmp_path / path)), exist_ok=True)
        (tmp_path / path).write_text(text)
    saved = context.CLIARGS
    finder_before = AnsibleCollectionConfig.collection_finder
    context.CLIARGS = ImmutableDict(extra_vars=("v_extra=extra_cli",))
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.vars.manager import VariableManager
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            init_plugin_loader()
        loader = DataLoader()
        loader.set_basedir(str(tmp_path / "play"))
        inventory = InventoryManager(loader=loader, sources=[str(tmp_path / "inventory" / "hosts.ini")])
        manager = VariableManager(loader=loader, inventory=inventory)
        manager.set_nonpersistent_facts("n4", {"v_pc": "set_fact"})
        manager.set_host_facts("n3", {"v_all": "fact"})
        yield HostVars(inventory, manager, loader)
    finally:
        context.CLIARGS = saved
        # Ansible's collection finder installed here would double the package paths of the collection (imported
        # through sys.path by conftest) for every later import in this worker: take it out again.
        if finder_before is None and AnsibleCollectionConfig.collection_finder is not None:
            _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access


def ansible_values(hostvars, name):
    node = hostvars[name]
    return {key: node[key] for key in NAMES if key in node}


def test_every_host_reads_as_ansible_hostvars_gives_it(hostvars):
    reader = NodeVarsReader(hostvars, NAMES)
    assert reader.fast, "the Ansible internals the fast path uses are there"
    for name in ("n1", "n2", "n3", "n4", "n5"):
        assert reader.read(name) == ansible_values(hostvars, name), name
    assert reader.slow_hosts == 2, "n2 (a template) and n3 (facts) are read through hostvars, the others layer by layer"


def test_precedence_as_users_see_it(hostvars):
    reader = NodeVarsReader(hostvars, NAMES)
    n1, n2, n4, n5 = (reader.read(name) for name in ("n1", "n2", "n4", "n5"))
    assert n1["v_pc"] == "child_ini" and n1["v_host"] == "host_ini" and n1["v_play"] == "n1_play"
    assert n1["v_all"] == "all_dir" and n1["v_extra"] == "extra_cli" and "v_missing" not in n1
    assert n2["v_prio2"] == "a", "ansible_group_priority 10 beats the name order"
    assert n2["v_prio"] == "b_dir", "group_vars files come after the inventory's group variables"
    assert n2["v_host"] == "n2_dir" and n2["v_tpl"] == "all_dir-n2"
    assert n4["v_prio2"] == "a" and n4["v_pc"] == "set_fact" and n4["v_dict"] == {"b": 2}
    assert n5["v_extra"] == "extra_cli" and n5["v_pc"] == "all_ini"


def test_a_plain_mapping_is_read_through_itself():
    reader = NodeVarsReader({"n1": {"v_all": 1, "other": 2}}, NAMES)
    assert not reader.fast and reader.read("n1") == {"v_all": 1} and reader.slow_hosts == 1


@pytest.mark.parametrize("value, expected", [("plain", False), ("{{ x }}", True), ({"k": ["a", "{% if %}"]}, True),
                                             (["{# c #}"], True), ({"{{ k }}": 1}, True), (3, False)])
def test_may_be_template(value, expected):
    assert may_be_template(value) is expected
