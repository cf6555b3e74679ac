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
