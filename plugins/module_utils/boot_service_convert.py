# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure conversion of BSS boot records into boot-service resources (Node records and BootConfigurations).

No I/O here. It reuses the etcd lookup of ``bss_convert`` (what BSS serves each MAC, xname and NID of
every SMD node) and maps it onto boot-service's selection (boot-service v0.3.2,
``pkg/controllers/bootscript/controller.go``): a request is first resolved to a Node record (by xname,
by NID, or by the record's one ``bootMac``), then the configuration with the highest score for that
record wins (MAC 100, NID 75, host 50, group 25, catch-all 1; ties by priority, then name). The rules,
and why each one is faithful, are in docs/import-rules-boot-service.md.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert

PREFIX = "bss-"
BS_XNAME_RE = re.compile(r"^x\d+c\d+s\d+b\d+n\d+$")
GO_MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
HTML_ESCAPED = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "+": "&#43;", "\x00": "\ufffd"}
INJECTED_KEYS = ("xname", "nid", "bss_referral_token", "ds")

# Loss kinds of this import: the PostgreSQL import's kinds (node_without_mac is accepted but never reported: a Node
# record without a boot MAC serves the xname and the NID), plus what boot-service forces.
LOSS_KINDS = tuple(bss_convert.LOSS_KINDS) + (
    "html_escaped",          # boot-service renders params/kernel/initrd through html/template: & ' < > " + are escaped
    "script_time_params",    # BSS adds xname=/nid=/ds=/bss_referral_token= at script time, boot-service appends BOOTIF=
    "initrd_quirk",          # BSS cuts the first "initrd" word of the cmdline at script time; boot-service does not
    "endpoint_disabled",     # SMD has no enabled endpoint: BSS sends the node through discovery first, boot-service boots it
)


class BootServiceInputError(ValueError):
    """The input holds something boot-service would refuse; nothing is written. The message names field and value."""


_HTML_SPECIAL = re.compile("[&'<>\"+\x00]")


def go_html_escape(text):
    """What Go's html/template makes of a value in boot-service's script (checked against the binary)."""
    return _HTML_SPECIAL.sub(lambda match: HTML_ESCAPED[match.group(0)], text)


def valid_url_or_path(value):
    """boot-service's ValidateURLOrPath: an http(s) URL or an absolute path longer than ``/``."""
    return bool(re.match(r"^https?:", value)) or (value.startswith("/") and len(value) > 1)


def _present(cmdline, key):
    """BSS's add-if-missing test: some single-space piece starts with ``key=``."""
    return any(piece.startswith(key + "=") for piece in cmdline.split(" "))


def node_cmdline(cmdline, xname, nid, datasource_url):
    """The cmdline with what BSS adds at script time for this node (bss-spec 5.2 step 2): xname=, nid=, ds=."""
    extra = []
    if not _present(cmdline, "xname"):
        extra.append("xname=" + xname)
    if not _present(cmdline, "nid"):
        extra.append("nid=%d" % (nid or 0))
    if datasource_url and not _present(cmdline, "ds"):
        extra.append("ds=nocloud-net;s=%s/" % datasource_url.rstrip("/"))
    return " ".join([cmdline] + extra if cmdline else extra)


def config_name_for(triple):
    """Deterministic name of a shared configuration: ``bss-cfg-`` and 16 hex of the triple's sha256."""
    digest = hashlib.sha256("\0".join(triple).encode("utf-8", "surrogateescape")).hexdigest()
    return PREFIX + "cfg-" + digest[:16]


def role_group(role):
    return PREFIX + "role-" + role


def _mac_suffix(mac):
    return re.sub(r"[^0-9a-f]", "", mac.lower())


class _Builder(object):
    """Accumulates configurations (by name) and Node records while nodes are converted."""

    def __init__(self, priority):
        self.priority = priority
        self.configs = {}
        self.nodes = {}
        self.sources = {}   # config name -> BSS record names it carries

    def config(self, name, triple, record):
        spec = self.configs.get(name)
        if spec is None:
            spec = {"kernel": triple[0], "initrd": triple[1], "params": triple[2], "priority": self.priority,
                    "hosts": [], "macs": [], "nids": [], "groups": []}
            self.configs[name] = spec
        self.sources.setdefault(name, set()).add(record)
        return spec


