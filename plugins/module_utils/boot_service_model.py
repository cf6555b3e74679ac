# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""boot-service resources as data: validation and normalisation of declared BootConfigurations and Nodes (pure).

The checks mirror what boot-service v0.3.2 refuses (``Validate()`` of its Go types and
``pkg/validation``), so a record it would refuse fails here, before any write:

- BootConfiguration: ``kernel`` required, an http(s) URL or an absolute path; ``initrd`` the same when
  given; every ``hosts`` entry a node xname, a wildcard (``x1000c0s0b0n*``, ``x1000c*``, ``x*``) or
  ``default``; every MAC parseable; ``priority`` 0..100.
- Node: ``xname`` a node xname (``x<n>c<n>s<n>b<n>n<n>``); ``bootMac`` parseable when given.

On top of that, our boot-script invariant (:mod:`ipxe_line`): boot-service writes ``set kernel <kernel>``
and ``set params <params>``, so an iPXE operator or comment word, a control character or whitespace
in an image reference would change the script's commands. Everything here raises
:class:`BootServiceDeclarationError` naming the field and the value.
"""

from __future__ import annotations

import collections
import ipaddress
import re

from ansible_collections.hpc_boot.bss.plugins.module_utils import ipxe_line

NODE_XNAME_RE = re.compile(r"^x[0-9]+c[0-9]+s[0-9]+b[0-9]+n[0-9]+$")
HOST_PATTERN_RE = re.compile(r"^x[0-9]+c[0-9]+s[0-9]+b[0-9]+n\*$|^x[0-9]+c[0-9]+s[0-9]+b\*$|^x[0-9]+c[0-9]+s\*$|^x[0-9]+c\*$|^x\*$")
MAC_SEP_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2})*$")
MAC_DOT_RE = re.compile(r"^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4})*$")
URL_RE = re.compile(r"^https?://[^/\s]+", re.IGNORECASE)
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,253}$")
INT32_MAX = 2 ** 31 - 1
MAC_OCTETS = (6, 8, 20)  # what Go's net.ParseMAC accepts
HTML_ESCAPED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "+": "&#43;"}

CONFIG_FIELDS = ("name", "hosts", "macs", "nids", "groups", "profile", "kernel", "initrd", "params", "priority")
NODE_FIELDS = ("name", "xname", "nid", "boot_mac", "interfaces", "macs", "role", "sub_role", "hostname", "groups")
INTERFACE_FIELDS = ("mac", "ip", "type")
DECLARATION_FIELDS = ("kernel", "initrd", "params", "macs", "hosts", "nids")
# Node spec keys: option name -> boot-service JSON key
NODE_KEYS = (("xname", "xname"), ("nid", "nid"), ("boot_mac", "bootMac"), ("role", "role"), ("sub_role", "subRole"),
             ("hostname", "hostname"), ("interfaces", "interfaces"), ("groups", "groups"))
CONFIG_KEYS = ("hosts", "macs", "nids", "groups", "profile", "kernel", "initrd", "params", "priority")


class BootServiceDeclarationError(ValueError):
    """A declaration boot-service would refuse, or that would change the boot script; names field and value."""


def _fail(where, field, value, why):
    raise BootServiceDeclarationError("%s.%s: %r %s" % (where, field, value, why))


def _as_list(where, field, value):
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, tuple)):
        _fail(where, field, value, "must be a list")
    return list(value)


def _text(where, field, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        _fail(where, field, value, "must be a string")
    if ipxe_line.CONTROL_RE.search(value):
        _fail(where, field, value, "contains a newline or control character")
    return value


def _unknown_keys(where, raw, fields):
    if not isinstance(raw, dict):
        raise BootServiceDeclarationError("%s: %r is not a mapping" % (where, raw))
    for key in raw:
        if key not in fields:
            _fail(where, key, raw[key], "is not a known field (expected one of %s)" % ", ".join(fields))


def normalise_mac(value, where="declaration", field="macs"):
    """A MAC as Go's net.ParseMAC reads it; colon and dash forms become lower-case colon form."""
    text = value if isinstance(value, str) else ""
    if MAC_SEP_RE.match(text) and len(re.split(r"[:-]", text)) in MAC_OCTETS:
        return text.replace("-", ":").lower()
    if MAC_DOT_RE.match(text) and len(text.split(".")) * 2 in MAC_OCTETS:
        return text.lower()
    _fail(where, field, value, "is not a MAC address (aa:bb:cc:dd:ee:ff); boot-service would refuse it")
    return None  # pragma: no cover


def check_node_xname(value, where="node", field="xname"):
    if not isinstance(value, str) or not NODE_XNAME_RE.match(value):
        _fail(where, field, value, "is not a node xname (like x1000c0s0b0n0); boot-service would refuse it")
    return value


