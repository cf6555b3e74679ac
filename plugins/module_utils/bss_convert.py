# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure conversion of etcd-mode BSS records into PostgreSQL-mode BSS rows, with a loss report.

No I/O here. Input: the decoded etcd key space (``/params/``, ``/kernel/``, ``/initrd/``,
``/endpoint-access/``) and the SMD node inventory. Output: one node row per (node, MAC) carrying
MAC, xname and NID, the boot configs/groups shared per distinct (kernel, initrd, cmdline), the
endpoint history, and every loss. The rules are written down in docs/import-rules.md.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import unicodedata

from ansible_collections.hpc_boot.bss.plugins.module_utils import ipxe_line

XNAME_RE = re.compile(r"^x([0-9]{1,4})c([0-7])s([0-9]+)b([0-9]+)n([0-9]+)$")
MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
NID_NAME_RE = re.compile(r"^nid([0-9]+)$")
TAG_DEFAULT = "Default"
TAG_GLOBAL = "Global"

LOSS_KINDS = (
    "cloud_init",            # a record's meta-data/user-data/phone-home (postgres mode cannot store it)
    "global_cloud_init",     # the Global record (cloud-init only, never used for boot scripts)
    "unknown_mac_record",    # /params/<MAC> for a MAC SMD does not know
    "unknown_nid_record",    # /params/nid<N> for a NID SMD does not know
    "unknown_xname_record",  # /params/<xname> for an xname SMD does not know
    "node_without_mac",      # SMD node with no MAC: its row carries xname and NID only
    "tag_record",            # Default, role, Unknown-<arch> and other names: fallback is materialised, the tag itself is lost
    "image_params_merged",   # kernel/initrd image params appended to the node's cmdline (GET output changes)
    "kernel_missing",        # the record serving a node resolves to no kernel: no row is written
    "divergent_identities",  # etcd served this node different configs by MAC, xname or NID
    "shadowed_record",       # a raw MAC/nid record that no lookup reaches (the xname record wins)
    "undecodable_record",    # a /params value that is not a BootDataStore JSON object
    "unsafe_params",         # carried over as served, but it changes the boot script's structure (iPXE operators, comments, newlines)
)


class ConversionError(ValueError):
    """The input cannot be converted at all (not a loss: e.g. the same MAC on two SMD nodes)."""


_PLAIN_ASCII = re.compile(r'^[ !#-\[\]-~]*$')


def go_quote(text):
    """Go's ``strconv.Quote`` (``%q``) of ``text``, as BSS uses for boot group names."""
    if _PLAIN_ASCII.match(text):
        return '"' + text + '"'
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif 0xD800 <= code <= 0xDFFF:
            # a lone surrogate stands for an invalid UTF-8 byte sequence: Go prints U+FFFD's escape
            out.append("\\ufffd")
        elif char == " " or (code < 0x7F) or unicodedata.category(char)[0] in "LMNPS":
            out.append(char)
        elif code < 0x10000:
            out.append("\\u%04x" % code)
        else:
            out.append("\\U%08x" % code)
    out.append('"')
    return "".join(out)


_GO_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def group_name(kernel, initrd, params):
    """Upstream's boot group name for a (kernel, initrd, params) triple."""
    return "BootGroup(kernel=%s,initrd=%s,params=%s)" % (go_quote(kernel), go_quote(initrd), go_quote(params))


def group_description(kernel, initrd, params):
    """Upstream's boot group description for a (kernel, initrd, params) triple."""
    return "Boot group for nodes with kernel=%s initrd=%s params=%s" % (go_quote(kernel), go_quote(initrd), go_quote(params))


