"""The SMD double's node file and HSM v2 views (no network)."""

import json

import pytest

from hpclab.smd import NodeFileError, SMDState, load_nodes


def _write(tmp_path, nodes):
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(nodes))
    return str(path)


@pytest.fixture
def state(tmp_path):
    return SMDState(load_nodes(_write(tmp_path, [
        {"xname": "x1c0s0b0n0", "nid": 1, "role": "Compute", "macs": ["AA:bb:cc:00:00:01", "aa:bb:cc:00:00:02"],
         "ip": "10.0.0.1", "groups": ["Compute", "gpu"]},
        {"xname": "x1c0s0b0n1", "nid": 2, "role": "Application", "subrole": "UAN", "mac": "aa:bb:cc:00:00:03",
         "endpoint": False, "state": "Off"},
        {"xname": "x1c0s1b0n0", "nid": 3, "role": "Compute", "mac": "aa:bb:cc:00:00:04", "endpoint_enabled": False},
    ])))


@pytest.mark.parametrize("nodes, message", [
    ({"xname": "x1"}, "expected a JSON list"),
    ([{"nid": 1, "role": "Compute"}], "field 'xname' is required"),
    ([{"xname": "x1", "nid": "1", "role": "Compute"}], "field 'nid' must be an integer, got '1'"),
    ([{"xname": "x1", "nid": 1, "role": "Compute", "mac": "aa-bb"}], "invalid MAC 'aa-bb'"),
    ([{"xname": "x1", "nid": 1, "role": "Compute", "colour": "red"}], "unknown field(s) colour"),
    ([{"xname": "x1", "nid": 1, "role": "C"}, {"xname": "x1", "nid": 2, "role": "C"}], "duplicate xname 'x1'"),
])
def test_bad_node_files_are_rejected_naming_the_field(tmp_path, nodes, message):
    with pytest.raises(NodeFileError) as info:
        load_nodes(_write(tmp_path, nodes))
    assert message in str(info.value)


def test_components_shape_and_filters(state):
    status, body = state.route("/hsm/v2/State/Components", {})
    assert status == 200 and [c["ID"] for c in body["Components"]] == ["x1c0s0b0n0", "x1c0s0b0n1", "x1c0s1b0n0"]
    expected = {"ID": "x1c0s0b0n1", "Type": "Node", "State": "Off", "Flag": "OK", "Enabled": True, "Role": "Application",
                "SubRole": "UAN", "NID": 2, "NetType": "Sling", "Arch": "X86", "Class": "River"}
    assert body["Components"][1] == expected
    body = state.route("/hsm/v2/State/Components", {"role": ["compute"], "nid": ["3"]})[1]
    assert [c["ID"] for c in body["Components"]] == ["x1c0s1b0n0"]
    assert state.route("/hsm/v2/State/Components/x9c0s0b0n0", {})[0] == 404


def test_ethernet_interfaces_list_every_mac_with_the_ip_on_the_first(state):
    status, body = state.route("/hsm/v2/Inventory/EthernetInterfaces", {"ComponentID": ["x1c0s0b0n0"]})
    assert status == 200 and isinstance(body, list)
    assert [(e["MACAddress"], e["IPAddresses"]) for e in body] == [
        ("AA:bb:cc:00:00:01", [{"IPAddress": "10.0.0.1"}]), ("aa:bb:cc:00:00:02", [])]
    body = state.route("/hsm/v2/Inventory/EthernetInterfaces", {"IPAddress": ["10.0.0.1"]})[1]
    assert [e["ComponentID"] for e in body] == ["x1c0s0b0n0"]


def test_component_endpoints_reproduce_unknown_and_disabled_nodes(state):
    body = state.route("/hsm/v2/Inventory/ComponentEndpoints", {"type": ["Node"]})[1]
    assert [(e["ID"], e["Enabled"]) for e in body["ComponentEndpoints"]] == [("x1c0s0b0n0", True), ("x1c0s1b0n0", False)]
    body = state.route("/hsm/v2/Inventory/RedfishEndpoints", {})[1]
    assert [e["ID"] for e in body["RedfishEndpoints"]] == ["x1c0s0b0", "x1c0s1b0"]


def test_groups_and_memberships(state):
    groups = state.route("/hsm/v2/groups", {})[1]
    assert groups == [{"label": "compute", "description": "", "members": {"ids": ["x1c0s0b0n0"]}},
                      {"label": "gpu", "description": "", "members": {"ids": ["x1c0s0b0n0"]}}]
    assert state.route("/hsm/v2/groups/gpu", {})[1]["members"]["ids"] == ["x1c0s0b0n0"]
    assert state.route("/hsm/v2/memberships/x1c0s0b0n1", {})[1] == {"id": "x1c0s0b0n1", "groupLabels": [],
                                                                    "partitionName": ""}
    assert state.route("/hsm/v2/service/values/class", {})[1] == {"Class": ["River", "Mountain", "Hill"]}
