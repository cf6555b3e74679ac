"""Validation and normalisation of boot parameter declarations (table-driven)."""

import json

import pytest
import requests

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootparams_model as model
from ansible_collections.hpc_boot.bss.plugins.modules import bootparams

KERNEL = "http://10.1.0.1/boot/vmlinuz"
GOOD = {"kernel": KERNEL, "macs": ["aa:bb:cc:00:11:22"]}


def _with(**fields):
    declaration = dict(GOOD)
    declaration.update(fields)
    return declaration


# (declaration, field named in the error, value named in the error)
MALFORMED = [
    (_with(macs=["aa:bb:cc:00:11"]), "macs[0]", "aa:bb:cc:00:11"),
    (_with(macs=["aa-bb-cc-00-11-22"]), "macs[0]", "aa-bb-cc-00-11-22"),
    (_with(macs=["aabb.cc00.1122"]), "macs[0]", "aabb.cc00.1122"),
    (_with(macs=["gg:bb:cc:00:11:22"]), "macs[0]", "gg:bb:cc:00:11:22"),
    (_with(macs=["aa:bb:cc:00:11:22", "aa:bb:cc:00:11:222"]), "macs[1]", "aa:bb:cc:00:11:222"),
    (_with(macs=[42]), "macs[0]", "42"),
    (_with(macs=[], hosts=["x1000c0s0b0"]), "hosts[0]", "x1000c0s0b0"),
    (_with(macs=[], hosts=["X1000C0S0B0N0"]), "hosts[0]", "X1000C0S0B0N0"),
    (_with(macs=[], hosts=["x1000c8s0b0n0"]), "hosts[0]", "x1000c8s0b0n0"),
    (_with(macs=[], hosts=["node01"]), "hosts[0]", "node01"),
    (_with(macs=[], hosts=[""]), "hosts[0]", "''"),
    (_with(macs=[], nids=[0]), "nids[0]", "0"),
    (_with(macs=[], nids=[-3]), "nids[0]", "-3"),
    (_with(macs=[], nids=["nid4"]), "nids[0]", "nid4"),
    (_with(macs=[], nids=[2 ** 31]), "nids[0]", "2147483648"),
    (_with(macs=[], nids=[True]), "nids[0]", "True"),
    (_with(kernel=None), "kernel", "None"),
    (_with(kernel="ftp://10.1.0.1/vmlinuz"), "kernel", "ftp://10.1.0.1/vmlinuz"),
    (_with(kernel="data:application/octet-stream;base64,f0VMRgIBAQ"), "kernel", "data:application/octet-stream"),
    (_with(kernel="http://"), "kernel", "http://"),
    (_with(kernel="http://10.1.0.1/vm linuz"), "kernel", "vm linuz"),
    (_with(kernel="A" * 3000), "kernel", "AAAA"),
    (_with(initrd="file:///srv/initrd.img"), "initrd", "file:///srv/initrd.img"),
    (_with(initrd="http://10.1.0.1/initrd\n"), "initrd", "initrd\\n"),
    (_with(params="quiet\nshell"), "params", "quiet\\nshell"),
    (_with(params="quiet\r\nkernel http://evil/x"), "params", "quiet\\r\\n"),
    (_with(params="console=ttyS0\tquiet"), "params", "console=ttyS0\\tquiet"),
    (_with(params=["quiet"]), "params", "['quiet']"),
    (_with(macs=None), "declarations[0]", "names no node"),
    (_with(cloudinit={"a": 1}), "cloudinit", "{'a': 1}"),
    (_with(macs="aa:bb"), "macs[0]", "aa:bb"),
    (_with(nids={"a": 1}), "nids", "{'a': 1}"),
]


@pytest.mark.parametrize("declaration, field, value", MALFORMED)
def test_malformed_declaration_names_field_and_value(declaration, field, value):
    with pytest.raises(model.BootParamsError) as caught:
        model.parse_declarations([declaration])
    message = str(caught.value)
    assert message.startswith("declarations[0]")
    assert field in message
    assert value in message


@pytest.mark.parametrize("declaration, field, value", MALFORMED)
def test_malformed_declaration_fails_the_module_before_any_request(declaration, field, value, monkeypatch, capsys):
    sent = []

    def no_network(session, method, url, **kwargs):
        sent.append((method, url))
        raise AssertionError("request sent: %s %s" % (method, url))
    monkeypatch.setattr(requests.Session, "request", no_network)
    with patch_module_args({"url": "http://127.0.0.1:9", "declarations": [declaration]}):
        with pytest.raises(SystemExit):
            bootparams.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] and field in result["msg"] and value in result["msg"]
    assert sent == [] and "requests" not in result


