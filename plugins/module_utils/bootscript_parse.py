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

from ansible_collections.hpc_boot.bss.plugins.module_utils import ipxe_line

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


def _retrying(line, argv_prefix, extra):
    """Problem with a ``<argv_prefix> <extra args> || goto boot_retry`` line, or None."""
    found = ipxe_line.commands(line)
    argv = found[0][0]
    shape = len(found) == 2 and found[0][1] == "||" and found[1] == (ipxe_line.RETRY_TARGET, None)
    if not shape or argv[:len(argv_prefix)] != argv_prefix:
        return "line %r is not '%s ... || goto boot_retry' as iPXE reads it: %r" % (line[:120], " ".join(argv_prefix), found)
    rest = argv[len(argv_prefix):]
    if extra == "image" and (len(rest) != 1 or rest[0].startswith("-")):
        return "line %r does not name exactly one image: %r" % (line[:120], rest)
    if extra == "kernel" and (not rest or rest[0].startswith("-")):
        return "line %r does not name a kernel image first: %r" % (line[:120], rest)
    return None


def structure_problems(text):
    """How a known-node boot script departs from BSS's structure as iPXE reads it; [] when intact.

    Intact means ``#!ipxe``, exactly one ``kernel`` line and at most one ``initrd`` line, each one command
    followed by ``|| goto boot_retry``, one ``boot || goto boot_retry``, ``:boot_retry``, ``sleep <D>`` and
    ``chain <URL>``, in that order and nothing else (trailing empty lines aside). Never raises.
    """
    lines = (text or "").split("\n")
    while lines and not lines[-1]:
        lines.pop()
    if not lines or lines[0] != "#!ipxe":
        return ["the script does not start with '#!ipxe'"]
    body = lines[1:]
    if len(body) not in (5, 6):
        return ["the script has %d lines after '#!ipxe', expected 5 (or 6 with an initrd line)" % len(body)]
    checks = [_retrying(body[0], ["kernel", "--name", "kernel"], "kernel")]
    if len(body) == 6:
        checks.append(_retrying(body[1], ["initrd", "--name", "initrd"], "image"))
    tail = body[-4:]
    checks.append(_retrying(tail[0], ["boot"], "none"))
    if not checks[-1] and ipxe_line.commands(tail[0])[0][0] != ["boot"]:
        checks.append("boot line %r has arguments" % tail[0][:120])
    for line, (word, count) in zip(tail[1:], ((":boot_retry", 1), ("sleep", 2), ("chain", 2))):
        found = ipxe_line.commands(line)
        if len(found) != 1 or found[0][1] is not None or len(found[0][0]) != count or found[0][0][0] != word:
            checks.append("line %r is not '%s' as iPXE reads it: %r" % (line[:120], word, found))
    return [problem for problem in checks if problem]


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
