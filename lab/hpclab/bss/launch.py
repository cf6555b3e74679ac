"""Start the BSS double (or the real upstream binaries) for tests, and package it as one executable.

``start_bss(..., impl="upstream")`` runs the real upstream BSS installed by ``hpclab.upstream`` (``make
upstream``) with the same environment as the double, so a test runs unchanged against either; ``impl=None``
takes ``HPCLAB_BSS_IMPL`` (``double`` or ``upstream``, default ``double``). ``HPC_BOOT_BSS_BIN`` /
``HPC_BOOT_BSS_INIT_BIN`` still name other upstream binaries by path.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipapp

from hpclab import procs

LAB_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_DIR = os.path.dirname(LAB_DIR)
SCHEMA_FILE = os.path.join(REPO_DIR, "plugins", "module_utils", "bss_schema.py")
BACKENDS = ("etcd", "postgres", "memory")
IMPLEMENTATIONS = ("double", "upstream")


def resolve_impl(impl=None):
    """``"double"`` or ``"upstream"``: ``impl``, else ``HPCLAB_BSS_IMPL``, else the double."""
    impl = impl or os.environ.get("HPCLAB_BSS_IMPL") or "double"
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"BSS implementation must be one of {', '.join(IMPLEMENTATIONS)}, got {impl!r}")
    return impl


def upstream_binaries():
    """The installed upstream manifest (binaries and migrations); LabError saying how to install it if absent."""
    from hpclab import upstream  # pylint: disable=import-outside-toplevel
    manifest, reason = upstream.availability("bss")
    if manifest is None:
        raise procs.LabError(reason)
    return manifest


def _binaries(impl):
    """(boot-script-service argv, bss-init argv, extra init env) for ``impl``."""
    if resolve_impl(impl) == "upstream":
        manifest = upstream_binaries()
        return [manifest["boot_script_service"]], [manifest["bss_init"]], {"BSS_MIGRATIONDIR": manifest["migrations"]}
    bss, init = os.environ.get("HPC_BOOT_BSS_BIN"), os.environ.get("HPC_BOOT_BSS_INIT_BIN")
    return ([bss] if bss else [sys.executable, "-m", "hpclab.bss"],
            [init] if init else [sys.executable, "-m", "hpclab.bss.init"], {})


def _python_env(extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join(filter(None, [LAB_DIR, os.environ.get("PYTHONPATH")]))}
    env.update(extra)
    return env


def bss_environment(backend, smd_url, port, etcd=None, postgres=None, env=None):
    """The upstream environment variables for a BSS on ``port`` with the given backend."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    result = {"HSM_URL": smd_url, "BSS_HTTP_LISTEN": f"{procs.LOOPBACK}:{port}",
              "BSS_ADVERTISE_ADDRESS": f"http://{procs.LOOPBACK}:{port}", "NFD_URL": f"http://{procs.LOOPBACK}:9"}
    if backend == "etcd":
        if etcd is None:
            raise ValueError("backend 'etcd' needs the etcd service")
        result.update({"ETCD_HOST": procs.LOOPBACK, "ETCD_PORT": str(etcd.port)})
    elif backend == "postgres":
        if postgres is None:
            raise ValueError("backend 'postgres' needs the postgres service")
        extra = postgres.extra
        result.update({"BSS_USESQL": "true", "BSS_DBHOST": extra.get("host", procs.LOOPBACK),
                       "BSS_DBPORT": str(postgres.port), "BSS_DBNAME": extra.get("dbname", "bssdb"),
                       "BSS_DBUSER": extra.get("user", "bssuser"), "BSS_DBPASS": extra.get("password", "bssuser"),
                       "BSS_INSECURE": "true"})
    result.update(env or {})
    return result


