"""A recording HTTP proxy for integration tests: forwards to a BSS and remembers every request.

Tests point the modules at the proxy and then assert on the exact requests that reached the wire
(method, path with query, decoded JSON body). It binds 127.0.0.1 on a free port, runs in a thread of
the test process, and is stopped by the test.
"""

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = ("connection", "keep-alive", "transfer-encoding", "content-length", "host")


class BssRecorder(object):
    def __init__(self, upstream_url):
        parsed = urllib.parse.urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.seen = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with recorder.lock:
                    recorder.seen.append((self.command, self.path, body))
                connection = http.client.HTTPConnection(*recorder.upstream, timeout=60)
                headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS)
                connection.request(self.command, self.path, body=raw or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def writes(self):
        """Every request that is not a GET, as (method, path, body), in arrival order."""
        with self.lock:
            return [entry for entry in self.seen if entry[0] not in ("GET", "HEAD")]

    def clear(self):
        with self.lock:
            self.seen = []

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