def _served(lookups, records):
    """identity -> (record name, triple) or None when BSS serves it nothing bootable."""
    served = {}
    for ident, name in lookups.items():
        record = records.get(name) if name is not None else None
        served[ident] = (name, (record["kernel"], record["initrd"], bss_convert.script_cmdline(record))) \
            if record and record["kernel"] else None
    return served


def _tier(name, node):
    if name == node["xname"]:
        return "host"
    if name == bss_convert.TAG_DEFAULT:
        return "default"
    if name and name == (node.get("role") or ""):
        return "group"
    return "mac"


def postgres_lookups(node, records):
    """What a PostgreSQL-mode BSS serves each identity: the row of that identifier, no SMD translation, no fallback
    (bss-spec 5.1 step 3); ``bss_source.kvs_from_pg_rows`` made one record per identifier."""
    result = {}
    for mac in node.get("macs") or []:
        result["mac:" + mac.lower()] = mac.lower() if mac.lower() in records else None
    result["name:" + node["xname"]] = node["xname"] if node["xname"] in records else None
    nid = node.get("nid")
    if nid is not None and nid > 0:
        result["nid:%d" % nid] = "nid%d" % nid if ("nid%d" % nid) in records else None
    return result


def convert(params, kernels, initrds, smd_nodes, node_params=True, datasource_url=None, priority=0, served_by="etcd"):
    """The whole conversion: ``{"configs", "nodes", "expected", "losses", "counts"}``.

    ``configs``/``nodes`` map a deterministic resource name to its spec. ``expected`` maps each identity
    (``mac:<m>``, ``name:<xname>``, ``nid:<n>``) to the (kernel, initrd, cmdline) boot-service must serve,
    None when BSS serves it nothing bootable (boot-service then has no Node record for it).
    ``node_params`` bakes BSS's script-time ``xname=``/``nid=`` (and ``ds=`` with ``datasource_url``)
    into per-node configurations; without it configurations are shared per (kernel, initrd, cmdline).
    ``served_by`` ``postgres``: the records came from a PostgreSQL-mode BSS, which serves each identity its own row.
    """
    lookup = postgres_lookups if served_by == "postgres" else bss_convert.node_lookups
    base = bss_convert.convert(params, kernels, initrds, [], smd_nodes)
    records, _decode_losses = bss_convert.resolve_records(params, kernels, initrds)
    by_xname, _by_mac, _by_nid = bss_convert.index_smd_nodes(smd_nodes)
    build = _Builder(priority)
    expected = {}
    divergent = []
    fallbacks = set()
    for xname in sorted(by_xname):
        node = by_xname[xname]
        served = _served(lookup(node, records), records)
        cmdlines = {}
        for ident, value in served.items():
            if value is None:
                expected[ident] = None
                continue
            cmdline = value[1][2]
            if node_params:
                if cmdline not in cmdlines:
                    cmdlines[cmdline] = node_cmdline(cmdline, xname, node.get("nid"), datasource_url)
                cmdline = cmdlines[cmdline]
            expected[ident] = (value[1][0], value[1][1], cmdline)
        problem = _convert_node(node, served, build, node_params, datasource_url, fallbacks)
        if problem:
            divergent.append(problem)
    _add_fallbacks(records, smd_nodes, build, fallbacks)
    base_losses = [loss for loss in base["losses"] if served_by != "postgres" or loss["kind"] != "shadowed_record"]
    losses = _losses(base_losses, records, build, divergent, fallbacks, node_params, datasource_url, smd_nodes)
    configs = {name: _compact(spec) for name, spec in build.configs.items()}
    counts = {"records": len(params), "smd_nodes": len(by_xname), "node_records": len(build.nodes),
              "configurations": len(configs), "identities": len(expected),
              "served_identities": sum(1 for value in expected.values() if value), "losses": len(losses)}
    return {"configs": configs, "nodes": build.nodes, "expected": expected, "losses": losses, "counts": counts}


