"""Go-compatible byte helpers of the BSS double: FNV-1a image keys, %q quoting, encoding/json output."""

import pytest

from hpclab.bss.gotext import go_json, go_map, go_quote, image_key_hash
from hpclab.bss.pg_store import group_description, group_name


@pytest.mark.parametrize("path, expected", [
    ("http://10.1.0.1/boot/vmlinuz-6.1", "9fa148c1857881b3"),          # bss-spec 2.4
    ("/test/path/vmlinuz", "2be9b99ec6734890"),
    ("http://10.1.0.1/boot/initramfs-6.1.img", "400373e219d217a0"),     # bss-spec 2.6 example 1
    ("s3://boot-images/k/kernel", "d403979ab4489ac0"),
    ("https://images.example.org/compute/vmlinuz", "31e7d9f77accd182"),
    ("http://10.0.0.1/boot/vmlinuz-5.14.0", "f9cb8fddb0fad83f"),        # golden etcd dump
    ("http://10.0.0.1/boot/initrd-default.img", "3d20afa16a7ce240"),
    ("", "cbf29ce484222325"),
])
def test_image_key_hash_matches_upstream_keys(path, expected):
    assert image_key_hash(path) == expected


@pytest.mark.parametrize("text, expected", [
    ("", '""'),
    ("console=ttyS0,115200", '"console=ttyS0,115200"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("a\tb\nc\rd", '"a\\tb\\nc\\rd"'),
    ("\a\b\f\v", '"\\a\\b\\f\\v"'),
    ("nul\x00 esc\x1b del\x7f", '"nul\\x00 esc\\x1b del\\x7f"'),
    ("caf\u00e9 \u00fcber \u65e5\u672c", '"caf\u00e9 \u00fcber \u65e5\u672c"'),   # printable non-ASCII stays
    ("nbsp\u00a0zwsp\u200b", '"nbsp\\u00a0zwsp\\u200b"'),                      # not printable in Go
    ("c1\u0085", '"c1\\u0085"'),
    ("emoji \U0001f600", '"emoji \U0001f600"'),
    ("private \U000f0000", '"private \\U000f0000"'),
    (b"bad \xff byte".decode("utf-8", "surrogateescape"), '"bad \\xff byte"'),
])
def test_go_quote(text, expected):
    assert go_quote(text) == expected


def test_boot_group_name_and_description_use_go_quoting():
    assert group_name("http://a/b", "", "console=ttyS0,115200") == \
        'BootGroup(kernel="http://a/b",initrd="",params="console=ttyS0,115200")'
    assert group_description("k", "i", 'x="1 2"') == 'Boot group for nodes with kernel="k" initrd="i" params="x=\\"1 2\\""'


def test_go_json_is_compact_html_escaped_and_optionally_newline_terminated():
    assert go_json({"b": "<a&b>", "a": [1, None]}) == '{"b":"\\u003ca\\u0026b\\u003e","a":[1,null]}'
    assert go_json(None, newline=True) == "null\n"
    assert go_json({"s": "caf\u00e9\u2028"}) == '{"s":"caf\u00e9\\u2028"}'


def test_go_map_sorts_free_form_maps_recursively():
    value = go_map({"ntp-server": "10.0.0.1", "cluster-name": "lab", "z": [{"b": 1.0, "a": 2.5}]})
    assert go_json(value) == '{"cluster-name":"lab","ntp-server":"10.0.0.1","z":[{"a":2.5,"b":1}]}'
