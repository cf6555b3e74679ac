"""Start and stop the lab's real services (etcd, PostgreSQL, haproxy) and any child process.

Every service binds 127.0.0.1 on a free port, keeps its data in a temporary directory and is
stopped by the PID this module recorded when it started it: nothing else is ever signalled.
A ``Service`` serialises to a dict so that a later command (``hpclab down``) can stop it.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

PG_BIN = os.environ.get("HPCLAB_PG_BIN", "/usr/lib/postgresql/15/bin")
LOOPBACK = "127.0.0.1"


class LabError(RuntimeError):
    """A lab service could not be started or stopped."""


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def make_workdir(name, base=None):
    """A fresh directory under /tmp (world-traversable so the postgres user can enter it)."""
    path = tempfile.mkdtemp(prefix=f"hpclab-{name}-", dir=base or "/tmp")
    os.chmod(path, 0o755)
    return path


def wait_for_tcp(port, timeout=20.0, host=LOOPBACK, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LabError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for_http(url, timeout=20.0, proc=None):
    """Wait until ``url`` answers any HTTP status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise LabError(f"{url} did not answer within {timeout}s: {last}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _reap(pid):
    """Collect the exit status of our own child, if it is one, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pid(pid, sig=signal.SIGTERM, timeout=15.0):
    """Signal one PID we started and wait for it to go; SIGKILL after ``timeout``."""
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            _reap(pid)
            return
        _reap(pid)
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


class Service:
    """A process this lab started: its PID, port(s), work directory and log file."""

    def __init__(self, name, pid, port, workdir, log, extra=None, stop_signal=signal.SIGTERM, owns_workdir=True):
        self.name = name
        self.pid = pid
        self.port = port
        self.workdir = workdir
        self.log = log
        self.extra = dict(extra or {})
        self.stop_signal = stop_signal
        self.owns_workdir = owns_workdir
        self.proc = None

    @property
    def url(self):
        return self.extra.get("url", f"http://{LOOPBACK}:{self.port}")

    def alive(self):
        return pid_alive(self.pid)

    def stop(self, keep_workdir=False):
        stop_pid(self.pid, self.stop_signal)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.owns_workdir and not keep_workdir and self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def to_dict(self):
        return {
            "name": self.name, "pid": self.pid, "port": self.port, "workdir": self.workdir,
            "log": self.log, "extra": self.extra, "stop_signal": int(self.stop_signal),
            "owns_workdir": self.owns_workdir,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(data["name"], data["pid"], data["port"], data["workdir"], data["log"],
                   data.get("extra"), signal.Signals(data.get("stop_signal", signal.SIGTERM)),
                   data.get("owns_workdir", True))

    def log_tail(self, lines=40):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def __repr__(self):
        return f"<Service {self.name} pid={self.pid} port={self.port}>"


def spawn(name, argv, workdir, env=None, user=None, log_name=None):
    """Start ``argv`` detached in its own session, output to a log file in ``workdir``."""
    log = os.path.join(workdir, log_name or f"{name}.log")
    with open(log, "ab") as out:
        kwargs = {}
        if user is not None:
            kwargs["user"] = user
            kwargs["group"] = pwd.getpwnam(user).pw_gid
            kwargs["extra_groups"] = []
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=workdir, env=env, start_new_session=True, **kwargs)
    return proc, log


def _started(service, proc, ready):
    service.proc = proc
    try:
        ready()
    except Exception as exc:
        tail = service.log_tail()
        service.stop(keep_workdir=True)
        raise LabError(f"{service.name} failed to start: {exc}\n--- {service.log} ---\n{tail}") from exc
    return service


def start_etcd(workdir=None, name="etcd", ssl_cert=None, ssl_key=None):
    """Debian's etcd (3.4) on free client and peer ports.

    With ``ssl_cert`` and ``ssl_key`` (PEM files) the client port serves TLS only (https); the
    default is plain http, as the lab uses.
    """
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    workdir = workdir or make_workdir(name)
    client, peer = free_port(), free_port()
    client_url = f"{'https' if ssl_cert else 'http'}://{LOOPBACK}:{client}"
    peer_url = f"http://{LOOPBACK}:{peer}"
    argv = [binary, "--name", "lab", "--data-dir", os.path.join(workdir, "data"),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"lab={peer_url}", "--log-level", "warn"]
    if ssl_cert:
        if not ssl_key:
            raise LabError("start_etcd: ssl_cert needs ssl_key")
        argv += ["--cert-file", ssl_cert, "--key-file", ssl_key]
    env = dict(os.environ, ETCD_UNSUPPORTED_ARCH=os.environ.get("ETCD_UNSUPPORTED_ARCH", ""))
    proc, log = spawn(name, argv, workdir, env=env)
    service = Service(name, proc.pid, client, workdir, log,
                      {"url": client_url, "host": LOOPBACK, "peer_port": peer})
    if ssl_cert:
        return _started(service, proc, lambda: wait_for_tcp(client, proc=proc))
    return _started(service, proc, lambda: wait_for_http(f"{client_url}/health", proc=proc))


def start_postgres(workdir=None, name="postgres", dbname="bssdb", user="bssuser", password="bssuser",
                   ssl_cert=None, ssl_key=None):
    """PostgreSQL 15 from Debian: initdb and the server run as the postgres user.

    Creates role ``user`` (LOGIN, scram password) owning database ``dbname``. ``extra`` carries
    host, port, dbname, user, password and the superuser's socket directory. Without ``ssl_cert``
    the server offers no TLS (the lab's default); with ``ssl_cert`` and ``ssl_key`` (PEM files,
    copied into the work directory for the postgres user) it offers TLS and still accepts plain text.
    """
    workdir = workdir or make_workdir(name)
    datadir = os.path.join(workdir, "data")
    pwfile = os.path.join(workdir, "superpw")
    superpw = os.urandom(12).hex()
    with open(pwfile, "w", encoding="ascii") as handle:
        handle.write(superpw + "\n")
    pg = pwd.getpwnam("postgres")
    for path in (workdir, pwfile):
        os.chown(path, pg.pw_uid, pg.pw_gid)
    os.chmod(pwfile, 0o600)
    subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BIN, "initdb"), "-D", datadir,
                    "--auth-local=peer", "--auth-host=scram-sha-256", "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True)
    os.unlink(pwfile)
    port = free_port()
    argv = [os.path.join(PG_BIN, "postgres"), "-D", datadir, "-p", str(port), "-k", workdir,
            "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off"]
    if ssl_cert:
        argv += _postgres_ssl_options(workdir, ssl_cert, ssl_key, pg)
    proc, log = spawn(name, argv, workdir, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                      user="postgres")
    service = Service(name, proc.pid, port, workdir, log,
                      {"host": LOOPBACK, "dbname": dbname, "user": user, "password": password,
                       "superuser": "postgres", "superpassword": superpw, "socket_dir": workdir},
                      stop_signal=signal.SIGINT)
    _started(service, proc, lambda: wait_for_tcp(port, proc=proc))
    try:
        _wait_pg_ready(service)
        psql(service, f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        psql(service, f"CREATE DATABASE {dbname} OWNER {user}")
    except Exception:
        service.stop()
        raise
    return service


def _postgres_ssl_options(workdir, ssl_cert, ssl_key, pg):
    """Server options for TLS; the key must belong to the postgres user with mode 0600."""
    if not ssl_key:
        raise LabError("start_postgres: ssl_cert needs ssl_key")
    paths = []
    for source, base in ((ssl_cert, "server.crt"), (ssl_key, "server.key")):
        target = os.path.join(workdir, base)
        shutil.copyfile(source, target)
        os.chown(target, pg.pw_uid, pg.pw_gid)
        os.chmod(target, 0o600)
        paths.append(target)
    return ["-c", "ssl=on", "-c", f"ssl_cert_file={paths[0]}", "-c", f"ssl_key_file={paths[1]}"]


def _wait_pg_ready(service, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", service.workdir,
                                "-p", str(service.port)], capture_output=True, check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise LabError(f"postgres on port {service.port} not ready after {timeout}s")


def psql(service, sql, dbname="postgres"):
    """Run SQL as the superuser over the lab server's Unix socket; returns stdout."""
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
         "-h", service.workdir, "-p", str(service.port), "-d", dbname, "-c", sql],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"psql failed: {result.stderr.strip()}")
    return result.stdout