def _go_bytes(text):
    """The bytes of a Go string: raw bytes read from etcd come back (surrogateescape); a lone surrogate that JSON
    decoding made is U+FFFD, as Go's JSON decoder makes it."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF and not 0xDC80 <= ord(char) <= 0xDCFF else char
                       for char in text).encode("utf-8", "surrogateescape")


def bss_image_hash(path):
    """FNV-1a-64 of the image string, as etcd-mode BSS names ``/kernel/<h>`` and ``/initrd/<h>``."""
    value = 0xCBF29CE484222325
    for byte in _go_bytes(path):
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % value


def _loss(kind, name, detail):
    return {"kind": kind, "name": name, "detail": detail}


def _has_cloud_init(cloud_init):
    if not isinstance(cloud_init, dict):
        return False
    if cloud_init.get("meta-data") or cloud_init.get("user-data"):
        return True
    phone_home = cloud_init.get("phone-home") or {}
    return isinstance(phone_home, dict) and any(phone_home.values())


def decode_image(raw):
    """``{"path":..,"params":..}`` -> (path, params); undecodable -> ('', '') like BSS."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return "", ""
    if not isinstance(data, dict) or any(not isinstance(data.get(field) or "", str) for field in ("path", "params")):
        return "", ""
    return data.get("path") or "", data.get("params") or ""


def _mistyped_field(data):
    """``(field, value)`` of a BootDataStore field whose JSON type Go's decoder refuses (the record is unusable)."""
    for field in ("params", "kernel", "initrd"):
        if data.get(field) is not None and not isinstance(data[field], str):
            return field, data[field]
    cloud_init = data.get("cloud-init")
    if cloud_init is not None and not isinstance(cloud_init, dict):
        return "cloud-init", cloud_init
    for field in ("meta-data", "user-data", "phone-home"):
        if (cloud_init or {}).get(field) is not None and not isinstance(cloud_init[field], dict):
            return "cloud-init." + field, cloud_init[field]
    return None


def resolve_records(params, kernels, initrds, consume=False):
    """Decode ``/params/<name>`` values and follow their image pointers.

    ``params`` maps record name -> raw JSON text; ``kernels``/``initrds`` map the full etcd key
    (``/kernel/<h>``) -> raw JSON text. Returns ``(records, losses)``; each record is a dict with
    params, kernel, initrd (paths), kernel_params, initrd_params, cloud_init (bool) and the image keys.
    Equal strings of different records are one object, each image is decoded once, and with
    ``consume`` each raw value is removed from ``params`` once decoded (the caller no longer needs it).
    """
    records = {}
    losses = []
    shared = {}
    images = ({}, {})
    for name in sorted(params):
        raw = params.pop(name) if consume else params[name]
        try:
            data = json.loads(raw)
        except (TypeError, ValueError) as exc:
            losses.append(_loss("undecodable_record", name, "value is not JSON: %s" % exc))
            continue
        if not isinstance(data, dict):
            losses.append(_loss("undecodable_record", name, "value is not a JSON object"))
            continue
        mistyped = _mistyped_field(data)
        if mistyped:
            losses.append(_loss("undecodable_record", name, "%s is %.80r: BSS cannot decode the record" % mistyped))
            continue
        kernel_key, initrd_key = str(data.get("kernel") or ""), str(data.get("initrd") or "")
        kernel_key, initrd_key = shared.setdefault(kernel_key, kernel_key), shared.setdefault(initrd_key, initrd_key)
        kernel, kernel_params = _image(kernels, kernel_key, images[0], shared)
        initrd, initrd_params = _image(initrds, initrd_key, images[1], shared)
        text = str(data.get("params") or "")
        records[name] = {
            "params": shared.setdefault(text, text),
            "kernel": kernel, "initrd": initrd,
            "kernel_params": kernel_params, "initrd_params": initrd_params,
            "kernel_key": kernel_key, "initrd_key": initrd_key,
            "cloud_init": _has_cloud_init(data.get("cloud-init")),
        }
    return records, losses


def _image(images, key, decoded, shared):
    """``decode_image`` of ``images[key]`` (('', '') when absent), decoded once per key."""
    found = decoded.get(key)
    if found is None:
        path, params = decode_image(images[key]) if key in images else ("", "")
        found = decoded[key] = (shared.setdefault(path, path), shared.setdefault(params, params))
    return found


