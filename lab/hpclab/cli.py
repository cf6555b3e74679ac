"""``hpclab``: bring the local lab up and down, show it, and fill it with a synthetic cluster.

The lab is a set of child processes on 127.0.0.1, each on a free port, each with its own
temporary directory under /tmp: etcd, PostgreSQL (database ``bssdb`` owned by ``bssuser``, BSS
schema applied), the SMD double serving a generated cluster, the BSS double twice (etcd mode and
postgres mode) and haproxy as the gateway sending ``/boot/v1`` to the etcd-mode BSS. Their PIDs,
ports and directories are recorded in ``<state dir>/state.json``; ``down`` stops exactly those
PIDs. Commands: ``up``, ``down``, ``status``, ``env``, ``load`` (see ``hpclab --help``).
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import glob
import importlib.util
import json
import os
import shlex
import shutil
import socket
import sys
import time

from hpclab import cluster, gateway_lab, procs

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LAB_DIR)
DEFAULT_STATE_DIR = os.path.join(REPO, ".build", "lab")
STATE_FILE = "state.json"
LAB_FILE = "lab.json"
NODES_FILE = "nodes.json"
DEFAULT_NODES = 64
BOOTPARAMETERS = "/boot/v1/bootparameters"


class LabCommandError(procs.LabError):
    """A lab command could not do what was asked; the message says why."""


def state_dir_default():
    return os.environ.get("HPCLAB_STATE_DIR") or DEFAULT_STATE_DIR


class LabState:
    """The files of one lab under its state directory."""

    def __init__(self, state_dir):
        self.dir = os.path.abspath(state_dir)
        self.state_path = os.path.join(self.dir, STATE_FILE)
        self.lab_path = os.path.join(self.dir, LAB_FILE)
        self.nodes_path = os.path.join(self.dir, NODES_FILE)

    def services(self):
        if not os.path.exists(self.state_path):
            return {}
        try:
            return procs.load_state(self.state_path)
        except (OSError, ValueError, KeyError) as exc:
            raise LabCommandError(f"state file {self.state_path} is unreadable: {exc}") from exc

    def meta(self):
        try:
            with open(self.lab_path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def save(self, services, meta):
        os.makedirs(self.dir, exist_ok=True)
        procs.save_state(self.state_path, services)
        with open(self.lab_path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)
        os.replace(self.lab_path + ".tmp", self.lab_path)

    @contextlib.contextmanager
    def locked(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, ".lock"), "w", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Strays: a start function that failed half-way may leave its server running without a Service.


def _session_leaders_in(workdir):
    """PIDs of processes we spawned into ``workdir``: session leaders whose cwd lies inside it."""
    found = []
    root = os.path.realpath(workdir)
    for entry in glob.glob("/proc/[0-9]*"):
        pid = int(entry[6:])
        try:
            cwd = os.readlink(f"{entry}/cwd")
            with open(f"{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if (cwd == root or cwd.startswith(root + "/")) and int(fields[3]) == pid:
            found.append(pid)
    return found


def _remove_workdir(workdir):
    if workdir and os.path.isdir(workdir):
        for pid in _session_leaders_in(workdir):
            procs.stop_pid(pid)
        shutil.rmtree(workdir, ignore_errors=True)


def _log_tails(workdir, lines=25):
    text = []
    for log in sorted(glob.glob(os.path.join(workdir or "/nonexistent", "*.log"))):
        try:
            with open(log, encoding="utf-8", errors="replace") as handle:
                tail = "".join(handle.readlines()[-lines:])
        except OSError:
            continue
        if tail.strip():
            text.append(f"--- {log} (last {lines} lines) ---\n{tail}")
    return "\n".join(text)


# ---------------------------------------------------------------------------------------------
# up


def _load_bss_schema():
    path = os.path.join(REPO, "plugins", "module_utils", "bss_schema.py")
    spec = importlib.util.spec_from_file_location("hpclab_bss_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _apply_schema(postgres):
    import psycopg  # pylint: disable=import-outside-toplevel
    schema = _load_bss_schema()
    with psycopg.connect(procs.postgres_conninfo(postgres), autocommit=True, connect_timeout=10) as conn:
        schema.apply_migrations(conn, schema.LATEST_VERSION)


def _start_postgres(workdir):
    service = procs.start_postgres(workdir=workdir)
    try:
        _apply_schema(service)
    except Exception:
        service.stop(keep_workdir=True)
        raise
    return service


def _start_bss(name, backend, smd, etcd, postgres, workdir, impl=None):
    from hpclab.bss import launch  # pylint: disable=import-outside-toplevel
    from hpclab import vm  # pylint: disable=import-outside-toplevel
    return launch.start_bss(name, backend, smd.url, etcd=etcd, postgres=postgres, workdir=workdir,
                            env=vm.bss_chain_env(""), impl=impl)


def _start_gateway(services, workdir, port, config_path):
    if config_path:
        with open(config_path, encoding="utf-8") as handle:
            text = handle.read()
        for name in ("bss-etcd", "bss-postgres"):
            text = text.replace("{" + name.replace("-", "_") + "_port}", str(services[name].port))
    else:
        text = gateway_lab.lab_gateway_config(services["bss-etcd"].port, services["bss-postgres"].port)
    if port:
        _check_port_free(port, "gateway_port")
    service = procs.start_haproxy(text, workdir=workdir, name="gateway", port=port)
    service.extra["url"] = f"http://{procs.LOOPBACK}:{service.port}"
    try:
        _wait_listening(service)
    except procs.LabError as exc:
        service.stop(keep_workdir=True)
        raise procs.LabError(f"{exc}\n--- {service.log} ---\n{service.log_tail()}") from exc
    return service


def _check_port_free(port, field):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((procs.LOOPBACK, port))
        except OSError as exc:
            raise procs.LabError(f"{field}: port {port} on {procs.LOOPBACK} is already in use ({exc.strerror})") from exc


def _listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return inodes


def _wait_listening(service, timeout=10.0):
    """Wait until the service's own process (not some other one) listens on its port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise procs.LabError(f"{service.name} (pid {service.pid}) exited during start-up")
        wanted = {f"socket:[{inode}]" for inode in _listening_inodes(service.port)}
        try:
            owned = {os.readlink(os.path.join(f"/proc/{service.pid}/fd", fd)) for fd in os.listdir(f"/proc/{service.pid}/fd")}
        except OSError:
            owned = set()
        if wanted & owned:
            return
        time.sleep(0.05)
    raise procs.LabError(f"{service.name} (pid {service.pid}) does not listen on port {service.port} after {timeout}s")


