"""Boot-script composition of the BSS double against bss-spec 5.2-5.6 (examples A-E byte for byte)."""

import pytest

from hpclab.bss.config import Settings, SettingsError
from hpclab.bss.gotext import go_json
from hpclab.bss.model import BootData
from hpclab.bss.script import (ScriptPanic, boot_script, build_params, discovery_chain, go_parse_int, known_chain,
                               sleep_script)

ADVERTISE = "http://10.1.0.2:27778"
TOKEN = "6f1c2e5a-0b7d-4c8e-9a3f-2d4b6c8e0f12"
KERNEL = "http://10.1.0.1/boot/vmlinuz-6.1"
INITRD = "http://10.1.0.1/boot/initramfs-6.1.img"


@pytest.fixture
def settings():
    return Settings([], {"BSS_ADVERTISE_ADDRESS": ADVERTISE})


def test_example_a_etcd_boot_by_mac(settings):
    data = BootData("console=ttyS0,115200 ip=dhcp", KERNEL, INITRD, token=TOKEN)
    params = build_params(data, "x1000c0s0b0n0", "1", TOKEN, "AA:BB:CC:00:11:22", ADVERTISE)
    chain = known_chain(settings, "/boot/v1/bootscript", "AA:BB:CC:00:11:22", "x1000c0s0b0n0", 0)
    assert boot_script(data, params, chain, settings.retry_delay) + "\n" == (
        "#!ipxe\n"
        f"kernel --name kernel {KERNEL} initrd=initrd console=ttyS0,115200 ip=dhcp xname=x1000c0s0b0n0 nid=1 "
        f"bss_referral_token={TOKEN} BOOTIF=01-AA-BB-CC-00-11-22 ds=nocloud-net;s=http://10.1.0.2:27778/ || goto boot_retry\n"
        f"initrd --name initrd {INITRD} || goto boot_retry\n"
        "boot || goto boot_retry\n"
        ":boot_retry\n"
        "sleep 30\n"
        "chain https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?mac=AA:BB:CC:00:11:22&retry=1\n"
        "\n")
    assert go_json(data.json("kernel " + params)) == (
        '{"params":"kernel initrd=initrd console=ttyS0,115200 ip=dhcp xname=x1000c0s0b0n0 nid=1 '
        f'bss_referral_token={TOKEN} BOOTIF=01-AA-BB-CC-00-11-22 ds=nocloud-net;s=http://10.1.0.2:27778/",'
        f'"kernel":{{"path":"{KERNEL}"}},"initrd":{{"path":"{INITRD}"}}}}')


def test_example_b_postgres_by_name_without_initrd_and_params(settings):
    data = BootData("", KERNEL, "")
    params = build_params(data, "x1000c0s0b0n1", "2", "", "", ADVERTISE)
    assert params.startswith(" xname=")  # untrimmed; JSON mode shows "kernel  xname=..."
    chain = known_chain(settings, "/boot/v1/bootscript", "aa:bb:cc:00:11:33", "x1000c0s0b0n1", 2)
    assert boot_script(data, params, chain, 30) == (
        "#!ipxe\n"
        f"kernel --name kernel {KERNEL} xname=x1000c0s0b0n1 nid=2 ds=nocloud-net;s=http://10.1.0.2:27778/ || goto boot_retry\n"
        "boot || goto boot_retry\n:boot_retry\nsleep 30\n"
        "chain https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?mac=aa:bb:cc:00:11:33&retry=3\n")
    assert go_json(data.json("kernel " + params)).startswith('{"params":"kernel  xname=')
    assert go_json(data.json("kernel " + params)).endswith('"initrd":{"path":""}}')


