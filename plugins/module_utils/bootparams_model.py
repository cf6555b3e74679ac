# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot parameters as data: validation and normalisation of declarations and of what BSS returns.

A node is named by a *label* that is the same in both backends and equals the etcd record name:
an xname (``x1000c0s0b0n0``), a lower-case MAC in colon form, ``nid<N>``, or (etcd only) a tag such
as ``Default``. A :class:`BootConfig` is the (kernel, initrd, params) triple a node boots with.
Everything here is pure: no I/O, errors are :class:`BootParamsError` naming the field and the value.
"""

from __future__ import annotations

import collections
import re

from ansible_collections.hpc_boot.bss.plugins.module_utils import ipxe_line

MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
NODE_XNAME_RE = re.compile(r"^x([0-9]{1,4})c([0-7])s([0-9]+)b([0-9]+)n([0-9]+)$")
NID_LABEL_RE = re.compile(r"^nid([0-9]+)$")
TAG_RE = re.compile(r"^(Default|Global|Unknown-[A-Za-z0-9_]+|[A-Z][A-Za-z0-9_-]*)$")
SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
PATH_RE = re.compile(r"^[A-Za-z0-9._~/+@%=,-]+$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
IMAGE_SCHEMES = ("http", "https", "s3")
MAX_IMAGE_REF = 2048
MAX_PARAMS = 4096
NID_MAX = 2 ** 31 - 1
TAGS_IGNORED_BY_POSTGRES = "postgres mode cannot store tag records such as Default, Global or role names (BSS accepts and drops them)"

DECLARATION_FIELDS = ("kernel", "initrd", "params", "macs", "hosts", "nids")
BootConfig = collections.namedtuple("BootConfig", ["kernel", "initrd", "params"])
Declaration = collections.namedtuple("Declaration", ["where", "config", "labels"])


class BootParamsError(ValueError):
    """Invalid boot parameters; the message names the field and the offending value."""


def _fail(where, field, value, why):
    raise BootParamsError("%s.%s: %r %s" % (where, field, value, why))


def normalise_mac(value, where="declaration", field="macs"):
    if not isinstance(value, str) or not MAC_RE.match(value):
        _fail(where, field, value, "is not a MAC address in colon form (aa:bb:cc:dd:ee:ff)")
    return value.lower()


def check_host(value, where="declaration", field="hosts"):
    """A node xname, or a tag name (capitalised: Default, Global, Compute, Unknown-x86_64)."""
    if not isinstance(value, str) or not value:
        _fail(where, field, value, "is not a node xname")
    if NODE_XNAME_RE.match(value):
        return value
    if TAG_RE.match(value) and not value.lower().startswith("x"):
        return value
    _fail(where, field, value, "is not a node xname (like x1000c0s0b0n0) nor a tag name (like Default)")
    return None  # pragma: no cover


def is_tag(label):
    return not (NODE_XNAME_RE.match(label) or MAC_RE.match(label) or NID_LABEL_RE.match(label))


def normalise_nid(value, where="declaration", field="nids"):
    if isinstance(value, bool):
        _fail(where, field, value, "is not a positive integer NID")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 1 or value > NID_MAX:
        _fail(where, field, value, "is not a positive integer NID")
    return value


def normalise_image(value, where="declaration", field="kernel", required=False):
    """An http(s)/s3 URL or a path; never inline data, whitespace or control characters."""
    if value is None or value == "":
        if required:
            _fail(where, field, value, "is required: every declared node needs a kernel")
        return ""
    if not isinstance(value, str):
        _fail(where, field, value, "must be a string (an http(s) or s3 URL, or a path)")
    problem = ipxe_line.image_problem(value)
    if problem:
        _fail(where, field, value, problem)
    if len(value) > MAX_IMAGE_REF:
        _fail(where, field, value[:40] + "...", "is %d characters long: images are referenced by URL or path, never inlined" % len(value))
    scheme = SCHEME_RE.match(value)
    if scheme:
        name = scheme.group(1).lower()
        if name not in IMAGE_SCHEMES:
            _fail(where, field, value[:80], "uses scheme '%s:'; only http, https, s3 URLs or paths are allowed (no inline data)" % name)
        if not re.match(r"^[A-Za-z0-9+.-]+://[^/\s]+", value):
            _fail(where, field, value, "is not a complete %s URL" % name)
        return value
    if not PATH_RE.match(value):
        _fail(where, field, value, "is neither an http(s)/s3 URL nor a path")
    return value


def normalise_params(value, where="declaration", field="params"):
    """One line of kernel parameters that leaves the boot script's structure alone; runs of spaces collapse to one."""
    if value is None:
        return ""
    if not isinstance(value, str):
        _fail(where, field, value, "must be a string of kernel parameters")
    if CONTROL_RE.search(value):
        _fail(where, field, value, "contains a newline or control character, which would inject iPXE commands")
    if len(value) > MAX_PARAMS:
        _fail(where, field, value[:40] + "...", "is longer than %d characters" % MAX_PARAMS)
    problem = ipxe_line.params_problem(value)
    if problem:
        _fail(where, field, value, problem)
    return " ".join(part for part in value.split(" ") if part)


