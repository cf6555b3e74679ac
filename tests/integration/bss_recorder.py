"""A recording HTTP proxy for integration tests: forwards to a BSS (or boot-service) and remembers every request.

Tests point the modules at the proxy and then assert on the exact requests that reached the wire
(method, path with query, decoded JSON body).
"""

import json

from http_proxy import ForwardingProxy


class BssRecorder(ForwardingProxy):
    def __init__(self, upstream_url):
        self.seen = []
        super().__init__(upstream_url)

    def handle(self, command, path, raw, headers):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.lock:
            self.seen.append((command, path, body))
        return self.forward(command, path, raw, headers)

    def writes(self):
        """Every request that is not a GET, as (method, path, body), in arrival order."""
        with self.lock:
            return [entry for entry in self.seen if entry[0] not in ("GET", "HEAD")]

    def clear(self):
        with self.lock:
            self.seen = []
