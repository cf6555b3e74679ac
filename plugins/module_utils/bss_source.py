# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an import reads BSS's boot records and SMD's nodes from, shared by the import modules.

Every source gives the etcd key space as a flat ``{key: value}`` dict (``/params/``, ``/kernel/``,
``/initrd/``, ``/endpoint-access/``), so the pure conversions (``bss_convert``, ``boot_service_convert``)
never see where the records came from:

- ``etcd``: a live etcd, every prefix at one revision (delta sync: the keys changed since a revision);
- ``snapshot``: an etcd snapshot restored into a throwaway etcd (its sidecar sha256 checked);
- ``bss_api``: a live BSS's ``GET /boot/v1/bootparameters`` and ``/boot/v1/endpoint-history``;
- ``postgres``: a PostgreSQL-mode BSS database, its node rows turned into the records that serve
  each identifier (import into boot-service only).
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import fetch_url

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_client, bss_convert, etcd_source, pg_connection, pg_rows, smd_source


class SourceError(RuntimeError):
    """The records or the nodes cannot be read; nothing was written."""


def read_bss_api(module):
    params = module.params
    base = params["bss_url"].rstrip("/")
    headers = {"Accept": "application/json"}
    if params["bss_token"]:
        headers["Authorization"] = "Bearer " + params["bss_token"]
    bodies = []
    for path in ("/boot/v1/bootparameters", "/boot/v1/endpoint-history"):
        response, info = fetch_url(module, base + path, headers=headers, timeout=60)
        if info["status"] in (401, 403):
            detail = to_text(info.get("body") or info.get("msg", "")).strip()[:200]
            raise SourceError(bss_client.auth_refusal(base, "GET", path, info["status"], detail,
                                                      bool(params["bss_token"])))
        if info["status"] != 200:
            raise SourceError("Failed to read BSS %s: HTTP %s %s" % (base + path, info["status"], info.get("msg", "")))
        try:
            bodies.append(json.loads(response.read() or b"null"))
        except ValueError as exc:
            raise SourceError("BSS %s did not answer JSON: %s" % (base + path, exc)) from exc
    return bss_convert.kvs_from_bss_api(bodies[0], bodies[1])


def check_sidecar(path):
    sidecar = path + ".json"
    if not os.path.exists(sidecar):
        return
    with open(sidecar, encoding="utf-8") as handle:
        expected = json.load(handle).get("sha256")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if expected and digest.hexdigest() != expected:
        raise SourceError("etcd snapshot '%s' does not match its sidecar: sha256 %s, expected %s" % (path, digest.hexdigest(), expected))


def kvs_from_pg_rows(current):
    """The etcd key space that serves what a PostgreSQL-mode BSS serves (pure).

    postgres mode answers ``?mac=``, ``?name=`` and ``?nid=`` from the node row carrying that identifier
    (bss-spec 5.1 step 3). Each identifier of a row becomes the record of that identifier:
    ``/params/<xname>``, ``/params/<mac>``, ``/params/nid<N>``, pointing at image records of the row's
    kernel and initrd. A row without a boot group serves nothing and gives no record. When two rows
    carry the same identifier with different configurations, the first by row id wins, as BSS's query
    would return one of them.
    """
    triples = {}
    for group_id, node_id in sorted(current["assignments"]):
        group = current["groups"].get(group_id)
        config = current["configs"].get(group[0]) if group else None
        if config is not None:
            triples.setdefault(node_id, config)
    kvs = {}
    for node_id in sorted(current["nodes"]):
        mac, xname, nid = current["nodes"][node_id]
        triple = triples.get(node_id)
        if triple is None:
            continue
        kernel, initrd, cmdline = triple
        record = {"params": cmdline}
        for prefix, path in (("/kernel/", kernel), ("/initrd/", initrd)):
            if path:
                key = prefix + bss_convert.bss_image_hash(path)
                record[prefix.strip("/")] = key
                kvs.setdefault(key, json.dumps({"path": path}))
        for name in (xname, mac.lower() if mac else "", "nid%d" % nid if nid else ""):
            if name:
                kvs.setdefault("/params/" + name, json.dumps(record))
    for name, endpoint, epoch in current["endpoint_access"]:
        kvs["/endpoint-access/%s/%s" % (name, endpoint)] = str(epoch)
    return kvs


