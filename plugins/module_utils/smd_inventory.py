# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure mapping from SMD (HSM v2) answers to inventory hosts, used by the hpc_boot.bss.smd inventory plugin."""

from __future__ import annotations

import re

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
UNUSABLE_MACS = ("", "not available", "ff:ff:ff:ff:ff:ff")


class SmdInventoryError(ValueError):
    """SMD answered something the inventory cannot be built from."""


def normalise_mac(value):
    """Lower-case colon form, or None for SMD's placeholders and unparsable values."""
    text = str(value or "").strip().lower().replace("-", ":")
    if len(text) == 12 and ":" not in text:
        text = ":".join(text[i:i + 2] for i in range(0, 12, 2))
    if text in UNUSABLE_MACS or not MAC_RE.match(text):
        return None
    return text


def _components(answer):
    if isinstance(answer, dict):
        answer = answer.get("Components")
    if not isinstance(answer, list):
        raise SmdInventoryError("State/Components did not return a list of components")
    return answer


def _macs_by_node(interfaces):
    if isinstance(interfaces, dict):
        interfaces = interfaces.get("EthernetInterfaces", [])
    macs = {}
    ips = {}
    for entry in interfaces or []:
        node = entry.get("ComponentID") or ""
        mac = normalise_mac(entry.get("MACAddress"))
        if not node or mac is None:
            continue
        if mac not in macs.setdefault(node, []):
            macs[node].append(mac)
        for address in entry.get("IPAddresses") or []:
            ip = address.get("IPAddress") if isinstance(address, dict) else address
            if ip:
                ips.setdefault(node, []).append(ip)
    return macs, ips


def _labels_by_node(memberships):
    labels = {}
    for entry in memberships or []:
        node = entry.get("id") or entry.get("ID") or ""
        labels[node] = sorted(set(entry.get("groupLabels") or []))
    return labels


def _wanted(value, allowed):
    return not allowed or (value or "").lower() in {item.lower() for item in allowed}


def host_name(pattern, fields):
    try:
        return pattern.format(**fields)
    except (KeyError, ValueError, IndexError) as exc:
        raise SmdInventoryError(f"hostname pattern {pattern!r} cannot be applied to node {fields['xname']}: {exc}") from exc


def build_hosts(payload, hostname="{xname}", types=("Node",), roles=(), subroles=(), states=()):
    """Hosts (name, vars, SMD group labels), sorted by NID then xname, from the three SMD answers.

    ``payload`` is ``{"components": ..., "interfaces": ..., "memberships": ...}`` as SMD returned them.
    Two components may not end up with the same host name.
    """
    macs, ips = _macs_by_node(payload.get("interfaces"))
    labels = _labels_by_node(payload.get("memberships"))
    hosts = []
    seen = {}
    for component in _components(payload.get("components")):
        xname = component.get("ID") or ""
        if not xname or not _wanted(component.get("Type"), types):
            continue
        if not (_wanted(component.get("Role"), roles) and _wanted(component.get("SubRole"), subroles)
                and _wanted(component.get("State"), states)):
            continue
        nid = component.get("NID") or 0
        fields = {"xname": xname, "nid": nid, "role": component.get("Role") or "", "subrole": component.get("SubRole") or ""}
        name = host_name(hostname, fields)
        if name in seen:
            raise SmdInventoryError(f"host name {name!r} of {xname} is already used by {seen[name]}")
        seen[name] = xname
        hosts.append({
            "name": name,
            "labels": labels.get(xname, []),
            "vars": {
                "bss_xname": xname,
                "bss_nid": nid,
                "bss_macs": macs.get(xname, []),
                "bss_ips": ips.get(xname, []),
                "bss_role": component.get("Role") or "",
                "bss_subrole": component.get("SubRole") or "",
                "bss_state": component.get("State") or "",
                "bss_enabled": bool(component.get("Enabled", True)),
                "bss_arch": component.get("Arch") or "",
                "bss_smd_groups": labels.get(xname, []),
            },
        })
    hosts.sort(key=lambda host: (host["vars"]["bss_nid"], host["vars"]["bss_xname"]))
    return hosts
