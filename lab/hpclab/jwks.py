"""A JWKS issuer on loopback for tests: an RSA key made here, its public key served as a JWKS, RS256 tokens.

Upstream BSS started with ``BSS_JWKS_URL`` fetches the key set once at start-up and then requires a valid
bearer token with ``sub``, ``iss`` and ``aud`` claims on ``/boot/v1/bootparameters``. ``Issuer`` serves the
key set on 127.0.0.1 (a free port, a thread of the calling process) and signs tokens with the same key, or
with a stranger key to make a wrongly signed token.
"""

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(number):
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class Issuer(object):
    """Serves ``/.well-known/jwks.json`` and signs tokens; ``stop()`` ends the server thread."""

    def __init__(self, issuer="https://issuer.hpclab.invalid", audience="bss"):
        self.issuer, self.audience = issuer, audience
        self.kid = uuid.uuid4().hex[:16]
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        self.jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                               "n": _uint(numbers.n), "e": _uint(numbers.e)}]}
        body = json.dumps(self.jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802  (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/.well-known/jwks.json" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def token(self, lifetime=3600, key=None, **claims):
        """An RS256 token with sub/iss/aud/iat/nbf/exp (``claims`` override or, set to None, remove them)."""
        now = int(time.time())
        payload = {"sub": "hpc-boot-test", "iss": self.issuer, "aud": [self.audience], "iat": now - 60,
                   "nbf": now - 60, "exp": now + lifetime, "scope": "bss"}
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(payload).encode())
        signature = (key or self.key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def expired_token(self):
        return self.token(lifetime=-600, iat=int(time.time()) - 1200, nbf=int(time.time()) - 1200)

    def stranger_token(self):
        """Signed by another key under the same key id: a forged token."""
        return self.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