def test_example_c_initrd_substring_quirk_and_image_params(settings):
    data = BootData("initrd=foo.img console=tty0", "k", "i", kernel_params="quiet")
    params = build_params(data, "x1000c0s0b0n1", "2", "", "", ADVERTISE)
    script = boot_script(data, params, known_chain(settings, "/boot/v1/bootscript", "", "x1000c0s0b0n1", 0), 30)
    lines = script.split("\n")
    assert lines[1] == ("kernel --name kernel k initrd=initrd  console=tty0 quiet xname=x1000c0s0b0n1 nid=2 "
                        "ds=nocloud-net;s=http://10.1.0.2:27778/ || goto boot_retry")
    assert lines[-2] == "chain https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?name=x1000c0s0b0n1&retry=1"


def test_initrd_quirk_hits_unrelated_text_and_panics_in_last_token():
    assert build_params(BootData("rd.initrd.x=1 quiet", "k", "i"), advertise="http://a") == \
        "initrd=initrd rd. quiet ds=nocloud-net;s=http://a/"
    with pytest.raises(ScriptPanic):
        build_params(BootData("quiet", "k", "i"), advertise="http://a/initrd")


def test_add_if_missing_is_a_prefix_match_in_fixed_order():
    data = BootData("xname=custom nid=77 ds=mine", "k", "")
    assert build_params(data, "x1", "1", "tok", "aa:bb", "http://a") == \
        "xname=custom nid=77 ds=mine bss_referral_token=tok BOOTIF=01-aa-bb"
    data = BootData("p", "k", "", initrd_params="late", kernel_params="early")
    assert build_params(data, advertise="http://a") == "p early late ds=nocloud-net;s=http://a/"


def test_examples_d_and_e_discovery(settings):
    chain = discovery_chain(settings, "de:ad:be:ef:00:99", "", -1, 1750000000)
    assert sleep_script(10, chain) + "\n" == (
        "#!ipxe\nsleep 10\nchain https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript"
        "?mac=de:ad:be:ef:00:99&arch=${buildarch}&ts=1750000000\n\n")
    unknown = BootData("console=ttyS0 discovery=1", "http://10.1.0.1/discovery/vmlinuz", "http://10.1.0.1/discovery/initrd.img")
    script = boot_script(unknown, build_params(unknown, advertise=ADVERTISE), chain, 30)
    assert script.split("\n")[1] == ("kernel --name kernel http://10.1.0.1/discovery/vmlinuz initrd=initrd console=ttyS0 "
                                     "discovery=1 ds=nocloud-net;s=http://10.1.0.2:27778/ || goto boot_retry")
    assert discovery_chain(settings, "", "", -1, 5).endswith("bootscript?mac=${net/net0}&arch=${buildarch}&ts=5")
    assert "?nid=7&" in discovery_chain(settings, "", "", 7, 5)


@pytest.mark.parametrize("text, expected", [("10", 10), ("010", 8), ("0x10", 16), ("0b11", 3), ("-4", -4), ("", -1),
                                            ("abc", -1), ("1.5", -1), ("0", 0)])
def test_integer_query_values_use_go_base_prefixes(text, expected):
    assert go_parse_int(text, -1) == expected


def test_settings_quirks():
    with pytest.raises(SettingsError, match="BSS_ADVERTISE_ADDRESS"):
        Settings([], {})
    env = {"BSS_ADVERTISE_ADDRESS": "http://x", "DATASTORE_BASE": "http://ignored:1", "BSS_INSECURE": "true",
           "BSS_GW_URI": "", "ETCD_RETRY_COUNT": "3"}
    settings = Settings([], env)
    assert settings.datastore == "mem:"
    assert settings.gw_uri == ""
    assert "sslmode=disable" in settings.postgres_conninfo()
    settings = Settings(["--datastore", "http://127.0.0.1:2379", "--postgres"],
                        {"BSS_ADVERTISE_ADDRESS": "http://x", "ETCD_HOST": "h", "ETCD_PORT": "1"})
    assert settings.datastore == "http://127.0.0.1:2379"
    assert settings.use_sql
    assert "sslmode=verify-full" in settings.postgres_conninfo()
    assert Settings([], {"BSS_ADVERTISE_ADDRESS": "a", "ETCD_HOST": "h", "ETCD_PORT": "1"}).datastore == "http://h:1"