def script_cmdline(record):
    """Script-faithful cmdline: host params, then kernel image params, then initrd image params (bss-spec 5.2 step 1)."""
    cmdline = record["params"]
    if record["kernel_params"]:
        cmdline += " " + record["kernel_params"]
    if record["initrd_params"]:
        cmdline += " " + record["initrd_params"]
    return cmdline


def index_smd_nodes(nodes):
    """Validate the SMD node list and index it by MAC (lower-case) and NID; duplicates are errors."""
    by_mac = {}
    by_nid = {}
    by_xname = {}
    for node in nodes:
        xname = node["xname"]
        if xname in by_xname:
            raise ConversionError("SMD lists node xname '%s' twice" % xname)
        by_xname[xname] = node
        for mac in node.get("macs") or []:
            key = mac.lower()
            if key in by_mac and by_mac[key]["xname"] != xname:
                raise ConversionError("SMD lists MAC '%s' on two nodes: '%s' and '%s'" % (mac, by_mac[key]["xname"], xname))
            by_mac[key] = node
        nid = node.get("nid")
        if nid is not None and nid > 0:
            if nid in by_nid:
                raise ConversionError("SMD lists NID %s on two nodes: '%s' and '%s'" % (nid, by_nid[nid]["xname"], xname))
            by_nid[nid] = node
    return by_xname, by_mac, by_nid


def _lookup(records, candidates):
    """First candidate record name that exists, as etcd-mode BSS's bootscript search does."""
    for name in candidates:
        if name and name in records:
            return name
    return None


def node_lookups(node, records):
    """What etcd-mode BSS serves this node for each identity it can boot with.

    Returns ``{identity: record name or None}`` for ``mac:<m>`` (each MAC, as iPXE sends it:
    lower-case), ``name:<xname>`` and ``nid:<n>``. Order: xname record, raw identifier, role, Default.
    """
    xname = node["xname"]
    role = node.get("role") or ""
    tail = [role, TAG_DEFAULT]
    result = {}
    for mac in node.get("macs") or []:
        result["mac:" + mac.lower()] = _lookup(records, [xname, mac.lower()] + tail)
    result["name:" + xname] = _lookup(records, [xname, xname] + tail)
    nid = node.get("nid")
    if nid is not None and nid > 0:
        result["nid:%d" % nid] = _lookup(records, [xname, "nid%d" % nid] + tail)
    return result


def _triple(record):
    return (record["kernel"], record["initrd"], script_cmdline(record))


def convert(params, kernels, initrds, endpoint_access, smd_nodes, consume=False):
    """The whole conversion. Returns a dict: nodes, configs, endpoint_access, losses, counts.

    With ``consume`` the raw ``params`` values are dropped as they are decoded (see ``resolve_records``).

    ``nodes``: list of ``{"boot_mac", "xname", "nid", "config"}`` where config is the triple
    ``(kernel, initrd, cmdline)``; ``configs``: sorted list of triples with group name/description;
    ``endpoint_access``: list of ``(name, endpoint, last_epoch)``.
    """
    record_count = len(params)
    records, losses = resolve_records(params, kernels, initrds, consume=consume)
    by_xname, by_mac, by_nid = index_smd_nodes(smd_nodes)
    triple_of = _triple_cache(records)
    used = set()
    nodes = []
    reported = set()
    for xname in sorted(by_xname):
        node = by_xname[xname]
        lookups = node_lookups(node, records)
        served = {ident: name for ident, name in lookups.items() if name is not None}
        for name in sorted(set(served.values()) - used):   # a record's own losses are found when it first serves
            losses.extend(_served_record_losses(name, records[name], xname, reported))
            losses.extend(_unsafe_losses(name, records[name], reported))
        used.update(served.values())
        node_rows, divergent = node_rows_for(node, lookups, records, triple_of)
        if divergent:
            losses.append(_loss("divergent_identities", xname, "etcd served %s; rows are split per configuration, so a"
                                " later API change by one identity does not move the others" % (
                                    ", ".join("%s -> %s" % (ident, lookups[ident]) for ident in sorted(lookups)))))
        if not node.get("macs") and node_rows:
            losses.append(_loss("node_without_mac", xname, "SMD knows no MAC: the row carries xname and NID only"))
        nodes.extend(node_rows)
    losses.extend(_record_losses(records, used, by_xname, by_mac, by_nid))
    configs = sorted({row["config"] for row in nodes})
    access = sorted(endpoint_access)
    losses.sort(key=lambda loss: (loss["kind"], loss["name"]))
    return {
        "nodes": nodes,
        "configs": [{"kernel": k, "initrd": i, "cmdline": c, "name": group_name(k, i, c),
                     "description": group_description(k, i, c)} for k, i, c in configs],
        "endpoint_access": access,
        "losses": losses,
        "counts": {"records": record_count, "smd_nodes": len(by_xname), "nodes": len(nodes),
                   "configs": len(configs), "endpoint_access": len(access), "losses": len(losses)},
    }


