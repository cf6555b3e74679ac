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
SMD_NODES = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"], "role": "Compute"},
             {"xname": "x3000c0s1b0n1", "nid": 2, "mac": "A4:BF:01:3E:1F:A1", "role": "Compute"}]
KNOWN = st.sampled_from(["x3000c0s1b0n0", "x3000c0s1b0n1", "a4:bf:01:3e:1f:a0", "A4:BF:01:3E:1F:A1", "nid1", "nid2",
                         "Default", "Compute", "Global", "x9000c0s0b0n0"])
NAMES = st.one_of(KNOWN, KNOWN, LOOKALIKE, st.text(max_size=8))
IMAGE_KEYS = st.sampled_from(["/kernel/k1", "/kernel/k2", "/initrd/i1", "/kernel/", "/initrd/"])
PARAMS = st.one_of(st.sampled_from(["console=ttyS0", "", "a || b", "quiet #x", "x\n#!ipxe", "initrd=x a", "||initrd b",
                                    "ds=nocloud-net;s=http://h/ ${SPIRE_JOIN_TOKEN}"]), st.text(max_size=12))
PATHS = st.one_of(st.sampled_from(["http://10.0.0.1/k", "http://10.0.0.1/i", "", "-k", "http://h/k b", "/boot/k"]),
                  st.text(max_size=8))

# /params values: mostly BootDataStore objects pointing at images that may or may not exist, sometimes any JSON
# or any text; image values: {"path", "params"} or anything; endpoint-access values: epochs or anything.
well_formed = st.fixed_dictionaries({}, optional={"params": PARAMS, "kernel": IMAGE_KEYS, "initrd": IMAGE_KEYS,
                                                  "cloud-init": objects(CLOUD_INIT), "referral-token": st.text(max_size=4)})
records = st.one_of(well_formed, well_formed, objects(RECORD, st.one_of(IMAGE_KEYS, json_values(4))), json_values(4)).map(json.dumps) \
    | st.text(max_size=12)
images = st.one_of(st.fixed_dictionaries({"path": PATHS}, optional={"params": PARAMS}).map(json.dumps),
                   objects(["path", "params"]).map(json.dumps), st.text(max_size=12))
epochs = st.one_of(st.integers(min_value=-2**40, max_value=2**40).map(str), st.text(max_size=8))
random_keyspaces = st.builds(
    lambda params, kernels, initrds, access, other: dict(other, **params, **kernels, **initrds, **access),
    st.dictionaries(NAMES.map(lambda name: "/params/" + name), records, max_size=5),
    st.dictionaries(st.sampled_from(["/kernel/k1", "/kernel/k2", "/kernel/"]), images, max_size=2),
    st.dictionaries(st.sampled_from(["/initrd/i1", "/initrd/"]), images, max_size=2),
    st.dictionaries(st.builds(lambda n, e: "/endpoint-access/%s/%s" % (n, e), NAMES, st.sampled_from(["bootscript", "", "a/b"])),
                    epochs, max_size=2),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2))
# key spaces whose records serve the SMD nodes: these reach rows, unsafe_params and divergent identities
coherent_keyspaces = st.builds(
    lambda names, params, kernel, initrd, kernel_params: dict(
        {"/params/" + name: json.dumps({"params": param, "kernel": "/kernel/k1", "initrd": "/initrd/i1" if initrd else ""})
         for name, param in zip(names, params)},
        **{"/kernel/k1": json.dumps({"path": kernel, "params": kernel_params}), "/initrd/i1": json.dumps({"path": initrd})}),
    st.lists(KNOWN, min_size=1, max_size=4, unique=True), st.lists(PARAMS, min_size=4, max_size=4), PATHS,
    st.one_of(st.just(""), PATHS), st.one_of(st.just(""), PARAMS))
keyspaces = st.one_of(coherent_keyspaces, coherent_keyspaces,
                      st.builds(lambda a, b: dict(b, **a), coherent_keyspaces, random_keyspaces), random_keyspaces)
smd_exports = st.one_of(st.just(SMD_NODES), st.just(SMD_NODES),
                        st.lists(objects(["xname", "nid", "macs", "mac", "role", "subrole", "state"]), max_size=4),
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


def convert_outcome(kvs, export):
    """Convert one fuzzed key space for one fuzzed SMD export; what came of it (checked on the way)."""
    try:
        nodes = smd_source.nodes_from_export(export)
    except smd_source.SmdSourceError:
        nodes = smd_source.nodes_from_export(SMD_NODES)
    try:
        result = bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=nodes)
    except bss_convert.ConversionError as exc:
        assert "SMD lists" in str(exc)
        return "error"
    check_conversion(result, kvs)
    if any(loss["kind"] == "unsafe_params" for loss in result["losses"]):
        return "unsafe"
    return "rows" if result["nodes"] else "no rows"


@fuzz_settings()
@given(kvs=keyspaces, export=smd_exports)
def test_etcd_key_space_and_smd_export_convert_or_fail_clearly(kvs, export):
    convert_outcome(kvs, export)


def test_the_conversion_fuzzing_reaches_rows_and_unsafe_records():
    """Not vacuous: the generated key spaces produce rows and unsafe_params losses, not only losses."""
    seen = {"rows": 0, "unsafe": 0, "no rows": 0, "error": 0}

    @fuzz_settings(150)
    @given(kvs=keyspaces, export=smd_exports)
    def count(kvs, export):
        seen[convert_outcome(kvs, export)] += 1

    count()
    assert seen["rows"] >= 10 and seen["unsafe"] >= 5, seen


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
