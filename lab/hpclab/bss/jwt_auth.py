"""JWT bearer tokens as upstream BSS checks them when ``BSS_JWKS_URL`` is set (the double's side).

Upstream fetches the key set once at start-up and guards ``/boot/v1/bootparameters`` with a verifier
(token from ``Authorization: Bearer`` or the ``jwt`` cookie; RS256 signature by a key of the set; ``exp`` and
``nbf``) and an authenticator requiring ``sub``, ``iss`` and ``aud``. Each refusal is a 401 with a one-line
text body; the texts below are the ones upstream v1.32.2 sends (seen against the real binary).
"""

import base64
import json
import time
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NO_TOKEN = "no token found"
EXPIRED = "token is expired"
UNAUTHORIZED = "token is unauthorized"
MISSING_CLAIM = "missing required claim"
REQUIRED_CLAIMS = ("sub", "iss", "aud")


def _b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rsa_key(jwk):
    def number(name):
        return int.from_bytes(_b64decode(jwk[name]), "big")
    return rsa.RSAPublicNumbers(number("e"), number("n")).public_key()


class KeySet(object):
    """The RSA keys of a JWKS, fetched once (like upstream, at start-up)."""

    def __init__(self, keys):
        self.keys = keys  # kid (or None) -> public key

    @classmethod
    def fetch(cls, url, attempts=3, wait=0.5):
        last = None
        for _attempt in range(attempts):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    document = json.load(response)
                return cls({jwk.get("kid"): _rsa_key(jwk) for jwk in document.get("keys", []) if jwk.get("kty") == "RSA"})
            except (OSError, ValueError, KeyError) as exc:
                last = exc
                time.sleep(wait)
        raise RuntimeError(f"failed to initialize auth token: {last}")

    def check(self, token, now=None):
        """None if ``token`` passes, else upstream's 401 text."""
        if not token:
            return NO_TOKEN
        try:
            head, body, signature = token.split(".")
            header, claims = json.loads(_b64decode(head)), json.loads(_b64decode(body))
            keys = [self.keys[header["kid"]]] if header.get("kid") in self.keys else list(self.keys.values())
            if header.get("alg") != "RS256" or not keys:
                return UNAUTHORIZED
            for key in keys:
                try:
                    key.verify(_b64decode(signature), (head + "." + body).encode(), padding.PKCS1v15(), hashes.SHA256())
                    break
                except InvalidSignature:
                    continue
            else:
                return UNAUTHORIZED
        except (ValueError, KeyError, TypeError, AttributeError):
            return UNAUTHORIZED
        now = time.time() if now is None else now
        if isinstance(claims.get("exp"), (int, float)) and now > claims["exp"]:
            return EXPIRED
        if isinstance(claims.get("nbf"), (int, float)) and now < claims["nbf"]:
            return UNAUTHORIZED
        if any(claims.get(name) in (None, "", []) for name in REQUIRED_CLAIMS):
            return MISSING_CLAIM
        return None
