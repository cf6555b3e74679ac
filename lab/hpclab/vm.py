"""A canary node that network-boots for real: QEMU, Debian's iPXE ROM, the lab kernel and busybox initramfs.

The guest sees only QEMU user networking with ``restrict=on``: QEMU answers DHCP and serves a one-line
iPXE script by TFTP, and two ``guestfwd`` rules connect guest addresses to loopback ports through
``socat``::

    10.0.2.100:80  ->  127.0.0.1:<gateway_port>   the gateway (or BSS itself) as the node sees it
    10.0.2.101:80  ->  127.0.0.1:<image_port>     the lab image server (kernel, initramfs)

iPXE chains to ``http://10.0.2.100<gw_uri>/boot/v1/bootscript?mac=${net0/mac}``, runs the BSS script,
fetches the kernel and initramfs named in the boot parameters, and the initramfs prints
``/proc/cmdline`` on the serial port and powers off. :func:`boot_node` returns what the serial port
showed. BSS must build chain URLs that the guest can follow: start it with :func:`bss_chain_env`, and
give nodes boot parameters built with :func:`guest_image_url` (or :func:`canary_boot_parameters`).

QEMU runs as a child process in its own session and is stopped by its PID (and the socat helpers it
started, by theirs) when the guest powers off or the timeout expires. Nothing binds a port.
"""

import argparse
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

from hpclab import bootimages, procs

GUEST_GATEWAY_IP = "10.0.2.100"
GUEST_IMAGE_IP = "10.0.2.101"
BOOTSCRIPT_PATH = "/boot/v1/bootscript"
TFTP_SCRIPT = "canary.ipxe"
IPXE_ROM_DIR = os.environ.get("HPCLAB_IPXE_ROM_DIR", "/usr/lib/ipxe/qemu")
QEMU = os.environ.get("HPCLAB_QEMU", "qemu-system-x86_64")
MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


class VMError(ValueError):
    """Bad input to the canary VM tools, or a missing tool; the message names the field and value."""


def guest_gateway_url(gw_uri=""):
    """The gateway's base URL as the guest sees it (what BSS's chain lines must point at)."""
    return f"http://{GUEST_GATEWAY_IP}{gw_uri}"


def guest_bootscript_url(gw_uri=""):
    """The URL iPXE chains to first; ``${net0/mac}`` is expanded by iPXE to the NIC's MAC (lowercase)."""
    return guest_gateway_url(gw_uri) + BOOTSCRIPT_PATH + "?mac=${net0/mac}"


def guest_image_url(name):
    """URL of a file of the lab image server as the guest sees it (``vmlinuz``, the initramfs...)."""
    return f"http://{GUEST_IMAGE_IP}/{name.lstrip('/')}"


def bss_chain_env(gw_uri=""):
    """Environment for a BSS (double or real) whose chain lines the guest can follow."""
    return {"BSS_IPXE_SERVER": GUEST_GATEWAY_IP, "BSS_CHAIN_PROTO": "http", "BSS_GW_URI": gw_uri}


def canary_boot_parameters(macs, params):
    """A BSS ``/boot/v1/bootparameters`` body booting ``macs`` into the lab kernel and initramfs.

    ``params`` should contain ``console=ttyS0`` if the kernel's own messages are wanted in the serial
    log; the command-line report itself is written to ttyS0 whatever the params say.
    """
    return {"macs": list(macs), "kernel": guest_image_url(bootimages.KERNEL_NAME),
            "initrd": guest_image_url(bootimages.INITRAMFS_NAME), "params": params}


def start_image_server(directory, workdir=None, port=None, name="images"):
    """Serve ``directory`` over HTTP on 127.0.0.1 (threaded ``http.server``); returns a ``procs.Service``.

    Every request is logged (one line each) in the service's log file.
    """
    if not os.path.isdir(directory):
        raise VMError(f"image directory {directory!r} does not exist")
    workdir = workdir or procs.make_workdir(name)
    port = port or procs.free_port()
    argv = [sys.executable, "-u", "-m", "http.server", "--bind", procs.LOOPBACK, "--directory",
            os.path.abspath(directory), str(port)]
    proc, log = procs.spawn(name, argv, workdir)
    service = procs.Service(name, proc.pid, port, workdir, log, {"directory": os.path.abspath(directory)})
    return procs._started(service, proc,  # pylint: disable=protected-access
                          lambda: procs.wait_for_http(f"http://{procs.LOOPBACK}:{port}/", proc=proc))


