# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for OpenCHAMI's boot-service resource API (``/bootconfigurations``, ``/nodes``, ``/bmcs``).

The same rules as :mod:`bss_client`: one reused ``requests`` session, a timeout on every call, retries
(exponential backoff, connection failures or HTTP 502/503/504 only) on idempotent calls alone (GET,
PUT), TLS verification on by default through an explicit CA bundle path that
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` cannot replace. Errors leave as :class:`BootServiceError`,
whose message names the method, the URL, the HTTP status and boot-service's own ``error`` text. The
bearer token travels in a header and never appears in a message or in :attr:`BootServiceClient.sent`.

What boot-service v0.3.x does, read from its code and checked against the binary:

- ``GET /<kind>`` answers a JSON list of every resource (no paging, no filter).
- ``POST /<kind>`` creates a resource with a new ``metadata.uid`` (``bootconfiguration-xxxxxxxx``);
  ``metadata.name`` is *not* unique: a second POST with the same name makes a second resource.
- ``PUT /<kind>/<uid>`` replaces the whole ``spec`` (PATCH merges; we never use it) and renames when a
  name is given. ``DELETE /<kind>/<uid>`` answers 200, or 404 when the uid is unknown.
- Errors are ``{"error": "...", "code": N}``; validation failures are HTTP 400.
- ``GET /bootscript?host=|mac=|nid=`` (and ``/boot/v1/bootscript`` with the legacy API on) answers a
  script with HTTP 200 even when the node cannot be resolved (an iPXE ``Error ...`` script that halts).
"""

from __future__ import annotations

import json
import re
import time

try:
    import requests
    import requests.certs
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by ansible-test import sanity
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

KINDS = ("bootconfigurations", "nodes", "bmcs")
BOOTSCRIPT_PATH = "/bootscript"
LEGACY_BOOTSCRIPT_PATH = "/boot/v1/bootscript"
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "PUT"))
RETRY_STATUSES = frozenset((502, 503, 504))
USER_AGENT = "hpc_boot.bss"


class BootServiceError(Exception):
    """A failed boot-service request: ``method``, ``url``, HTTP ``status`` (None if no answer), boot-service's ``detail``."""

    def __init__(self, message, method=None, url=None, status=None, detail=None):
        super(BootServiceError, self).__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.detail = detail


def error_detail(response):
    """boot-service's cause of a failed response: its ``error`` (or RFC 7807 ``detail``), else the body, else the reason."""
    text = response.text or ""
    if text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key in ("error", "detail", "message"):
                if body.get(key):
                    return str(body[key]).strip()
    text = text.strip()
    if text:
        return text[:500]
    return response.reason or "no response body"


def auth_refusal(url, method, status, detail, had_token):
    """The message for a 401/403 from boot-service: names the service, its answer and what to do; never the token."""
    if had_token:
        hint = "the token was refused (expired, signed by a key boot-service does not trust, or lacking the needed role): get a new token"
    else:
        hint = "no token was sent: set the token option (boot-service runs with enable_auth)"
    return "boot-service refused %s %s with HTTP %d (%s); %s" % (method, url, status, detail, hint)


def _transport_cause(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


class BootServiceClient(object):
    """Talks to one boot-service instance. Construction does no network I/O."""

    def __init__(self, url, token=None, validate_certs=True, timeout=30, ca_path=None, retries=3, backoff=0.5, session=None):
        if not HAS_REQUESTS:
            raise BootServiceError("The Python library 'requests' is required to talk to boot-service")
        if not url or not re.match(r"^https?://[^/]", str(url)):
            raise BootServiceError("url: '%s' is not an http(s) URL of a boot-service instance" % (url,))
        self.base_url = str(url).rstrip("/")
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = backoff
        if not validate_certs:
            self.verify = False
        elif ca_path:
            self.verify = ca_path
        else:
            # An explicit bundle path (never True) so the environment's CA variables cannot replace it.
            self.verify = requests.certs.where()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if token:
            self.session.headers["Authorization"] = "Bearer %s" % token
        self.sent = []  # {"method", "path", "body"} of every write, in order; modules return it

    # -- transport ---------------------------------------------------------------------------
    def request(self, method, path, body=None, params=None, expect=(200,), allow=()):
        """Send one request; returns the response for a status in ``expect`` or ``allow``, raises otherwise."""
        method = method.upper()
        url = self.base_url + path
        attempts = 1 + (self.retries if method in IDEMPOTENT_METHODS else 0)
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json"} if data is not None else None
        if method not in ("GET", "HEAD"):
            self.sent.append({"method": method, "path": path, "body": body})
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, data=data, params=params, headers=headers,
                                                timeout=self.timeout, verify=self.verify)
            except requests.exceptions.RequestException as exc:
                if attempt + 1 < attempts:
                    time.sleep(self.backoff * (2 ** attempt))
                    continue
                raise BootServiceError("%s %s failed: %s" % (method, url, _transport_cause(exc)), method, url)
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                time.sleep(self.backoff * (2 ** attempt))
                continue
            if response.status_code in expect or response.status_code in allow:
                return response
            detail = error_detail(response)
            if response.status_code in (401, 403):
                had_token = "Authorization" in self.session.headers
                raise BootServiceError(auth_refusal(url, method, response.status_code, detail, had_token),
                                       method, url, response.status_code, detail)
            raise BootServiceError("%s %s returned HTTP %d: %s" % (method, url, response.status_code, detail),
                                   method, url, response.status_code, detail)
        raise BootServiceError("%s %s: no attempt made" % (method, url), method, url)  # pragma: no cover

    def _json(self, response, method, path):
        text = response.text or ""
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise BootServiceError("%s %s%s returned a body that is not JSON: %r" % (method, self.base_url, path, text[:200]),
                                   method, self.base_url + path, response.status_code)

    def _kind_path(self, kind, uid=None):
        if kind not in KINDS:
            raise BootServiceError("kind: '%s' is not a boot-service resource collection (one of %s)" % (kind, ", ".join(KINDS)))
        if uid is None:
            return "/" + kind
        if not uid or not re.match(r"^[A-Za-z0-9._-]+$", str(uid)):
            raise BootServiceError("uid: '%s' is not a boot-service resource uid" % (uid,))
        return "/%s/%s" % (kind, uid)

    # -- resources ---------------------------------------------------------------------------
    def list(self, kind):
        """Every resource of ``kind`` from one ``GET /<kind>`` (a ``null`` body becomes an empty list)."""
        path = self._kind_path(kind)
        body = self._json(self.request("GET", path), "GET", path)
        if body is None:
            return []
        if not isinstance(body, list):
            raise BootServiceError("GET %s%s returned %s, expected a JSON list" % (self.base_url, path, type(body).__name__),
                                   "GET", self.base_url + path, 200)
        return body

    def get(self, kind, uid):
        """One resource by uid, or None when boot-service answers 404."""
        path = self._kind_path(kind, uid)
        response = self.request("GET", path, allow=(404,))
        if response.status_code == 404:
            return None
        return self._json(response, "GET", path)

    def create(self, kind, name, spec):
        """``POST /<kind>`` with ``metadata.name`` and ``spec``; returns the stored resource (with its uid)."""
        path = self._kind_path(kind)
        body = {"metadata": {"name": name}, "spec": spec}
        return self._json(self.request("POST", path, body=body, expect=(200, 201)), "POST", path)

    def replace(self, kind, uid, name, spec):
        """``PUT /<kind>/<uid>``: boot-service replaces the whole spec (and the name); returns the stored resource."""
        path = self._kind_path(kind, uid)
        body = {"metadata": {"name": name}, "spec": spec}
        return self._json(self.request("PUT", path, body=body), "PUT", path)

    def delete(self, kind, uid, missing_ok=False):
        """``DELETE /<kind>/<uid>``; True when deleted, False when already gone and ``missing_ok``."""
        path = self._kind_path(kind, uid)
        response = self.request("DELETE", path, expect=(200, 204), allow=(404,) if missing_ok else ())
        return response.status_code != 404

    # -- boot scripts ------------------------------------------------------------------------
    def bootscript(self, host=None, mac=None, nid=None, profile=None, legacy=False):
        """The boot script asked for by xname (``host``), ``mac`` or ``nid``: ``(HTTP status, text)``.

        Never raises on an HTTP status other than 401/403: boot-service answers 200 with an iPXE error
        script for an unknown node, so callers read the text. ``profile`` is sent as a query key
        although v0.3.2 ignores it (it always picks the best-scoring configuration). ``legacy`` asks
        ``/boot/v1/bootscript`` (boot-service started with the legacy API).
        """
        params = {}
        for key, value in (("host", host), ("mac", mac), ("nid", nid), ("profile", profile)):
            if value is not None and value != "":
                params[key] = str(value)
        if not any(key in params for key in ("host", "mac", "nid")):
            raise BootServiceError("bootscript needs one of host, mac or nid")
        path = LEGACY_BOOTSCRIPT_PATH if legacy else BOOTSCRIPT_PATH
        allow = tuple(code for code in range(200, 600) if code not in (401, 403))
        response = self.request("GET", path, params=params, allow=allow)
        return response.status_code, response.text or ""
