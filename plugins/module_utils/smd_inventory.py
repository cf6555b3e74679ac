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


def _rows(answer, key, what, required=False):
    """The objects of one SMD answer: the list itself, or the list under ``key``; a typed error otherwise."""
    if isinstance(answer, dict) and key:
        answer = answer.get(key)
    if answer is None and not required:
        return []
    if not isinstance(answer, list):
        raise SmdInventoryError(f"{what} did not return a list (got {type(answer).__name__}: {answer!r:.80})")
    for entry in answer:
        if not isinstance(entry, dict):
            raise SmdInventoryError(f"{what} entry {entry!r:.80} is not an object")
    return answer


def _text(entry, field, what):
    """An optional string field of an SMD object ('' when absent)."""
    value = entry.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SmdInventoryError(f"{what}: {field} is {value!r:.80}, not a string")
    return value


def _components(answer):
    return _rows(answer, "Components", "State/Components", required=True)


def _macs_by_node(interfaces):
    macs = {}
    ips = {}
    for entry in _rows(interfaces, "EthernetInterfaces", "Inventory/EthernetInterfaces"):
        node = _text(entry, "ComponentID", "Inventory/EthernetInterfaces entry")
        mac = normalise_mac(entry.get("MACAddress"))
        if not node or mac is None:
            continue
        if mac not in macs.setdefault(node, []):
            macs[node].append(mac)
        addresses = entry.get("IPAddresses") or []
        if not isinstance(addresses, list):
            raise SmdInventoryError(f"Inventory/EthernetInterfaces entry of {node}: IPAddresses is {addresses!r:.80}, not a list")
        for address in addresses:
            ip = _text(address, "IPAddress", f"IP address of {node}") if isinstance(address, dict) else address
            if ip and not isinstance(ip, str):
                raise SmdInventoryError(f"Inventory/EthernetInterfaces entry of {node}: IP address {ip!r:.80} is not a string")
            if ip:
                ips.setdefault(node, []).append(ip)
    return macs, ips


def _labels_by_node(memberships):
    labels = {}
    for entry in _rows(memberships, None, "memberships"):
        node = _text(entry, "id", "memberships entry") or _text(entry, "ID", "memberships entry")
        found = entry.get("groupLabels") or []
        if not isinstance(found, list) or not all(isinstance(label, str) for label in found):
            raise SmdInventoryError(f"memberships entry of {node}: groupLabels is {found!r:.80}, not a list of names")
        labels[node] = sorted(set(found))
    return labels


def _wanted(value, allowed):
    return not allowed or (value or "").lower() in {str(item).lower() for item in allowed}


def host_name(pattern, fields):
    try:
        name = pattern.format(**fields)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
        raise SmdInventoryError(f"hostname pattern {pattern!r} cannot be applied to node {fields['xname']}: {exc}") from exc
    if not name:
        raise SmdInventoryError(f"hostname pattern {pattern!r} gives node {fields['xname']} an empty name")
    return name


def build_hosts(payload, hostname="{xname}", types=("Node",), roles=(), subroles=(), states=()):
    """Hosts (name, vars, SMD group labels), sorted by NID then xname, from the three SMD answers.

    ``payload`` is ``{"components": ..., "interfaces": ..., "memberships": ...}`` as SMD returned them.
    Two components may not end up with the same host name.
    """
    if not isinstance(payload, dict):
        raise SmdInventoryError(f"SMD answers are {payload!r:.80}, not a mapping of components, interfaces, memberships")
    macs, ips = _macs_by_node(payload.get("interfaces"))
    labels = _labels_by_node(payload.get("memberships"))
    hosts = []
    seen = {}
    for component in _components(payload.get("components")):
        xname = _text(component, "ID", "State/Components entry")
        what = "State/Components entry " + xname
        text = {field: _text(component, field, what) for field in ("Type", "Role", "SubRole", "State", "Arch")}
        if not xname or not _wanted(text["Type"], types):
            continue
        if not (_wanted(text["Role"], roles) and _wanted(text["SubRole"], subroles) and _wanted(text["State"], states)):
            continue
        nid = component.get("NID") or 0
        if not isinstance(nid, int) or isinstance(nid, bool):
            raise SmdInventoryError(f"{what}: NID is {nid!r:.80}, not an integer")
        fields = {"xname": xname, "nid": nid, "role": text["Role"], "subrole": text["SubRole"]}
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
                "bss_role": text["Role"],
                "bss_subrole": text["SubRole"],
                "bss_state": text["State"],
                "bss_enabled": bool(component.get("Enabled", True)),
                "bss_arch": text["Arch"],
                "bss_smd_groups": labels.get(xname, []),
            },
        })
    hosts.sort(key=lambda host: (host["vars"]["bss_nid"], host["vars"]["bss_xname"]))
    return hosts
