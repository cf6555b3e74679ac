"""The import's memory-saving readers give exactly what the plain ones give (issue 11).

read_export decodes a node-list export one entry at a time; it must return the same nodes, or fail with
the same message, as decoding the whole text with json.loads and then nodes_from_export. split_etcd_keys
and convert with ``consume`` must give the same result as without it."""

import json
import os
import tempfile

from hypothesis import example, given
from hypothesis import strategies as st

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, smd_source

from fuzzing import LOOKALIKE, fuzz_settings, json_values, objects

NODE = ["xname", "nid", "macs", "mac", "role", "subrole", "state", "endpoint", "endpoint_enabled"]
good_nodes = st.lists(st.fixed_dictionaries(
    {"xname": st.sampled_from(["x3000c0s1b0n0", "x3000c0s1b0n1", "x1000c0s0b0n0"])},
    optional={"nid": st.integers(min_value=0, max_value=9), "macs": st.lists(LOOKALIKE, max_size=2), "mac": LOOKALIKE,
              "role": st.sampled_from(["Compute", "Application", ""]), "state": st.sampled_from(["Ready", "Off"]),
              "endpoint": st.booleans()}), max_size=4)
exports = st.one_of(good_nodes, st.lists(objects(NODE), max_size=3), json_values(4))
# how the text is laid out, and what may be done to it afterwards
SPACES = st.sampled_from(["", " ", "\n", "\t \r\n", "\u00a0", "\ufeff"])
DAMAGE = st.sampled_from(["", "cut", "trailing", "comma", "no-comma"])


def _outcome(function, *args):
    try:
        return "ok", function(*args)
    except smd_source.SmdSourceError as exc:
        return "error", str(exc)


def _text(data, space, indent, damage):
    text = json.dumps(data, indent=indent)
    text = space + text.replace(", ", "," + space) + space
    if damage == "cut" and len(text) > 2:
        text = text[:len(text) // 2]
    elif damage == "trailing":
        text += "]"
    elif damage == "comma":
        text = text.replace("}", "},", 1)
    elif damage == "no-comma":
        text = text.replace(",", " ", 1)
    return text


@fuzz_settings()
@given(exports, SPACES, st.sampled_from([None, 1]), DAMAGE)
@example([{"xname": "x1c0s0b0n0", "nid": "seven"}, "not json"], "", None, "cut")
@example([{"nid": 1}, {"xname": "x1c0s0b0n0"}], " ", None, "trailing")
@example([], "\n", None, "")
def test_streamed_export_reads_like_the_whole_document(data, space, indent, damage):
    text = _text(data, space, indent, damage)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "smd.json")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        got = _outcome(smd_source.read_export, path)
        with open(path, encoding="utf-8") as handle:   # as json.load reads it (universal newlines)
            text = handle.read()
        try:
            whole = json.loads(text)
        except ValueError as exc:
            expected = ("error", "Failed to read SMD export '%s': %s" % (path, exc))
        else:
            expected = _outcome(smd_source.nodes_from_export, whole)
    assert got == expected


@fuzz_settings(200)
@given(st.dictionaries(st.sampled_from(["/params/x3000c0s1b0n0", "/params/Default", "/params/a4:bf:01:3e:1f:a0", "/kernel/k",
                                        "/initrd/i", "/endpoint-access/x3000c0s1b0n0/bootscript", "/endpoint-access/x/user-data",
                                        "/endpoint-access/bad"]),
                       st.one_of(st.sampled_from(['{"params": "console=ttyS0", "kernel": "/kernel/k", "initrd": "/initrd/i"}',
                                                  '{"path": "http://k", "params": "quiet"}', "17", "x"]), st.text(max_size=6)),
                       max_size=8))
def test_consuming_split_and_convert_give_the_same_conversion(kvs):
    nodes = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"], "role": "Compute"}]
    expected = bss_convert.convert(*bss_convert.split_etcd_keys(kvs), smd_nodes=nodes)
    flat = dict(kvs)
    split = bss_convert.split_etcd_keys(flat, consume=True)
    assert not flat, "every key was taken out of the flat dump"
    assert split == bss_convert.split_etcd_keys(kvs)
    params = split[0]
    assert bss_convert.convert(params, *split[1:], smd_nodes=nodes, consume=True) == expected
    assert not params, "every raw record was dropped once decoded"
