"""The BSS double's HTTP server: routing, /boot/v1/bootparameters and /boot/v1/bootscript (bss-spec 4, 5).

Handler panics of upstream (postgres mode: unknown node with ``arch=``, ``/boot/v1/scn``, ``/meta-data``,
``/user-data`` for known IPs; the initrd-removal slice panic) are reproduced as a connection closed
without any HTTP response, as recorded in the golden transcripts (``NO_RESPONSE``).
"""

import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hpclab.bss import endpoints, jwt_auth
from hpclab.bss.config import Settings, SettingsError
from hpclab.bss.etcd_store import EtcdBackend, StoreError
from hpclab.bss.gotext import go_json
from hpclab.bss.httpkit import (JSON_UTF8, Panic, Response, join_or, json_response, method_not_allowed,
                                not_found_page, problem)
from hpclab.bss.model import BadRequest, check_macs, check_xnames, decode_boot_params
from hpclab.bss.pg_store import Panic as StorePanic
from hpclab.bss.script import (ScriptPanic, boot_script, build_params, discovery_chain, go_parse_int, known_chain,
                               sleep_script)
from hpclab.bss.smdcache import SMDCache, SMDUnavailable

BOOTPARAMS_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")


def notify(url, address):
    """BSS_BOOTSCRIPT_NOTIFY_URL: form POST ``data=<remote address>``; failures are only logged."""
    data = urllib.parse.urlencode({"data": address}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10):
            pass
    except OSError as exc:
        sys.stderr.write(f"WARNING: HTTP POST of \"{address}\" failed: {exc}\n")


def _split_values(query, name):
    """Upstream joins repeated values with "," and splits again only when the result is non-empty."""
    joined = ",".join(query.get(name, []))
    return joined.split(",") if joined else []


