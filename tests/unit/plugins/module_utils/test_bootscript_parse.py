"""Parsing and comparing BSS boot scripts, on real upstream transcripts of both backends."""

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import bootscript_parse as parse


# Real upstream transcripts (golden/<backend>/get/bootscript_*.txt), one request each.
ETCD_BY_NAME = (
    "#!ipxe\n"
    "kernel --name kernel http://10.0.0.1/boot/vmlinuz-5.14.0 initrd=initrd console=ttyS0,115200 "
    "root=live:http://10.0.0.1/images/compute.squashfs ip=dhcp xname=x3000c0s1b0n0 nid=1 "
    "bss_referral_token=36208a6e-0c27-420d-800a-2aa3b27df081 ds=nocloud-net;s=http://127.0.0.1:27778/ || goto boot_retry\n"
    "initrd --name initrd http://10.0.0.1/boot/initrd-5.14.0.img || goto boot_retry\n"
    "boot || goto boot_retry\n:boot_retry\nsleep 30\n"
    "chain http://127.0.0.1/boot/v1/bootscript?mac=a4:bf:01:3e:1f:a0&retry=1\n\n")
POSTGRES_BY_NAME = ETCD_BY_NAME.replace(" bss_referral_token=36208a6e-0c27-420d-800a-2aa3b27df081", "").replace(":27778/", ":27779/")
POSTGRES_BY_MAC_UNKNOWN = ("#!ipxe\nsleep 10\n"
                           "chain http://127.0.0.1/boot/v1/bootscript?mac=a4:bf:01:3e:1f:a0&arch=${buildarch}&ts=1795566826\n\n")
# For mac= etcd resolves the MAC through SMD and serves the node's boot script (the by-name one stands in for it
# here); postgres has no MAC row for a node written by xname and answers with the discovery script.
SCRIPTS = {("etcd", "name"): ETCD_BY_NAME, ("postgres", "name"): POSTGRES_BY_NAME, ("etcd", "mac"): ETCD_BY_NAME,
           ("postgres", "mac"): POSTGRES_BY_MAC_UNKNOWN}


def test_known_node_script_is_parsed():
    parsed = parse.parse_script(SCRIPTS["etcd", "name"])
    assert parsed["kind"] == "boot"
    assert parsed["kernel"] == "http://10.0.0.1/boot/vmlinuz-5.14.0"
    assert parsed["initrd"] == "http://10.0.0.1/boot/initrd-5.14.0.img"
    assert parsed["params"].startswith("initrd=initrd console=ttyS0,115200 root=live:")
    assert parsed["params"].endswith(" ds=nocloud-net;s=http://127.0.0.1:27778/")
    assert parsed["retry_delay"] == "30"
    assert parsed["chain"] == "http://127.0.0.1/boot/v1/bootscript?mac=a4:bf:01:3e:1f:a0&retry=1"


def test_etcd_and_postgres_scripts_agree_once_volatile_parts_are_removed():
    etcd = parse.parse_script(SCRIPTS["etcd", "name"])
    postgres = parse.parse_script(SCRIPTS["postgres", "name"])
    assert parse.compare(etcd, postgres) == ["params"]
    assert parse.compare(parse.normalise(etcd), parse.normalise(postgres)) == []
    assert "bss_referral_token" not in parse.normalise(etcd)["params"]


def test_discovery_answer_differs_from_a_boot_script():
    etcd = parse.normalise(parse.parse_script(SCRIPTS["etcd", "mac"]))
    postgres = parse.normalise(parse.parse_script(SCRIPTS["postgres", "mac"]))
    assert postgres["kind"] == "wait" and postgres["retry_delay"] == "10"
    assert postgres["chain"] == "http://127.0.0.1/boot/v1/bootscript?mac=a4:bf:01:3e:1f:a0&arch=${buildarch}"
    row = parse.parity_row("a4:bf:01:3e:1f:a0", etcd, postgres)
    assert not row["same"] and row["differences"][:2] == ["kind", "kernel"]
    assert row["second"]["kind"] == "wait"


@pytest.mark.parametrize("url, expected", [
    ("http://h/b?mac=a&retry=1", "http://h/b?mac=a"),
    ("http://h/b?retry=3&mac=a", "http://h/b?mac=a"),
    ("http://h/b?mac=a&arch=${buildarch}&ts=17", "http://h/b?mac=a&arch=${buildarch}"),
    ("http://h/b?name=x1", "http://h/b?name=x1"),
])
def test_chain_url_loses_retry_and_ts(url, expected):
    assert parse.stable_chain(url) == expected


@pytest.mark.parametrize("text", ["", "not a script", "#!ipxe\n", None])
def test_anything_else_is_other(text):
    assert parse.parse_script(text)["kind"] == "other"


def test_missing_on_one_side_is_a_difference():
    script = parse.parse_script("#!ipxe\nsleep 10\nchain http://h/b?mac=a&ts=1\n")
    assert parse.compare(None, None) == []
    assert parse.parity_row("n", script, None)["differences"] == ["script"]
