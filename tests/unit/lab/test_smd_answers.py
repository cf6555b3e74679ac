"""The SMD double builds each distinct answer once: the same bytes as building it again, filters still applied."""

import json

from hpclab import smd
from hpclab.smd import SMDState

NODES = [{"xname": "x1000c0s0b0n%d" % index, "nid": index + 1, "role": "Compute", "subrole": "", "macs": ["aa:bb:cc:00:00:%02x" % index],
          "ip": "", "state": "Ready", "enabled": True, "endpoint": True, "endpoint_enabled": True, "groups": [], "arch": "X86",
          "class": "River"} for index in range(3)]


def test_an_answer_is_built_once_and_equals_a_fresh_one(monkeypatch):
    state = SMDState([dict(node) for node in NODES])
    built = []
    route = state.route
    monkeypatch.setattr(state, "route", lambda path, query: built.append(path) or route(path, query))
    first = state.answer("/hsm/v2/State/Components", {"type": ["Node"]})
    again = state.answer("/hsm/v2/State/Components", {"type": ["Node"]})
    assert first is again and built == ["/hsm/v2/State/Components"]
    status, body = route("/hsm/v2/State/Components", {"type": ["Node"]})
    assert first == (status, (json.dumps(body, separators=(",", ":")) + "\n").encode())
    assert [c["ID"] for c in json.loads(first[1])["Components"]] == [node["xname"] for node in NODES]


def test_each_query_has_its_own_answer():
    state = SMDState([dict(node) for node in NODES])
    one = json.loads(state.answer("/hsm/v2/State/Components", {"nid": ["2"]})[1])["Components"]
    assert [c["ID"] for c in one] == ["x1000c0s0b0n1"]
    assert state.answer("/hsm/v2/State/Components/x9", {})[0] == 404
    assert state.answer("/hsm/v2/service/liveness", {}) == (204, None)


def test_warm_builds_the_full_lists_bss_reads(monkeypatch):
    state = SMDState([dict(node) for node in NODES])
    state.warm()
    assert len(state.answers) == len(smd.HOT_PATHS)

    def rebuilt(path, query):
        raise AssertionError("rebuilt %s %s" % (path, query))

    monkeypatch.setattr(state, "route", rebuilt)
    status, data = state.answer("/hsm/v2/Inventory/EthernetInterfaces", {"type": ["Node"]})
    assert status == 200 and [e["MACAddress"] for e in json.loads(data)] == [node["macs"][0] for node in NODES]
