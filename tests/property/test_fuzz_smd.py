"""Fuzzing the SMD answer parsing: the inventory plugin's mapping (smd_inventory.build_hosts) and the import's
reader (smd_source.nodes_from_export / nodes_from_hsm). Any answer gives a well-typed result or the module's own
typed error naming what is wrong, never another exception (issue 14)."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ansible_collections.hpc_boot.bss.plugins.module_utils import smd_inventory, smd_source

from fuzzing import LOOKALIKE, fuzz_settings, json_values, objects

COMPONENT = ["ID", "Type", "NID", "Role", "SubRole", "State", "Enabled", "Arch", "Flag", "MAC", "EndpointEnabled"]
INTERFACE = ["ComponentID", "MACAddress", "IPAddresses", "ID", "Description"]
MEMBERSHIP = ["id", "ID", "groupLabels", "partitionName"]
ENDPOINT = ["ID", "MACAddr", "Enabled", "RedfishSystemInfo", "Type"]
NODE = ["xname", "nid", "macs", "mac", "role", "subrole", "state", "endpoint", "endpoint_enabled"]


def listed(fields, key=None):
    items = st.lists(objects(fields), max_size=4)
    shapes = [items, json_values(6)]
    if key:
        shapes.append(st.builds(lambda rows: {key: rows}, items))
    return st.one_of(*shapes)


XNAMES = st.sampled_from(["x3000c0s1b0n0", "x3000c0s1b0n1", "x3000c0s2b0n0", "x3000c0s1b0"])
MACS = st.one_of(st.sampled_from(["a4:bf:01:3e:1f:a0", "A4-BF-01-3E-1F-A1", "a4bf013e1fa2", "ff:ff:ff:ff:ff:ff", "Not Available", ""]),
                 LOOKALIKE)
NAMES = st.one_of(st.sampled_from(["Compute", "Application", "UAN", "Ready", "Off", "x86_64", ""]), st.none(), st.text(max_size=4))
good_components = st.lists(st.fixed_dictionaries(
    {"ID": XNAMES, "Type": st.sampled_from(["Node", "Node", "NodeBMC"])},
    optional={"NID": st.integers(min_value=0, max_value=2**33), "Role": NAMES, "SubRole": NAMES, "State": NAMES,
              "Enabled": st.booleans(), "Arch": NAMES}), max_size=4)
good_interfaces = st.lists(st.fixed_dictionaries(
    {"ComponentID": XNAMES, "MACAddress": MACS},
    optional={"IPAddresses": st.lists(st.one_of(st.fixed_dictionaries({"IPAddress": st.sampled_from(["10.0.0.1", ""])}),
                                                st.just("10.0.0.2")), max_size=2)}), max_size=4)
LABELS = st.lists(NAMES.filter(lambda name: isinstance(name, str)), max_size=2)
good_memberships = st.lists(st.fixed_dictionaries({"id": XNAMES, "groupLabels": LABELS}), max_size=3)
well_formed = st.fixed_dictionaries({"components": st.one_of(good_components, good_components.map(lambda rows: {"Components": rows})),
                                     "interfaces": good_interfaces, "memberships": good_memberships})
# well-formed answers, some with one field replaced by anything, and answers of any shape
payloads = st.one_of(
    well_formed, well_formed,
    st.builds(lambda answers, key, value: dict(answers, **{key: value}), well_formed,
              st.sampled_from(["components", "interfaces", "memberships"]), json_values(4)),
    st.fixed_dictionaries({"components": listed(COMPONENT, "Components"), "interfaces": listed(INTERFACE, "EthernetInterfaces"),
                           "memberships": listed(MEMBERSHIP)}))
patterns = st.sampled_from(["{xname}", "nid{nid:04d}", "{role}-{xname}", "{nope}", "{0}", "{xname!r}", "{nid:x}", "{", "}",
                            "{nid[0]}", "{xname.upper}", ""])
filters = st.lists(st.one_of(LOOKALIKE, st.text(max_size=4)), max_size=2)


def check_host(host):
    """The shape the inventory plugin's _populate relies on."""
    assert isinstance(host["name"], str) and host["name"]
    assert all(isinstance(label, str) for label in host["labels"])
    hostvars = host["vars"]
    assert isinstance(hostvars["bss_nid"], int) and not isinstance(hostvars["bss_nid"], bool)
    for key in ("bss_xname", "bss_role", "bss_subrole", "bss_state", "bss_arch"):
        assert isinstance(hostvars[key], str), (key, hostvars[key])
    for key in ("bss_macs", "bss_ips", "bss_smd_groups"):
        assert all(isinstance(item, str) for item in hostvars[key]), (key, hostvars[key])


def answers(components=(), interfaces=(), memberships=()):
    return {"components": list(components) if isinstance(components, tuple) else components,
            "interfaces": list(interfaces) if isinstance(interfaces, tuple) else interfaces,
            "memberships": list(memberships) if isinstance(memberships, tuple) else memberships}


# Crashers the fuzzer found (each raised TypeError or AttributeError before the fix), kept as regression cases.
INVENTORY_CRASHERS = [
    answers(memberships=[{"id": [None]}]), answers(components=[None]), answers(interfaces="x3000c0s1b0n0"),
    answers(interfaces=1), answers(memberships="0"), answers(memberships=True),
]


