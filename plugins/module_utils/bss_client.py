# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for the BSS REST API (``/boot/v1``), built on one reused ``requests`` session.

Every call has a timeout; only idempotent calls (GET, PUT) are retried, with exponential backoff and
only on connection failures or HTTP 502/503/504. TLS verification is decided per request from the
module options, never from ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``. Errors leave this module as one
type, :class:`BssApiError`, whose message names the request and carries the server's RFC 7807
``detail``. The bearer token is sent in a header and never appears in a message.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import time
import urllib.parse

try:
    import requests
    import requests.certs
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by ansible-test import sanity
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

BOOTPARAMS_PATH = "/boot/v1/bootparameters"
BOOTSCRIPT_PATH = "/boot/v1/bootscript"
HOSTS_PATH = "/boot/v1/hosts"
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "PUT"))
RETRY_STATUSES = frozenset((502, 503, 504))
USER_AGENT = "hpc_boot.bss"


class BssApiError(Exception):
    """A failed BSS request: ``method``/``path`` of the request, HTTP ``status`` (None if no answer), server ``detail``."""

    def __init__(self, message, method=None, path=None, status=None, detail=None):
        super(BssApiError, self).__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail


def cluster_token_variable(cluster):
    """The ochami convention: cluster ``my-cluster`` reads its token from ``MY_CLUSTER_ACCESS_TOKEN``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", cluster.replace("-", "_")).upper() + "_ACCESS_TOKEN"


def resolve_token(token=None, cluster=None, environ=None):
    """The token option if set, else ``<CLUSTER>_ACCESS_TOKEN`` when a cluster name is given, else None."""
    if token:
        return token
    if cluster:
        env = os.environ if environ is None else environ
        return env.get(cluster_token_variable(cluster)) or None
    return None


def problem_detail(response):
    """The human-readable cause of a failed response: RFC 7807 ``detail``, else the body text, else the reason."""
    text = response.text or ""
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("detail"):
            return str(body["detail"]).strip()
    text = text.strip()
    if text:
        return text[:500]
    return response.reason or "no response body"


def auth_refusal(base_url, method, path, status, detail, had_token):
    """The message for a 401/403 from BSS: names the service, its answer and what to do; never the token."""
    if had_token:
        hint = ("the token was refused (expired, signed by a key BSS does not trust, or missing the sub/iss/aud "
                "claims): get a new token")
    else:
        hint = "no token was sent: set the token option, or <CLUSTER>_ACCESS_TOKEN with the cluster option"
    return "BSS at %s refused %s %s with HTTP %d (%s); %s" % (base_url, method, path, status, detail, hint)


class BssClient(object):
    """Talks to one BSS instance. Construction does no network I/O."""

    def __init__(self, url, token=None, validate_certs=True, ca_path=None, timeout=30.0, retries=3,
                 backoff=0.5, session=None):
        if not HAS_REQUESTS:
            raise BssApiError("The Python library 'requests' is required to talk to BSS")
        if not url or not re.match(r"^https?://", url):
            raise BssApiError("url: '%s' is not an http(s) URL of a BSS instance" % (url,))
        self.base_url = url.rstrip("/")
        self.timeout = timeout
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
        self.sent = []  # (method, path, body) of every write, in order; read by modules for their result

    def request(self, method, path, body=None, params=None, expect=(200,), allow=()):
        """Send one request; returns the response for an expected status or one listed in ``allow``."""
        method = method.upper()
        attempts = 1 + (self.retries if method in IDEMPOTENT_METHODS else 0)
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json"} if data is not None else None
        if method not in ("GET", "HEAD"):
            self.sent.append({"method": method, "path": path, "body": body})
        for attempt in range(attempts):
            try:
                response = self.session.request(method, self.base_url + path, data=data, params=params, headers=headers,
                                                timeout=self.timeout, verify=self.verify)
            except requests.exceptions.RequestException as exc:
                if attempt + 1 < attempts:
                    time.sleep(self.backoff * (2 ** attempt))
                    continue
                raise BssApiError("%s %s%s failed: %s" % (method, self.base_url, path, _transport_cause(exc)), method, path)
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                time.sleep(self.backoff * (2 ** attempt))
                continue
            if response.status_code in expect or response.status_code in allow:
                return response
            detail = problem_detail(response)
            if response.status_code in (401, 403):
                raise BssApiError(auth_refusal(self.base_url, method, path, response.status_code, detail,
                                               "Authorization" in self.session.headers),
                                  method, path, response.status_code, detail)
            raise BssApiError("%s %s%s returned HTTP %d: %s" % (method, self.base_url, path, response.status_code, detail),
                              method, path, response.status_code, detail)
        raise BssApiError("%s %s%s: no attempt made" % (method, self.base_url, path), method, path)  # pragma: no cover

    def get_json(self, path, params=None, allow=()):
        response = self.request("GET", path, params=params, allow=allow)
        if response.status_code != 200:
            return None
        try:
            return json.loads(response.text) if response.text.strip() else None
        except ValueError:
            raise BssApiError("GET %s%s returned a body that is not JSON: %r" % (self.base_url, path, response.text[:200]), "GET", path)

    # -- /boot/v1/bootparameters -------------------------------------------------------------
    def list_bootparams(self):
        """Every entry of ``GET /boot/v1/bootparameters`` (``null`` body becomes an empty list)."""
        entries = self.get_json(BOOTPARAMS_PATH)
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise BssApiError("GET %s%s returned %s, expected a JSON list" % (self.base_url, BOOTPARAMS_PATH, type(entries).__name__))
        return entries

    def write_bootparams(self, method, body):
        return self.request(method, BOOTPARAMS_PATH, body=body, expect=(200, 201))

    # -- other endpoints --------------------------------------------------------------------
    def list_hosts(self):
        """The SMD node cache of BSS (``GET /boot/v1/hosts``); used to see how etcd mode names records."""
        hosts = self.get_json(HOSTS_PATH)
        return hosts if isinstance(hosts, list) else []

    def service(self, name):
        """``/boot/v1/service/<name>``: (HTTP status, decoded body or None). Never raises on HTTP status."""
        response = self.request("GET", "/boot/v1/service/" + name, allow=(500, 404, 503))
        try:
            body = json.loads(response.text) if response.text.strip() else None
        except ValueError:
            body = None
        return response.status_code, body

    def bootscript(self, selector, value):
        """The boot script text for ``mac``/``name``/``nid`` = value; None when BSS answers 404."""
        response = self.request("GET", BOOTSCRIPT_PATH, params={selector: value}, allow=(404,))
        if response.status_code == 404:
            return None
        return response.text


class ScriptGetter(object):
    """Light keep-alive GETs of ``/boot/v1/bootscript`` for one thread (stdlib ``http.client``).

    Fetching thousands of boot scripts is dominated by per-request client overhead; this getter
    keeps one connection open, applies the same TLS rules, timeout and GET retries as
    :class:`BssClient`, and returns ``(status, text)``. It does not use proxy environment variables.
    """

    def __init__(self, url, token=None, validate_certs=True, ca_path=None, timeout=30.0, retries=3, backoff=0.5):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BssApiError("url: '%s' is not an http(s) URL of a BSS instance" % (url,))
        self.base_url = url.rstrip("/")
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port
        self.prefix = parsed.path.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.headers = {"User-Agent": USER_AGENT, "Connection": "keep-alive"}
        if token:
            self.headers["Authorization"] = "Bearer %s" % token
        self.context = None
        if self.scheme == "https":
            if validate_certs:
                self.context = ssl.create_default_context(cafile=ca_path or (requests.certs.where() if HAS_REQUESTS else None))
            else:
                self.context = ssl._create_unverified_context()  # pylint: disable=protected-access
        self.connection = None

    def _connect(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def get(self, selector, value):
        path = "%s%s?%s" % (self.prefix, BOOTSCRIPT_PATH, urllib.parse.urlencode({selector: value}))
        for attempt in range(1 + self.retries):
            try:
                if self.connection is None:
                    self.connection = self._connect()
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt < self.retries:
                    time.sleep(self.backoff * (2 ** attempt))
                    continue
                raise BssApiError("GET %s%s failed: %s" % (self.base_url, path, _transport_cause(exc)), "GET", path)
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            if response.status in RETRY_STATUSES and attempt < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
                continue
            return response.status, text
        raise BssApiError("GET %s%s: no attempt made" % (self.base_url, path), "GET", path)  # pragma: no cover

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _transport_cause(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
