"""The synthetic cluster generator: SMD nodes, etcd record shapes, API payloads."""

import json
import os

import pytest

from hpclab import cluster

XNAME = cluster.XNAME_NODE_RE
MAC_RE = r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
EMPTY_CI = ('{"meta-data":null,"user-data":null,"phone-home":{"pub_key_dsa":"","pub_key_rsa":"","pub_key_ecdsa":"",'
            '"instance_id":"","hostname":"","fqdn":""}}')


@pytest.fixture(scope="module")
def nodes_2k():
    return cluster.generate_nodes(2000, seed=7)


@pytest.mark.parametrize("count", [1, 5, 64, 2000, 70000])
def test_nodes_unique_and_valid(count):
    import re
    nodes = cluster.generate_nodes(count, seed=3)
    assert len(nodes) == count
    xnames = [node["xname"] for node in nodes]
    nids = [node["nid"] for node in nodes]
    macs = [mac for node in nodes for mac in node["macs"]]
    assert len(set(xnames)) == count
    assert len(set(nids)) == count
    assert len(set(macs)) == len(macs)
    assert all(XNAME.match(xname) for xname in xnames)
    assert all(re.match(MAC_RE, mac) for mac in macs)
    assert all(1 <= len(node["macs"]) <= 2 for node in nodes)
    assert len(set(node["ip"] for node in nodes)) == count
    assert all(0 < nid < 2 ** 31 for nid in nids)


def test_node_format_matches_smd_double(nodes_2k):
    keys = ["xname", "nid", "role", "macs", "ip", "state", "enabled", "endpoint", "groups"]
    for node in nodes_2k:
        expected = keys[:3] + (["subrole"] if node["role"] != "Compute" and node["role"] != "Storage" else []) + keys[3:]
        assert list(node) == expected, node
    assert json.loads(json.dumps(nodes_2k)) == nodes_2k


def test_role_mix_is_realistic(nodes_2k):
    roles = {}
    for node in nodes_2k:
        key = (node["role"], node.get("subrole"))
        roles[key] = roles.get(key, 0) + 1
    assert roles[("Compute", None)] > 0.9 * len(nodes_2k)
    for key in [("Management", "Master"), ("Management", "Worker"), ("Application", "UAN"), ("Storage", None)]:
        assert roles.get(key, 0) >= 1, key
    labels = {label for node in nodes_2k for label in node["groups"]}
    assert {"compute", "gpu", "login", "storage", "management"} <= labels
    assert any(len(node["macs"]) == 2 for node in nodes_2k if node["role"] == "Compute")
    assert all(len(node["macs"]) == 2 for node in nodes_2k if node["role"] != "Compute")


def test_small_cluster_is_all_compute():
    assert {node["role"] for node in cluster.generate_nodes(3)} == {"Compute"}


def test_deterministic_per_seed():
    assert cluster.generate_nodes(300, seed=5) == cluster.generate_nodes(300, seed=5)
    assert cluster.generate_nodes(300, seed=5) != cluster.generate_nodes(300, seed=6)
    nodes = cluster.generate_nodes(300, seed=5)
    assert cluster.etcd_records(nodes, seed=5) == cluster.etcd_records(nodes, seed=5)
    assert cluster.api_payloads(nodes, seed=5) == cluster.api_payloads(nodes, seed=5)


@pytest.mark.parametrize("kwargs,field", [
    ({"count": 0}, "count"), ({"count": "10"}, "count"), ({"count": 10, "two_mac_fraction": 2}, "two_mac_fraction"),
])
def test_bad_node_input_names_field(kwargs, field):
    with pytest.raises(cluster.ClusterError, match=field):
        cluster.generate_nodes(**kwargs)


@pytest.mark.parametrize("shapes,text", [
    ({"own_record": 1.5}, "shapes.own_record"), ({"bogus": 1}, "bogus"),
    ({"own_record": 0.9, "cloud_init": 0.2, "legacy_token": 0, "no_token": 0, "raw_mac_record": 0, "nid_record": 0}, "add up to 1.1"),
    ({"unknown_macs": -1}, "shapes.unknown_macs"),
])
def test_bad_shapes_name_field(shapes, text):
    with pytest.raises(cluster.ClusterError, match=text):
        cluster.etcd_records(cluster.generate_nodes(10), shapes=shapes)


def test_endpoint_fractions():
    nodes = cluster.generate_nodes(1000, seed=2, no_endpoint_fraction=0.1, off_fraction=0.1)
    assert 50 < sum(not node["endpoint"] for node in nodes) < 150
    assert 50 < sum(node["state"] == "Off" for node in nodes) < 150