def read_postgres(params):
    conn = pg_connection.connect(params)
    try:
        current = pg_rows.read_rows(conn)
    finally:
        conn.close()
    return kvs_from_pg_rows(current)


def read_source(module, sink=None):
    """``(kvs, revision, changed_keys or None)`` from the selected source.

    With ``sink`` (``sink(key, value)``, e.g. ``bss_convert.KeySpace().add``) an etcd or snapshot source
    without delta sync hands every key to it as it is read and ``kvs`` is None: the flat key space is
    never built. Other sources return ``kvs`` as usual.
    """
    params = module.params
    if params["source"] == "bss_api":
        return read_bss_api(module), 0, None
    if params["source"] == "postgres":
        return read_postgres(params), 0, None
    if params["source"] == "snapshot":
        check_sidecar(params["snapshot_path"])
        with etcd_source.ThrowawayEtcd(params["snapshot_path"]) as throwaway:
            client = etcd_source.connect(throwaway.connection_params())
            try:
                kvs, revision, _mods = etcd_source.read_bss_keys(client, with_mod_revisions=False, sink=sink)
            finally:
                client.close()
        return kvs, revision, None
    client = etcd_source.connect(params)
    try:
        delta = params.get("since_revision") is not None
        kvs, revision, mods = etcd_source.read_bss_keys(client, with_mod_revisions=delta, sink=None if delta else sink)
        changed = None
        if delta:
            if params["since_revision"] > revision:
                raise SourceError("since_revision %s is newer than etcd's current revision %s" % (params["since_revision"], revision))
            changed = etcd_source.changed_keys_since(client, params["since_revision"], kvs, mods)
    finally:
        client.close()
    return kvs, revision, changed


def source_argument_spec():
    """The options of doc fragment ``hpc_boot.bss.bss_source``: snapshot file, BSS API and SMD."""
    return dict(
        snapshot_path=dict(type="path"),
        bss_url=dict(type="str"),
        bss_token=dict(type="str", no_log=True),
        smd_url=dict(type="str"),
        smd_token=dict(type="str", no_log=True),
        smd_export=dict(type="path"),
    )


def read_smd(module):
    params = module.params
    if params["smd_export"]:
        return smd_source.read_export(params["smd_export"])
    return smd_source.SmdClient(params["smd_url"], params["smd_token"], validate_certs=params["validate_certs"]).nodes()


class StrictStop(Exception):
    """Strict mode: losses not accepted; nothing was written. ``result`` is the module result so far."""

    def __init__(self, result, unaccepted):
        super().__init__("strict mode")
        self.result = result
        self.unaccepted = unaccepted

    def message(self):
        names = ", ".join("%s:%s" % (loss["kind"], loss["name"]) for loss in self.unaccepted[:20])
        more = "" if len(self.unaccepted) <= 20 else " and %d more" % (len(self.unaccepted) - 20)
        return ("Strict import stopped before writing anything: %d loss(es) not accepted: %s%s. "
                "Accept them with accept_loss_kinds or accept_losses." % (len(self.unaccepted), names, more))


def count_kinds(losses):
    """Losses per kind."""
    counts = {}
    for loss in losses:
        counts[loss["kind"]] = counts.get(loss["kind"], 0) + 1
    return counts


def write_loss_report(path, revision, losses, target=None):
    """The complete loss report as JSON, written to a temporary file and renamed into place."""
    report = {"revision": revision}
    if target:
        report["target"] = target
    report.update({"loss_counts": count_kinds(losses), "losses": losses})
    tmp = path + ".part"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        os.rename(tmp, path)
    except OSError as exc:
        raise SourceError("Failed to write the loss report '%s': %s" % (path, exc)) from exc
