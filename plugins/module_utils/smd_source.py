# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node inventory the import converts for: a live SMD (HSM v2) or an SMD JSON export.

Each node comes back as ``{"xname", "nid", "macs", "role", "subrole", "state", "endpoint_enabled"}``
with MACs lower-cased, built the way BSS builds its SMD cache (bss-spec 1.4).
"""

from __future__ import annotations

import json
import re
import sys

try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    requests = None
    HAS_REQUESTS = False

MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
NOT_A_MAC = ("", "not available", "ff:ff:ff:ff:ff:ff")


class SmdSourceError(RuntimeError):
    """The SMD inventory could not be read; the message names the source."""


def _mac(value):
    text = str(value or "").strip().lower()
    if "-" in text and ":" not in text:
        text = text.replace("-", ":")
    if len(text) == 12 and ":" not in text:
        text = ":".join(text[i:i + 2] for i in range(0, 12, 2))
    return text if MAC_RE.match(text) and text not in NOT_A_MAC else None


def _add_macs(target, values):
    for value in values:
        mac = _mac(value)
        if mac and mac not in target:
            target.append(sys.intern(mac))


def _text(xname, field, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SmdSourceError("SMD node '%s' has a %s that is not a string: %.80r" % (xname, field, value))
    # role, subrole and state repeat across the site: one string object each instead of one per node
    return sys.intern(value) if type(value) is str else value  # pylint: disable=unidiomatic-typecheck


def _list(value, what):
    """A JSON list from SMD (None: empty); anything else is an error naming what it is."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SmdSourceError("SMD %s is not a list: %.80r" % (what, value))
    return value


def _node(xname, nid, role, subrole, state, macs, endpoint_enabled):
    if not isinstance(xname, str) or not xname:
        raise SmdSourceError("SMD node has no xname (ID): %.80r" % (xname,))
    try:
        nid = int(nid or 0)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SmdSourceError("SMD node '%s' has a NID that is not a number: %.80r" % (xname, nid)) from exc
    result = []
    _add_macs(result, [macs] if isinstance(macs, str) else _list(macs, "MAC list of node '%s'" % xname))
    if type(xname) is str:  # pylint: disable=unidiomatic-typecheck
        xname = sys.intern(xname)   # shared with the endpoint-access names and database rows that carry it
    return {"xname": xname, "nid": nid, "macs": result, "role": _text(xname, "role", role),
            "subrole": _text(xname, "subrole", subrole), "state": _text(xname, "state", state),
            "endpoint_enabled": bool(endpoint_enabled)}


def _by_id(entries, field):
    """Objects of a list keyed by their string ``field`` (others are not SMD objects of this kind)."""
    keyed = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get(field), str):
            keyed.setdefault(entry[field], []).append(entry)
    return keyed


def nodes_from_hsm(components, endpoints, interfaces):
    """Build nodes from HSM v2 ``State/Components``, ``Inventory/ComponentEndpoints`` and ``EthernetInterfaces``."""
    by_endpoint = {key: found[-1] for key, found in _by_id(_list(endpoints, "ComponentEndpoints"), "ID").items()}
    by_component = _by_id(_list(interfaces, "EthernetInterfaces"), "ComponentID")
    nodes = []
    for comp in _list(components, "Components"):
        if not isinstance(comp, dict) or comp.get("Type", "Node") != "Node":
            continue
        xname = comp.get("ID")
        endpoint = by_endpoint.get(xname) if isinstance(xname, str) else None
        macs = []
        if endpoint:
            macs.append(endpoint.get("MACAddr"))
            system = endpoint.get("RedfishSystemInfo") or {}
            nic_info = (system.get("EthernetNICInfo") if isinstance(system, dict) else None) or []
            macs.extend(nic.get("MACAddress") for nic in _list(nic_info, "EthernetNICInfo of '%s'" % xname) if isinstance(nic, dict))
        macs.extend(iface.get("MACAddress") for iface in (by_component.get(xname, []) if isinstance(xname, str) else []))
        enabled = endpoint is not None and endpoint.get("Enabled", True) is not False
        nodes.append(_node(xname, comp.get("NID"), comp.get("Role"), comp.get("SubRole"), comp.get("State"), macs, enabled))
    return nodes