@pytest.mark.parametrize("path,expected", [
    ("http://10.1.0.1/boot/vmlinuz-6.1", "9fa148c1857881b3"),
    ("/test/path/vmlinuz", "2be9b99ec6734890"),
    ("http://10.1.0.1/boot/initramfs-6.1.img", "400373e219d217a0"),
    ("s3://boot-images/k/kernel", "d403979ab4489ac0"),
    ("https://images.example.org/compute/vmlinuz", "31e7d9f77accd182"),
    ("https://images.example.org/compute/initrd.img", "3549f3f43a155a2e"),
])
def test_image_hash_spec_examples(path, expected):
    assert cluster.image_hash(path) == expected


def test_spec_worked_examples_byte_exact():
    value = cluster.params_value("console=ttyS0,115200 ip=dhcp", "http://10.1.0.1/boot/vmlinuz-6.1",
                                 "http://10.1.0.1/boot/initramfs-6.1.img", None, "R1")
    assert value == ('{"params":"console=ttyS0,115200 ip=dhcp","kernel":"/kernel/9fa148c1857881b3",'
                     '"initrd":"/initrd/400373e219d217a0","cloud-init":' + EMPTY_CI + ',"referral-token":"R1"}').encode()
    value = cluster.params_value("root=live:s3://boot-images/k/rootfs quiet", "s3://boot-images/k/kernel", "", None, "R2")
    assert value == ('{"params":"root=live:s3://boot-images/k/rootfs quiet","kernel":"/kernel/d403979ab4489ac0",'
                     '"cloud-init":' + EMPTY_CI + ',"referral-token":"R2"}').encode()
    assert cluster.image_value("http://10.1.0.1/boot/vmlinuz-6.1", "quiet") == b'{"path":"http://10.1.0.1/boot/vmlinuz-6.1","params":"quiet"}'
    assert cluster.image_value("http://10.1.0.1/boot/vmlinuz-6.1") == b'{"path":"http://10.1.0.1/boot/vmlinuz-6.1"}'


def test_golden_etcd_values_reproduced(golden_dir):
    """Every /params and image value of the real BSS dump, rebuilt from its decoded fields, byte for byte."""
    with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
        dump = json.load(handle)
    images = {key: json.loads(value) for key, value in dump.items() if key.startswith(("/kernel/", "/initrd/"))}
    for key, image in images.items():
        assert key.split("/")[2] == cluster.image_hash(image["path"])
        assert cluster.image_value(image["path"], image.get("params", "")).decode() == dump[key]
    checked = 0
    for key, value in dump.items():
        if not key.startswith("/params/"):
            continue
        record = json.loads(value)
        ci = record["cloud-init"]
        phone = dict(ci["phone-home"])
        rebuilt = cluster.params_value(
            record.get("params", ""), images[record["kernel"]]["path"] if "kernel" in record else "",
            images[record["initrd"]]["path"] if "initrd" in record else "",
            {"meta_data": ci["meta-data"], "user_data": ci["user-data"], "phone_home": phone},
            record.get("referral-token", ""))
        assert rebuilt.decode() == value, key
        checked += 1
    assert checked >= 9


def test_legacy_and_tokenless_shapes():
    legacy = cluster.params_value("a=1", "/k", "", None, "T", "legacy").decode()
    assert legacy.endswith(',"ReferralToken":"T"}') and "referral-token" not in legacy
    assert cluster.params_value("a=1", "/k", "", None, "", "legacy").decode().endswith(',"ReferralToken":""}')
    none = cluster.params_value("a=1", "/k", "", None, "T", "none").decode()
    assert none.endswith('"cloud-init":' + EMPTY_CI + "}")
    assert cluster.params_value("", "", "", None, "").decode() == '{"cloud-init":' + EMPTY_CI + "}"


def test_go_json_escapes_like_go():
    assert cluster.go_json({"b": "<x>&", "a": "é"}) == '{"a":"é","b":"\\u003cx\\u003e\\u0026"}'


def test_phone_home_ed25519_only_when_set():
    text = cluster.cloud_init_json(phone_home={"pub_key_ed25519": "ssh-ed25519 K", "hostname": "h"})
    assert '"pub_key_ecdsa":"","pub_key_ed25519":"ssh-ed25519 K","instance_id":"","hostname":"h"' in text
    assert "pub_key_ed25519" not in cluster.cloud_init_json(phone_home={"hostname": "h"})


def _decoded(records):
    return {key: value.decode() for key, value in records.items()}


