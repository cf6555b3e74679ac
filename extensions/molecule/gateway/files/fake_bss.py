# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in BSS instance for the gateway scenario: it says who it is in every answer.

Usage: fake_bss.py PORT LABEL. GET /boot/v1/bootscript answers "#!ipxe" plus "echo LABEL";
"delay=SECONDS" in the query holds the answer that long (a request in flight during a reload).
GET /boot/v1/service/status answers 200. Any write answers 200 "LABEL wrote PATH".
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeBSS(BaseHTTPRequestHandler):
    label = "bss"

    def _answer(self, status, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        delay = float(query.get("delay", ["0"])[0])
        if delay:
            time.sleep(delay)
        if url.path == "/boot/v1/service/status":
            self._answer(200, '{"bss-status":"running"}', "application/json")
        elif url.path == "/boot/v1/bootscript":
            self._answer(200, f"#!ipxe\necho {self.label}\n")
        elif url.path.startswith("/boot/v1/bootparameters"):
            self._answer(200, "[]", "application/json")
        else:
            self._answer(404, "not found")

    def _write(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer(200, f"{self.label} wrote {urlsplit(self.path).path}")

    do_POST = do_PUT = do_PATCH = do_DELETE = _write

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return


def main():
    FakeBSS.label = sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), FakeBSS)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
