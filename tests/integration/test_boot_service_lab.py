"""The real boot-service the lab starts: how it resolves a node and what it serves, as later tests rely on it."""

import json
import urllib.error
import urllib.request


def _send(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_declared_node_gets_the_configuration_that_names_it_and_an_unknown_one_a_halt(boot_service):
    url = boot_service.url
    status = _send(f"{url}/nodes", "POST", {"metadata": {"name": "x1000c0s0b0n0"}, "spec": {
        "xname": "x1000c0s0b0n0", "nid": 1, "bootMac": "de:ad:be:ef:00:01",
        "interfaces": [{"mac": "de:ad:be:ef:00:01"}]}})[0]
    assert status == 201
    status = _send(f"{url}/bootconfigurations", "POST", {"metadata": {"name": "compute"}, "spec": {
        "hosts": ["x1000c0s0b0n0"], "kernel": "http://images/vmlinuz", "initrd": "http://images/initrd",
        "params": "console=ttyS0"}})[0]
    assert status == 201
    for query in ("host=x1000c0s0b0n0", "mac=de:ad:be:ef:00:01", "nid=1"):
        status, script = _send(f"{url}/bootscript?{query}")
        assert status == 200 and "set kernel http://images/vmlinuz" in script, (query, script)
        assert "BOOTIF=01-de-ad-be-ef-00-01" in script
    status, script = _send(f"{url}/bootscript?host=x9c0s0b0n0")
    assert status == 200 and "node not found" in script and "\nhalt" in script


def test_it_refuses_a_priority_out_of_range_and_an_invalid_xname(boot_service):
    for spec, words in (({"hosts": ["x1000c0s0b0n0"], "kernel": "http://k", "priority": 101}, "priority"),
                        ({"hosts": ["not-an-xname"], "kernel": "http://k"}, "not-an-xname")):
        status, answer = _send(f"{boot_service.url}/bootconfigurations", "POST", {"metadata": {"name": "bad"},
                                                                                  "spec": spec})
        assert status >= 400 and words in answer, (status, answer)
    assert _send(f"{boot_service.url}/bootconfigurations")[1].strip() == "[]"
