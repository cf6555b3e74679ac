# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a node boots from an iPXE script of BSS or of boot-service, and how two of them compare (pure).

BSS serves ``kernel --name kernel <K> <params> || goto boot_retry``, ``initrd --name initrd <I> ...``,
``boot``, then a retry section (``:boot_retry``, ``sleep``, ``chain``). boot-service serves comments and
``echo`` lines, ``dhcp``, ``set kernel <K>``, ``set initrd <I>``, ``set params <P>``, then
``kernel ${kernel} ${params}``, ``initrd ${initrd}`` and ``boot``; a node it cannot resolve gets
``echo`` lines and ``halt``. Its values pass through Go's html/template, so ``&`` arrives as ``&amp;``.

Rather than matching either text, :func:`effective_boot` runs the script the way iPXE would on the path
where every command succeeds: each line is split into tokens (:mod:`ipxe_line`), ``${name}`` settings are
expanded inside each token, ``set`` stores a setting, ``kernel``/``initrd`` select images, ``boot`` ends
the run, ``halt``/``exit`` end it without booting, ``goto`` jumps, the command after ``||`` is skipped.
The result is what the node would boot: kernel URL, initrd URLs and the command line, untouched
(an HTML-escaped value stays escaped and compares different).

:func:`compare_boots` then removes only what differs by design between the two services and names
every removal in the row (docs/cutover.md, "Parity with boot-service", says why each one is safe):