class BSSApp:
    """Request handling independent of the socket layer: ``dispatch`` returns a Response or raises Panic."""

    def __init__(self, settings, smd, backend):
        self.settings = settings
        # BSS_JWKS_URL: real JWT checks against the fetched key set (as upstream); else HPCLAB_BSS_TOKEN, a static token
        self.key_set = jwt_auth.KeySet.fetch(settings.jwks_url) if settings.jwks_url else None
        self.smd = smd
        self.backend = backend
        self.routes = {
            "/boot/v1/bootparameters": (BOOTPARAMS_METHODS, self.bootparameters),
            "/boot/v1/bootscript": (("GET",), self.bootscript),
            "/boot/v1/hosts": (("GET", "POST"), lambda req: endpoints.hosts(self, req)),
            "/boot/v1/dumpstate": (("GET",), lambda req: endpoints.dumpstate(self, req)),
            "/boot/v1/endpoint-history": (("GET",), lambda req: endpoints.endpoint_history(self, req)),
            "/boot/v1/service/status": (None, lambda req: endpoints.service_status(self)),
            "/boot/v1/service/status/all": (("GET",), lambda req: endpoints.service_status_all(self)),
            "/boot/v1/service/version": (None, lambda req: endpoints.service_version()),
            "/boot/v1/service/hsm": (None, lambda req: endpoints.service_hsm(self)),
            "/boot/v1/service/storage/status": (None, lambda req: endpoints.service_storage(self)),
            "/boot/v1/scn": (("POST",), lambda req: endpoints.scn(self, req)),
            "/meta-data": (("GET",), lambda req: endpoints.meta_data(self, req)),
            "/user-data": (("GET",), lambda req: endpoints.user_data(self, req)),
            "/phone-home": (("POST",), lambda req: endpoints.phone_home(self, req)),
        }

    def dispatch(self, req):
        path = req.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        route = self.routes.get(path)
        if route is None:
            return not_found_page()
        methods, handler = route
        if path in ("/boot/v1/bootparameters", "/boot/v1") and (self.settings.bearer_token or self.key_set):
            # auth middleware runs first
            denied = self._check_token(req)
            if denied is not None:
                return denied
        if path == "/boot/v1/bootscript" and self.settings.notify_url:  # any method, asynchronously
            threading.Thread(target=notify, args=(self.settings.notify_url, req.remote_addr), daemon=True).start()
        if methods is not None and req.method not in methods:
            return method_not_allowed(methods)
        try:
            return handler(req)
        except (StorePanic, ScriptPanic, SMDUnavailable) as exc:
            raise Panic(str(exc)) from exc

    def _check_token(self, req):
        header = req.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token:
            for part in req.headers.get("Cookie", "").split(";"):
                key, _equals, value = part.strip().partition("=")
                if key == "jwt":
                    token = value
        if self.key_set is not None:
            refusal = self.key_set.check(token)
            return None if refusal is None else Response(401, refusal + "\n", "text/plain; charset=utf-8")
        if not token:
            return Response(401, "no token found\n", "text/plain; charset=utf-8")
        if token != self.settings.bearer_token:
            return Response(401, "Unauthorized\n", "text/plain; charset=utf-8")
        return None

    # -- /boot/v1/bootparameters -----------------------------------------------------------------
    def bootparameters(self, req):
        if req.method == "GET":
            return self._get_bootparameters(req)
        try:
            bp = decode_boot_params(req.body)
        except BadRequest as exc:
            return problem(400, f"Bad Request: {exc}")
        return {"POST": self._post, "PUT": self._put, "PATCH": self._patch, "DELETE": self._delete}[req.method](bp)

    def _token_headers(self, token):
        return [("Bss-Referral-Token", token)] if token else []

    def _post(self, bp):
        try:
            check_macs(bp)
            check_xnames(bp)
            token = self.backend.add(bp)
        except (BadRequest, StoreError) as exc:
            return problem(400, f"Bad Request: {exc}")
        return Response(201, b"", JSON_UTF8, self._token_headers(token))

    def _put(self, bp):
        try:
            check_macs(bp)
        except BadRequest as exc:
            return problem(400, f"Bad Request: {exc}")
        try:
            token = self.backend.store(bp) if self.backend.name == "etcd" else self.backend.set(bp)
        except StoreError:
            return problem(400, "No data")
        return Response(200, b"", JSON_UTF8, self._token_headers(token))

    def _patch(self, bp):
        try:
            check_macs(bp)
        except BadRequest as exc:
            return problem(400, f"Bad Request: {exc}")
        try:
            self.backend.update(bp)
        except StoreError as exc:
            return problem(404, f"Not Found: {exc}")
        return Response(200, b"", JSON_UTF8)

    def _delete(self, bp):
        try:
            if self.backend.name == "etcd":
                self.backend.remove(bp)
            else:
                self.backend.delete(bp)
        except StoreError as exc:
            return problem(400, str(exc))
        return Response(200, b"", JSON_UTF8)

    def _get_bootparameters(self, req):
        query = req.query
        names, macs, nid_texts = (_split_values(query, "name"), _split_values(query, "mac"), _split_values(query, "nid"))
        nids = []
        for text in nid_texts:
            value = go_parse_int(text, None)
            if value is None:
                return problem(400, f"Bad Request - Invalid nid '{text}'")
            nids.append((value + 2**31) % 2**32 - 2**31)  # Go's int32() conversion wraps
        kernel = initrd = ""
        if req.body.strip():
            try:
                bp = decode_boot_params(req.body)
            except BadRequest as exc:
                if not (names or macs or nids):
                    return problem(400, f"Failed to interpret request body '{req.body.decode('utf-8', 'replace')}': {exc}")
                bp = None
            if bp is not None:  # body identifiers first, then the query's
                names, macs, nids = bp["hosts"] + names, bp["macs"] + macs, bp["nids"] + nids
                kernel, initrd = bp["kernel"], bp["initrd"]
                if not (names or macs or nids or kernel or initrd):
                    return problem(400, "No specified data requested")
        if not (names or macs or nids or kernel or initrd):
            return json_response(self.backend.get_all())
        found = self.backend.get_filtered(names, macs, nids, kernel, initrd)
        if not found:
            asked = [word for word, given in (("Hosts", names), ("MACs", macs), ("NIDs", nids), ("kernel", kernel),
                                              ("initrd", initrd)) if given]
            return problem(404, f"Cannot find boot parameters for requested {join_or(asked)}")
        return json_response(found)

    # -- /boot/v1/bootscript ---------------------------------------------------------------------
    def bootscript(self, req):  # pylint: disable=too-many-locals,too-many-return-statements,too-many-branches
        def value(name):
            return "".join(req.query.get(name, []))
        mac, name, arch = value("mac"), value("name"), value("arch")
        nid = go_parse_int(value("nid"), -1)
        retry = go_parse_int(value("retry"), 0)
        stamp = go_parse_int(value("ts"), int(time.time()))
        json_mode = go_parse_int(value("json"), 0)
        if mac:
            kind, raw, comp = "mac", mac, self.smd.by_mac(mac)
        elif name:
            kind, raw, comp = "name", name, self.smd.by_name(name)
        elif nid >= 0:
            kind, raw, comp = "nid", f"nid{nid}", self.smd.by_nid(nid)
        else:
            return problem(400, "Need a mac=, name=, or nid= parameter")
        ident = {"mac": mac, "name": name, "nid": nid}[kind]
        if self.backend.name == "etcd":
            data, _found = self.backend.bootscript_data(comp, raw)
        else:
            data, _found = self.backend.bootscript_data(comp, raw, kind, ident)
        xname = comp["ID"] if comp else ""
        descr = {"mac": f"MAC {mac}", "name": name, "nid": f"NID {nid}"}[kind]
        if comp and (kind != "name" or xname != name):
            descr += f" ({xname})"
        nid_text = str(comp.get("NID", "")) if comp else ""
        advertise = self.settings.advertise_address
        request_mac = mac  # BOOTIF comes from the query value as sent, before any substitution
        if json_mode:
            params = build_params(data, xname, nid_text, data.token, mac, advertise)
            return Response(200, go_json(data.json("kernel " + params)), JSON_UTF8)
        unknown = comp is None or not comp.get("EndpointEnabled") or not data.kernel
        if unknown:  # upstream mutates name/nid/mac/descr here; the known-node fallback below sees them
            name = name or xname
            nid = comp.get("NID", nid) if comp else nid
            if not mac and comp:
                mac = next((m for m in comp.get("MAC") or [] if m), "")
            descr = "Unknown " + descr + (f" architecture {arch}" if arch else "")
            chain = discovery_chain(self.settings, mac, name, nid, stamp)
            if not arch:
                self.smd.refresh_in_background()
                return self._script(sleep_script(self.settings.hsm_retrieval_delay, chain))
            if self.backend.update_timestamp() > self.smd.fetched_at:
                self.smd.refresh_in_background()
                return self._script(sleep_script(self.settings.hsm_retrieval_delay, chain))
            arch_data, _found = self.backend.unknown_arch_data(arch)
            if arch_data.kernel:
                params = build_params(arch_data, advertise=advertise)
                self.backend.log_access(xname, "bootscript")
                return self._script(boot_script(arch_data, params, chain, self.settings.retry_delay))
            if comp is None:
                return problem(404, f"{descr}: this host not configured for booting.")
        if not mac and comp and comp.get("MAC"):
            mac = comp["MAC"][0]
        chain = known_chain(self.settings, "/boot/v1/bootscript", mac, xname, retry)
        if self.backend.name == "etcd" and self.backend.update_timestamp() > self.smd.fetched_at:
            self.smd.refresh_in_background()
            return self._script(sleep_script(10, chain))
        if not data.kernel:
            return problem(404, f"{descr}: this host not configured for booting.")
        params = build_params(data, xname, nid_text, data.token, request_mac, advertise)
        script = boot_script(data, params, chain, self.settings.retry_delay)
        self.backend.log_access(xname, "bootscript")
        return self._script(script)

    @staticmethod
    def _script(text):
        return Response(200, text + "\n", "text/plain; charset=UTF-8")


