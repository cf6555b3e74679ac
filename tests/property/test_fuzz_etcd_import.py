"""Fuzzing the etcd record decoder and the etcd -> PostgreSQL conversion (bss_convert), fed through the SMD
export reader as the import feeds it. Any etcd key space and SMD export give a conversion whose losses say
what was not carried, or a typed error (ConversionError, SmdSourceError), never another exception (issue 14)."""

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, smd_source

from fuzzing import LOOKALIKE, fuzz_settings, json_values, objects

RECORD = ["params", "kernel", "initrd", "cloud-init", "referral-token", "ReferralToken"]
CLOUD_INIT = ["meta-data", "user-data", "phone-home"]
NAMES = st.one_of(LOOKALIKE, st.text(max_size=8))
IMAGE_KEYS = st.sampled_from(["/kernel/k1", "/kernel/k2", "/initrd/i1", "/kernel/", "/initrd/"])


def as_text(value):
    return json.dumps(value) if not isinstance(value, str) else value


# /params values: mostly BootDataStore-like objects (with image pointers that may or may not exist), sometimes any
# JSON or any text; image values: {"path", "params"} or anything; endpoint-access values: epochs or anything.
records = st.one_of(objects(RECORD, st.one_of(IMAGE_KEYS, json_values(4), objects(CLOUD_INIT))),
                    json_values(4)).map(json.dumps) | st.text(max_size=12)
images = st.one_of(objects(["path", "params"]).map(json.dumps), st.text(max_size=12))
epochs = st.one_of(st.integers(min_value=-2**40, max_value=2**40).map(str), st.text(max_size=8))
keyspaces = st.builds(
    lambda params, kernels, initrds, access, other: dict(other, **params, **kernels, **initrds, **access),
    st.dictionaries(NAMES.map(lambda name: "/params/" + name), records, max_size=5),
    st.dictionaries(st.sampled_from(["/kernel/k1", "/kernel/k2", "/kernel/"]), images, max_size=2),
    st.dictionaries(st.sampled_from(["/initrd/i1", "/initrd/"]), images, max_size=2),
    st.dictionaries(st.builds(lambda n, e: "/endpoint-access/%s/%s" % (n, e), NAMES, st.sampled_from(["bootscript", "", "a/b"])),
                    epochs, max_size=2),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2))
smd_exports = st.one_of(st.lists(objects(["xname", "nid", "macs", "mac", "role", "subrole", "state"]), max_size=4),
                        json_values(6))


def check_conversion(result, kvs):
    assert set(result) == {"nodes", "configs", "endpoint_access", "losses", "counts"}
    for row in result["nodes"]:
        kernel, initrd, cmdline = row["config"]
        assert all(isinstance(text, str) for text in (kernel, initrd, cmdline, row["boot_mac"], row["xname"]))
        assert kernel, "a row without a kernel was produced"
        assert isinstance(row["nid"], int)
    for loss in result["losses"]:
        assert loss["kind"] in bss_convert.LOSS_KINDS and isinstance(loss["name"], str) and loss["detail"]
    assert result["counts"]["records"] == sum(1 for key in kvs if key.startswith("/params/"))
    json.dumps(result)                                      # the module returns it as JSON


@fuzz_settings()
@given(kvs=keyspaces, export=smd_exports)
def test_etcd_key_space_and_smd_export_convert_or_fail_clearly(kvs, export):
    try:
        nodes = smd_source.nodes_from_export(export)
    except smd_source.SmdSourceError:
        nodes = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"], "role": "Compute"}]
    try:
        result = bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=nodes)
    except bss_convert.ConversionError as exc:
        assert "SMD lists" in str(exc)
        return
    check_conversion(result, kvs)


@fuzz_settings()
@given(entries=st.one_of(st.lists(objects(["hosts", "macs", "nids", "kernel", "initrd", "params", "cloud-init"]), max_size=4),
                         json_values(6)),
       history=st.one_of(st.lists(objects(["name", "endpoint", "last_epoch"]), max_size=3), json_values(4)))
# crashers the fuzzer found (TypeError, AttributeError, UnicodeEncodeError before the fix), kept as regressions
@example(entries=[{"hosts": [None]}], history=[])
@example(entries=[{"kernel": 1}], history=[])
@example(entries=[{"hosts": 1}], history=[])
@example(entries=[{"kernel": "\ud800"}], history=[])
@example(entries=1, history=[])
@example(entries=[], history=True)
def test_bss_api_answers_rebuild_a_key_space_or_fail_clearly(entries, history):
    """source=bss_api: GET /boot/v1/bootparameters and endpoint-history answers become an etcd key space."""
    try:
        kvs = bss_convert.kvs_from_bss_api(entries, history)
    except bss_convert.ConversionError as exc:
        assert str(exc)
        return
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in kvs.items())
    nodes = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"], "role": "Compute"}]
    check_conversion(bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=nodes), kvs)


@pytest.mark.parametrize("value, field", [
    ({"params": 5, "kernel": "/kernel/k1"}, "params"), ({"params": "a", "kernel": ["/kernel/k1"]}, "kernel"),
    ({"params": "a", "kernel": "/kernel/k1", "cloud-init": "x"}, "cloud-init"),
    ({"params": "a", "kernel": "/kernel/k1", "cloud-init": {"user-data": [1]}}, "cloud-init.user-data"),
])
def test_records_go_cannot_decode_are_undecodable_not_stringified(value, field):
    """Found by reading fuzz inputs: a mistyped field was carried as str(value); BSS's decoder refuses the record."""
    kvs = {"/params/x3000c0s1b0n0": json.dumps(value), "/kernel/k1": json.dumps({"path": "http://h/k"})}
    result = bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=[{"xname": "x3000c0s1b0n0", "nid": 1, "macs": []}])
    assert result["nodes"] == []
    assert [(loss["kind"], loss["detail"].split(" ")[0]) for loss in result["losses"]] == [("undecodable_record", field)]


def test_image_hash_of_a_lone_surrogate_is_that_of_go_replacement_character():
    assert bss_convert.bss_image_hash("k\ud800") == bss_convert.bss_image_hash("k\ufffd")
    assert bss_convert.bss_image_hash("k\udcff") != bss_convert.bss_image_hash("k\ufffd")   # a raw byte read from etcd