def _as_list(where, field, value):
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, tuple)):
        _fail(where, field, value, "must be a list")
    return list(value)


def nid_label(nid):
    return "nid%d" % nid


def label_kind(label):
    """'macs', 'nids' or 'hosts': the BootParams list a label belongs in."""
    if MAC_RE.match(label):
        return "macs"
    if NID_LABEL_RE.match(label):
        return "nids"
    return "hosts"


def label_value(label):
    kind = label_kind(label)
    return int(label[3:]) if kind == "nids" else label


def parse_declaration(raw, where="declarations[0]", require_kernel=True):
    """Validate one declaration (dict with kernel, initrd, params, macs, hosts, nids)."""
    if not isinstance(raw, dict):
        raise BootParamsError("%s: %r is not a mapping of kernel, initrd, params, macs, hosts, nids" % (where, raw))
    unknown = sorted(set(raw) - set(DECLARATION_FIELDS) - {"cloud-init"})
    if unknown:
        _fail(where, unknown[0], raw[unknown[0]], "is not a declaration field (expected %s)" % ", ".join(DECLARATION_FIELDS))
    config = BootConfig(normalise_image(raw.get("kernel"), where, "kernel", required=require_kernel),
                        normalise_image(raw.get("initrd"), where, "initrd"),
                        normalise_params(raw.get("params"), where, "params"))
    labels = []
    for index, mac in enumerate(_as_list(where, "macs", raw.get("macs"))):
        labels.append(normalise_mac(mac, where, "macs[%d]" % index))
    for index, host in enumerate(_as_list(where, "hosts", raw.get("hosts"))):
        labels.append(check_host(host, where, "hosts[%d]" % index))
    for index, nid in enumerate(_as_list(where, "nids", raw.get("nids"))):
        labels.append(nid_label(normalise_nid(nid, where, "nids[%d]" % index)))
    if not labels:
        raise BootParamsError("%s: names no node: give at least one of macs, hosts or nids "
                              "(a write without selectors would rewrite every node in postgres mode)" % where)
    return Declaration(where, config, labels)


def parse_declarations(raws, require_kernel=True, prefix="declarations"):
    return [parse_declaration(raw, "%s[%d]" % (prefix, index), require_kernel) for index, raw in enumerate(raws or [])]


def check_backend_rules(declarations, backend):
    """Backend-specific refusals and warnings; returns the list of warnings."""
    warnings = []
    for declaration in declarations:
        tags = [label for label in declaration.labels if label_kind(label) == "hosts" and is_tag(label)]
        if tags and backend == "postgres":
            _fail(declaration.where, "hosts", tags[0], "is a tag name: " + TAGS_IGNORED_BY_POSTGRES)
        kinds = set(label_kind(label) for label in declaration.labels)
        if backend == "postgres" and kinds == {"hosts"} and not tags:
            warnings.append("%s is keyed only by xname (%s%s): in postgres mode iPXE asks by MAC and will not find it; add macs"
                            % (declaration.where, declaration.labels[0], ", ..." if len(declaration.labels) > 1 else ""))
    return warnings


def desired_nodes(declarations, resolve=None):
    """Map label -> BootConfig; ``resolve`` maps a declared label to the record that BSS will write (etcd)."""
    desired = {}
    origin = {}
    for declaration in declarations:
        for label in declaration.labels:
            target = resolve(label) if resolve else label
            if target in desired and desired[target] != declaration.config:
                alias = "" if target == label else " (BSS stores it as %s)" % target
                raise BootParamsError("%s: node %s%s is also declared by %s with a different kernel, initrd or params"
                                      % (declaration.where, label, alias, origin[target]))
            desired[target] = declaration.config
            origin[target] = declaration.where
    return desired