def test_there_are_at_least_twenty_malformed_cases():
    assert len(MALFORMED) >= 20


def test_declaration_that_is_not_a_mapping():
    with pytest.raises(model.BootParamsError, match=r"declarations\[1\]: 'x1000c0s0b0n0' is not a mapping"):
        model.parse_declarations([GOOD, "x1000c0s0b0n0"])


@pytest.mark.parametrize("raw, labels", [
    ({"macs": ["AA:BB:CC:00:11:22"]}, ["aa:bb:cc:00:11:22"]),
    ({"hosts": ["x3000c0s1b0n0", "Default"]}, ["x3000c0s1b0n0", "Default"]),
    ({"nids": [4, "7"]}, ["nid4", "nid7"]),
    ({"macs": "De:Ad:Be:Ef:00:01", "nids": 9}, ["de:ad:be:ef:00:01", "nid9"]),
])
def test_selectors_are_normalised_to_labels(raw, labels):
    raw["kernel"] = KERNEL
    assert model.parse_declaration(raw).labels == labels


@pytest.mark.parametrize("value, expected", [
    ("console=ttyS0,115200  quiet ", "console=ttyS0,115200 quiet"),
    ("  root=live:s3://boot/rootfs   ip=dhcp", "root=live:s3://boot/rootfs ip=dhcp"),
    (None, ""),
    ("", ""),
])
def test_params_are_one_normalised_line(value, expected):
    assert model.normalise_params(value) == expected


@pytest.mark.parametrize("value", ["http://10.1.0.1/k", "https://s3.local:9000/boot-images/k", "s3://boot-images/compute/k",
                                   "/srv/tftp/vmlinuz", "boot/vmlinuz-6.1"])
def test_image_references_accepted(value):
    assert model.normalise_image(value, required=True) == value


def test_absent_declarations_need_no_kernel():
    declaration = model.parse_declaration({"macs": ["aa:bb:cc:00:11:22"]}, require_kernel=False)
    assert declaration.config == model.BootConfig("", "", "")


def test_postgres_refuses_tags_and_etcd_accepts_them():
    declarations = model.parse_declarations([{"kernel": KERNEL, "hosts": ["Default"]}])
    assert model.check_backend_rules(declarations, "etcd") == []
    with pytest.raises(model.BootParamsError, match=r"declarations\[0\]\.hosts: 'Default' is a tag name: postgres mode"):
        model.check_backend_rules(declarations, "postgres")


def test_postgres_warns_about_xname_only_declarations():
    declarations = model.parse_declarations([{"kernel": KERNEL, "hosts": ["x1000c0s0b0n0"]},
                                             {"kernel": KERNEL, "hosts": ["x1000c0s0b0n1"], "macs": ["aa:bb:cc:00:11:22"]}])
    warnings = model.check_backend_rules(declarations, "postgres")
    assert len(warnings) == 1 and "declarations[0]" in warnings[0] and "x1000c0s0b0n0" in warnings[0]
    assert model.check_backend_rules(declarations, "etcd") == []


def test_conflicting_declarations_name_both():
    declarations = model.parse_declarations([{"kernel": KERNEL, "macs": ["aa:bb:cc:00:11:22"]},
                                             {"kernel": KERNEL, "params": "quiet", "macs": ["AA:BB:CC:00:11:22"]}])
    with pytest.raises(model.BootParamsError, match=r"declarations\[1\]: node aa:bb:cc:00:11:22 is also declared by declarations\[0\]"):
        model.desired_nodes(declarations)


def test_conflict_through_smd_resolution_in_etcd_mode():
    resolve = model.smd_resolver([{"ID": "x1000c0s0b0n0", "NID": 1, "MAC": ["AA:BB:CC:00:11:22"]}])
    declarations = model.parse_declarations([{"kernel": KERNEL, "hosts": ["x1000c0s0b0n0"]},
                                             {"kernel": KERNEL + "2", "nids": [1]}])
    with pytest.raises(model.BootParamsError, match=r"node nid1 \(BSS stores it as x1000c0s0b0n0\)"):
        model.desired_nodes(declarations, resolve)
    assert resolve("aa:bb:cc:00:11:22") == "x1000c0s0b0n0"
    assert resolve("nid77") == "nid77"


