"""The lab's canary node: a QEMU VM that network-boots through iPXE from the BSS double and reports its cmdline.

Each boot is real: Debian's iPXE ROM gets DHCP/TFTP from QEMU user networking (restrict=on), chains to
the BSS double through a guestfwd to a loopback port, downloads the Debian kernel and the busybox
initramfs from the lab image server, and the initramfs prints /proc/cmdline on the serial port.
Without usable KVM the boots run under TCG (slower, same behaviour).
"""

import json
import os
import shutil
import subprocess
import types
import uuid

import pytest
import requests

from hpclab import bootimages, procs, smd, vm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HPCLAB_VM = os.path.join(REPO, "lab", "bin", "hpclab-vm")
BOOT_TIMEOUT = 300
NODES = [
    {"xname": "x1000c0s7b0n0", "nid": 41, "role": "Compute", "mac": "52:54:00:c0:ff:41"},
    {"xname": "x1000c0s7b0n1", "nid": 42, "role": "Compute", "mac": "52:54:00:C0:FF:42"},
]


@pytest.fixture(scope="module")
def images():
    if shutil.which(vm.QEMU) is None:
        pytest.fail(f"{vm.QEMU} is missing: apt-get install qemu-system-x86 ipxe-qemu (make deps does)")
    return bootimages.build_images()


@pytest.fixture(scope="module")
def image_server(images):
    service = vm.start_image_server(images["directory"])
    yield service
    service.stop()


@pytest.fixture(scope="module")
def smd_double(tmp_path_factory):
    path = tmp_path_factory.mktemp("canary-smd") / "nodes.json"
    path.write_text(json.dumps(NODES))
    service = smd.start_smd(str(path))
    yield service
    service.stop()