@fuzz_settings()
@given(payload=payloads, hostname=patterns, types=st.one_of(st.just(["Node"]), filters), roles=filters)
@example(payload=INVENTORY_CRASHERS[0], hostname="{xname}", types=["Node"], roles=[])
@example(payload=INVENTORY_CRASHERS[1], hostname="{xname}", types=["Node"], roles=[])
@example(payload=INVENTORY_CRASHERS[2], hostname="{xname}", types=["Node"], roles=[])
@example(payload=INVENTORY_CRASHERS[3], hostname="{xname}", types=["Node"], roles=[])
@example(payload=INVENTORY_CRASHERS[4], hostname="{xname}", types=["Node"], roles=[])
@example(payload=INVENTORY_CRASHERS[5], hostname="{xname}", types=["Node"], roles=[])
@example(payload=answers(components=[{"ID": "x1", "Type": "Node", "NID": 1}]), hostname="{nid[0]}", types=["Node"], roles=[])
@example(payload=answers(components=[{"ID": "x1", "Type": "Node", "Role": 7}]), hostname="{xname}", types=["Node"], roles=[])
def test_inventory_mapping_never_crashes(payload, hostname, types, roles):
    try:
        hosts = smd_inventory.build_hosts(payload, hostname=hostname, types=types, roles=roles)
    except smd_inventory.SmdInventoryError as exc:
        assert str(exc)
        return
    for host in hosts:
        check_host(host)


NIDS = st.one_of(st.integers(min_value=-1, max_value=9), st.sampled_from(["3", "x"]))
good_node_lists = st.lists(st.fixed_dictionaries({"xname": XNAMES}, optional={
    "nid": NIDS, "macs": st.lists(MACS, max_size=2), "mac": MACS, "role": NAMES, "subrole": NAMES, "state": NAMES,
    "endpoint_enabled": st.booleans()}), max_size=4)
good_endpoints = st.lists(st.fixed_dictionaries({"ID": XNAMES, "MACAddr": MACS}, optional={"Enabled": st.booleans()}), max_size=3)
good_hsm_exports = st.fixed_dictionaries({"Components": good_components, "ComponentEndpoints": good_endpoints,
                                          "EthernetInterfaces": good_interfaces})


@fuzz_settings()
@given(data=st.one_of(good_node_lists, good_hsm_exports, st.lists(objects(NODE), max_size=4),
                      st.fixed_dictionaries({"Components": listed(COMPONENT, "Components")}),
                      st.fixed_dictionaries({"Components": listed(COMPONENT, "Components"),
                                             "ComponentEndpoints": listed(ENDPOINT, "ComponentEndpoints"),
                                             "EthernetInterfaces": listed(INTERFACE)}),
                      json_values()))
@example(data={"Components": None})                                                       # fuzzer crasher: TypeError
@example(data={"Components": [{"ID": []}], "ComponentEndpoints": [], "EthernetInterfaces": []})   # crasher: unhashable ID
@example(data=[{"xname": "x1", "nid": float("inf")}])                                     # OverflowError (found by reading)
@example(data=[{"xname": "x1", "macs": 5}])
def test_smd_export_reader_never_crashes(data):
    """The import's reader: a node list, BSS's SMD cache file or the three HSM v2 collections in one object."""
    try:
        nodes = smd_source.nodes_from_export(data)
    except smd_source.SmdSourceError as exc:
        assert str(exc)
        return
    for node in nodes:
        assert isinstance(node["xname"], str) and node["xname"]
        assert isinstance(node["nid"], int) and not isinstance(node["nid"], bool)
        assert all(isinstance(mac, str) and mac == mac.lower() for mac in node["macs"])
        assert all(isinstance(node[key], str) for key in ("role", "subrole", "state"))


@pytest.mark.parametrize("payload, message", [
    (INVENTORY_CRASHERS[0], "memberships entry"), (INVENTORY_CRASHERS[1], "State/Components entry None is not an object"),
    (INVENTORY_CRASHERS[2], "Inventory/EthernetInterfaces did not return a list"), (INVENTORY_CRASHERS[4], "memberships did not return a list"),
    (answers(components=[{"ID": "x1", "Type": "Node", "NID": "7"}]), "x1: NID is '7', not an integer"),
])
def test_malformed_smd_answers_name_what_is_wrong(payload, message):
    with pytest.raises(smd_inventory.SmdInventoryError, match=message.replace("(", r"\(")):
        smd_inventory.build_hosts(payload)


def test_the_smd_fuzzing_reaches_hosts_and_nodes():
    """Not vacuous: the generated answers give hosts and nodes, not only errors."""
    seen = {"hosts": 0, "nodes": 0}

    @fuzz_settings(120)
    @given(payload=payloads, data=st.lists(st.fixed_dictionaries({"xname": XNAMES, "mac": MACS}), min_size=1, max_size=3))
    def count(payload, data):
        try:
            seen["hosts"] += bool(smd_inventory.build_hosts(payload))
        except smd_inventory.SmdInventoryError:
            pass
        seen["nodes"] += bool(smd_source.nodes_from_export(data))

    count()
    assert seen["hosts"] >= 10 and seen["nodes"] >= 20, seen