def _convert_node(node, served, build, node_params, datasource_url, fallbacks):
    """Node records and selectors of one node; returns a divergence description or None."""
    xname = node["xname"]
    nid = node.get("nid") or 0
    macs = [mac.lower() for mac in node.get("macs") or []]
    name_served = served.get("name:" + xname)
    members = []  # (record name, bootMac, (record, triple))
    if macs:
        for index, mac in enumerate(macs):
            value = served.get("mac:" + mac)
            if value is not None:
                suffix = "" if index == 0 else "-" + _mac_suffix(mac)
                members.append((PREFIX + xname + suffix, mac, value))
    if not members:
        # No MAC is served (or SMD knows none): a record without boot MAC serves the xname and the NID.
        value = name_served or served.get("nid:%d" % nid)
        if value is not None:
            members.append((PREFIX + xname, "", value))
    if not members:
        return None
    primary = members[0][0]
    for record_name, mac, (source, triple) in members:
        spec = {"xname": xname}
        if nid and record_name == primary:
            spec["nid"] = nid
        if mac:
            spec["bootMac"] = mac
        for key, field in (("role", "role"), ("subRole", "subrole")):
            if node.get(field):
                spec[key] = node[field]
        if node.get("role"):
            spec["groups"] = [role_group(node["role"])]
        build.nodes[record_name] = spec
        tier = _tier(source, node)
        if tier in ("group", "default") and not node_params:
            fallbacks.add(source)
            continue
        cmdline = node_cmdline(triple[2], xname, nid, datasource_url) if node_params else triple[2]
        full = (triple[0], triple[1], cmdline)
        divergent_node = len(set(member[2][1] for member in members)) > 1 or tier == "mac"
        if node_params:
            name = PREFIX + "node-" + xname + ("-" + _mac_suffix(mac) if divergent_node and mac else "")
        else:
            name = config_name_for(full)
        spec = build.config(name, full, source)
        if tier == "host" and not divergent_node:
            spec["hosts"].append(xname)
        elif mac:
            spec["macs"].append(mac)
        else:
            spec["hosts"].append(xname)
    return _divergence(node, served, members, primary)


def _divergence(node, served, members, primary):
    """Identities for which boot-service's one-record-per-MAC resolution cannot serve what BSS served."""
    by_record = {record: value[1] for record, _mac, value in members}
    xname = node["xname"]
    got = {}
    for record, mac, _value in members:
        if mac:
            got["mac:" + mac] = by_record[record]
    triples = set(by_record.values())
    got["name:" + xname] = by_record[primary] if len(triples) == 1 else "one of %d configurations" % len(triples)
    if node.get("nid"):
        got["nid:%d" % node["nid"]] = by_record[primary]
    changed = []
    for ident in sorted(served):
        want = served[ident][1] if served[ident] else None
        have = got.get(ident)
        if want != have:
            source = served[ident][0] if served[ident] else "nothing"
            changed.append("%s (BSS: %s, boot-service: %s)" % (ident, source, _describe(have, members)))
    return (xname, changed) if changed else None


def _describe(have, members):
    if have is None:
        return "node not found"
    if isinstance(have, str):
        return have
    for record, _mac, value in members:
        if value[1] == have:
            return "the configuration of %s" % value[0]
    return "another configuration"  # pragma: no cover - every triple comes from a member


def _add_fallbacks(records, smd_nodes, build, fallbacks):
    """Default becomes a catch-all configuration, each role record served as a role a group configuration."""
    roles = {node.get("role") for node in smd_nodes if node.get("role")}
    for name in sorted(records):
        record = records[name]
        if not record["kernel"]:
            continue
        triple = (record["kernel"], record["initrd"], bss_convert.script_cmdline(record))
        if name == bss_convert.TAG_DEFAULT:
            build.config(PREFIX + "default", triple, name)
            fallbacks.add(name)
        elif name in roles and not (bss_convert.XNAME_RE.match(name) or bss_convert.MAC_RE.match(name)
                                    or bss_convert.NID_NAME_RE.match(name)):
            spec = build.config(PREFIX + "role-" + name, triple, name)
            spec["groups"] = [role_group(name)]
            fallbacks.add(name)


def _compact(spec):
    """A spec as boot-service stores it: empty selectors and empty initrd/params left out."""
    out = {"kernel": spec["kernel"]}
    for key in ("hosts", "macs", "groups"):
        if spec.get(key):
            out[key] = sorted(set(spec[key]))
    if spec.get("nids"):
        out["nids"] = sorted(set(spec["nids"]))
    for key in ("initrd", "params"):
        if spec.get(key):
            out[key] = spec[key]
    if spec.get("priority"):
        out["priority"] = spec["priority"]
    return out