def _start_images(workdir):
    """The canary VM's image server, when the images are built and QEMU is installed; else None."""
    from hpclab import bootimages, vm  # pylint: disable=import-outside-toplevel
    manifest = bootimages.load_manifest()
    if manifest is None or not shutil.which(vm.QEMU):
        return None
    return vm.start_image_server(bootimages.IMAGES_DIR, workdir=workdir)


def _run_phase(tasks, services, workdirs, out, work_root=None):
    """Start ``tasks`` (name -> callable(workdir)) in parallel; raise after all finished if one failed."""
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = {}
        for name, start in tasks.items():
            workdirs[name] = procs.make_workdir(name, base=work_root)
            futures[pool.submit(start, workdirs[name])] = name
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            try:
                service = future.result()
            except Exception as exc:  # pylint: disable=broad-except
                failures.append((name, exc))
                continue
            if service is None:
                _remove_workdir(workdirs.pop(name))
                out(f"  {name:<13} skipped (canary VM images not built or QEMU missing)")
                continue
            services[name] = service
            out(f"  {name:<13} pid {service.pid:<7} {service.url}")
    if failures:
        name, exc = failures[0]
        message = str(exc)
        if "---" not in message:
            message += "\n" + _log_tails(workdirs.get(name))
        others = "".join(f"\n(also failed: {other}: {str(error).splitlines()[0] if str(error) else error!r})"
                         for other, error in failures[1:])
        prefix = "" if message.startswith(f"{name} failed to start") else f"{name} failed to start: "
        raise LabCommandError(f"{prefix}{message.rstrip()}{others}")