def postgres_conninfo(service, dbname=None):
    """libpq key=value string for the BSS user over TCP (what BSS and our modules use)."""
    extra = service.extra
    return (f"host={extra['host']} port={service.port} dbname={dbname or extra['dbname']} "
            f"user={extra['user']} password={extra['password']} sslmode=disable")


def start_haproxy(config_text, workdir=None, name="haproxy", port=None):
    """haproxy in the foreground (-db) with the given configuration.

    The configuration may contain ``{port}`` and ``{workdir}`` placeholders; ``port`` defaults to a
    free one. Reload is done by the caller starting a new process with ``-sf <old pid>``.
    """
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    workdir = workdir or make_workdir(name)
    port = port or free_port()
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w", encoding="utf-8") as handle:
        handle.write(config_text.replace("{port}", str(port)).replace("{workdir}", workdir))
    check = subprocess.run([binary, "-c", "-f", cfg], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise LabError(f"haproxy configuration invalid: {check.stdout}{check.stderr}")
    proc, log = spawn(name, [binary, "-db", "-f", cfg], workdir)
    service = Service(name, proc.pid, port, workdir, log, {"config": cfg}, stop_signal=signal.SIGUSR1)
    return _started(service, proc, lambda: wait_for_tcp(port, proc=proc))


def save_state(path, services):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({name: svc.to_dict() for name, svc in services.items()}, handle, indent=2)
    os.replace(path + ".tmp", path)


def load_state(path):
    with open(path, encoding="utf-8") as handle:
        return {name: Service.from_dict(data) for name, data in json.load(handle).items()}