def _triple_cache(records):
    """``triple_of(name)``: a record's config triple, one tuple (and cmdline) per distinct triple."""
    by_name = {}
    by_value = {}

    def triple_of(name):
        triple = by_name.get(name)
        if triple is None:
            triple = _triple(records[name])
            triple = by_name[name] = by_value.setdefault(triple, triple)
        return triple

    return triple_of


def node_rows_for(node, lookups, records, triple_of=None):
    """Rows that make postgres-mode BSS serve each identity what etcd-mode BSS served it.

    Identities (each MAC, the xname, the NID) are grouped by the (kernel, initrd, cmdline) they were
    served; identities served nothing bootable (no record, or no kernel) get no row. The usual case is
    one group holding every identity: one row per MAC, each carrying the xname and the NID. Returns
    ``(rows, divergent)``; ``divergent`` is true when identities were served differently.
    """
    groups = {}
    unserved = 0
    for ident in sorted(lookups):
        name = lookups[ident]
        triple = (triple_of(name) if triple_of else _triple(records[name])) if name is not None else None
        if triple is None or not triple[0]:
            unserved += 1
            continue
        groups.setdefault(triple, []).append(ident)
    rows = []
    for triple in sorted(groups):
        idents = groups[triple]
        xname = node["xname"] if ("name:" + node["xname"]) in idents else ""
        nid = node.get("nid") or 0
        nid = nid if ("nid:%d" % nid) in idents else 0
        macs = [sys.intern(ident[len("mac:"):]) for ident in idents if ident.startswith("mac:")] or [""]
        for mac in macs:
            rows.append({"boot_mac": mac, "xname": xname, "nid": nid, "config": triple})
    divergent = len(groups) > 1 or (bool(groups) and unserved > 0)
    return rows, divergent


def _served_record_losses(name, record, xname, reported):
    """Losses of a record that serves some node: no kernel, or image params merged (each reported once)."""
    if name in reported:
        return []
    if not record["kernel"]:
        reported.add(name)
        return [_loss("kernel_missing", name, "record serving node %s (and maybe others) has no kernel; no row is written" % xname)]
    if record["kernel_params"] or record["initrd_params"]:
        reported.add(name)
        return [_loss("image_params_merged", name, "image params %r appended to the cmdline" % " ".join(
            p for p in (record["kernel_params"], record["initrd_params"]) if p))]
    return []


# Records of one site share a few params and image values: each is checked once (the checks are pure).
_params_problem = functools.lru_cache(maxsize=1024)(ipxe_line.params_problem)
_image_problem = functools.lru_cache(maxsize=1024)(ipxe_line.image_problem)


