# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""iPXE boot scripts served by BSS: parse, strip volatile parts, compare two instances (pure).

A known-node script is ``#!ipxe``, ``kernel --name kernel <K> <P> || goto boot_retry``, an optional
``initrd --name initrd <I> || goto boot_retry``, ``boot``, ``:boot_retry``, ``sleep <D>``, ``chain <URL>``.
A waiting/discovery script is ``#!ipxe``, ``sleep <D>``, ``chain <URL>``.
Volatile between instances or runs: ``bss_referral_token=`` (etcd, random per write), the advertise
address in ``ds=nocloud-net;s=<address>/``, and the ``retry=`` and ``ts=`` query values of the chain URL.
"""

from __future__ import annotations

import re

KERNEL_PREFIX = "kernel --name kernel "
INITRD_PREFIX = "initrd --name initrd "
RETRY_SUFFIX = " || goto boot_retry"
DS_RE = re.compile(r"^ds=nocloud-net;s=.*$")
VOLATILE_QUERY_RE = re.compile(r"([?&])(retry|ts)=[^&]*")
COMPARED_FIELDS = ("kind", "kernel", "initrd", "params", "retry_delay", "chain")


def parse_script(text):
    """A dict: kind (boot|wait|other), kernel, initrd, params, retry_delay, chain. Never raises."""
    parsed = {"kind": "other", "kernel": "", "initrd": "", "params": "", "retry_delay": "", "chain": ""}
    lines = [line for line in (text or "").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "#!ipxe":
        return parsed
    for line in lines[1:]:
        if line.startswith(KERNEL_PREFIX):
            parsed["kind"] = "boot"
            body = line[len(KERNEL_PREFIX):]
            if body.endswith(RETRY_SUFFIX):
                body = body[:-len(RETRY_SUFFIX)]
            kernel, _sep, params = body.partition(" ")
            parsed["kernel"], parsed["params"] = kernel, params
        elif line.startswith(INITRD_PREFIX):
            body = line[len(INITRD_PREFIX):]
            parsed["initrd"] = body[:-len(RETRY_SUFFIX)] if body.endswith(RETRY_SUFFIX) else body
        elif line.startswith("sleep "):
            parsed["retry_delay"] = line[len("sleep "):].strip()
        elif line.startswith("chain "):
            parsed["chain"] = line[len("chain "):].strip()
    if parsed["kind"] == "other" and parsed["chain"]:
        parsed["kind"] = "wait"
    return parsed


def stable_params(params):
    """Kernel parameters without the referral token and with the advertise address blanked."""
    kept = []
    for token in params.split(" "):
        if not token or token.startswith("bss_referral_token="):
            continue
        kept.append("ds=nocloud-net;s=<advertise>/" if DS_RE.match(token) else token)
    return " ".join(kept)


def stable_chain(url):
    """The chain URL without its retry= and ts= values."""
    stripped = VOLATILE_QUERY_RE.sub(r"\1", url)
    return re.sub(r"[?&]+$", "", re.sub(r"&{2,}", "&", stripped.replace("?&", "?")))


def normalise(parsed):
    """The parsed script with volatile parts removed; ready to compare across instances."""
    if parsed is None:
        return None
    stable = dict(parsed)
    stable["params"] = stable_params(parsed.get("params", ""))
    stable["chain"] = stable_chain(parsed.get("chain", ""))
    return stable


def compare(first, second):
    """Fields that differ between two normalised scripts (None = no script, e.g. HTTP 404)."""
    if first is None and second is None:
        return []
    if first is None or second is None:
        return ["script"]
    return [field for field in COMPARED_FIELDS if first.get(field) != second.get(field)]


def parity_row(node, first, second):
    """One row of the parity table: ``same``, the differing fields and, only when they differ, both sides."""
    differences = compare(first, second)
    row = {"node": node, "same": not differences, "differences": differences}
    if differences:
        row["first"], row["second"] = first, second
    return row
