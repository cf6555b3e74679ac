# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read BSS's etcd key space (python3-etcd3), save and inspect snapshots, restore one into a throwaway etcd.

BSS writes its keys with no prefix (bss-spec 2.1): ``/params/``, ``/kernel/``, ``/initrd/``,
``/endpoint-access/``. All prefixes are read at ONE etcd revision so the import sees a consistent state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback

try:
    import etcd3
    HAS_ETCD3 = True
    ETCD3_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through missing_required_lib
    etcd3 = None
    HAS_ETCD3 = False
    ETCD3_IMPORT_ERROR = traceback.format_exc()

BSS_PREFIXES = ("/params/", "/kernel/", "/initrd/", "/endpoint-access/")
MAX_MESSAGE = 512 * 1024 * 1024


class EtcdSourceError(RuntimeError):
    """etcd could not be read or a snapshot could not be used; the message names the endpoint or file."""


def etcd_argument_spec():
    """Connection options, documented by the ``hpc_boot.bss.etcd`` doc fragment."""
    return {
        "etcd_host": {"type": "str", "default": "localhost"},
        "etcd_port": {"type": "int", "default": 2379},
        "etcd_ca_cert": {"type": "path"},
        "etcd_client_cert": {"type": "path"},
        "etcd_client_key": {"type": "path", "no_log": False},
        "etcd_user": {"type": "str"},
        "etcd_password": {"type": "str", "no_log": True},
        "etcd_timeout": {"type": "int", "default": 30},
    }


def connect(params):
    """An etcd3 client; the connection is checked with a status call so errors surface here."""
    if not HAS_ETCD3:
        raise EtcdSourceError("python3-etcd3 (import etcd3) is required")
    where = "%s:%s" % (params["etcd_host"], params["etcd_port"])
    try:
        client = etcd3.client(
            host=params["etcd_host"], port=params["etcd_port"], ca_cert=params.get("etcd_ca_cert"),
            cert_key=params.get("etcd_client_key"), cert_cert=params.get("etcd_client_cert"),
            user=params.get("etcd_user"), password=params.get("etcd_password"), timeout=params.get("etcd_timeout") or 30,
            grpc_options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)])
        if params.get("etcd_user") and not params.get("etcd_ca_cert"):
            # gRPC refuses call credentials on a plaintext channel; the auth token still travels as metadata
            client.call_credentials = None
        client.status()
    except Exception as exc:  # etcd3 raises grpc errors of many types
        cause = describe(exc)
        raise EtcdSourceError("Failed to connect to etcd at %s: %s%s" % (where, cause, _tls_advice(params, cause))) from exc
    return client


def describe(exc):
    """A one-line cause from etcd3/grpc exceptions (which often carry no message). etcd3 raises its own
    exception while handling grpc's, so grpc's details (a TLS handshake failure, say) are in the context."""
    text = _details(exc) or type(exc).__name__
    context = exc.__context__
    cause = _details(context) if context is not None and callable(getattr(context, "details", None)) else None
    if cause and cause not in text:
        text = "%s (%s)" % (text, cause)
    return text if len(text) <= 400 else text[:400] + "..."


def _details(exc):
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:  # pylint: disable=broad-except
            text = None
        if text:
            return text.strip()
    text = str(exc).strip()
    return text.splitlines()[0] if text else None


def _tls_advice(params, cause):
    """What to set when the connection failed in a way TLS settings explain, else an empty string."""
    lowered = cause.lower()
    if params.get("etcd_ca_cert"):
        if any(word in lowered for word in ("ssl", "tls", "handshake", "certificate", "verification")):
            return ("; check that etcd_ca_cert (%s) is the CA that signed etcd's certificate and that etcd_host "
                    "is a name or address in it" % params["etcd_ca_cert"])
        return ""
    if "connection failed" in lowered or "unavailable" in lowered or "socket closed" in lowered:
        return "; if etcd serves TLS (https), set etcd_ca_cert to the CA that signed its certificate"
    return ""


PAGE_SIZE = 5000