def nodes_from_export(data):
    """Nodes from an SMD JSON export in any of the shapes we know (see docs/import-rules.md)."""
    if isinstance(data, dict) and "Components" in data:
        components = data["Components"]
        if isinstance(components, dict):
            components = components.get("Components", [])
        if "ComponentEndpoints" in data or "EthernetInterfaces" in data:
            endpoints = data.get("ComponentEndpoints") or []
            if isinstance(endpoints, dict):
                endpoints = endpoints.get("ComponentEndpoints", [])
            return nodes_from_hsm(components, endpoints, data.get("EthernetInterfaces") or [])
        # BSS's own SMD cache file (HSM_URL=file://...): components carry MAC and EndpointEnabled
        return [_node(c.get("ID"), c.get("NID"), c.get("Role"), c.get("SubRole"), c.get("State"),
                      c.get("MAC") or [], c.get("EndpointEnabled", False)) for c in _list(components, "Components") if isinstance(c, dict)]
    if isinstance(data, list):
        return [_list_entry(entry) for entry in data]
    raise SmdSourceError("unrecognised SMD export: expected a node list or an object with 'Components'")


def _list_entry(entry):
    """One node of the node-list export shape."""
    if not isinstance(entry, dict):
        raise SmdSourceError("SMD export entry is not an object: %.80r" % (entry,))
    macs = entry.get("macs") or ([entry["mac"]] if entry.get("mac") else [])
    enabled = entry.get("endpoint", True) and entry.get("endpoint_enabled", True)
    return _node(entry.get("xname"), entry.get("nid"), entry.get("role"), entry.get("subrole"),
                 entry.get("state", "Ready"), macs, enabled)


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _stream_list(text):
    """Nodes of a node-list export (``[{...}, ...]``) decoded one entry at a time, or None for any other shape.

    Only one entry's JSON objects exist at a time (at 100,000 nodes the whole decoded list is about 80 MB
    next to the nodes built from it). Raises ValueError for text that is not a well-formed JSON list.
    """
    decoder = json.JSONDecoder()
    index = _JSON_SPACE.match(text).end()
    if text[index:index + 1] != "[":
        return None
    nodes = []
    index = _JSON_SPACE.match(text, index + 1).end()
    if text[index:index + 1] == "]":
        index += 1
    else:
        while True:
            entry, index = decoder.raw_decode(text, index)
            nodes.append(_list_entry(entry))
            del entry
            index = _JSON_SPACE.match(text, index).end()
            separator = text[index:index + 1]
            index = _JSON_SPACE.match(text, index + 1).end()
            if separator == "]":
                break
            if separator != ",":
                raise ValueError("not a JSON list")
    if _JSON_SPACE.match(text, index).end() != len(text):
        raise ValueError("text after the JSON list")
    return nodes


def read_export(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, ValueError) as exc:
        raise SmdSourceError("Failed to read SMD export '%s': %s" % (path, exc)) from exc
    try:
        nodes = _stream_list(text)
    except (ValueError, SmdSourceError):
        nodes = None   # decoded whole below: the same error, in the same order, as a plain json.loads
    if nodes is not None:
        return nodes
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SmdSourceError("Failed to read SMD export '%s': %s" % (path, exc)) from exc
    del text
    return nodes_from_export(data)


class SmdClient:
    """A minimal HSM v2 reader with a timeout on every call and optional bearer token."""

    def __init__(self, url, token=None, timeout=30, validate_certs=True):
        if not HAS_REQUESTS:
            raise SmdSourceError("the Python library 'requests' is required to read a live SMD")
        self.base = url.rstrip("/")
        if not self.base.endswith("/hsm/v2"):
            self.base += "/hsm/v2"
        self.timeout = timeout
        self.verify = validate_certs
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token

    def _get(self, path):
        url = self.base + path
        try:
            response = requests.get(url, headers=self.headers, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise SmdSourceError("Failed to read SMD at %s: %s" % (url, exc)) from exc
        if response.status_code != 200:
            raise SmdSourceError("Failed to read SMD at %s: HTTP %s %s" % (url, response.status_code, response.text[:200]))
        try:
            return response.json()
        except ValueError as exc:
            raise SmdSourceError("SMD at %s did not answer JSON: %s" % (url, exc)) from exc

    def nodes(self):
        components = self._get("/State/Components?type=Node").get("Components") or []
        endpoints = self._get("/Inventory/ComponentEndpoints?type=Node").get("ComponentEndpoints") or []
        interfaces = self._get("/Inventory/EthernetInterfaces?type=Node") or []
        return nodes_from_hsm(components, endpoints, interfaces)