class Request:  # pylint: disable=too-few-public-methods
    def __init__(self, method, target, headers, body, peer):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.raw_query = parts.query
        self.headers = headers
        self.body = body
        self.remote_addr = real_ip(headers, peer)


def real_ip(headers, peer):
    """chi's RealIP middleware: RemoteAddr becomes X-Real-IP or the first X-Forwarded-For entry (no port)."""
    address = headers.get("X-Real-IP", "") or headers.get("X-Forwarded-For", "").split(", ", 1)[0]
    return address or f"{peer[0]}:{peer[1]}"


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = ""
        # Headers and body go out in separate writes; without TCP_NODELAY keep-alive clients stall ~40 ms
        # on Nagle and delayed ACKs, which Go's net/http does not do.
        disable_nagle_algorithm = True
        sys_version = ""

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            if app.settings.debug:
                sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _handle(self):
            body = self._body()
            req = Request(self.command, self.path, self.headers, body, self.client_address)
            try:
                resp = app.dispatch(req)
            except Panic as exc:
                sys.stderr.write(f"panic: {exc} ({self.command} {self.path}); panic mode {app.settings.panic_mode}\n")
                self.close_connection = True
                if app.settings.panic_mode == "drop":
                    return
                resp = Response(500)
            self.send_response_only(resp.status)
            self.send_header("Date", self.date_time_string())
            for key, value in resp.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if resp.body and self.command != "HEAD":
                self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle  # noqa: N815

        def __getattr__(self, name):
            if name.startswith("do_"):  # any method reaches the router (chi answers 405, not 501)
                return self._handle
            raise AttributeError(name)

    return Handler


class BSSServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        """A client that hangs up early (haproxy health checks, iPXE retries) is not a server error:
        Go's net/http, which upstream BSS uses, logs nothing for it, so neither do we."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def build_app(settings):
    smd = SMDCache(settings.hsm_url, token=settings.smd_token)
    smd.probe()
    if settings.use_sql:
        from hpclab.bss.pg_store import PostgresBackend  # pylint: disable=import-outside-toplevel
        backend = PostgresBackend(settings.postgres_conninfo(), settings.db["retry_count"], settings.db["retry_wait"])
    else:
        backend = EtcdBackend(settings.datastore, smd)
    return BSSApp(settings, smd, backend)


def main(argv=None):
    try:
        settings = Settings(argv)
    except SettingsError as exc:
        sys.stderr.write(f"FATAL: {exc}\n")
        return 1
    try:
        app = build_app(settings)
    except SMDUnavailable as exc:
        sys.stderr.write(f"FATAL: {exc}\n")
        return 1
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write(f"FATAL: cannot open storage: {exc}\n")
        return 1
    host, port = settings.listen_address()
    server = BSSServer((host, port), make_handler(app))
    sys.stderr.write(f"boot-script-service double ({app.backend.name}) listening on {host}:{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
