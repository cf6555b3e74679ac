"""bootscript_info between the real upstream BSS on etcd and the real boot-service, by every MAC, xname and NID.

The golden SMD: x3000c0s1b0n0 = a4:bf:01:3e:1f:a0 / NID 1, x3000c0s1b0n1 = a4:bf:01:3e:1f:a1 / NID 2.
boot-service gets the Node records and one BootConfiguration per node carrying what BSS injects itself
(xname=, nid=, ds=); what is left must differ only by design, and each by-design rule is named in the row.
"""

import os

import pytest
import requests

from bss_play import run_module

K1 = "http://10.0.0.1/boot/vmlinuz-6.1"
I1 = "http://10.0.0.1/boot/initrd-6.1.img"
P1 = "console=ttyS0,115200 root=live:http://10.0.0.1/images/compute.squashfs ip=dhcp"
NODES = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"]},
         {"xname": "x3000c0s1b0n1", "nid": 2, "macs": ["a4:bf:01:3e:1f:a1"]}]


@pytest.fixture
def old_bss(request, golden_smd, etcd_server, etcd_prefix_clean):  # pylint: disable=unused-argument
    """The real upstream BSS on an emptied etcd (skipped, or failed under CI=true, when it is not installed)."""
    from hpclab import upstream
    from hpclab.bss import launch
    manifest, reason = upstream.availability("bss")
    if manifest is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)
    service = launch.start_bss("parity-bs-etcd", "etcd", golden_smd.url, etcd=etcd_server, impl="upstream")
    request.addfinalizer(service.stop)
    return service


def put_bss(bss, xname, params):
    body = {"hosts": [xname], "kernel": K1, "initrd": I1, "params": params}
    assert requests.put(f"{bss.url}/boot/v1/bootparameters", json=body, timeout=10).status_code == 200


def post(service, kind, name, spec):
    response = requests.post(f"{service.url}/{kind}", json={"metadata": {"name": name}, "spec": spec}, timeout=10)
    assert response.status_code in (200, 201), response.text


def seed_boot_service(service, old_bss, params_of):
    advertise = old_bss.extra["advertise_address"]
    for node in NODES:
        post(service, "nodes", node["xname"], {"xname": node["xname"], "nid": node["nid"], "bootMac": node["macs"][0]})
        params = "%s xname=%s nid=%d ds=nocloud-net;s=%s/" % (params_of(node), node["xname"], node["nid"], advertise)
        post(service, "bootconfigurations", node["xname"], {"hosts": [node["xname"]], "kernel": K1, "initrd": I1, "params": params})


def parity(old_bss, service):
    return run_module("bootscript_info", {"url": old_bss.url, "compare_url": service.url, "compare_service": "boot_service",
                                          "macs": [n["macs"][0] for n in NODES], "nids": [n["nid"] for n in NODES],
                                          "hosts": [n["xname"] for n in NODES] + ["x3000c0s9b0n0"], "nodes": NODES})


def test_every_lookup_agrees_and_each_by_design_rule_is_named(old_bss, boot_service):
    for node in NODES:
        put_bss(old_bss, node["xname"], P1)
    seed_boot_service(boot_service, old_bss, lambda node: P1)

    result = parity(old_bss, boot_service)
    assert result["parity_summary"]["nodes"] == 7, "two MACs, two xnames, two NIDs and one node nobody knows"
    assert result["parity_summary"]["different"] == 0, [row for row in result["parity"] if not row["same"]]
    rows = dict((row["node"], row) for row in result["parity"])
    assert rows["a4:bf:01:3e:1f:a0"]["normalised"] == ["referral_token", "advertise_address", "initrd_name", "bootif"]
    assert rows["x3000c0s9b0n0"]["normalised"] == ["neither_boots"]
    assert result["parity_summary"]["normalised"]["bootif"] == 6
    assert result["scripts"]["x3000c0s1b0n1"]["kernel"] == K1


def test_html_escaped_params_and_a_missing_node_record_are_reported(old_bss, boot_service):
    for node in NODES:
        put_bss(old_bss, node["xname"], P1 + " rd.hint=a&b")
    seed_boot_service(boot_service, old_bss, lambda node: P1 + " rd.hint=a&b")
    result = parity(old_bss, boot_service)
    rows = dict((row["node"], row) for row in result["parity"])
    row = rows["x3000c0s1b0n0"]
    assert row["differences"] == ["params"]
    assert "rd.hint=a&b" in row["first"]["params"] and "rd.hint=a&amp;b" in row["second"]["params"]
    assert result["parity_summary"]["different"] == 6

    uid = [n["metadata"]["uid"] for n in requests.get(f"{boot_service.url}/nodes", timeout=10).json()
           if n["spec"]["xname"] == "x3000c0s1b0n1"][0]
    assert requests.delete(f"{boot_service.url}/nodes/{uid}", timeout=10).status_code == 200
    rows = dict((row["node"], row) for row in parity(old_bss, boot_service)["parity"])
    assert rows["nid2"]["differences"] == ["kind"] and "node not found" in rows["nid2"]["second"]["message"]