def _start_bss(request, backend, smd_url):
    """A BSS double whose chain lines point at the gateway address the guest sees (10.0.2.100)."""
    from hpclab.bss.launch import start_bss
    env = vm.bss_chain_env()
    cleanup = []
    if backend == "etcd":
        import etcd3
        etcd = request.getfixturevalue("etcd_server")
        client = etcd3.client(host=procs.LOOPBACK, port=etcd.port)
        client.delete_prefix("/")
        client.close()
        service = start_bss("bss-canary-etcd", "etcd", smd_url, etcd=etcd, env=env)
    else:
        postgres = request.getfixturevalue("postgres_server")
        dbname = "canary_" + uuid.uuid4().hex[:10]
        procs.psql(postgres, f"CREATE DATABASE {dbname} OWNER {postgres.extra['user']}")
        cleanup.append(lambda: procs.psql(postgres, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        database = types.SimpleNamespace(port=postgres.port, extra=dict(postgres.extra, dbname=dbname))
        service = start_bss("bss-canary-pg", "postgres", smd_url, postgres=database, env=env)
    return service, cleanup


@pytest.fixture(params=["etcd", "postgres"])
def bss(request, smd_double):
    service, cleanup = _start_bss(request, request.param, smd_double.url)
    yield service
    service.stop()
    for step in cleanup:
        step()


@pytest.fixture
def bss_etcd(request, smd_double):
    service, cleanup = _start_bss(request, "etcd", smd_double.url)
    yield service
    service.stop()
    for step in cleanup:
        step()


def _post_boot_parameters(bss_service, mac, params):
    response = requests.post(f"{bss_service.url}/boot/v1/bootparameters",
                             json=vm.canary_boot_parameters([mac], params), timeout=10)
    assert response.status_code == 201, response.text


def _power_action(*args):
    result = subprocess.run([HPCLAB_VM, "boot", "--json", *args], capture_output=True, text=True,
                            timeout=BOOT_TIMEOUT + 60, check=False)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


@pytest.mark.vm
def test_canary_boots_with_the_command_line_bss_serves(bss, image_server, tmp_path):
    node = NODES[0]
    marker = f"hpclab.canary={uuid.uuid4().hex}"
    params = f"console=ttyS0 quiet {marker}"
    _post_boot_parameters(bss, node["mac"], params)

    result = vm.boot_node(node["mac"], bss.port, image_server.port, timeout=BOOT_TIMEOUT, workdir=str(tmp_path))

    assert result.booted, f"no command line on the serial port ({result.accel}):\n{result.serial_tail()}"
    assert not result.timed_out and result.powered_off
    printed = result.cmdline.split()
    assert marker in printed
    assert f"xname={node['xname']}" in printed and f"nid={node['nid']}" in printed
    assert result.matches(params) and result.missing_params(params) == []
    served = vm.image_requests(image_server)
    assert (f"/{bootimages.KERNEL_NAME}", 200) in served and (f"/{bootimages.INITRAMFS_NAME}", 200) in served


@pytest.fixture
def lab_gateway(bss_etcd):
    """The lab's haproxy gateway in front of the etcd BSS, as the cutover's canary step reaches it."""
    from hpclab.gateway_lab import lab_gateway_config
    service = procs.start_haproxy(lab_gateway_config(bss_etcd.port, bss_etcd.port))
    yield service
    service.stop()


@pytest.mark.vm
def test_power_action_reports_a_command_line_without_the_expected_params(bss_etcd, lab_gateway, image_server, tmp_path):
    node = NODES[1]
    _post_boot_parameters(bss_etcd, node["mac"], "console=ttyS0 quiet hpclab.image=old")

    result, report = _power_action("--mac", node["mac"], "--gateway-port", str(lab_gateway.port),
                                   "--image-port", str(image_server.port), "--timeout", str(BOOT_TIMEOUT),
                                   "--workdir", str(tmp_path), "--expect-params", "console=ttyS0 hpclab.image=new")

    assert result.returncode == 3, result.stdout + result.stderr
    assert report["booted"] is True and report["matched"] is False
    assert report["missing_params"] == ["hpclab.image=new"]
    assert "hpclab.image=old" in report["cmdline"].split()
    assert f"xname={node['xname']}" in report["cmdline"].split()
    with open(report["serial_log"], encoding="utf-8", errors="replace") as handle:
        assert bootimages.CMDLINE_MARKER + report["cmdline"] in handle.read()


@pytest.mark.vm
def test_power_action_fails_when_nothing_answers_at_the_gateway(images, tmp_path):  # pylint: disable=unused-argument
    result, report = _power_action("--mac", "52:54:00:c0:ff:99", "--gateway-port", str(procs.free_port()),
                                   "--timeout", str(BOOT_TIMEOUT), "--workdir", str(tmp_path),
                                   "--expect-params", "console=ttyS0")

    assert result.returncode == 1, result.stdout + result.stderr
    assert report["booted"] is False and report["cmdline"] is None and report["matched"] is False
    assert report["timed_out"] is False, "iPXE should give up and power off, not hang until the timeout"


@pytest.mark.parametrize("args, message", [
    (["--mac", "52-54-00-c0-ff-01", "--gateway-port", "8080"], "mac must look like aa:bb:cc:dd:ee:ff, not '52-54-00-c0-ff-01'"),
    (["--mac", "01:00:5e:00:00:01", "--gateway-port", "8080"], "mac '01:00:5e:00:00:01' is a multicast address"),
    (["--mac", "52:54:00:c0:ff:01", "--gateway-port", "70000"], "gateway_port must be a TCP port number (1-65535), not 70000"),
    (["--mac", "52:54:00:c0:ff:01", "--gateway-port", "8080", "--gw-uri", "apis/bss"], "gw_uri must be empty or a path"),
    (["--mac", "52:54:00:c0:ff:01", "--gateway-port", "8080", "--timeout", "0"], "timeout must be a positive number of seconds, not 0.0"),
])
def test_power_action_rejects_bad_input_before_starting_a_vm(args, message, tmp_path):
    """The message names the field and the value; no VM is started and no workdir is made."""
    workdir = tmp_path / "vm"
    result, report = _power_action(*args, "--workdir", str(workdir))

    assert result.returncode == 2
    assert report is None
    assert message in result.stderr
    assert not workdir.exists()


def test_cached_images_are_reused_unchanged(images):
    again = bootimages.build_images(images["directory"])

    assert again["cached"] is True
    assert again["kernel"]["sha256"] == images["kernel"]["sha256"]
    assert again["initramfs"]["sha256"] == images["initramfs"]["sha256"]


def test_initramfs_bytes_depend_only_on_busybox():
    first = bootimages.make_initramfs(b"\x7fELF not really busybox")
    second = bootimages.make_initramfs(b"\x7fELF not really busybox")
    other = bootimages.make_initramfs(b"\x7fELF another busybox")

    assert first == second
    assert first != other


def test_serial_report_is_found_among_firmware_and_kernel_output():
    serial = ("\x1b[0m\x1b[2JiPXE 1.0.0+ -- Open Source Network Boot Firmware\r\n"
              "[    1.20] Run /init as init process\r\n"
              f"{bootimages.BOOT_MARKER} (kernel 6.1.0-56-amd64)\r\n"
              f"{bootimages.CMDLINE_MARKER}initrd=initrd console=ttyS0 xname=x1000c0s7b0n0 nid=41\r\n"
              f"{bootimages.POWEROFF_MARKER}\r\n[    2.13] reboot: Power down\r\n")

    assert vm.parse_serial(serial) == ("initrd=initrd console=ttyS0 xname=x1000c0s7b0n0 nid=41", True)
    assert vm.parse_serial(serial.split(bootimages.BOOT_MARKER, maxsplit=1)[0]) == (None, False)


def test_params_containing_initrd_are_reported_unchecked_not_missing():
    result = vm.BootResult("52:54:00:c0:ff:41", "tcg", "/nonexistent", "/nonexistent/serial.log")
    result.cmdline = "initrd=initrd  console=ttyS0 xname=x1000c0s7b0n0 nid=41"

    report = result.to_dict("initrd=foo.img console=ttyS0 quiet")

    assert report["missing_params"] == ["quiet"]
    assert report["unchecked_params"] == ["initrd=foo.img"]
    assert report["matched"] is False
    assert result.matches("initrd=foo.img console=ttyS0") is True