def test_every_shape_present(nodes_2k):
    records = _decoded(cluster.etcd_records(nodes_2k, seed=7))
    by_xname = {node["xname"]: node for node in nodes_2k}
    macs = {node["macs"][0]: node for node in nodes_2k}
    nids = {f"nid{node['nid']}": node for node in nodes_2k}
    names = [key[len("/params/"):] for key in records if key.startswith("/params/")]
    for tag in ("Default", "Compute", "Application", "Global", "UAN"):
        assert tag in names
    assert any(name in macs for name in names), "record named by an SMD-known MAC"
    assert any(name in nids for name in names), "nid<N> record for an SMD-known NID"
    unknown_macs = [name for name in names if ":" in name and name not in macs]
    assert len(unknown_macs) == 3 and all(name != name.lower() and name != name.upper() for name in unknown_macs)
    assert len([name for name in names if name.startswith("nid") and name not in nids]) == 2
    own = [records["/params/" + name] for name in names if name in by_xname]
    assert any('"ReferralToken":"' in value and not value.endswith('"ReferralToken":""}') for value in own)
    assert any(value.endswith('"ReferralToken":""}') for value in own)
    assert any("eferral" not in value for value in own), "record without any token"
    assert any('"referral-token":' in value for value in own)
    assert any('"meta-data":{' in value and '"pub_key_ed25519"' in value for value in own)
    assert any('"initrd"' not in value and '"kernel"' in value for value in own), "kernel-only record"
    without_record = [xname for xname in by_xname if xname not in names]
    assert any(by_xname[x]["role"] == "Compute" for x in without_record)
    assert any(by_xname[x]["role"] == "Storage" for x in without_record), "Default fallback exercised"
    assert any('"params":' in value for key, value in records.items() if key.startswith("/kernel/")), "image params"
    access = [key for key in records if key.startswith("/endpoint-access/")]
    assert access and all(key.endswith("/bootscript") and records[key].isdigit() for key in access)
    for key, value in records.items():
        for pointer in ("kernel", "initrd"):
            if key.startswith("/params/") and f'"{pointer}":' in value:
                assert json.loads(value)[pointer] in records, f"{key} points at a missing image record"


def test_shapes_can_be_switched_off(nodes_2k):
    off = {key: (False if isinstance(value, bool) else 0) for key, value in cluster.DEFAULT_SHAPES.items()}
    records = cluster.etcd_records(nodes_2k, seed=7, shapes=off)
    assert records == {}
    only_legacy = dict(off, legacy_token=1.0)
    records = _decoded(cluster.etcd_records(nodes_2k, seed=7, shapes=only_legacy))
    params = [value for key, value in records.items() if key.startswith("/params/")]
    assert len(params) == len(nodes_2k) and all('"ReferralToken":' in value for value in params)


def test_raw_only_plus_api_covers_everything(nodes_2k):
    full = cluster.etcd_records(nodes_2k, seed=7)
    raw = cluster.etcd_records(nodes_2k, seed=7, include_api_shapes=False)
    assert raw and set(raw) < set(full)
    assert all(full[key] == value for key, value in raw.items())
    payloads = cluster.api_payloads(nodes_2k, seed=7)
    posted = set()
    smd_mac = {node["macs"][0]: node["xname"] for node in nodes_2k}
    smd_nid = {node["nid"]: node["xname"] for node in nodes_2k}
    for method, body in payloads:
        assert method in ("POST", "PUT")
        if method == "POST":
            assert set(body) & {"hosts", "macs", "nids"}
        for host in body.get("hosts", []):
            posted.add(host)
        for mac in body.get("macs", []):
            posted.add(smd_mac.get(mac.lower(), mac))
        for nid in body.get("nids", []):
            posted.add(smd_nid.get(nid, f"nid{nid}"))
    api_keys = {"/params/" + name for name in posted}
    raw_params = {key for key in raw if key.startswith("/params/")}
    full_params = {key for key in full if key.startswith("/params/")}
    assert not api_keys & raw_params
    assert api_keys | raw_params == full_params
    assert any(method == "PUT" and "hosts" not in body and body.get("params") for method, body in payloads)
    assert any(mac != mac.lower() and mac.lower() in smd_mac for _m, body in payloads for mac in body.get("macs", []))


def test_every_node_posted_once(nodes_2k):
    seen = []
    for method, body in cluster.api_payloads(nodes_2k, seed=7):
        if method == "POST":
            seen.extend(body.get("hosts", []) + [m.lower() for m in body.get("macs", [])] + body.get("nids", []))
    assert len(seen) == len(set(seen))


class _FakeEtcd:
    """Records transactions the way python3-etcd3's client would receive them."""

    def __init__(self):
        self.txns = []

        class _Txn:
            @staticmethod
            def put(key, value):
                return (key, value)
        self.transactions = _Txn()

    def transaction(self, compare, success, failure):
        assert compare == [] and failure == []
        self.txns.append(list(success))
        return True, []


def test_load_etcd_batches_transactions():
    fake = _FakeEtcd()
    records = {f"/params/n{i}": b"x" for i in range(300)}
    assert cluster.load_etcd(fake, records) == 300
    assert [len(txn) for txn in fake.txns] == [128, 128, 44]
    assert dict(op for txn in fake.txns for op in txn) == records


def test_load_etcd_rejects_bad_url():
    with pytest.raises(cluster.ClusterError, match="client_or_url"):
        cluster.load_etcd("etcd.example.org", {})
