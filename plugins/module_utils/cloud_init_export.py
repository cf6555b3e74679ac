# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud-init data etcd-mode BSS holds (per-record meta-data, user-data, phone-home, and Global), exported.

boot-service has no cloud-init; on an OpenCHAMI 0.2 site it belongs in the cloud-init service. The
export holds exactly the records the loss report counts as ``cloud_init`` and ``global_cloud_init``
(the same predicate as ``bss_convert``), so nothing is dropped silently. Format (version 1)::

    {"format": "hpc_boot.bss/cloud-init-export/1", "revision": <etcd revision>, "destination": "...",
     "entries": {"<record name>": {"meta-data": {..}, "user-data": {..}, "phone-home": {..},
                                   "nodes": ["<xname>", ...]},
                 "Global": {...}}}

``nodes`` lists the SMD nodes BSS served that record to (empty for Global and for records no lookup
reaches). The file holds user-data, which may carry secrets: it is written with mode 0600.
"""

from __future__ import annotations

import json
import os

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert

FORMAT = "hpc_boot.bss/cloud-init-export/1"
DESTINATION = ("OpenCHAMI 0.2 has no cloud-init in boot-service: load each entry into the cloud-init service"
               " (per-node meta-data/user-data as the node's instance data, Global as the cluster-wide default"
               " configuration), and point the nodes' ds=nocloud-net;s=<url>/ at it (import option datasource_url)")


class CloudInitExportError(RuntimeError):
    """The export file could not be written."""


def _fields(cloud_init):
    cloud_init = cloud_init if isinstance(cloud_init, dict) else {}
    return {"meta-data": cloud_init.get("meta-data") or {}, "user-data": cloud_init.get("user-data") or {},
            "phone-home": cloud_init.get("phone-home") or {}}


def collect(params, smd_nodes=None, records=None):
    """``{record name: entry}`` for every record the loss report counts as cloud_init or global_cloud_init (pure)."""
    if records is None:
        records, _losses = bss_convert.resolve_records(params, {}, {})
    served = {}
    for node in smd_nodes or []:
        for name in set(bss_convert.node_lookups(node, records).values()):
            if name is not None:
                served.setdefault(name, set()).add(node["xname"])
    entries = {}
    for name in sorted(records):
        if name != bss_convert.TAG_GLOBAL and not records[name]["cloud_init"]:
            continue
        entry = _fields(json.loads(params[name]).get("cloud-init"))
        entry["nodes"] = sorted(served.get(name, ())) if name != bss_convert.TAG_GLOBAL else []
        entries[name] = entry
    return entries


def write(path, entries, revision):
    """Write the export atomically with mode 0600."""
    tmp = path + ".part"
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"format": FORMAT, "revision": revision, "destination": DESTINATION, "entries": entries},
                      handle, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except OSError as exc:
        raise CloudInitExportError("Failed to write the cloud-init export '%s': %s" % (path, exc)) from exc