def check_host(value, where="declaration", field="hosts"):
    """A node xname, a wildcard such as x1000c0s0b0n* or x1000c*, or 'default' (boot-service's ValidateXNameOrDefault)."""
    if isinstance(value, str) and (value == "default" or NODE_XNAME_RE.match(value) or HOST_PATTERN_RE.match(value)):
        return value
    _fail(where, field, value, "is not a node xname, an xname wildcard (x1000c0s0b0n*, x1000c0s*, x1000c*: the * replaces a "
                               "whole last number) or 'default'; boot-service would refuse it")
    return None  # pragma: no cover


def is_host_pattern(value):
    """A wildcard or 'default' host entry: boot-service v0.3.2 accepts it but matches host entries only exactly."""
    return value == "default" or "*" in value


def normalise_int(value, where, field, low, high, what):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value > high:
        _fail(where, field, value, "is not %s (%d..%d)" % (what, low, high))
    return value


def normalise_image(value, where, field, required):
    """An http(s) URL or an absolute path (boot-service's ValidateURLOrPath), safe on an iPXE line."""
    if value is None or value == "":
        if required:
            _fail(where, field, value, "is required: boot-service refuses a configuration without a kernel")
        return ""
    if not isinstance(value, str):
        _fail(where, field, value, "must be a string (an http(s) URL or an absolute path)")
    problem = ipxe_line.image_problem(value)
    if problem:
        _fail(where, field, value, problem)
    if URL_RE.match(value) or (value.startswith("/") and len(value) > 1):
        return value
    _fail(where, field, value, "is neither an http(s) URL nor an absolute path; boot-service would refuse it")
    return None  # pragma: no cover


def normalise_params(value, where, field="params"):
    value = _text(where, field, value) if value is not None else ""
    problem = ipxe_line.params_problem(value)
    if problem:
        _fail(where, field, value, problem)
    return " ".join(part for part in value.split(" ") if part)


def html_escaped(value):
    """What Go's html/template makes of a value in boot-service's script, or None when it is left alone."""
    if not value or not any(char in value for char in HTML_ESCAPED):
        return None
    return "".join(HTML_ESCAPED.get(char, char) for char in value)


def _strings(where, field, value):
    result = []
    for index, item in enumerate(_as_list(where, field, value)):
        text = _text(where, "%s[%d]" % (field, index), item)
        if not text:
            _fail(where, "%s[%d]" % (field, index), item, "is empty")
        result.append(text)
    return result


def _compact(spec):
    """Drop what boot-service leaves out of its JSON (``omitempty``): empty strings and lists, zero numbers."""
    return dict((key, value) for key, value in spec.items() if value not in ("", None, [], 0))


def parse_configuration(raw, where, require_kernel=True):
    """``(name, spec)`` of one declared BootConfiguration; spec holds boot-service's JSON keys, empty ones left out."""
    _unknown_keys(where, raw, CONFIG_FIELDS)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name != name.strip():
        _fail(where, "name", name, "must be a non-empty name without control characters or surrounding spaces")
    spec = {
        "hosts": [check_host(h, where, "hosts") for h in _as_list(where, "hosts", raw.get("hosts"))],
        "macs": [normalise_mac(m, where, "macs") for m in _as_list(where, "macs", raw.get("macs"))],
        "nids": [normalise_int(n, where, "nids", 0, INT32_MAX, "a NID") for n in _as_list(where, "nids", raw.get("nids"))],
        "groups": _strings(where, "groups", raw.get("groups")),
        "profile": _text(where, "profile", raw.get("profile")),
        "kernel": normalise_image(raw.get("kernel"), where, "kernel", require_kernel),
        "initrd": normalise_image(raw.get("initrd"), where, "initrd", False),
        "params": normalise_params(raw.get("params"), where),
        "priority": normalise_int(raw.get("priority") or 0, where, "priority", 0, 100,
                                  "a priority boot-service accepts"),
    }
    if spec["profile"] == "default":
        spec["profile"] = ""  # boot-service reads an empty profile as "default"
    return name, _compact(spec)


NodeDeclaration = collections.namedtuple("NodeDeclaration", ["xname", "name", "spec", "managed", "shorthand"])


