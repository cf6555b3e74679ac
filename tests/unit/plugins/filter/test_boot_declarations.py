# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.filter.boot_declarations import boot_declarations

COMPUTE = {"kernel": "http://10.0.0.1/k/compute", "initrd": "http://10.0.0.1/i/compute", "params": "console=ttyS0 ip=dhcp"}
UAN = {"kernel": "http://10.0.0.1/k/uan", "params": "quiet"}


class CountingHostvars(dict):
    """Stands in for Ansible's hostvars: counts how often each host's variables are resolved."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = {}

    def __getitem__(self, key):
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().__getitem__(key)


def hostvars(**hosts):
    return CountingHostvars(hosts)


def test_each_declared_host_gets_its_class_and_its_identity_in_play_order():
    hvars = hostvars(
        x1c0s0b0n1={"bss_boot_config": COMPUTE, "bss_xname": "x1c0s0b0n1", "bss_macs": ["02:00:00:00:00:02"], "bss_nid": 2},
        x1c0s0b0n0={"bss_boot_config": COMPUTE, "bss_xname": "x1c0s0b0n0", "bss_macs": ["02:00:00:00:00:01"], "bss_nid": 1},
        login1={"bss_boot_config": UAN, "bss_xname": "x1c0s9b0n0", "bss_macs": ["02:00:00:00:00:09", "02:00:00:00:01:09"]},
    )
    result = boot_declarations(hvars, ["x1c0s0b0n1", "x1c0s0b0n0", "login1"])
    assert result == {"missing": [], "declarations": [
        {"macs": ["02:00:00:00:00:02"], "hosts": ["x1c0s0b0n1"], **COMPUTE},
        {"macs": ["02:00:00:00:00:01"], "hosts": ["x1c0s0b0n0"], **COMPUTE},
        {"macs": ["02:00:00:00:00:09", "02:00:00:00:01:09"], "hosts": ["x1c0s9b0n0"], "kernel": UAN["kernel"], "initrd": "",
         "params": "quiet"},
    ]}, "a class without initrd declares an empty one; NIDs are not a default selector"


def test_hosts_without_the_class_variable_are_left_alone_and_each_host_is_resolved_once():
    hvars = hostvars(
        x1c0s0b0n0={"bss_boot_config": COMPUTE, "bss_macs": ["02:00:00:00:00:01"]},
        mgmt1={"bss_xname": "x9c0s0b0n0", "bss_macs": ["02:00:00:00:09:99"]},
    )
    result = boot_declarations(hvars, ["x1c0s0b0n0", "mgmt1"])
    assert [d.get("hosts") for d in result["declarations"]] == [["x1c0s0b0n0"]], "xname taken from an xname-shaped inventory name"
    assert hvars.reads == {"x1c0s0b0n0": 1, "mgmt1": 1}, "hostvars resolution is the costly part at site scale: once per host"


def test_another_class_variable_name_is_honoured():
    hvars = hostvars(n1={"node_class": UAN, "bss_boot_config": COMPUTE, "bss_xname": "x1c0s0b0n0"})
    result = boot_declarations(hvars, ["n1"], class_var="node_class")
    assert result["declarations"] == [{"hosts": ["x1c0s0b0n0"], "kernel": UAN["kernel"], "initrd": "", "params": "quiet"}]


@pytest.mark.parametrize("selectors,expected", [
    (["macs"], {"macs": ["02:00:00:00:00:07"]}),
    (["hosts"], {"hosts": ["x1c0s1b0n3"]}),
    (["nids"], {"nids": [7]}),
    (["macs", "hosts", "nids"], {"macs": ["02:00:00:00:00:07"], "hosts": ["x1c0s1b0n3"], "nids": [7]}),
])
def test_only_the_chosen_selectors_are_declared(selectors, expected):
    hvars = hostvars(n7={"bss_boot_config": COMPUTE, "bss_xname": "x1c0s1b0n3", "bss_macs": ["02:00:00:00:00:07"], "bss_nid": "7"})
    result = boot_declarations(hvars, ["n7"], selectors=selectors)
    assert result["declarations"] == [dict(expected, **COMPUTE)], "a NID given as a string is declared as an integer"


def test_a_node_without_any_chosen_selector_is_reported_missing():
    hvars = hostvars(
        node9={"bss_boot_config": COMPUTE, "bss_nid": 0},
        x1c0s0b0n0={"bss_boot_config": COMPUTE},
    )
    result = boot_declarations(hvars, ["node9", "x1c0s0b0n0"], selectors=["macs", "nids"])
    assert result["missing"] == ["node9", "x1c0s0b0n0"]
    assert result["declarations"] == [dict(COMPUTE), dict(COMPUTE)]


def test_identity_from_smd_answers_by_xname_ignores_host_variables():
    components = [{"ID": "x1c0s0b0n0", "NID": 11, "Type": "Node"}, {"ID": "x1c0s0b0n1", "NID": 12, "Type": "Node"}]
    interfaces = [
        {"ComponentID": "x1c0s0b0n0", "MACAddress": "02:AA:00:00:00:01"},
        {"ComponentID": "x1c0s0b0n0", "MACAddress": "02:aa:00:00:01:01"},
        {"ComponentID": "x1c0s0b0n1", "MACAddress": ""},
    ]
    hvars = hostvars(
        x1c0s0b0n0={"bss_boot_config": COMPUTE, "bss_macs": ["02:ff:ff:ff:ff:ff"], "bss_nid": 99},
        uan1={"bss_boot_config": UAN, "bss_xname": "x1c0s0b0n1"},
    )
    result = boot_declarations(hvars, ["x1c0s0b0n0", "uan1"], selectors=["macs", "hosts", "nids"], identity_source="smd",
                               smd_components=components, smd_interfaces=interfaces)
    assert result["declarations"] == [
        {"macs": ["02:aa:00:00:00:01", "02:aa:00:00:01:01"], "hosts": ["x1c0s0b0n0"], "nids": [11], **COMPUTE},
        {"hosts": ["x1c0s0b0n1"], "nids": [12], "kernel": UAN["kernel"], "initrd": "", "params": "quiet"},
    ], "SMD's MACs, lower-cased, in SMD's order; an empty MACAddress is skipped"


def test_a_class_that_is_not_a_mapping_declares_empty_fields():
    hvars = hostvars(x1c0s0b0n0={"bss_boot_config": "compute", "bss_macs": ["02:00:00:00:00:01"]})
    result = boot_declarations(hvars, ["x1c0s0b0n0"])
    assert result["declarations"] == [{"macs": ["02:00:00:00:00:01"], "hosts": ["x1c0s0b0n0"], "kernel": "", "initrd": "", "params": ""}]


@pytest.mark.parametrize("kwargs,message", [
    ({"selectors": ["macs", "xnames"]}, "selectors must be among macs, hosts, nids, got 'xnames'"),
    ({"identity_source": "dns"}, "identity_source must be one of hostvars, smd, got 'dns'"),
])
def test_bad_options_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        boot_declarations(hostvars(), [], **kwargs)


def test_ten_thousand_nodes_in_one_pass():
    hvars = hostvars(**{"x1c0s%db0n%d" % divmod(i, 4): {"bss_boot_config": COMPUTE, "bss_macs": ["02:00:00:00:%02x:%02x" % divmod(i, 256)]}
                        for i in range(10000)})
    result = boot_declarations(hvars, list(hvars))
    assert len(result["declarations"]) == 10000 and result["missing"] == []
    assert result["declarations"][-1] == {"macs": ["02:00:00:00:27:0f"], "hosts": ["x1c0s2499b0n3"], **COMPUTE}
    assert all(count == 1 for count in hvars.reads.values())


def test_fail_on_missing_names_the_hosts_without_a_selector():
    hvars = hostvars(n1={"bss_boot_config": COMPUTE}, x1c0s0b0n0={"bss_boot_config": COMPUTE})
    assert boot_declarations(hvars, ["n1", "x1c0s0b0n0"])["missing"] == ["n1"]
    with pytest.raises(AnsibleFilterError, match=r"^No macs or hosts known for n1 \(identity source hostvars\)$"):
        boot_declarations(hvars, ["n1", "x1c0s0b0n0"], fail_on_missing=True)