def declared_targets(declarations, resolve=None):
    return sorted(set((resolve(label) if resolve else label) for d in declarations for label in d.labels))


def _entry_config(entry):
    return BootConfig(entry.get("kernel") or "", entry.get("initrd") or "", normalise_current_params(entry.get("params")))


def normalise_current_params(value):
    return " ".join(part for part in (value or "").split(" ") if part)


def has_cloud_init(entry):
    data = entry.get("cloud-init") or {}
    if data.get("meta-data") or data.get("user-data"):
        return True
    return any(v for v in (data.get("phone-home") or {}).values())


def current_nodes(entries):
    """From GET /boot/v1/bootparameters (either backend): (label -> [BootConfig...], labels with cloud-init, images).

    etcd image entries (kernel or initrd without nodes) are returned apart as ``images``.
    A label listed under two configurations (possible in postgres mode) keeps both.
    """
    nodes = {}
    cloud_init = set()
    images = []
    if entries is not None and not isinstance(entries, list):
        raise BootParamsError("BSS answered %.80r, not a list of boot parameters" % (entries,))
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            continue
        _check_answer(index, entry)
        labels = [h for h in entry.get("hosts") or [] if h]
        labels += [m.lower() if MAC_RE.match(m) else m for m in entry.get("macs") or [] if m]
        labels += [nid_label(n) for n in entry.get("nids") or [] if isinstance(n, int) and n]
        if not labels:
            if entry.get("kernel") or entry.get("initrd"):
                images.append({"kernel": entry.get("kernel") or "", "initrd": entry.get("initrd") or "",
                               "params": entry.get("params") or ""})
            continue
        config = _entry_config(entry)
        for label in labels:
            known = nodes.setdefault(label, [])
            if config not in known:
                known.append(config)
        if has_cloud_init(entry):
            cloud_init.update(labels)
    return nodes, cloud_init, images


def _check_answer(index, entry):
    """One entry of a BSS answer has BootParams' JSON types (bss-spec 1.1), or a BootParamsError naming the field."""
    where = "BSS answer entry %d" % index
    for field in ("kernel", "initrd", "params"):
        if entry.get(field) is not None and not isinstance(entry[field], str):
            _fail(where, field, entry[field], "is not a string")
    for field, kind in (("hosts", str), ("macs", str), ("nids", int)):
        value = entry.get(field)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(item, kind) and not isinstance(item, bool) for item in value)):
            _fail(where, field, value, "is not a list of %s" % ("integers" if kind is int else "strings"))
    data = entry.get("cloud-init")
    if data is not None and not isinstance(data, dict):
        _fail(where, "cloud-init", data, "is not an object")
    for field in ("meta-data", "user-data", "phone-home"):
        if (data or {}).get(field) is not None and not isinstance(data[field], dict):
            _fail(where, "cloud-init." + field, data[field], "is not an object")


def config_dict(config):
    return {"kernel": config.kernel, "initrd": config.initrd, "params": config.params}


def entries_by_config(nodes, labels=None):
    """Group label -> config back into BootParams payloads, sorted; the shape ochami ``set`` accepts."""
    groups = {}
    for label in sorted(nodes if labels is None else labels):
        for config in nodes.get(label, []):
            groups.setdefault(config, []).append(label)
    payloads = []
    for config in sorted(groups):
        selectors = {}
        for label in groups[config]:
            selectors.setdefault(label_kind(label), []).append(label_value(label))
        payload = dict((kind, sorted(selectors[kind])) for kind in ("hosts", "macs", "nids") if kind in selectors)
        payload.update((k, v) for k, v in config_dict(config).items() if v)
        payloads.append(payload)
    return payloads


def smd_resolver(components):
    """etcd mode: how BSS names the record of a declared MAC or NID, given its SMD cache (GET /boot/v1/hosts)."""
    by_mac = {}
    by_nid = {}
    for component in components or []:
        xname = component.get("ID")
        if not xname:
            continue
        for mac in component.get("MAC") or []:
            if isinstance(mac, str) and MAC_RE.match(mac):
                by_mac.setdefault(mac.lower(), xname)
        if isinstance(component.get("NID"), int):
            by_nid.setdefault(nid_label(component["NID"]), xname)

    def resolve(label):
        return by_mac.get(label) or by_nid.get(label) or label
    return resolve