def parse_node(raw, where):
    """One declared Node record as a :class:`NodeDeclaration`.

    ``spec`` holds the declared fields (boot-service's JSON keys, empty ones left out); ``managed`` the keys the
    declaration sets (a field given empty clears it, a field left out keeps what boot-service holds, so Node
    records that an import or SMD sync also fills are not fought over); ``shorthand`` the MACs given through
    ``macs``, whose stored ``ip``/``type`` are kept. ``name`` is None when not declared (a new record is
    named after its xname, an existing one keeps its name). The first MAC is the boot MAC unless ``boot_mac``.
    """
    _unknown_keys(where, raw, NODE_FIELDS)
    xname = check_node_xname(raw.get("xname"), where, "xname")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not NAME_RE.match(name)):
        _fail(where, "name", name, "must be a non-empty name without control characters")
    interfaces = []
    for index, item in enumerate(_as_list(where, "interfaces", raw.get("interfaces"))):
        here = "%s.interfaces[%d]" % (where, index)
        _unknown_keys(here, item, INTERFACE_FIELDS)
        interface = {"mac": normalise_mac(item["mac"], here, "mac") if item.get("mac") else "",
                     "ip": _text(here, "ip", item.get("ip")), "type": _text(here, "type", item.get("type"))}
        if interface["ip"]:
            try:
                ipaddress.ip_address(interface["ip"])
            except ValueError:
                _fail(here, "ip", interface["ip"], "is not an IP address")
        interfaces.append(_compact(interface))
    known = set(i.get("mac") for i in interfaces)
    shorthand = set()
    for mac in _as_list(where, "macs", raw.get("macs")):
        mac = normalise_mac(mac, where, "macs")
        if mac not in known:
            interfaces.append({"mac": mac})
            known.add(mac)
            shorthand.add(mac)
    boot_mac = normalise_mac(raw["boot_mac"], where, "boot_mac") if raw.get("boot_mac") else ""
    if not boot_mac:
        boot_mac = next((i["mac"] for i in interfaces if i.get("mac")), "")
    spec = {"xname": xname, "nid": normalise_int(raw.get("nid") or 0, where, "nid", 0, INT32_MAX, "a NID"),
            "bootMac": boot_mac, "role": _text(where, "role", raw.get("role")),
            "subRole": _text(where, "sub_role", raw.get("sub_role")), "hostname": _text(where, "hostname", raw.get("hostname")),
            "interfaces": interfaces, "groups": _strings(where, "groups", raw.get("groups"))}
    given_interfaces = raw.get("interfaces") is not None or raw.get("macs") is not None
    managed = set(["xname"])
    for option, key in NODE_KEYS:
        if raw.get(option) is not None or (key in ("interfaces", "bootMac") and given_interfaces):
            managed.add(key)
    return NodeDeclaration(xname, name, _compact(spec), frozenset(managed), frozenset(shorthand))


def node_wanted(declared, current=None):
    """``(name, spec)`` the Node record must have: the declared fields over what ``current`` ``(name, spec)`` holds."""
    if current is None:
        return declared.name or declared.xname, declared.spec
    name, stored = current
    spec = dict((key, value) for key, value in stored.items() if key not in declared.managed)
    spec.update(declared.spec)
    if declared.shorthand and "interfaces" in declared.spec:
        kept = dict((i.get("mac"), i) for i in stored.get("interfaces", []) if i.get("mac"))
        spec["interfaces"] = [dict(kept.get(i.get("mac"), {}), **i) if i.get("mac") in declared.shorthand else i
                              for i in declared.spec["interfaces"]]
    return declared.name or name or declared.xname, spec


def from_declaration(raw, where, prefix, require_kernel=True, with_node=True):
    """A bootparams-style declaration (kernel, initrd, params, macs, hosts, nids) of one node as boot-service resources.

    Returns ``(config, node)``: config is ``(name, spec)`` named ``<prefix><xname>`` (else the first MAC, else
    ``nid<N>``), with all the declared selectors; node is a :class:`NodeDeclaration` (xname, NID and MACs
    managed, anything else an import or SMD sync put there kept) or None when the declaration names no single
    node xname or ``with_node`` is false.
    """
    _unknown_keys(where, raw, DECLARATION_FIELDS)
    hosts = _as_list(where, "hosts", raw.get("hosts"))
    macs = [normalise_mac(m, where, "macs") for m in _as_list(where, "macs", raw.get("macs"))]
    nids = [normalise_int(n, where, "nids", 0, INT32_MAX, "a NID") for n in _as_list(where, "nids", raw.get("nids"))]
    if hosts:
        key = str(hosts[0])
    elif macs:
        key = macs[0]
    elif nids:
        key = "nid%d" % nids[0]
    else:
        raise BootServiceDeclarationError("%s: names no node (hosts, macs or nids): boot-service would read it as a "
                                          "catch-all configuration for every node" % where)
    config = dict(raw, name=prefix + key)
    name, spec = parse_configuration(config, where, require_kernel)
    node = None
    if with_node and len(hosts) == 1 and isinstance(hosts[0], str) and NODE_XNAME_RE.match(hosts[0]):
        node = parse_node({"xname": hosts[0], "macs": macs or None, "nid": nids[0] if len(nids) == 1 else None}, where)
    return (name, spec), node


def normalise_current_configuration(spec):
    """A stored BootConfiguration spec in the form :func:`parse_configuration` gives (MACs compared as boot-service does)."""
    spec = dict(spec or {})
    current = dict((key, spec.get(key)) for key in CONFIG_KEYS)
    current["macs"] = [_soft_mac(m) for m in current.get("macs") or []]
    if current.get("profile") == "default":
        current["profile"] = ""
    return _compact(current)


def normalise_current_node(spec):
    spec = dict(spec or {})
    current = dict((key, spec.get(key)) for _option, key in NODE_KEYS)
    current["bootMac"] = _soft_mac(current.get("bootMac") or "")
    current["interfaces"] = [_compact(dict(i or {}, mac=_soft_mac((i or {}).get("mac") or ""))) for i in current.get("interfaces") or []]
    return _compact(current)


def _soft_mac(value):
    try:
        return normalise_mac(value)
    except BootServiceDeclarationError:
        return value