def _range_end(prefix):
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def read_bss_keys(client, revision=None, keys_only=False, page_size=PAGE_SIZE, with_mod_revisions=True, sink=None):
    """``(kvs, revision, mod_revisions)`` for every BSS key at one revision (the current one by default).

    Keys are read in pages of ``page_size`` at that one revision, so at no time is a whole prefix held
    twice (as etcd's answer and as decoded text): at 100,000 nodes that was over 100 MB.
    ``mod_revisions`` (key -> revision of its last write, only delta sync needs it) is None unless
    ``with_mod_revisions``: at 100,000 nodes it is about 20 MB. With ``sink``, each key and value is
    handed to ``sink(key, value)`` as its page is read instead of being collected (``kvs`` is then None).
    """
    kvs = {}
    store = sink or kvs.__setitem__
    mod_revisions = {} if with_mod_revisions else None
    try:
        for prefix in BSS_PREFIXES:
            start, end = prefix, _range_end(prefix)
            while True:
                kwargs = {"keys_only": keys_only, "limit": page_size}
                if revision is not None:
                    kwargs["revision"] = revision
                response = client.get_range_response(start, end, **kwargs)
                if revision is None:
                    revision = response.header.revision
                last = None
                for item in response.kvs:
                    last = item.key
                    key = last.decode("utf-8", "surrogateescape")
                    store(key, "" if keys_only else item.value.decode("utf-8", "surrogateescape"))
                    if mod_revisions is not None:
                        mod_revisions[key] = item.mod_revision
                more = response.more and last is not None
                del response
                if not more:
                    break
                start = last + b"\0"   # the next key after the last one read
    except Exception as exc:  # grpc errors
        cause = describe(exc)
        if "compacted" in cause:
            raise EtcdSourceError("etcd revision %s has been compacted; take a new snapshot and import again" % revision) from exc
        raise EtcdSourceError("Failed to read BSS keys from etcd: %s" % cause) from exc
    return (None if sink else kvs), revision, mod_revisions


def changed_keys_since(client, base_revision, current_kvs, mod_revisions):
    """Keys written after ``base_revision`` plus keys that existed then and are gone now (deletions)."""
    changed = {key for key, rev in mod_revisions.items() if rev > base_revision}
    before, _rev, _mods = read_bss_keys(client, revision=base_revision, keys_only=True, with_mod_revisions=False)
    changed.update(key for key in before if key not in current_kvs)
    return changed


def count_by_prefix(kvs):
    counts = {prefix: 0 for prefix in BSS_PREFIXES}
    for key in kvs:
        for prefix in BSS_PREFIXES:
            if key.startswith(prefix):
                counts[prefix] += 1
    return counts


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def etcdctl_status(path, etcdctl=None):
    """``etcdctl snapshot status`` as a dict (hash, revision, totalKey, totalSize); None without etcdctl."""
    binary = etcdctl or shutil.which("etcdctl")
    if not binary:
        return None
    result = subprocess.run([binary, "snapshot", "status", path, "-w", "json"], capture_output=True, text=True,
                            env=dict(os.environ, ETCDCTL_API="3"), check=False, timeout=120)
    if result.returncode != 0:
        raise EtcdSourceError("etcd snapshot '%s' is not valid: %s" % (path, (result.stderr or result.stdout).strip()[:300]))
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise EtcdSourceError("etcdctl snapshot status '%s' answered no JSON: %s" % (path, result.stdout[:200])) from exc


class ThrowawayEtcd:
    """A snapshot restored into a private etcd on a loopback port; stopped by its PID on close()."""

    def __init__(self, snapshot_path, etcd_binary=None, etcdctl=None, timeout=30):
        self.snapshot_path = snapshot_path
        self.etcd = etcd_binary or shutil.which("etcd") or "/usr/bin/etcd"
        self.etcdctl = etcdctl or shutil.which("etcdctl") or "/usr/bin/etcdctl"
        self.timeout = timeout
        self.workdir = None
        self.proc = None
        self.port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self):
        if not os.path.isfile(self.snapshot_path):
            raise EtcdSourceError("etcd snapshot '%s' does not exist" % self.snapshot_path)
        self.workdir = tempfile.mkdtemp(prefix="hpc-boot-bss-restore-")
        data_dir = os.path.join(self.workdir, "data")
        self.port, peer = free_port(), free_port()
        peer_url = "http://127.0.0.1:%d" % peer
        client_url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, ETCDCTL_API="3")
        restore = subprocess.run(
            [self.etcdctl, "snapshot", "restore", self.snapshot_path, "--data-dir", data_dir, "--name", "restore",
             "--initial-cluster", "restore=" + peer_url, "--initial-advertise-peer-urls", peer_url],
            capture_output=True, text=True, env=env, check=False, timeout=300)
        if restore.returncode != 0:
            self.close()
            raise EtcdSourceError("Failed to restore etcd snapshot '%s': %s" % (
                self.snapshot_path, (restore.stderr or restore.stdout).strip()[-300:]))
        log = open(os.path.join(self.workdir, "etcd.log"), "wb")  # pylint: disable=consider-using-with
        try:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [self.etcd, "--name", "restore", "--data-dir", data_dir, "--listen-client-urls", client_url,
                 "--advertise-client-urls", client_url, "--listen-peer-urls", peer_url,
                 "--initial-advertise-peer-urls", peer_url, "--initial-cluster", "restore=" + peer_url,
                 "--log-level", "error"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        self._wait()
        return self

    def _wait(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                raise EtcdSourceError("throwaway etcd for snapshot '%s' exited with %s" % (self.snapshot_path, self.proc.returncode))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise EtcdSourceError("throwaway etcd for snapshot '%s' did not start in %ss" % (self.snapshot_path, self.timeout))

    def connection_params(self):
        return {"etcd_host": "127.0.0.1", "etcd_port": self.port, "etcd_timeout": self.timeout}

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