def _loss(kind, name, detail):
    return {"kind": kind, "name": name, "detail": detail}


def _losses(base_losses, records, build, divergent, fallbacks, node_params, datasource_url, smd_nodes):
    """The PostgreSQL import's losses that still apply, adjusted, plus boot-service's own kinds."""
    losses = []
    for loss in base_losses:
        kind = loss["kind"]
        if kind in ("node_without_mac", "divergent_identities"):
            continue
        if kind == "tag_record" and loss["name"] in fallbacks:
            continue
        losses.append(loss)
    for xname, changed in divergent:
        losses.append(_loss("divergent_identities", xname, "boot-service resolves every identity of a Node record to one"
                            " configuration: " + "; ".join(changed)))
    written = {}
    for name, spec in build.configs.items():
        for record in build.sources.get(name, ()):
            written.setdefault(record, spec)
    for record in sorted(written):
        spec = written[record]
        for field in ("kernel", "initrd", "params"):
            if go_html_escape(spec[field]) != spec[field]:
                losses.append(_loss("html_escaped", record, "%s %r is served by boot-service as %r (Go html/template)"
                                    % (field, spec[field][:200], go_html_escape(spec[field])[:200])))
        base = records[record]
        if base["initrd"] and "initrd" in bss_convert.script_cmdline(base):
            losses.append(_loss("initrd_quirk", record, "BSS cuts the first word holding 'initrd' from the cmdline at"
                                " script time and prepends initrd=initrd; boot-service serves the cmdline as written"))
    imported = {spec["xname"] for spec in build.nodes.values()}
    for node in smd_nodes:
        if node["xname"] in imported and node.get("endpoint_enabled") is False:
            losses.append(_loss("endpoint_disabled", node["xname"], "SMD lists no enabled ComponentEndpoint: BSS answers"
                                " the node's first request with its discovery script; boot-service boots its configuration"))
    with_mac = sum(1 for spec in build.nodes.values() if spec.get("bootMac"))
    if with_mac:
        losses.append(_loss("script_time_params", "BOOTIF", "boot-service appends BOOTIF=01-<boot MAC> to the cmdline"
                            " of the %d Node record(s) with a boot MAC (unless the cmdline has BOOTIF=); BSS v1.32.2"
                            " adds none" % with_mac))
    if build.nodes:
        if not node_params:
            losses.append(_loss("script_time_params", "xname", "BSS adds xname=<xname> and nid=<nid> at script time;"
                                " boot-service adds neither (node_params=false)"))
        if not datasource_url:
            losses.append(_loss("script_time_params", "ds", "BSS adds ds=nocloud-net;s=<its advertise address>/ at"
                                " script time; without datasource_url boot-service serves no ds="))
        losses.append(_loss("script_time_params", "bss_referral_token", "etcd-mode BSS adds a random"
                            " bss_referral_token= for its cloud-init; boot-service has no referral tokens"))
    losses.sort(key=lambda loss: (loss["kind"], loss["name"]))
    return losses


def refusals(conversion, priority):
    """What boot-service's Validate() would refuse in the planned resources: ``[message]`` naming field and value."""
    found = []
    if not 0 <= priority <= 100:
        found.append("priority %r is out of range (boot-service accepts 0..100)" % priority)
    for name in sorted(conversion["nodes"]):
        spec = conversion["nodes"][name]
        if not BS_XNAME_RE.match(spec["xname"]):
            found.append("node %s: xname %r is not an xname boot-service accepts (x<n>c<n>s<n>b<n>n<n>)" % (name, spec["xname"]))
        if spec.get("bootMac") and not GO_MAC_RE.match(spec["bootMac"]):
            found.append("node %s: bootMac %r is not a MAC boot-service accepts" % (name, spec["bootMac"]))
    for name in sorted(conversion["configs"]):
        spec = conversion["configs"][name]
        if not valid_url_or_path(spec["kernel"]):
            found.append("configuration %s: kernel %r is neither an http(s) URL nor an absolute path" % (name, spec["kernel"]))
        if spec.get("initrd") and not valid_url_or_path(spec["initrd"]):
            found.append("configuration %s: initrd %r is neither an http(s) URL nor an absolute path" % (name, spec["initrd"]))
    return found