EMPTY_CLOUD_INIT = {"meta-data": None, "user-data": None,
                    "phone-home": {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}}
K514, I514 = "http://10.0.0.1/boot/vmlinuz-5.14.0", "http://10.0.0.1/boot/initrd-5.14.0.img"
COMPUTE = "console=ttyS0,115200 root=live:http://10.0.0.1/images/compute.squashfs"
# Excerpts of GET /boot/v1/bootparameters from real upstream BSS after the same requests (golden/*/get/bootparameters_all.json).
ETCD_ALL = [
    {"kernel": K514, "cloud-init": EMPTY_CLOUD_INIT},
    {"initrd": I514, "cloud-init": EMPTY_CLOUD_INIT},
    {"hosts": ["02:00:00:0a:bc:99"], "params": "console=ttyS0,115200 quiet rd.shell", "kernel": K514, "initrd": I514,
     "cloud-init": EMPTY_CLOUD_INIT},
    {"hosts": ["nid100"], "params": "console=ttyS0 nomodeset", "kernel": "http://10.0.0.1/boot/vmlinuz-6.1.0",
     "initrd": "http://10.0.0.1/boot/initrd-6.1.0.img", "cloud-init": EMPTY_CLOUD_INIT},
    {"hosts": ["x3000c0s4b0n0"], "params": COMPUTE, "kernel": K514, "initrd": I514,
     "cloud-init": dict(EMPTY_CLOUD_INIT, **{"user-data": {"runcmd": ["echo hello"]}})},
]
POSTGRES_ALL = [
    {"macs": ["a4:bf:01:3e:1f:b0", "02:00:00:0a:bc:99", "0a:1b:2c:3d:4e:5f"], "params": "console=ttyS0,115200 quiet rd.shell",
     "kernel": K514, "initrd": I514, "cloud-init": EMPTY_CLOUD_INIT},
    {"nids": [4, 100], "params": "console=ttyS0 nomodeset", "kernel": "http://10.0.0.1/boot/vmlinuz-6.1.0",
     "initrd": "http://10.0.0.1/boot/initrd-6.1.0.img", "cloud-init": EMPTY_CLOUD_INIT},
    {"hosts": ["x3000c0s4b0n0"], "params": COMPUTE, "kernel": K514, "initrd": I514, "cloud-init": EMPTY_CLOUD_INIT},
]


def test_current_nodes_from_etcd_and_postgres_agree():
    etcd_nodes, etcd_cloud_init, etcd_images = model.current_nodes(ETCD_ALL)
    pg_nodes, pg_cloud_init, pg_images = model.current_nodes(POSTGRES_ALL)
    assert pg_images == [] and pg_cloud_init == set()
    assert etcd_images == [{"kernel": K514, "initrd": "", "params": ""}, {"kernel": "", "initrd": I514, "params": ""}]
    assert etcd_cloud_init == {"x3000c0s4b0n0"}
    # Nodes written by xname are the same in both backends.
    assert etcd_nodes["x3000c0s4b0n0"] == pg_nodes["x3000c0s4b0n0"] == [model.BootConfig(K514, I514, COMPUTE)]
    # A MAC unknown to SMD is a MAC-named record in etcd and a MAC row in postgres; a NID likewise.
    assert etcd_nodes["02:00:00:0a:bc:99"] == pg_nodes["02:00:00:0a:bc:99"]
    assert etcd_nodes["nid100"] == pg_nodes["nid100"]
    assert sorted(pg_nodes) == ["02:00:00:0a:bc:99", "0a:1b:2c:3d:4e:5f", "a4:bf:01:3e:1f:b0", "nid100", "nid4", "x3000c0s4b0n0"]


def test_entries_by_config_groups_and_sorts():
    config = model.BootConfig(KERNEL, "", "quiet")
    nodes = {"nid3": [config], "x1000c0s0b0n0": [config], "aa:bb:cc:00:11:22": [config],
             "x1000c0s0b0n1": [model.BootConfig(KERNEL, "", "")]}
    assert model.entries_by_config(nodes) == [
        {"hosts": ["x1000c0s0b0n1"], "kernel": KERNEL},
        {"hosts": ["x1000c0s0b0n0"], "macs": ["aa:bb:cc:00:11:22"], "nids": [3], "kernel": KERNEL, "params": "quiet"},
    ]