def unsafe_fields(record):
    """``[(field, value, why)]``: what in a resolved record changes the structure of the boot script BSS serves."""
    checks = (("params", record["params"], _params_problem),
              ("kernel", record["kernel"], _image_problem),
              ("initrd", record["initrd"], _image_problem),
              ("kernel image params (%s)" % record["kernel_key"], record["kernel_params"], _params_problem),
              ("initrd image params (%s)" % record["initrd_key"], record["initrd_params"], _params_problem))
    found = []
    for field, value, problem_of in checks:
        problem = problem_of(value) if value else None
        if problem:
            found.append((field, value, problem))
    return found


def _unsafe_losses(name, record, reported):
    """``unsafe_params`` losses of a record whose rows are written (each record reported once)."""
    key = ("unsafe", name)
    if key in reported or not record["kernel"]:
        return []
    reported.add(key)
    return [_loss("unsafe_params", name, "%s %r %s; imported as etcd served it" % (field, value[:200], why))
            for field, value, why in unsafe_fields(record)]


def _record_losses(records, used, by_xname, by_mac, by_nid):
    losses = []
    for name in sorted(records):
        record = records[name]
        if name == TAG_GLOBAL:
            losses.append(_loss("global_cloud_init", name, "Global is cloud-init data only; postgres mode has none"))
            continue
        if record["cloud_init"]:
            losses.append(_loss("cloud_init", name, "cloud-init meta-data/user-data/phone-home dropped"))
        if name in used:
            continue
        if XNAME_RE.match(name):
            if name not in by_xname:
                losses.append(_loss("unknown_xname_record", name, "SMD does not know this xname"))
        elif MAC_RE.match(name):
            kind = "shadowed_record" if name.lower() in by_mac else "unknown_mac_record"
            losses.append(_loss(kind, name, "MAC record not reached by any boot lookup"))
        elif NID_NAME_RE.match(name):
            kind = "shadowed_record" if int(NID_NAME_RE.match(name).group(1)) in by_nid else "unknown_nid_record"
            losses.append(_loss(kind, name, "NID record not reached by any boot lookup"))
        else:
            losses.append(_loss("tag_record", name, "tag/other record has no postgres representation"))
    for name in sorted(used):
        if not (XNAME_RE.match(name) or MAC_RE.match(name) or NID_NAME_RE.match(name)):
            losses.append(_loss("tag_record", name, "fallback materialised as rows for the nodes it served; the tag is lost"))
    return losses


def unaccepted_losses(losses, accept_kinds, accept_names):
    """Losses the operator did not accept, by kind or by record/node name."""
    kinds = set(accept_kinds or [])
    names = set(accept_names or [])
    return [loss for loss in losses if loss["kind"] not in kinds and loss["name"] not in names]


class KeySpace:
    """The etcd key space sorted by kind as it is read: ``add(key, value)`` per key, ``split()`` at the end.

    Endpoint-access names and endpoints are interned (a name is usually a node's xname, the endpoints
    are a handful of words); a value that is not an epoch is left out, as BSS would not have written it.
    """

    def __init__(self):
        self.params, self.kernels, self.initrds, self.access = {}, {}, {}, []

    def add(self, key, value):
        if key.startswith("/params/"):
            self.params[key[len("/params/"):]] = value
        elif key.startswith("/kernel/"):
            self.kernels[key] = value
        elif key.startswith("/initrd/"):
            self.initrds[key] = value
        elif key.startswith("/endpoint-access/"):
            rest = key[len("/endpoint-access/"):]
            name, _sep, endpoint = rest.rpartition("/")
            try:
                epoch = int(str(value).strip())
            except ValueError:
                return
            self.access.append((sys.intern(name), sys.intern(endpoint), epoch))

    def split(self):
        return self.params, self.kernels, self.initrds, self.access


def split_etcd_keys(kvs, consume=False):
    """Sort a flat ``{key: value}`` etcd dump into params, kernels, initrds and endpoint access.

    With ``consume`` each key is removed from ``kvs`` as it is sorted, so the dump and its split
    are never both whole in memory.
    """
    space = KeySpace()
    for key in list(kvs) if consume else kvs:
        space.add(key, kvs.pop(key) if consume else kvs[key])
    return space.split()