def up(state_dir, nodes=DEFAULT_NODES, seed=0, vm=True, gateway_port=None, gateway_config=None, work_root=None,
       out=print, bss=None):
    """Start every lab piece; on any failure stop what started, remove its directories and raise.

    ``bss``: "double" (the lab's BSS double) or "upstream" (the real BSS installed by ``make upstream``) for both
    BSS instances; default $HPCLAB_BSS_IMPL, else the double.

    Each piece gets a fresh directory under ``work_root`` (default $HPCLAB_WORK_ROOT or /tmp; it must
    be traversable by the postgres user).
    """
    from hpclab.bss import launch  # pylint: disable=import-outside-toplevel
    lab = LabState(state_dir)
    work_root = work_root or os.environ.get("HPCLAB_WORK_ROOT") or None
    if work_root and not os.path.isdir(work_root):
        raise LabCommandError(f"work_root: {work_root!r} is not a directory")
    try:
        bss = launch.resolve_impl(bss)
        if bss == "upstream":
            launch.upstream_binaries()
    except (ValueError, procs.LabError) as exc:
        raise LabCommandError(f"bss: {exc}") from exc
    with lab.locked():
        existing = lab.services()
        if any(service.alive() for service in existing.values()):
            out(f"lab is already up (state in {lab.dir}); `hpclab down` stops it")
            return existing
        if existing:
            _stop_all(existing, lambda _line: None)
        generated = cluster.generate_nodes(nodes, seed=seed)
        with open(lab.nodes_path, "w", encoding="utf-8") as handle:
            json.dump(generated, handle, indent=1)
        meta = {"nodes": nodes, "seed": seed, "nodes_file": lab.nodes_path, "started": int(time.time()), "bss": bss,
                "repo": REPO, "work_root": work_root or "/tmp"}
        services, workdirs = {}, {}
        began = time.monotonic()
        out(f"hpclab up: {nodes} nodes (seed {seed}), BSS: {bss}, state in {lab.dir}")
        try:
            _run_phase({"etcd": lambda wd: procs.start_etcd(workdir=wd), "postgres": _start_postgres,
                        "smd": lambda wd: _smd(lab.nodes_path, wd)}, services, workdirs, out, work_root)
            lab.save(services, meta)
            _run_phase({name: (lambda wd, name=name, backend=backend: _start_bss(
                name, backend, services["smd"], services["etcd"] if backend == "etcd" else None,
                services["postgres"] if backend == "postgres" else None, wd, bss))
                for name, backend in (("bss-etcd", "etcd"), ("bss-postgres", "postgres"))}, services, workdirs, out, work_root)
            lab.save(services, meta)
            phase = {"gateway": lambda wd: _start_gateway(services, wd, gateway_port, gateway_config)}
            if vm:
                phase["images"] = _start_images
            _run_phase(phase, services, workdirs, out, work_root)
            lab.save(services, meta)
        except BaseException as exc:
            _stop_all(services, lambda _line: None)
            for workdir in workdirs.values():
                _remove_workdir(workdir)
            for path in (lab.state_path, lab.lab_path, lab.nodes_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            if isinstance(exc, procs.LabError):
                raise LabCommandError(f"{exc}\n(stopped the {len(services)} pieces already started and removed their directories)") from exc
            raise
        out(f"lab up in {time.monotonic() - began:.1f}s; `hpclab status`, `hpclab env`, `hpclab load`, `hpclab down`")
        return services


def _smd(nodes_path, workdir):
    from hpclab import smd  # pylint: disable=import-outside-toplevel
    return smd.start_smd(nodes_path, workdir=workdir)


# ---------------------------------------------------------------------------------------------
# down


def _stop_all(services, out):
    for name in reversed(list(services)):
        service = services[name]
        was_alive = service.alive()
        service.stop()
        _remove_workdir(service.workdir)
        out(f"  {name:<13} {'stopped' if was_alive else 'was not running'} (pid {service.pid})")


def down(state_dir, out=print):
    """Stop every recorded PID (only those), remove their directories and the state files."""
    lab = LabState(state_dir)
    if not os.path.exists(lab.state_path):
        out(f"lab is not up (no state in {lab.dir})")
        return 0
    with lab.locked():
        services = lab.services()
        if not services:
            out(f"lab is not up (no state in {lab.dir})")
            return 0
        out("hpclab down:")
        _stop_all(services, out)
        for path in (lab.state_path, lab.lab_path, lab.nodes_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(services)


# ---------------------------------------------------------------------------------------------
# status and env


def _http_json(url, timeout=5.0):
    import requests  # pylint: disable=import-outside-toplevel
    response = requests.get(url, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = response.text.strip()
    return response.status_code, body


def _probe(name, service):
    """(ok, detail) for one piece, asked the way a user would check it."""
    # pylint: disable=too-many-return-statements
    if name == "etcd":
        code, body = _http_json(service.url + "/health")
        healthy = isinstance(body, dict) and body.get("health") == "true"
        return code == 200 and healthy, f"/health: {'healthy' if healthy else body}"
    if name == "postgres":
        import psycopg  # pylint: disable=import-outside-toplevel
        with psycopg.connect(procs.postgres_conninfo(service), connect_timeout=5) as conn:
            user = conn.execute("SELECT current_user").fetchone()[0]
            version = conn.execute("SELECT version, dirty FROM schema_migrations").fetchone()
        return version is not None and not version[1], f"login as {user} over TCP ok, schema version {version and version[0]}"
    if name == "smd":
        code, body = _http_json(service.url + "/hsm/v2/State/Components")
        count = len(body.get("Components") or []) if isinstance(body, dict) else 0
        return code == 200 and count > 0, f"{count} components"
    if name.startswith("bss-"):
        code, body = _http_json(service.url + "/boot/v1/service/storage/status")
        backend = body.get("bss-storage-backend", {}) if isinstance(body, dict) else {}
        return code == 200 and backend.get("status") == "connected", f"storage backend {backend.get('name')} {backend.get('status')}"
    if name == "gateway":
        code, body = _http_json(service.url + "/boot/v1/service/storage/status")
        backend = body.get("bss-storage-backend", {}) if isinstance(body, dict) else {}
        return code == 200, f"/boot/v1 -> BSS ({backend.get('name')} backend), HTTP {code}"
    if name == "images":
        code, _body = _http_json(service.url + "/manifest.json")
        return code == 200, f"canary images, HTTP {code}"
    return service.alive(), "running"


def status(state_dir):
    """One dict per recorded piece: name, pid, alive, url, ok, detail."""
    rows = []
    for name, service in LabState(state_dir).services().items():
        row = {"name": name, "pid": service.pid, "alive": service.alive(), "url": service.url, "ok": False, "detail": ""}
        if not row["alive"]:
            row["detail"] = "process is gone"
        else:
            try:
                row["ok"], row["detail"] = _probe(name, service)
            except Exception as exc:  # pylint: disable=broad-except
                row["detail"] = f"no answer: {exc}"
        rows.append(row)
    return rows


def env_vars(state_dir):
    """``HPCLAB_*`` variable -> value for every piece of a running lab."""
    lab = LabState(state_dir)
    services = lab.services()
    if not services:
        raise LabCommandError(f"lab is not up (no state in {lab.dir})")
    result = {"HPCLAB_STATE_DIR": lab.dir}
    etcd = services.get("etcd")
    if etcd:
        result.update(HPCLAB_ETCD_URL=etcd.url, HPCLAB_ETCD_HOST=procs.LOOPBACK, HPCLAB_ETCD_PORT=str(etcd.port))
    postgres = services.get("postgres")
    if postgres:
        extra = postgres.extra
        result.update(HPCLAB_PG_HOST=extra["host"], HPCLAB_PG_PORT=str(postgres.port), HPCLAB_PG_DBNAME=extra["dbname"],
                      HPCLAB_PG_USER=extra["user"], HPCLAB_PG_LAB_PASSWORD=extra["password"],
                      HPCLAB_PG_CONNINFO=procs.postgres_conninfo(postgres))
    smd = services.get("smd")
    if smd:
        result.update(HPCLAB_SMD_URL=smd.url, HPCLAB_SMD_NODES_FILE=lab.nodes_path)
    for name, var in (("bss-etcd", "HPCLAB_BSS_ETCD_URL"), ("bss-postgres", "HPCLAB_BSS_POSTGRES_URL"),
                      ("gateway", "HPCLAB_GATEWAY_URL"), ("images", "HPCLAB_IMAGES_URL")):
        if name in services:
            result[var] = services[name].url
            if name == "gateway":
                result["HPCLAB_GATEWAY_PORT"] = str(services[name].port)
    return result


# ---------------------------------------------------------------------------------------------
# load


def _bss_request(session, method, url, body):
    response = session.request(method, url, json=body, timeout=60)
    if response.status_code not in (200, 201):
        what = next((body[key] for key in ("hosts", "macs", "nids") if key in body), body.get("kernel"))
        raise LabCommandError(f"BSS refused {method} {BOOTPARAMETERS} for {what!r}: HTTP {response.status_code} {response.text.strip()[:300]}")


def load(state_dir, nodes=None, seed=None, raw=False, out=print):
    """Replace the etcd BSS's data with a synthetic cluster matching the lab's SMD nodes.

    API-expressible records go through the etcd-mode BSS (``api_payloads``), the rest are raw etcd
    writes (``etcd_records(include_api_shapes=False)``); ``raw=True`` writes everything raw.
    """
    import etcd3  # pylint: disable=import-outside-toplevel
    import requests  # pylint: disable=import-outside-toplevel
    lab = LabState(state_dir)
    with lab.locked():
        services, meta = lab.services(), lab.meta()
        missing = [name for name in ("etcd", "smd", "bss-etcd") if name not in services or not services[name].alive()]
        if missing:
            raise LabCommandError(f"lab is not up or incomplete (missing {', '.join(missing)}); run `hpclab up` first")
        seed = meta.get("seed", 0) if seed is None else seed
        with open(lab.nodes_path, encoding="utf-8") as handle:
            smd_nodes = json.load(handle)
        if nodes is None:
            nodes = len(smd_nodes)
        generated = cluster.generate_nodes(nodes, seed=seed)
        if generated != smd_nodes:
            raise LabCommandError(
                f"nodes: the lab's SMD serves {len(smd_nodes)} nodes (seed {meta.get('seed')}), not {nodes} (seed {seed}); "
                f"run `hpclab down` and `hpclab up --nodes {nodes} --seed {seed}` first")
        began = time.monotonic()
        client = etcd3.client(host=procs.LOOPBACK, port=services["etcd"].port, timeout=30)
        try:
            for prefix in ("/params/", "/kernel/", "/initrd/", "/endpoint-access/"):
                client.delete_prefix(prefix)
            requests_sent = 0
            if not raw:
                url = services["bss-etcd"].url + BOOTPARAMETERS
                with requests.Session() as session:
                    for method, body in cluster.api_payloads(generated, seed=seed):
                        _bss_request(session, method, url, body)
                        requests_sent += 1
            written = cluster.load_etcd(client, cluster.etcd_records(generated, seed=seed, include_api_shapes=raw))
            params = sum(1 for _record in client.get_prefix("/params/", keys_only=True))
        finally:
            client.close()
        summary = {"nodes": nodes, "seed": seed, "api_requests": requests_sent, "raw_keys": written,
                   "params_records": params, "seconds": round(time.monotonic() - began, 2)}
        out(f"loaded {nodes} nodes into the etcd BSS: {requests_sent} API requests, {written} raw etcd keys, "
            f"{params} /params records ({summary['seconds']}s)")
        return summary


# ---------------------------------------------------------------------------------------------
# command line


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=argparse.SUPPRESS,
                        help=f"where the lab records its state (default $HPCLAB_STATE_DIR or {DEFAULT_STATE_DIR})")
    parser = argparse.ArgumentParser(prog="hpclab", description="The hpc_boot.bss local lab (all on 127.0.0.1).",
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("up", parents=[common], help="start etcd, PostgreSQL, SMD, both BSS instances and the gateway")
    cmd.add_argument("--nodes", type=int, default=DEFAULT_NODES, help=f"nodes in the SMD double (default {DEFAULT_NODES})")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the synthetic cluster (default 0)")
    cmd.add_argument("--no-vm", action="store_true", help="do not start the canary VM's image server")
    cmd.add_argument("--work-root", default=None, help="parent of the pieces' temporary directories (default $HPCLAB_WORK_ROOT or /tmp)")
    cmd.add_argument("--gateway-port", type=int, default=None, help="port for the gateway (default: a free one)")
    cmd.add_argument("--bss", choices=("double", "upstream"), default=None,
                     help="BSS for both instances: the lab's double or the real upstream BSS from `make upstream` "
                          "(default $HPCLAB_BSS_IMPL, else double)")
    cmd.add_argument("--gateway-config", default=None,
                     help="haproxy config file to use instead of the lab's ({port}, {bss_etcd_port}, {bss_postgres_port} are filled in)")
    sub.add_parser("down", parents=[common], help="stop every recorded process and remove its directory")
    cmd = sub.add_parser("status", parents=[common], help="ask every piece whether it answers")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("env", parents=[common], help="print export lines with the URLs and ports of every piece")
    cmd = sub.add_parser("load", parents=[common], help="fill the etcd BSS with the synthetic cluster SMD serves")
    cmd.add_argument("--nodes", type=int, default=None, help="must match the lab's SMD (default: its node count)")
    cmd.add_argument("--seed", type=int, default=None, help="default: the seed given to `up`")
    cmd.add_argument("--raw", action="store_true", help="write every record straight into etcd (fast for large clusters)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    state_dir = getattr(args, "state_dir", None) or state_dir_default()
    try:
        if args.command == "up":
            up(state_dir, args.nodes, args.seed, vm=not args.no_vm, gateway_port=args.gateway_port,
               gateway_config=args.gateway_config, work_root=args.work_root, bss=args.bss)
        elif args.command == "down":
            down(state_dir)
        elif args.command == "status":
            return _print_status(state_dir, args.json)
        elif args.command == "env":
            for name, value in env_vars(state_dir).items():
                print(f"export {name}={shlex.quote(value)}")
        elif args.command == "load":
            load(state_dir, args.nodes, args.seed, args.raw)
    except (procs.LabError, cluster.ClusterError, OSError) as exc:
        print(f"hpclab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpclab {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _print_status(state_dir, as_json):
    rows = status(state_dir)
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"lab is not up (no state in {os.path.abspath(state_dir)})")
    else:
        for row in rows:
            mark = "ok  " if row["ok"] else "FAIL"
            print(f"{mark} {row['name']:<13} pid {row['pid']:<7} {row['url']:<24} {row['detail']}")
    if not rows:
        return 3
    return 0 if all(row["ok"] for row in rows) else 1
