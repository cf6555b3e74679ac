"""The BSS client: TLS settings per request, retries only on idempotent calls, RFC 7807 messages, tokens."""

import pytest
import requests

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_client
from ansible_collections.hpc_boot.bss.plugins.modules.service_info import in_memory_verdict


class FakeResponse(object):
    def __init__(self, status, text="", content_type="application/json", reason="Reason"):
        self.status_code = status
        self.text = text
        self.headers = {"Content-Type": content_type}
        self.reason = reason


class FakeSession(object):
    """Answers from a script (responses or exceptions, in order) and records each call's keyword arguments."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []
        self.headers = {}

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(answers, **kwargs):
    session = FakeSession(answers)
    kwargs.setdefault("backoff", 0)
    return bss_client.BssClient("https://bss.example:8443/", session=session, **kwargs), session


def test_tls_verification_is_an_explicit_bundle_that_the_environment_cannot_replace(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/evil.pem")
    bss, session = client([FakeResponse(200, "null")])
    bss.list_bootparams()
    verify = session.calls[0][2]["verify"]
    assert verify == requests.certs.where() and verify is not True
    assert session.calls[0][2]["timeout"] == 30.0
    bss, session = client([FakeResponse(200, "[]")], ca_path="/etc/pki/openchami.pem", timeout=5)
    bss.list_bootparams()
    assert session.calls[0][2]["verify"] == "/etc/pki/openchami.pem" and session.calls[0][2]["timeout"] == 5
    bss, session = client([FakeResponse(200, "[]")], validate_certs=False)
    bss.list_bootparams()
    assert session.calls[0][2]["verify"] is False


def test_get_is_retried_on_connection_errors_and_gateway_errors():
    bss, session = client([requests.exceptions.ConnectionError("refused"), FakeResponse(503, "busy"), FakeResponse(200, "[]")])
    assert bss.list_bootparams() == []
    assert len(session.calls) == 3


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_non_idempotent_writes_are_never_retried(method):
    bss, session = client([FakeResponse(503, "busy"), FakeResponse(200)])
    with pytest.raises(bss_client.BssApiError, match="%s https://bss.example:8443/boot/v1/bootparameters returned HTTP 503: busy" % method):
        bss.write_bootparams(method, {"macs": ["aa:bb:cc:00:00:01"]})
    assert len(session.calls) == 1


def test_retries_give_up_with_the_transport_cause():
    bss, session = client([requests.exceptions.ConnectionError("refused")] * 4, retries=3)
    with pytest.raises(bss_client.BssApiError, match="GET https://bss.example:8443/boot/v1/bootparameters failed: refused"):
        bss.list_bootparams()
    assert len(session.calls) == 4


def test_problem_detail_is_the_message():
    body = '{"type":"about:blank","title":"Not Found","detail":"Not Found: postgres.Update: data does not exist","status":404}\n'
    bss, _session = client([FakeResponse(404, body, "application/problem+json")])
    with pytest.raises(bss_client.BssApiError) as caught:
        bss.write_bootparams("PATCH", {"macs": ["aa:bb:cc:00:00:01"]})
    assert str(caught.value) == ("PATCH https://bss.example:8443/boot/v1/bootparameters returned HTTP 404: "
                                 "Not Found: postgres.Update: data does not exist")
    assert caught.value.status == 404 and caught.value.detail.startswith("Not Found")


def test_plain_text_errors_are_kept():
    bss, _session = client([FakeResponse(500, "boom\n", "text/plain; charset=utf-8")])
    with pytest.raises(bss_client.BssApiError, match="HTTP 500: boom$"):
        bss.list_bootparams()


def test_refused_token_names_bss_its_answer_and_what_to_do():
    bss, _session = client([FakeResponse(401, "no token found\n", "text/plain; charset=utf-8")])
    with pytest.raises(bss_client.BssApiError, match=r"^BSS at .* refused GET /boot/v1/bootparameters with HTTP 401 "
                                                     r"\(no token found\); no token was sent"):
        bss.list_bootparams()
    bss, _session = client([FakeResponse(401, "token is expired\n", "text/plain; charset=utf-8")], token="a.b.c")
    with pytest.raises(bss_client.BssApiError, match=r"HTTP 401 \(token is expired\); the token was refused") as caught:
        bss.list_bootparams()
    assert "a.b.c" not in str(caught.value)


def test_token_goes_in_a_header_only():
    bss, session = client([FakeResponse(200, "[]")], token="abc.def")
    bss.list_bootparams()
    assert session.headers["Authorization"] == "Bearer abc.def"
    assert "abc.def" not in repr(session.calls)


@pytest.mark.parametrize("cluster, variable", [("demo", "DEMO_ACCESS_TOKEN"), ("my-cluster", "MY_CLUSTER_ACCESS_TOKEN")])
def test_ochami_cluster_token_convention(cluster, variable):
    assert bss_client.cluster_token_variable(cluster) == variable
    assert bss_client.resolve_token(None, cluster, {variable: "t0k"}) == "t0k"
    assert bss_client.resolve_token("explicit", cluster, {variable: "t0k"}) == "explicit"
    assert bss_client.resolve_token(None, None, {variable: "t0k"}) is None


def test_url_must_be_http():
    with pytest.raises(bss_client.BssApiError, match="url: 'bss.local:27778' is not an http"):
        bss_client.BssClient("bss.local:27778")


@pytest.mark.parametrize("backend, first, second, verdict", [
    ("postgres", [], [], False),
    ("etcd", ["a", "b", "c"], ["a", "b", "c"], False),
    ("etcd", ["b", "a", "c"], ["b", "a", "c"], True),
    ("etcd", ["a", "b", "c"], ["b", "a", "c"], True),
    ("etcd", ["a", "b"], ["a", "b"], None),
    (None, [], [], None),
])
def test_in_memory_store_verdict(backend, first, second, verdict):
    assert in_memory_verdict(backend, first, second)[0] is verdict
