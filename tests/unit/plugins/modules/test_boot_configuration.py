"""boot_configuration's gathering of declarations: duplicates refused, surprises of boot-service warned about."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_model import BootServiceDeclarationError
from ansible_collections.hpc_boot.bss.plugins.modules import boot_configuration

K = "http://10.0.0.1/boot/vmlinuz"


def params(**options):
    base = {"boot_configurations": [], "nodes": [], "declarations": [], "declaration_prefix": "node-", "declaration_nodes": True,
            "state": "present"}
    base.update(options)
    return base


def test_a_name_declared_twice_is_refused_naming_both_places():
    with pytest.raises(BootServiceDeclarationError, match=r"declarations\[0\]: configuration 'node-x1000c0s0b0n0' is declared "
                                                          r"twice \(also at boot_configurations\[0\]\)"):
        boot_configuration.gather(params(boot_configurations=[{"name": "node-x1000c0s0b0n0", "kernel": K}],
                                         declarations=[{"hosts": ["x1000c0s0b0n0"], "kernel": K}]))
    with pytest.raises(BootServiceDeclarationError, match="node 'x1000c0s0b0n0' is declared twice"):
        boot_configuration.gather(params(nodes=[{"xname": "x1000c0s0b0n0"}], declarations=[{"hosts": ["x1000c0s0b0n0"], "kernel": K}]))


def test_declarations_give_configurations_and_nodes_and_warnings_name_what_boot_service_does_differently():
    configs, nodes, warnings = boot_configuration.gather(params(
        boot_configurations=[{"name": "chassis", "hosts": ["x1000c0s*"], "kernel": K, "params": "a&b"}],
        declarations=[{"hosts": ["x1000c0s0b0n0"], "macs": ["de:ca:fc:0f:fe:e1", "de:ca:fc:0f:fe:e2"], "kernel": K},
                      {"macs": ["de:ca:fc:0f:fe:e3"], "kernel": K}]))
    assert list(configs) == ["chassis", "node-x1000c0s0b0n0", "node-de:ca:fc:0f:fe:e3"]
    assert list(nodes) == ["x1000c0s0b0n0"]
    assert len(warnings) == 4
    assert "chassis.params 'a&b' is served as 'a&amp;b'" in warnings[0]
    assert "x1000c0s*" in warnings[1] and "match no node" in warnings[1]
    assert "another MAC of x1000c0s0b0n0" in warnings[2]
    assert "no Node record for node-de:ca:fc:0f:fe:e3" in warnings[3]


def test_absent_needs_no_kernel_and_warns_about_nothing():
    configs, nodes, warnings = boot_configuration.gather(params(state="absent", boot_configurations=[{"name": "compute"}],
                                                                nodes=[{"xname": "x1000c0s0b0n0"}]))
    assert list(configs) == ["compute"] and list(nodes) == ["x1000c0s0b0n0"] and warnings == []