def image_requests(service):
    """Paths the image server answered so far, as ``(path, status)`` tuples in order."""
    found = []
    try:
        with open(service.log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = re.search(r'"GET (\S+) HTTP/[0-9.]+" (\d{3})', line)
                if match:
                    found.append((match.group(1), int(match.group(2))))
    except OSError:
        pass
    return found


def kvm_usable():
    """True when /dev/kvm can create a VM for us (no nested-virtualisation surprises at QEMU start)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION, 0) != 12:
            return False
        os.close(fcntl.ioctl(fd, KVM_CREATE_VM, 0))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def probe_kvm(timeout=20.0, images_dir=None):
    """True when a KVM guest really runs here: the lab kernel boots directly and reports its cmdline.

    Some hosts (nested or emulated KVM) create VMs whose guests never get past real mode; only a boot
    tells. The answer is cached in the images directory next to the kernel it was measured with.
    """
    if shutil.which(QEMU) is None or not os.path.exists("/dev/kvm"):
        return False
    manifest = bootimages.build_images(images_dir)
    directory = manifest["directory"]
    cache = os.path.join(directory, "kvm-probe.json")
    key = {"kernel_sha256": manifest["kernel"]["sha256"], "qemu": os.path.realpath(shutil.which(QEMU))}
    try:
        with open(cache, encoding="utf-8") as handle:
            cached = json.load(handle)
        if cached.get("key") == key:
            return bool(cached["usable"])
    except (OSError, ValueError, KeyError):
        pass
    if not kvm_usable():
        return False
    workdir = procs.make_workdir("kvm-probe")
    try:
        serial = os.path.join(workdir, "serial.log")
        argv = [QEMU, "-machine", "pc,accel=kvm", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none",
                "-monitor", "none", "-no-reboot", "-serial", f"file:{serial}",
                "-kernel", os.path.join(directory, bootimages.KERNEL_NAME),
                "-initrd", os.path.join(directory, bootimages.INITRAMFS_NAME), "-append", "quiet hpclab_kvm_probe=1"]
        started = time.monotonic()
        proc, _log = procs.spawn("qemu", argv, workdir)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _stop_qemu(proc)
        with open(serial, encoding="utf-8", errors="replace") as handle:
            usable = parse_serial(handle.read())[0] is not None
        record = {"key": key, "usable": usable, "seconds": round(time.monotonic() - started, 2)}
        bootimages.write_atomic(cache, json.dumps(record, indent=2).encode())
        return usable
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def choose_accel(accel="auto"):
    """``kvm`` or ``tcg``: ``auto`` honours ``HPCLAB_VM_ACCEL``, else uses KVM only if :func:`probe_kvm` says so."""
    if accel == "auto":
        accel = os.environ.get("HPCLAB_VM_ACCEL", "auto") or "auto"
        if accel == "auto":
            return "kvm" if probe_kvm() else "tcg"
    if accel not in ("kvm", "tcg"):
        raise VMError(f"accel must be auto, kvm or tcg, not {accel!r}")
    return accel


def _check_port(field, value, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise VMError(f"{field} must be a TCP port number (1-65535), not {value!r}")
    return value


def _check_mac(mac):
    if not isinstance(mac, str) or not MAC_RE.match(mac):
        raise VMError(f"mac must look like aa:bb:cc:dd:ee:ff, not {mac!r}")
    if int(mac[:2], 16) & 1:
        raise VMError(f"mac {mac!r} is a multicast address; a NIC needs a unicast MAC")
    return mac.lower()


class BootResult:
    """What one network boot of the canary VM showed."""

    def __init__(self, mac, accel, workdir, serial_log):
        self.mac = mac
        self.accel = accel
        self.workdir = workdir
        self.serial_log = serial_log
        self.exit_status = None
        self.timed_out = False
        self.duration = None
        self.serial = ""
        self.cmdline = None
        self.powered_off = False
        self.qemu_log = os.path.join(workdir, "qemu.log")

    @property
    def booted(self):
        """The initramfs ran and reported its command line."""
        return self.cmdline is not None

    def missing_params(self, expected):
        """Tokens of ``expected`` (a params string) that the reported command line lacks.

        Tokens containing ``initrd`` are not checked (see :func:`unchecked_params`): BSS rewrites the
        first ``initrd`` substring of the params, so the kernel never sees such a token as configured.
        """
        have = set((self.cmdline or "").split())
        return [token for token in str(expected).split() if token not in have and "initrd" not in token]

    def matches(self, expected):
        return self.booted and not self.missing_params(expected)

    def serial_tail(self, lines=25):
        return "\n".join(ANSI_RE.sub("", self.serial).splitlines()[-lines:])

    def qemu_log_tail(self, lines=10):
        """QEMU's own messages (a bad option, a missing ROM): empty when QEMU had nothing to say."""
        try:
            with open(self.qemu_log, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def to_dict(self, expected=None):
        data = {"mac": self.mac, "accel": self.accel, "booted": self.booted, "cmdline": self.cmdline,
                "powered_off": self.powered_off, "timed_out": self.timed_out,
                "exit_status": self.exit_status, "duration": self.duration,
                "serial_log": self.serial_log, "qemu_log": self.qemu_log, "workdir": self.workdir}
        if expected is not None:
            data["expected_params"] = expected
            data["missing_params"] = self.missing_params(expected)
            data["unchecked_params"] = unchecked_params(expected)
            data["matched"] = self.matches(expected)
        return data


def unchecked_params(expected):
    """Expected tokens a command-line comparison skips: those containing ``initrd`` (BSS rewrites them)."""
    return [token for token in str(expected).split() if "initrd" in token]


def parse_serial(text):
    """``(cmdline or None, powered_off)`` from a serial log (ANSI escapes and CRs removed)."""
    clean = ANSI_RE.sub("", text)
    cmdline = None
    for line in clean.splitlines():
        at = line.find(bootimages.CMDLINE_MARKER)
        if at >= 0:
            cmdline = line[at + len(bootimages.CMDLINE_MARKER):].strip()
    return cmdline, bootimages.POWEROFF_MARKER in clean


def ipxe_script(gw_uri=""):
    """The script QEMU's TFTP server hands to iPXE: chain to the gateway, power off if that fails."""
    return ("#!ipxe\n"
            "echo hpclab-canary: chaining to the boot script service\n"
            f"chain --autofree {guest_bootscript_url(gw_uri)} || goto failed\n"
            ":failed\n"
            "echo hpclab-canary: chain failed\n"
            "poweroff || exit 1\n")


def qemu_argv(mac, gateway_port, image_port, workdir, accel, memory=256):
    """The QEMU command line for one canary boot (a list; see the module docstring)."""
    socat = shutil.which("socat") or "/usr/bin/socat"
    netdev = ["user", "id=n0", "restrict=on", "net=10.0.2.0/24", f"tftp={os.path.join(workdir, 'tftp')}",
              f"bootfile={TFTP_SCRIPT}",
              f"guestfwd=tcp:{GUEST_GATEWAY_IP}:80-cmd:{socat} -lf {os.path.join(workdir, 'socat-gateway.log')} - TCP:{procs.LOOPBACK}:{gateway_port}"]
    if image_port is not None:
        netdev.append(f"guestfwd=tcp:{GUEST_IMAGE_IP}:80-cmd:{socat} -lf {os.path.join(workdir, 'socat-images.log')} - TCP:{procs.LOOPBACK}:{image_port}")
    machine = ["-machine", f"pc,accel={accel}"]
    return [QEMU, "-name", f"hpclab-canary-{mac}"] + machine + [
        "-m", str(memory), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
        "-vga", "none", "-monitor", "none", "-no-reboot",
        "-serial", f"file:{os.path.join(workdir, 'serial.log')}",
        "-netdev", ",".join(netdev),
        "-device", f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1",
        "-boot", "strict=on,reboot-timeout=0"]


def _children(pid):
    """PIDs whose parent is ``pid`` (QEMU's socat helpers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _stop_qemu(proc):
    helpers = _children(proc.pid)
    if proc.poll() is None:
        procs.stop_pid(proc.pid, signal.SIGTERM, timeout=5.0)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for pid in helpers:
        procs.stop_pid(pid, signal.SIGTERM, timeout=2.0)


def boot_node(mac, gateway_port, image_port=None, timeout=60, workdir=None, accel="auto", gw_uri="",
              memory=256):
    """Network-boot one canary VM with NIC MAC ``mac``; return a :class:`BootResult`.

    ``gateway_port`` is the loopback port answering ``<gw_uri>/boot/v1/bootscript`` (the gateway or a
    BSS); ``image_port`` the lab image server's port (guest address 10.0.2.101), or None when the boot
    parameters point elsewhere. The VM is stopped after ``timeout`` seconds if it has not powered off;
    the result then has ``timed_out`` set and whatever the serial port showed until then.
    """
    mac = _check_mac(mac)
    gateway_port = _check_port("gateway_port", gateway_port)
    image_port = _check_port("image_port", image_port, optional=True)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise VMError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if not isinstance(gw_uri, str) or (gw_uri and (not gw_uri.startswith("/") or gw_uri.endswith("/"))):
        raise VMError(f"gw_uri must be empty or a path like /apis/bss (no trailing slash), not {gw_uri!r}")
    if workdir is not None and re.search(r"[,\s]", str(workdir)):
        raise VMError(f"workdir must not contain commas or whitespace (QEMU and socat options), not {str(workdir)!r}")
    if shutil.which(QEMU) is None:
        raise VMError(f"{QEMU} not found: install the qemu-system-x86 and ipxe-qemu packages")
    if not os.path.isfile(os.path.join(IPXE_ROM_DIR, "efi-virtio.rom")):
        raise VMError(f"iPXE ROM {os.path.join(IPXE_ROM_DIR, 'efi-virtio.rom')} not found: install the ipxe-qemu package")
    accel = choose_accel(accel)
    workdir = str(workdir) if workdir is not None else procs.make_workdir("canary")
    os.makedirs(os.path.join(workdir, "tftp"), exist_ok=True)
    with open(os.path.join(workdir, "tftp", TFTP_SCRIPT), "w", encoding="ascii") as handle:
        handle.write(ipxe_script(gw_uri))
    argv = qemu_argv(mac, gateway_port, image_port, workdir, accel, memory)
    with open(os.path.join(workdir, "qemu.argv"), "w", encoding="utf-8") as handle:
        handle.write(shlex.join(argv) + "\n")
    result = BootResult(mac, accel, workdir, os.path.join(workdir, "serial.log"))
    started = time.monotonic()
    proc, _log = procs.spawn("qemu", argv, workdir)
    try:
        result.exit_status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        result.timed_out = True
    finally:
        _stop_qemu(proc)
    result.duration = round(time.monotonic() - started, 2)
    try:
        with open(result.serial_log, encoding="utf-8", errors="replace") as handle:
            result.serial = handle.read()
    except OSError:
        result.serial = ""
    result.cmdline, result.powered_off = parse_serial(result.serial)
    return result


# ---- command line: lab/bin/hpclab-vm (python -m hpclab.vm) -------------------------------------------

CLI_HELP = """hpclab-vm: the lab's canary node (QEMU + iPXE) and its power action.

  hpclab-vm images [--rebuild]                       build or reuse the kernel and initramfs
  hpclab-vm serve-images --state FILE [--port N]     start the image server (detached)
  hpclab-vm stop-images --state FILE                 stop it (by the PID in FILE)
  hpclab-vm boot --mac M --gateway-port P [--image-port Q] [--expect-params '...'] [--json]
  hpclab-vm accel                                    which accelerator a boot would use

Exit status of ``boot``: 0 the node booted (and its command line holds every expected parameter),
1 the node did not boot (no command line on the serial port), 3 it booted with a command line
lacking expected parameters, 2 bad arguments.
"""

EXIT_OK, EXIT_NOT_BOOTED, EXIT_USAGE, EXIT_MISMATCH = 0, 1, 2, 3


def _print(data):
    print(json.dumps(data, indent=2, sort_keys=True))


def cmd_images(args):
    _print(bootimages.build_images(rebuild=args.rebuild))
    return EXIT_OK


def cmd_serve_images(args):
    directory = args.directory or bootimages.build_images()["directory"]
    service = start_image_server(directory, port=args.port)
    procs.save_state(args.state, {"images": service})
    _print(service.to_dict())
    return EXIT_OK


def cmd_stop_images(args):
    for service in procs.load_state(args.state).values():
        service.stop()
    os.unlink(args.state)
    return EXIT_OK


def cmd_accel(_args):
    _print({"accel": choose_accel()})
    return EXIT_OK


def cmd_boot(args):
    result = boot_node(args.mac, args.gateway_port, args.image_port, timeout=args.timeout,
                       workdir=args.workdir, accel=args.accel, gw_uri=args.gw_uri)
    data = result.to_dict(args.expect_params)
    if not result.booted:
        data["serial_tail"] = result.serial_tail()
        data["qemu_log_tail"] = result.qemu_log_tail()
        status = EXIT_NOT_BOOTED
    elif args.expect_params is not None and not result.matches(args.expect_params):
        status = EXIT_MISMATCH
    else:
        status = EXIT_OK
    data["status"] = {EXIT_OK: "ok", EXIT_NOT_BOOTED: "not booted", EXIT_MISMATCH: "params mismatch"}[status]
    if args.json:
        _print(data)
    else:
        print(f"{result.mac}: {data['status']} ({result.accel}, {result.duration}s) cmdline: {result.cmdline}")
        if status == EXIT_MISMATCH:
            print(f"missing: {' '.join(data['missing_params'])}")
        print(f"serial log: {result.serial_log}")
    return status


def parser():
    top = argparse.ArgumentParser(prog="hpclab-vm", description=CLI_HELP.split("\n", 1)[0])
    sub = top.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="build or reuse the canary kernel and initramfs")
    images.add_argument("--rebuild", action="store_true")
    images.set_defaults(func=cmd_images)
    serve = sub.add_parser("serve-images", help="start the lab image server on 127.0.0.1")
    serve.add_argument("--state", required=True, help="file recording the server's PID and port")
    serve.add_argument("--directory", help="directory to serve (default: the built images)")
    serve.add_argument("--port", type=int, help="port (default: a free one)")
    serve.set_defaults(func=cmd_serve_images)
    stop = sub.add_parser("stop-images", help="stop the image server recorded in --state")
    stop.add_argument("--state", required=True)
    stop.set_defaults(func=cmd_stop_images)
    accel = sub.add_parser("accel", help="print the accelerator a boot would use (kvm or tcg)")
    accel.set_defaults(func=cmd_accel)
    boot = sub.add_parser("boot", help="network-boot one canary VM and report its kernel command line")
    boot.add_argument("--mac", required=True, help="the node's boot MAC (the VM's NIC gets it)")
    boot.add_argument("--gateway-port", type=int, required=True,
                      help="loopback port answering <gw-uri>/boot/v1/bootscript (guest address 10.0.2.100)")
    boot.add_argument("--image-port", type=int, help="loopback port of the image server (guest address 10.0.2.101)")
    boot.add_argument("--gw-uri", default="", help="path prefix before /boot/v1/bootscript, e.g. /apis/bss")
    boot.add_argument("--expect-params", help="parameters the reported command line must contain (space separated)")
    boot.add_argument("--timeout", type=float, default=120.0, help="seconds before the VM is stopped")
    boot.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    boot.add_argument("--workdir", help="directory for the serial log and QEMU files (default: a new one in /tmp)")
    boot.add_argument("--json", action="store_true", help="print the result as JSON")
    boot.set_defaults(func=cmd_boot)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except VMError as exc:
        print(f"hpclab-vm: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (procs.LabError, bootimages.ImageBuildError) as exc:
        print(f"hpclab-vm: {exc}", file=sys.stderr)
        return EXIT_NOT_BOOTED


if __name__ == "__main__":
    sys.exit(main())