def run_bss_init(workdir, bss_env, extra_env=None, impl=None, binaries=None):
    """Run bss-init (upstream binary or the double) once; raises LabError on failure. ``binaries``: what
    ``_binaries(impl)`` returned, when the caller has it already."""
    prefixes = ("BSS_DB", "BSS_INSECURE", "BSS_FRESH", "BSS_MIGRATIONDIR")
    _bss_argv, argv, init_extra = binaries or _binaries(impl)
    init_env = dict(init_extra)
    init_env.update({key: value for key, value in bss_env.items() if key.startswith(prefixes)})
    init_env.setdefault("BSS_DBSTEP", "3")
    init_env.update(extra_env or {})
    result = subprocess.run(argv, env=_python_env(init_env), cwd=workdir, capture_output=True, text=True, timeout=120,
                            check=False)
    with open(os.path.join(workdir, "bss-init.log"), "a", encoding="utf-8") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise procs.LabError(f"bss-init failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return result


def start_bss(name, backend, smd_url, etcd=None, postgres=None, workdir=None, env=None, port=None, impl=None):
    """Start a BSS (double or upstream) on 127.0.0.1; returns a ``procs.Service``.

    ``backend``: "etcd" | "postgres" | "memory". For postgres, bss-init runs first with ``BSS_DBSTEP=3``
    unless ``env`` sets ``BSS_DBSTEP`` itself or ``HPCLAB_SKIP_BSS_INIT=1``. ``env`` overrides any
    variable (e.g. ``BSS_IPXE_SERVER``, ``BSS_ADVERTISE_ADDRESS``, ``HPCLAB_BSS_TOKEN``). ``impl``: "double" or
    "upstream" (see ``resolve_impl``).
    """
    impl = resolve_impl(impl)
    binaries = _binaries(impl)
    argv = binaries[0]
    env = dict(env or {})
    owns_workdir = workdir is None
    workdir = workdir or procs.make_workdir(name)
    port = port or procs.free_port()
    skip_init = env.pop("HPCLAB_SKIP_BSS_INIT", "") in ("1", "true", "yes")
    bss_env = bss_environment(backend, smd_url, port, etcd, postgres, env)
    if backend == "postgres" and not skip_init:
        run_bss_init(workdir, bss_env, binaries=binaries)
    proc, log = procs.spawn(name, argv, workdir, env=_python_env(bss_env))
    url = f"http://{procs.LOOPBACK}:{port}"
    service = procs.Service(name, proc.pid, port, workdir, log,
                            {"url": url, "backend": backend, "advertise_address": bss_env["BSS_ADVERTISE_ADDRESS"],
                             "smd_url": smd_url, "upstream": argv[0] != sys.executable, "impl": impl, "env": {
                                 k: v for k, v in bss_env.items() if k not in ("BSS_DBPASS", "HPCLAB_BSS_TOKEN", "HPCLAB_SMD_TOKEN")}},
                            owns_workdir=owns_workdir)
    return procs._started(service, proc,  # pylint: disable=protected-access
                          lambda: procs.wait_for_http(f"{url}/boot/v1/service/status", timeout=60.0, proc=proc))


MAIN_PY = '''import sys
from hpclab.bss.server import main as bss_main
from hpclab.bss.init import main as init_main

if __name__ == "__main__":
    import os
    prog = os.path.basename(sys.argv[0])
    if "bss-init" in prog or (len(sys.argv) > 1 and sys.argv[1] == "bss-init"):
        if len(sys.argv) > 1 and sys.argv[1] == "bss-init":
            del sys.argv[1]
        sys.exit(init_main())
    sys.exit(bss_main())
'''


def build_executable(dest, python):
    """Write a single-file zipapp of the double with ``python`` in the shebang; returns ``dest``.

    Run as ``boot-script-service`` it serves; named ``bss-init`` (or called with first argument
    ``bss-init``) it runs the schema initialiser. The interpreter needs psycopg, etcd3 and PyYAML.
    """
    staging = tempfile.mkdtemp(prefix="bss-zipapp-")
    try:
        package = os.path.join(staging, "hpclab")
        os.makedirs(os.path.join(package, "bss"))
        shutil.copy(os.path.join(LAB_DIR, "hpclab", "__init__.py"), package)
        shutil.copy(os.path.join(LAB_DIR, "hpclab", "procs.py"), package)
        source = os.path.join(LAB_DIR, "hpclab", "bss")
        for entry in sorted(os.listdir(source)):
            if entry.endswith(".py"):
                shutil.copy(os.path.join(source, entry), os.path.join(package, "bss", entry))
        shutil.copy(SCHEMA_FILE, os.path.join(package, "bss", "_bss_schema.py"))
        with open(os.path.join(staging, "__main__.py"), "w", encoding="utf-8") as handle:
            handle.write(MAIN_PY)
        zipapp.create_archive(staging, dest, interpreter=python, compressed=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    mode = os.stat(dest).st_mode
    os.chmod(dest, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return dest
