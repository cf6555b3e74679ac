# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the etcd reader's pure helpers."""

from __future__ import annotations

from ansible_collections.hpc_boot.bss.plugins.module_utils import etcd_source


def test_prefix_ranges_cover_exactly_the_prefix():
    assert etcd_source._range_end("/params/") == "/params0"  # pylint: disable=protected-access
    assert "/params/x1" < etcd_source._range_end("/params/") and not "/paramsx" < etcd_source._range_end("/params/")  # pylint: disable=protected-access


def test_key_counts_per_bss_prefix():
    kvs = {"/params/a": "", "/params/b": "", "/kernel/k": "", "/endpoint-access//bootscript": "", "/bss/etcdTest": ""}
    assert etcd_source.count_by_prefix(kvs) == {"/params/": 2, "/kernel/": 1, "/initrd/": 0, "/endpoint-access/": 1}


def test_grpc_errors_are_described_by_their_details():
    class FakeRpcError(Exception):
        def details(self):
            return "etcdserver: authentication failed, invalid user ID or password"

    assert etcd_source.describe(FakeRpcError()) == "etcdserver: authentication failed, invalid user ID or password"
    assert etcd_source.describe(ValueError("")) == "ValueError"


class PagingEtcd:
    """etcd's Range semantics over a sorted key space: ``limit``, ``more``, reads at a revision."""

    def __init__(self, data, revision=41):
        self.data = dict((key.encode(), value.encode()) for key, value in data.items())
        self.revision = revision
        self.calls = []

    def get_range_response(self, start, end, limit=0, revision=None, keys_only=False):
        start = start if isinstance(start, bytes) else start.encode()
        end = end.encode()
        self.calls.append((start, limit, revision))
        keys = sorted(key for key in self.data if start <= key < end)
        page = keys[:limit] if limit else keys
        kvs = [type("KV", (), {"key": key, "value": b"" if keys_only else self.data[key], "mod_revision": 7})() for key in page]
        return type("Range", (), {"kvs": kvs, "more": len(keys) > len(page), "header": type("H", (), {"revision": self.revision})()})()


def test_keys_are_read_in_pages_at_one_revision():
    data = dict(("/params/x1c0s%db0n0" % i, '{"params": "p%d"}' % i) for i in range(23))
    data.update({"/kernel/k1": '{"path": "http://k"}', "/paramsZ": "not bss", "/endpoint-access/x1c0s0b0n0/bootscript": "17"})
    client = PagingEtcd(data)
    kvs, revision, mods = etcd_source.read_bss_keys(client, page_size=5)
    assert kvs == {key: value for key, value in data.items() if key != "/paramsZ"}
    assert revision == 41 and set(mods) == set(kvs)
    params_calls = [call for call in client.calls if call[0].startswith(b"/params/")]
    assert len(params_calls) == 5, "23 params keys in pages of 5"
    assert [call[2] for call in client.calls][1:] == [41] * (len(client.calls) - 1), "every page after the first reads the first one's revision"
