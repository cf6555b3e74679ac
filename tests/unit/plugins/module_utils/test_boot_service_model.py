"""Declared boot-service resources: what boot-service would refuse fails here, naming field and value."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_model as model

K = "http://10.0.0.1/boot/vmlinuz"


def config(**fields):
    raw = {"name": "compute", "kernel": K}
    raw.update(fields)
    return raw


@pytest.mark.parametrize("fields, message", [
    ({"kernel": ""}, "compute.kernel: '' is required"),
    ({"kernel": "ftp://10.0.0.1/vmlinuz"}, "compute.kernel: 'ftp://10.0.0.1/vmlinuz' is neither an http(s) URL nor an absolute path"),
    ({"kernel": "s3://boot-images/vmlinuz"}, "is neither an http(s) URL"),
    ({"kernel": "vmlinuz"}, "compute.kernel: 'vmlinuz' is neither"),
    ({"kernel": "/"}, "compute.kernel: '/' is neither"),
    ({"kernel": "http://k/v mlinuz"}, "contains whitespace"),
    ({"initrd": "-n initrd"}, "compute.initrd"),
    ({"priority": 101}, "compute.priority: 101 is not a priority boot-service accepts (0..100)"),
    ({"priority": -1}, "compute.priority: -1"),
    ({"hosts": ["x1000c0s0b0"]}, "compute.hosts: 'x1000c0s0b0' is not a node xname"),
    ({"hosts": ["x1000c0*"]}, "compute.hosts: 'x1000c0*'"),
    ({"hosts": ["x1000c0s1*"]}, "compute.hosts: 'x1000c0s1*'"),
    ({"hosts": ["*"]}, "compute.hosts: '*'"),
    ({"macs": ["de:ca:fc:0f:fe"]}, "compute.macs: 'de:ca:fc:0f:fe' is not a MAC address"),
    ({"macs": ["de:ca:fc-0f:fe:e1"]}, "is not a MAC address"),
    ({"nids": [-4]}, "compute.nids: -4 is not a NID"),
    ({"nids": [2 ** 31]}, "is not a NID"),
    ({"params": "quiet || reboot"}, "compute.params: 'quiet || reboot' has the token '||'"),
    ({"params": "quiet #comment"}, "compute.params: 'quiet #comment' has the token '#comment'"),
    ({"params": "quiet\nreboot"}, "control character"),
    ({"groups": [""]}, "compute.groups[0]: '' is empty"),
    ({"name": " compute"}, "compute.name: ' compute' must be a non-empty name"),
    ({"hostz": ["x1000c0s0b0n0"]}, "compute.hostz: ['x1000c0s0b0n0'] is not a known field"),
])
def test_a_configuration_boot_service_would_refuse_fails_naming_field_and_value(fields, message):
    with pytest.raises(model.BootServiceDeclarationError) as caught:
        model.parse_configuration(config(**fields), "compute")
    assert message in str(caught.value)


def test_a_configuration_is_normalised_to_the_json_boot_service_stores():
    name, spec = model.parse_configuration(config(hosts=["x1000c0s0b0n0", "x1000c0s*", "default"], macs=["DE-CA-FC-0F-FE-E1"],
                                                  nids=["7"], groups=["compute"], profile="default", initrd="/images/initrd",
                                                  params="  ro   ip=dhcp ", priority=0), "c")
    assert name == "compute"
    assert spec == {"hosts": ["x1000c0s0b0n0", "x1000c0s*", "default"], "macs": ["de:ca:fc:0f:fe:e1"], "nids": [7],
                    "groups": ["compute"], "kernel": K, "initrd": "/images/initrd", "params": "ro ip=dhcp"}
    assert model.parse_configuration({"name": "gone"}, "c", require_kernel=False) == ("gone", {})


@pytest.mark.parametrize("mac, expected", [
    ("DE:CA:FC:0F:FE:E1", "de:ca:fc:0f:fe:e1"),
    ("de-ca-fc-0f-fe-e1", "de:ca:fc:0f:fe:e1"),
    ("02:00:5e:10:00:00:00:01", "02:00:5e:10:00:00:00:01"),
    ("DECA.FC0F.FEE1", "deca.fc0f.fee1"),
])
def test_macs_are_read_as_gos_parsemac_reads_them(mac, expected):
    assert model.normalise_mac(mac) == expected


@pytest.mark.parametrize("fields, message", [
    ({"xname": "x1000c0s0b0n*"}, "n0.xname: 'x1000c0s0b0n*' is not a node xname"),
    ({"xname": "default"}, "n0.xname: 'default' is not a node xname"),
    ({"boot_mac": "zz:ca:fc:0f:fe:e1"}, "n0.boot_mac: 'zz:ca:fc:0f:fe:e1' is not a MAC address"),
    ({"interfaces": [{"mac": "de:ca:fc:0f:fe:e1", "ip": "10.0.0.300"}]}, "n0.interfaces[0].ip: '10.0.0.300' is not an IP address"),
    ({"interfaces": [{"mac": "de:ca:fc:0f:fe:e1", "vlan": 4}]}, "n0.interfaces[0].vlan: 4 is not a known field"),
    ({"nid": "one"}, "n0.nid: 'one' is not a NID"),
])
def test_a_node_boot_service_would_refuse_fails_naming_field_and_value(fields, message):
    raw = {"xname": "x1000c0s0b0n0"}
    raw.update(fields)
    with pytest.raises(model.BootServiceDeclarationError) as caught:
        model.parse_node(raw, "n0")
    assert message in str(caught.value)


def test_node_macs_become_interfaces_and_the_first_one_the_boot_mac():
    node = model.parse_node({"xname": "x1000c0s0b0n0", "nid": 1, "sub_role": "Worker",
                             "interfaces": [{"mac": "DE:CA:FC:0F:FE:E2", "ip": "10.0.0.2", "type": "ethernet"}],
                             "macs": ["de:ca:fc:0f:fe:e2", "de:ca:fc:0f:fe:e3"]}, "n0")
    assert (node.xname, node.name) == ("x1000c0s0b0n0", None)
    assert node.spec == {"xname": "x1000c0s0b0n0", "nid": 1, "bootMac": "de:ca:fc:0f:fe:e2", "subRole": "Worker",
                         "interfaces": [{"mac": "de:ca:fc:0f:fe:e2", "ip": "10.0.0.2", "type": "ethernet"}, {"mac": "de:ca:fc:0f:fe:e3"}]}
    assert node.managed == frozenset(["xname", "nid", "bootMac", "subRole", "interfaces"])
    assert node.shorthand == frozenset(["de:ca:fc:0f:fe:e3"])
    assert model.parse_node({"xname": "x1000c0s0b0n0", "boot_mac": "de:ca:fc:0f:fe:e9", "macs": ["de:ca:fc:0f:fe:e1"]},
                            "n0").spec["bootMac"] == "de:ca:fc:0f:fe:e9"


def test_a_node_keeps_what_it_does_not_declare_and_clears_what_it_declares_empty():
    stored = ("n-x1000c0s0b0n0", {"xname": "x1000c0s0b0n0", "nid": 1, "role": "Compute", "groups": ["bss-role-compute"],
                                  "bootMac": "de:ca:fc:0f:fe:e1", "interfaces": [{"mac": "de:ca:fc:0f:fe:e1", "ip": "10.0.0.1"}]})
    declared = model.parse_node({"xname": "x1000c0s0b0n0", "nid": 7, "macs": ["de:ca:fc:0f:fe:e1", "de:ca:fc:0f:fe:e2"]}, "n0")
    assert model.node_wanted(declared, stored) == (
        "n-x1000c0s0b0n0", {"xname": "x1000c0s0b0n0", "nid": 7, "role": "Compute", "groups": ["bss-role-compute"],
                            "bootMac": "de:ca:fc:0f:fe:e1",
                            "interfaces": [{"mac": "de:ca:fc:0f:fe:e1", "ip": "10.0.0.1"}, {"mac": "de:ca:fc:0f:fe:e2"}]})
    cleared = model.parse_node({"xname": "x1000c0s0b0n0", "name": "renamed", "role": "", "groups": []}, "n0")
    name, spec = model.node_wanted(cleared, stored)
    assert name == "renamed" and "role" not in spec and "groups" not in spec and spec["nid"] == 1
    assert model.node_wanted(cleared) == ("renamed", {"xname": "x1000c0s0b0n0"})
    assert model.node_wanted(model.parse_node({"xname": "x1000c0s0b0n0"}, "n0")) == ("x1000c0s0b0n0", {"xname": "x1000c0s0b0n0"})


def test_a_declaration_of_the_boot_config_role_becomes_a_named_configuration_and_its_node():
    (name, spec), node = model.from_declaration({"macs": ["DE:CA:FC:0F:FE:E1"], "hosts": ["x1000c0s0b0n0"], "nids": [1],
                                                 "kernel": K, "initrd": "", "params": "ro"}, "declarations[0]", "node-")
    assert name == "node-x1000c0s0b0n0"
    assert spec == {"hosts": ["x1000c0s0b0n0"], "macs": ["de:ca:fc:0f:fe:e1"], "nids": [1], "kernel": K, "params": "ro"}
    assert (node.xname, node.name) == ("x1000c0s0b0n0", None)
    assert node.spec == {"xname": "x1000c0s0b0n0", "nid": 1, "bootMac": "de:ca:fc:0f:fe:e1", "interfaces": [{"mac": "de:ca:fc:0f:fe:e1"}]}
    assert node.managed == frozenset(["xname", "nid", "bootMac", "interfaces"])
    only_xname = model.from_declaration({"hosts": ["x1000c0s0b0n0"], "kernel": K}, "d", "node-")[1]
    assert only_xname.managed == frozenset(["xname"])
    (name, _spec), node = model.from_declaration({"macs": ["de:ca:fc:0f:fe:e1"], "kernel": K}, "d", "bs-")
    assert name == "bs-de:ca:fc:0f:fe:e1" and node is None
    assert model.from_declaration({"nids": [12], "kernel": K}, "d", "node-")[0][0] == "node-nid12"
    assert model.from_declaration({"hosts": ["x1000c0s0b0n0"], "kernel": K}, "d", "node-", with_node=False)[1] is None


def test_a_declaration_without_any_node_is_refused_as_it_would_be_a_catch_all():
    with pytest.raises(model.BootServiceDeclarationError, match=r"declarations\[3\]: names no node .* catch-all"):
        model.from_declaration({"kernel": K, "macs": [], "hosts": []}, "declarations[3]", "node-")


@pytest.mark.parametrize("value, rendered", [
    ("ro ip=dhcp", None),
    ("", None),
    ("a&b", "a&amp;b"),
    ('console="ttyS0" x<y>z', "console=&#34;ttyS0&#34; x&lt;y&gt;z"),
    ("ds=nocloud;s=http://x/'a'+b", "ds=nocloud;s=http://x/&#39;a&#39;&#43;b"),
])
def test_values_that_go_html_template_escapes_are_found(value, rendered):
    assert model.html_escaped(value) == rendered


def test_stored_specs_are_compared_as_boot_service_compares_them():
    stored = {"macs": ["DE:CA:FC:0F:FE:E1"], "kernel": K, "profile": "default", "priority": 0, "hosts": []}
    assert model.normalise_current_configuration(stored) == {"macs": ["de:ca:fc:0f:fe:e1"], "kernel": K}
    node = {"xname": "x1000c0s0b0n0", "bootMac": "DE:CA:FC:0F:FE:E1", "interfaces": [{"mac": "DE:CA:FC:0F:FE:E1", "ip": ""}]}
    assert model.normalise_current_node(node) == {"xname": "x1000c0s0b0n0", "bootMac": "de:ca:fc:0f:fe:e1",
                                                  "interfaces": [{"mac": "de:ca:fc:0f:fe:e1"}]}
