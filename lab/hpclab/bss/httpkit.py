"""HTTP plumbing for the BSS double: responses shaped like Go's net/http + chi + hms-base."""

import http.client

from hpclab.bss.gotext import go_json

JSON_UTF8 = "application/json; charset=UTF-8"
TEXT_SNIFFED = "text/plain; charset=utf-8"


class Response:  # pylint: disable=too-few-public-methods
    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        self.headers = list(headers or [])
        if content_type:
            self.headers.insert(0, ("Content-Type", content_type))


class Panic(Exception):
    """Upstream panics here: the double drops the connection without an HTTP response."""


def problem(status, detail, headers=None):
    """RFC 7807 body as hms-base writes it (encoder, trailing newline)."""
    title = http.client.responses.get(status, "")
    body = go_json({"type": "about:blank", "title": title, "detail": detail, "status": status}, newline=True)
    return Response(status, body, "application/problem+json", headers)


def json_response(value, status=200, content_type=JSON_UTF8, newline=True):
    return Response(status, go_json(value, newline=newline), content_type)


def not_found_page():
    return Response(404, "404 page not found\n", TEXT_SNIFFED, [("X-Content-Type-Options", "nosniff")])


def method_not_allowed(allowed):
    allow = ",".join(allowed)
    return problem(405, f"allow {allow}", [("Allow", allow)])


def join_or(words):
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