def affected_nodes(smd_nodes, changed_keys, image_pointers):
    """Xnames whose served configuration may depend on any changed etcd key (delta sync).

    ``changed_keys`` holds full etcd keys changed or deleted since the base revision;
    ``image_pointers`` maps record name -> set of image keys it points to, before or now.
    """
    touched_records = {key[len("/params/"):] for key in changed_keys if key.startswith("/params/")}
    changed_images = {key for key in changed_keys if key.startswith(("/kernel/", "/initrd/"))}
    for name, pointers in image_pointers.items():
        if changed_images.intersection(pointers):
            touched_records.add(name)
    result = set()
    for node in smd_nodes:
        candidates = {node["xname"], node.get("role") or "", TAG_DEFAULT}
        candidates.update(mac.lower() for mac in node.get("macs") or [])
        if node.get("nid"):
            candidates.add("nid%d" % node["nid"])
        if candidates & touched_records:
            result.add(node["xname"])
    return result


def kvs_from_bss_api(entries, history=None):
    """Rebuild the etcd key space from a live BSS's ``GET /boot/v1/bootparameters`` (+ endpoint history).

    For sites whose BSS runs on its in-memory store. Host entries become ``/params/<host>`` records
    pointing at ``/kernel/<hash>``/``/initrd/<hash>``; image-only entries carry the image params.
    """
    kvs = {}
    for index, entry in enumerate(_api_list(entries, "GET /boot/v1/bootparameters")):
        if not isinstance(entry, dict):
            continue
        where = "GET /boot/v1/bootparameters entry %d" % index
        kernel, initrd = _api_text(entry, "kernel", where), _api_text(entry, "initrd", where)
        params = _api_text(entry, "params", where)
        hosts = _api_list(entry.get("hosts"), where + " hosts")
        if not all(isinstance(host, str) and host for host in hosts):
            raise ConversionError("%s: hosts %.80r holds a name that is not a non-empty string" % (where, hosts))
        # A PostgreSQL-mode BSS answers a node declared by MAC with "macs" and no "hosts": keyed by MAC, as an
        # etcd BSS stores a MAC it cannot resolve (the conversion resolves it through SMD).
        macs = _api_list(entry.get("macs"), where + " macs")
        if not all(isinstance(mac, str) and mac for mac in macs):
            raise ConversionError("%s: macs %.80r holds a value that is not a non-empty string" % (where, macs))
        hosts = hosts + [mac for mac in macs if mac not in hosts]
        if not hosts and (kernel or initrd):
            for prefix, path in (("/kernel/", kernel), ("/initrd/", initrd)):
                if path:
                    value = {"path": path}
                    if params:
                        value["params"] = params
                    kvs[prefix + bss_image_hash(path)] = json.dumps(value)
            continue
        record = {"params": params}
        for prefix, path in (("/kernel/", kernel), ("/initrd/", initrd)):
            if path:
                key = prefix + bss_image_hash(path)
                record[prefix.strip("/")] = key
                kvs.setdefault(key, json.dumps({"path": path}))
        record["cloud-init"] = entry.get("cloud-init") or {}
        for host in hosts:
            kvs["/params/" + host] = json.dumps(record)
    for access in _api_list(history, "GET /boot/v1/endpoint-history"):
        if isinstance(access, dict) and access.get("endpoint"):
            where = "GET /boot/v1/endpoint-history entry"
            name, endpoint = _api_text(access, "name", where), _api_text(access, "endpoint", where)
            epoch = access.get("last_epoch") or 0
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ConversionError("%s of %s: last_epoch %.80r is not an integer" % (where, name, epoch))
            kvs["/endpoint-access/%s/%s" % (name, endpoint)] = str(epoch)
    return kvs


def _api_list(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConversionError("%s is not a list: %.80r" % (what, value))
    return value


def _api_text(entry, field, where):
    value = entry.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConversionError("%s: %s %.80r is not a string" % (where, field, value))
    return value
