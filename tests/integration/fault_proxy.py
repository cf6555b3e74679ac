"""A fault-injecting HTTP proxy for drills: forwards to a BSS and answers 500 to every Nth PUT.

``mode="before"``: the failed PUT never reaches BSS (BSS wrote nothing). ``mode="after"``: the PUT is
forwarded and BSS's answer is replaced by 500 (BSS wrote, the client cannot know). ``every=0`` turns
the faults off. ``before_put(n)``, if set, runs before the n-th PUT (from 1) is handled, e.g. to stop
a database under BSS. It binds 127.0.0.1 on a free port and runs in a thread of the test process.
"""

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = ("connection", "keep-alive", "transfer-encoding", "content-length", "host")


class FaultProxy(object):
    def __init__(self, upstream_url, every=3, mode="before"):
        parsed = urllib.parse.urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.every, self.mode = every, mode
        self.before_put = None
        self.puts = []  # (body bytes, status the client got, whether BSS received it)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fail = False
                if self.command == "PUT":
                    with proxy.lock:
                        number = len(proxy.puts) + 1
                        fail = bool(proxy.every) and number % proxy.every == 0
                        if proxy.before_put is not None:
                            proxy.before_put(number)
                if fail and proxy.mode == "before":
                    self._record(raw, 500, False)
                    return self._answer(500, [("Content-Type", "text/plain")], b"injected fault\n")
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS)
                connection.request(self.command, self.path, body=raw or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                if self.command == "PUT":
                    self._record(raw, 500 if fail else response.status, True)
                if fail:
                    return self._answer(500, [("Content-Type", "text/plain")], b"injected fault\n")
                return self._answer(response.status, response.getheaders(), data)

            def _record(self, raw, status, reached):
                with proxy.lock:
                    proxy.puts.append((raw, status, reached))

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
