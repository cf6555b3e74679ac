"""A forwarding HTTP proxy for integration tests, the base of the recording and the fault-injecting ones.

It binds 127.0.0.1 on a free port, runs in a thread of the test process, forwards every request to one
upstream (a BSS, boot-service) and is stopped by the test. A subclass overrides ``handle`` to look at or
change what goes through; ``forward`` does the actual round trip.
"""

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = ("connection", "keep-alive", "transfer-encoding", "content-length", "host")


class ForwardingProxy(object):
    def __init__(self, upstream_url):
        parsed = urllib.parse.urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS)
                status, answer_headers, data = proxy.handle(self.command, self.path, raw, headers)
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def forward(self, command, path, raw, headers):
        """Send the request upstream; returns (status, headers, body bytes)."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            connection.request(command, path, body=raw or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def handle(self, command, path, raw, headers):
        """What the client gets for this request; the base class forwards it unchanged."""
        return self.forward(command, path, raw, headers)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