- ``referral_token``: ``bss_referral_token=`` (etcd BSS only, random per write).
- ``advertise_address``: the address in ``ds=nocloud-net;s=<address>/`` (each service advertises itself).
- ``initrd_name``: ``initrd=<name>`` naming an initrd image the same script loads (BSS names its image
  ``initrd``; boot-service's ``initrd ${initrd}`` names it after the file).
- ``bootif``: ``BOOTIF=01-<mac>`` when both sides name the same MAC, or when only one side has it and it
  names a MAC of the node itself (boot-service appends the node's boot MAC; BSS v1.32.2 never does).
- ``neither_boots``: both sides end without booting a kernel (BSS: 404 or its discovery sleep-and-chain;
  boot-service: its ``halt`` error script or a script without a kernel).
- ``script_time_params`` (only when asked, to check a rollback): ``xname=``, ``nid=`` and ``ds=`` on the BSS side
  that the boot-service side lacks; BSS adds them to every script it serves.
"""

from __future__ import annotations

import re

from ansible_collections.hpc_boot.bss.plugins.module_utils import ipxe_line

SETTING_RE = re.compile(r"\$\{([^}:]*)(?::[^}]*)?\}")
BOOTIF_RE = re.compile(r"^BOOTIF=01-((?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2})$")
DS_RE = re.compile(r"^ds=nocloud-net;s=.*$")
IMAGE_OPTIONS_WITH_VALUE = ("--name", "-n", "--timeout", "-t")
KERNEL_COMMANDS = ("kernel", "imgselect", "imgexec", "chain", "boot")
INITRD_COMMANDS = ("initrd", "imgfetch", "module")
STOP_COMMANDS = ("halt", "exit", "shell", "poweroff", "reboot")
MAX_STEPS = 2000
# boot-service names the BootConfiguration it chose in a comment (HTML-escaped like every value it renders).
CONFIG_COMMENT = "# Configuration:"
GO_HTML_ESCAPES = (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("+", "&#43;"), ("\x00", "\ufffd"))
NORMALISATIONS = ("referral_token", "advertise_address", "initrd_name", "bootif", "neither_boots", "script_time_params")
SCRIPT_TIME_KEYS = ("xname=", "nid=", "ds=")


def _expand(token, settings):
    return SETTING_RE.sub(lambda match: settings.get(match.group(1), ""), token)


def _image(argv):
    """(name, uri, args) of an image command ``<cmd> [options] <uri> [args...]``; uri None when absent."""
    index = 1
    name = None
    while index < len(argv) and argv[index].startswith("-"):
        if argv[index] in IMAGE_OPTIONS_WITH_VALUE and index + 1 < len(argv):
            if argv[index] in ("--name", "-n"):
                name = argv[index + 1]
            index += 2
            continue
        index += 1
    if index >= len(argv):
        return name, None, []
    uri = argv[index]
    if name is None:
        name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name, uri, argv[index + 1:]


def _empty(kind="other"):
    return {"kind": kind, "kernel": "", "initrd": "", "initrd_names": [], "params": "", "chain": "", "retry_delay": "",
            "ended_by": "", "message": "", "config_name": ""}


def effective_boot(text):
    """What iPXE would boot from this script when every command succeeds. Never raises.

    ``kind`` is ``boot`` (a kernel and ``boot``), ``wait`` (sleep and chain to another script, BSS's
    discovery answer), ``halt`` (ends without booting: ``halt``/``exit``/``boot`` with no kernel, or no
    command left) or ``other`` (not an iPXE script). ``message`` keeps the script's ``Error:`` line.
    """
    result = _empty()
    lines = (text or "").split("\n")
    if not lines or lines[0].strip() != "#!ipxe":
        return result
    labels = {line.strip()[1:]: index for index, line in enumerate(lines) if line.strip().startswith(":")}
    settings = {}
    kernel = None
    initrds = []
    index, steps = 1, 0
    while index < len(lines) and steps < MAX_STEPS:
        steps += 1
        line = lines[index]
        index += 1
        stripped = line.strip()
        if stripped.startswith("# Error:") and not result["message"]:
            result["message"] = stripped[len("# Error:"):].strip()
        if stripped.startswith(CONFIG_COMMENT) and not result["config_name"]:
            result["config_name"] = stripped[len(CONFIG_COMMENT):].strip()
        if not stripped or stripped.startswith(":"):
            continue
        previous = None
        for argv, operator in ipxe_line.commands(line):
            # Every command succeeds on this path, so the one after "||" never runs.
            runs, previous = previous != "||", operator
            if not runs or not argv:
                continue
            argv = [_expand(token, settings) for token in argv]
            command = argv[0]
            if command == "set" and len(argv) >= 2:
                settings[argv[1]] = " ".join(argv[2:])
            elif command == "sleep" and len(argv) >= 2:
                result["retry_delay"] = argv[1]
            elif command in INITRD_COMMANDS:
                name, uri, _args = _image(argv)
                if uri:
                    initrds.append((name, uri))
            elif command in KERNEL_COMMANDS:
                if command == "boot" and kernel is None:
                    return dict(result, kind="halt", ended_by="boot without a kernel")
                if command == "boot":
                    return _booted(result, kernel, initrds)
                name, uri, args = _image(argv)
                if command == "chain" and uri:
                    if kernel is None:
                        return dict(result, kind="wait", chain=uri, ended_by="chain")
                    return _booted(result, kernel, initrds)
                if uri:
                    kernel = (uri, " ".join(args))
                    if command == "imgexec":
                        return _booted(result, kernel, initrds)
            elif command in STOP_COMMANDS:
                return dict(result, kind="halt", ended_by=command)
            elif command == "goto" and len(argv) >= 2 and argv[1] in labels:
                index = labels[argv[1]] + 1
                break
    if kernel is not None:
        return dict(result, kind="halt", ended_by="no boot command after the kernel")
    return dict(result, kind="halt", ended_by=result["ended_by"] or "end of script")


def _booted(result, kernel, initrds):
    return dict(result, kind="boot", kernel=kernel[0], params=kernel[1], initrd=" ".join(uri for _name, uri in initrds),
                initrd_names=[name for name, _uri in initrds], ended_by="boot")


def go_html_escape(text):
    """A value as boot-service's html/template writes it into a script (text context)."""
    for raw, escaped in GO_HTML_ESCAPES:
        text = (text or "").replace(raw, escaped)
    return text


def _mac(text):
    return re.sub(r"[^0-9a-f]", "", (text or "").lower())


def stable_tokens(boot, notes):
    """The command-line tokens without the side-independent volatile parts; adds a note per rule used."""
    kept = []
    for token in boot.get("params", "").split():
        if token.startswith("bss_referral_token="):
            notes.add("referral_token")
            continue
        if DS_RE.match(token):
            if token != "ds=nocloud-net;s=<advertise>/":
                notes.add("advertise_address")
            kept.append("ds=nocloud-net;s=<advertise>/")
            continue
        if token.startswith("initrd=") and token[len("initrd="):] in boot.get("initrd_names", []):
            notes.add("initrd_name")
            continue
        kept.append(token)
    return kept


def _bootifs(tokens):
    return [(position, _mac(BOOTIF_RE.match(token).group(1))) for position, token in enumerate(tokens) if BOOTIF_RE.match(token)]


def _drop_bootif(first, second, node_macs, notes):
    """Remove BOOTIF tokens that mean the same MAC on both sides, or the node's own MAC on one side only."""
    found_first, found_second = _bootifs(first), _bootifs(second)
    macs = set(_mac(mac) for mac in node_macs)
    same = found_first and found_second and sorted(m for _p, m in found_first) == sorted(m for _p, m in found_second)
    one_sided = bool(found_first) != bool(found_second) and all(m in macs for _p, m in found_first + found_second)
    if not (same or one_sided):
        return first, second
    notes.add("bootif")
    drop_first = set(position for position, _m in found_first)
    drop_second = set(position for position, _m in found_second)
    return ([t for i, t in enumerate(first) if i not in drop_first], [t for i, t in enumerate(second) if i not in drop_second])


def comparable_view(boot, tokens):
    """The fields compared for one side: kind, kernel, initrd, and the command line as a token list."""
    if boot is None or boot.get("kind") in ("halt", "wait", "missing"):
        return {"kind": "no boot"}
    if boot.get("kind") == "error":
        return {"kind": "error", "error": boot.get("error", "")}
    return {"kind": boot.get("kind"), "kernel": boot.get("kernel", ""), "initrd": boot.get("initrd", ""), "params": " ".join(tokens)}


def _drop_script_time(bss_tokens, other_tokens, notes):
    kept = []
    for token in bss_tokens:
        key = next((key for key in SCRIPT_TIME_KEYS if token.startswith(key)), None)
        if key and not any(other.startswith(key) for other in other_tokens):
            notes.add("script_time_params")
            continue
        kept.append(token)
    return kept


def compare_boots(node, first, second, node_macs=(), script_time_side=None):
    """One parity row between two effective boots (None = HTTP 404): same, differences, normalised rules.

    ``node_macs`` are the MACs the node has (the MAC asked with, or SMD's MACs of the node), used only
    by the ``bootif`` rule. ``first``/``second`` are returned only when the node's boots differ.
    ``script_time_side`` (``first`` or ``second``, the BSS side) turns on the ``script_time_params`` rule.
    """
    notes = set()
    tokens_first = stable_tokens(first or {}, notes)
    tokens_second = stable_tokens(second or {}, notes)
    tokens_first, tokens_second = _drop_bootif(tokens_first, tokens_second, node_macs, notes)
    if script_time_side == "first":
        tokens_first = _drop_script_time(tokens_first, tokens_second, notes)
    elif script_time_side == "second":
        tokens_second = _drop_script_time(tokens_second, tokens_first, notes)
    view_first, view_second = comparable_view(first, tokens_first), comparable_view(second, tokens_second)
    if view_first["kind"] == view_second["kind"] == "no boot":
        notes = {"neither_boots"}
    fields = ("kind", "kernel", "initrd", "params", "error")
    differences = [field for field in fields if view_first.get(field) != view_second.get(field)]
    if view_first["kind"] != view_second["kind"]:
        differences = ["kind"]
    row = {"node": node, "same": not differences, "differences": differences,
           "normalised": [name for name in NORMALISATIONS if name in notes]}
    if differences:
        row["first"], row["second"] = _shown(first, view_first), _shown(second, view_second)
    return row


def _shown(boot, view):
    shown = dict(view)
    if boot and boot.get("kind") in ("halt", "wait"):
        shown["ended_by"] = boot.get("ended_by", "")
        if boot.get("message"):
            shown["message"] = boot["message"][:300]
    if boot is None:
        shown["ended_by"] = "HTTP 404"
    return shown
