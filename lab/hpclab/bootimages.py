"""Boot images for the lab's canary VM: Debian's kernel and a busybox initramfs that reports /proc/cmdline.

Both are built by code from Debian packages, never installed on the host: ``apt-get download`` fetches
the kernel package (``linux-image-amd64``'s current dependency, or ``HPCLAB_KERNEL_PACKAGE``) and
``busybox-static`` into a temporary directory, ``dpkg-deb -x`` unpacks them, and the initramfs is a
newc cpio archive written here with fixed owners and timestamps (so the same busybox gives the same
bytes). Results are cached in ``.build/images`` (``HPCLAB_IMAGES_DIR``) with a ``manifest.json``
naming the packages and checksums; a later call reuses them without asking apt.

The initramfs ``/init`` mounts proc and devtmpfs, writes one line
``hpclab-canary-cmdline: <contents of /proc/cmdline>`` straight to ``/dev/ttyS0`` (so the capture works
whatever ``console=`` the boot parameters carry) and powers the VM off.
"""

import glob
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tempfile
import time

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LAB_DIR)
IMAGES_DIR = os.environ.get("HPCLAB_IMAGES_DIR", os.path.join(REPO, ".build", "images"))
KERNEL_NAME = "vmlinuz"
# The file name must not contain "initrd": BSS rewrites the first "initrd" substring of the params.
INITRAMFS_NAME = "canary-initramfs.cpio.gz"
MANIFEST_NAME = "manifest.json"
CMDLINE_MARKER = "hpclab-canary-cmdline: "
BOOT_MARKER = "hpclab-canary: init started"
POWEROFF_MARKER = "hpclab-canary: powering off"
BUSYBOX_APPLETS = ("sh", "mount", "cat", "echo", "poweroff", "uname", "sync", "mkdir", "sleep")

INIT_SCRIPT = f"""#!/bin/sh
# hpclab canary: report the kernel command line on the first serial port, then power off.
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null
out=/dev/ttyS0
[ -c "$out" ] || out=/dev/console
echo "{BOOT_MARKER} (kernel $(uname -r))" > "$out"
echo "{CMDLINE_MARKER}$(cat /proc/cmdline)" > "$out"
echo "{POWEROFF_MARKER}" > "$out"
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 5
"""


class ImageBuildError(RuntimeError):
    """A boot image could not be fetched or built; the message names the step and the package."""


def _run(argv, cwd=None):
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return result.stdout


def _kernel_dependency():
    result = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    return None


def kernel_package():
    """The versioned kernel package to use: ``HPCLAB_KERNEL_PACKAGE`` or linux-image-amd64's dependency."""
    pinned = os.environ.get("HPCLAB_KERNEL_PACKAGE")
    if pinned:
        return pinned
    package = _kernel_dependency()
    if package is None:
        _run(["apt-get", "update", "-qq"])
        package = _kernel_dependency()
    if package is None:
        raise ImageBuildError("apt-cache depends linux-image-amd64 names no linux-image package "
                              "(set HPCLAB_KERNEL_PACKAGE to a linux-image-*-amd64 package)")
    return package


def _download(package, tmp):
    try:
        _run(["apt-get", "download", "-q", package], cwd=tmp)
    except ImageBuildError:
        # Package lists missing or stale (a fresh image, a point release since): refresh once, retry.
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "download", "-q", package], cwd=tmp)
    debs = sorted(glob.glob(os.path.join(tmp, f"{package.split('=')[0]}_*.deb")))
    if not debs:
        raise ImageBuildError(f"apt-get download {package} produced no .deb in {tmp}")
    version = _run(["dpkg-deb", "-f", debs[-1], "Version"]).strip()
    root = os.path.join(tmp, "x-" + package.split("=")[0])
    _run(["dpkg-deb", "-x", debs[-1], root])
    return root, version


class CpioWriter:
    """A newc ("070701") cpio archive with root ownership and mtime 0, as the kernel unpacks it."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self.buf.write(header + name.encode() + b"\0")
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self):
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def directory(self, name):
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, mode=0o755):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def make_initramfs(busybox_bytes):
    """The gzip-compressed initramfs bytes for a static busybox binary (deterministic)."""
    cpio = CpioWriter()
    for name in (".", "bin", "dev", "proc", "sys"):
        cpio.directory(name)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/ttyS0", 4, 64)
    cpio.file("bin/busybox", busybox_bytes)
    for applet in BUSYBOX_APPLETS:
        cpio.symlink(f"bin/{applet}", "busybox")
    cpio.file("init", INIT_SCRIPT.encode())
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as handle:
        handle.write(cpio.finish())
    return out.getvalue()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path, data):
    """Write ``data`` to ``path`` through a unique temporary file (parallel builders never see half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_manifest(directory=None):
    """The manifest of cached images, or None when they are missing or incomplete."""
    directory = directory or IMAGES_DIR
    try:
        with open(os.path.join(directory, MANIFEST_NAME), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    for name in (KERNEL_NAME, INITRAMFS_NAME):
        if not os.path.isfile(os.path.join(directory, name)):
            return None
    return manifest


def build_images(directory=None, rebuild=False):
    """Make sure the kernel and initramfs exist in ``directory``; return the manifest (with ``cached``)."""
    directory = directory or IMAGES_DIR
    started = time.monotonic()
    manifest = None if rebuild else load_manifest(directory)
    if manifest is not None:
        return dict(manifest, cached=True, directory=directory, seconds=round(time.monotonic() - started, 3))
    package = kernel_package()
    with tempfile.TemporaryDirectory(prefix="hpclab-images-") as tmp:
        kroot, kversion = _download(package, tmp)
        kernels = sorted(glob.glob(os.path.join(kroot, "boot", "vmlinuz-*")))
        if not kernels:
            raise ImageBuildError(f"{package} {kversion} contains no /boot/vmlinuz-*")
        broot, bversion = _download("busybox-static", tmp)
        busybox = os.path.join(broot, "bin", "busybox")
        if not os.path.isfile(busybox):
            raise ImageBuildError(f"busybox-static {bversion} contains no /bin/busybox")
        with open(busybox, "rb") as handle:
            initramfs = make_initramfs(handle.read())
        os.makedirs(directory, exist_ok=True)
        with open(kernels[-1], "rb") as handle:
            write_atomic(os.path.join(directory, KERNEL_NAME), handle.read())
        write_atomic(os.path.join(directory, INITRAMFS_NAME), initramfs)
        release = os.path.basename(kernels[-1])[len("vmlinuz-"):]
    manifest = {
        "kernel": {"file": KERNEL_NAME, "package": package, "version": kversion, "release": release,
                   "sha256": _sha256(os.path.join(directory, KERNEL_NAME))},
        "initramfs": {"file": INITRAMFS_NAME, "busybox_version": bversion,
                      "sha256": _sha256(os.path.join(directory, INITRAMFS_NAME))},
    }
    write_atomic(os.path.join(directory, MANIFEST_NAME), json.dumps(manifest, indent=2, sort_keys=True).encode())
    return dict(manifest, cached=False, directory=directory, seconds=round(time.monotonic() - started, 3))
