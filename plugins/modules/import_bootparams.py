#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: import_bootparams
short_description: Import etcd-mode BSS boot parameters into PostgreSQL-mode BSS rows, faithfully
version_added: 0.1.0
description:
  - Reads the boot records of an etcd-mode (or in-memory) BSS and the node inventory of SMD, computes
    for every node SMD knows the boot configuration the old BSS serves it, and writes PostgreSQL rows
    (one node row per MAC carrying MAC, xname and NID) so that a postgres-mode BSS serves the same
    boot script by MAC, xname and NID.
  - Everything that cannot be carried over is reported as a loss. With O(strict=true) (the default) the
    module fails before writing anything unless every loss is accepted by kind or by name.
  - A record whose params, kernel, initrd or image params would change the structure of the iPXE script (an
    operator such as C(||), C(&&) or C(;), a C(#) comment, a newline) is carried over as etcd served it and
    reported as the loss V(unsafe_params), naming the record, the field and the value.
  - Writes happen in one transaction; a failure leaves the database as it was. Unchanged input writes
    nothing and reports C(changed=false).
  - The conversion rules are documented in C(docs/import-rules.md) of the collection.
author:
  - hpc_boot.bss contributors (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_source
  - hpc_boot.bss.postgres
  - hpc_boot.bss.etcd
attributes:
  check_mode:
    support: full
    description: Returns the whole plan with counts and the loss report; writes nothing.
  diff_mode:
    support: full
    description: Row counts before and after, and the node identities that change.
options:
  source:
    description:
      - Where the boot records come from.
      - V(etcd) reads a live etcd (O(etcd_host), O(etcd_port)).
      - V(snapshot) restores O(snapshot_path) into a throwaway etcd on a loopback port, reads it and stops it;
        no live etcd is needed. A sidecar C(<snapshot_path>.json) written by M(hpc_boot.bss.etcd_snapshot) is
        checked (sha256) when present.
      - V(bss_api) reads a live BSS's C(/boot/v1/bootparameters) and C(/boot/v1/endpoint-history), for sites
        whose BSS runs on its in-memory store.
    type: str
    choices: [etcd, snapshot, bss_api]
    default: etcd
  validate_certs:
    description: Verify TLS certificates of SMD and BSS.
    type: bool
    default: true
  mode:
    description:
      - V(replace) makes the BSS tables equal to the conversion (rows of other nodes and orphaned groups are removed).
      - V(merge) writes the converted nodes and keeps other rows, except rows that share a MAC, xname or NID with a converted node.
    type: str
    choices: [replace, merge]
    default: replace
  strict:
    description: Fail before writing anything when a loss is not accepted.
    type: bool
    default: true
  accept_loss_kinds:
    description: Loss kinds accepted as a whole.
    type: list
    elements: str
    default: []
    choices: [cloud_init, global_cloud_init, unknown_mac_record, unknown_nid_record, unknown_xname_record,
              node_without_mac, tag_record, image_params_merged, kernel_missing, divergent_identities,
              shadowed_record, undecodable_record, unsafe_params]
  accept_losses:
    description: Record or node names whose losses are accepted (for example C(Global), C(nid100), C(x3000c0s4b0n0)).
    type: list
    elements: str
    default: []
  loss_report:
    description:
      - Write the complete loss report (every loss, with the etcd revision) to this JSON file.
        The module result lists at most 200 losses; RV(loss_counts) counts all of them.
      - The report is written in check mode too (it is a report, not managed state).
    type: path
  since_revision:
    description:
      - Delta sync. Only nodes whose served configuration depends on an etcd key changed or deleted after this
        revision (the one M(hpc_boot.bss.etcd_snapshot) recorded) are written, and new endpoint history is added.
      - Needs O(source=etcd) and an etcd that has not compacted that revision.
    type: int
'''

EXAMPLES = r'''
- name: Import etcd into PostgreSQL, accepting the losses we know about
  hpc_boot.bss.import_bootparams:
    etcd_host: etcd.cluster.local
    smd_url: https://smd.cluster.local
    db_host: pg.cluster.local
    db_password: "{{ bss_db_password }}"
    accept_loss_kinds: [cloud_init, tag_record]
    accept_losses: [Global]

- name: Plan only, from a snapshot file, against an SMD export
  hpc_boot.bss.import_bootparams:
    source: snapshot
    snapshot_path: /var/backups/bss/etcd-2026-01-01.db
    smd_export: /var/backups/bss/smd.json
    db_password: "{{ bss_db_password }}"
    strict: false
  check_mode: true

- name: Freeze-and-sync step of the cutover
  hpc_boot.bss.import_bootparams:
    etcd_host: etcd.cluster.local
    smd_url: https://smd.cluster.local
    db_password: "{{ bss_db_password }}"
    since_revision: "{{ snapshot.revision }}"
    mode: merge
    strict: false
'''

RETURN = r'''
revision:
  description: etcd revision the records were read at (0 for O(source=bss_api)).
  returned: always
  type: int
counts:
  description: Conversion counts (records, smd_nodes, nodes, configs, endpoint_access, losses).
  returned: always
  type: dict
plan:
  description: Row operations planned (and applied unless in check mode), as counts per operation.
  returned: always
  type: dict
  sample: {insert_nodes: 300, insert_configs: 7, delete_nodes: 0}
losses:
  description: Losses, as C(kind), C(name) and C(detail); at most 200 (see O(loss_report) for all).
  returned: always
  type: list
  elements: dict
  sample: [{kind: cloud_init, name: x3000c0s4b0n0, detail: cloud-init meta-data/user-data/phone-home dropped}]
losses_truncated:
  description: Whether RV(losses) was cut at 200 entries.
  returned: always
  type: bool
loss_counts:
  description: Number of losses per kind.
  returned: always
  type: dict
unaccepted_losses:
  description: Losses neither accepted by kind nor by name (at most 200).
  returned: always
  type: list
  elements: dict
unaccepted_loss_counts:
  description: Number of unaccepted losses per kind.
  returned: always
  type: dict
timings:
  description: Seconds spent reading the source, reading SMD, converting, and in the database (plan and write).
  returned: always
  type: dict
  sample: {read_source: 0.8, read_smd: 0.1, convert: 0.9, database: 1.2}
affected_nodes:
  description: With O(since_revision), the number of nodes whose rows were re-planned.
  returned: when since_revision is set
  type: int
affected_xnames:
  description:
    - With O(since_revision), the xnames of those nodes, sorted; every one depends on an etcd key changed or deleted
      after that revision. The cutover checks exactly these nodes' lookups again during its write freeze.
  returned: when since_revision is set
  type: list
  elements: str
  sample: [x3000c0s1b0n0, x3000c0s2b0n0]
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, bss_source, etcd_source, pg_connection, pg_rows, smd_source


MAX_LISTED_LOSSES = 200


# The source readers are shared with import_boot_service (module_utils/bss_source.py).
BootImportError = bss_source.SourceError


def run_import(module):
    params = module.params
    clock = [time.monotonic()]
    timings = {}

    def lap(name):
        now = time.monotonic()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    space = bss_convert.KeySpace()   # etcd keys are sorted by kind as they are read (no flat copy)
    kvs, revision, changed_keys = bss_source.read_source(module, sink=space.add)
    lap("read_source")
    smd_nodes = bss_source.read_smd(module)
    lap("read_smd")
    if not smd_nodes:
        raise BootImportError("SMD knows no nodes: refusing to import (check smd_url/smd_export)")
    # Hold the key space once: sorted as read (or split while emptying the flat copy), each raw record dropped once decoded.
    params_kvs, kernels, initrds, access = space.split() if kvs is None else bss_convert.split_etcd_keys(kvs, consume=True)
    del kvs, space
    pointers = None
    if changed_keys is not None:
        records, _losses = bss_convert.resolve_records(params_kvs, kernels, initrds)
        pointers = {name: {rec["kernel_key"], rec["initrd_key"]} for name, rec in records.items()}
        del records
    conversion = bss_convert.convert(params_kvs, kernels, initrds, access, smd_nodes=smd_nodes, consume=True)
    del params_kvs, kernels, initrds, access
    lap("convert")
    scope = None
    losses = conversion["losses"]
    result = {"revision": revision, "counts": conversion["counts"], "losses": losses[:MAX_LISTED_LOSSES],
              "losses_truncated": len(losses) > MAX_LISTED_LOSSES, "loss_counts": bss_source.count_kinds(losses), "timings": timings}
    if params["loss_report"]:
        bss_source.write_loss_report(params["loss_report"], revision, losses)
    if changed_keys is not None:
        affected = bss_convert.affected_nodes(smd_nodes, changed_keys, pointers)
        scope = pg_rows.scope_of(smd_nodes, affected)
        result["affected_nodes"] = len(affected)
        result["affected_xnames"] = sorted(affected)
    del smd_nodes   # the rows carry what the database phase needs; freed before it reads the current rows
    unaccepted = bss_convert.unaccepted_losses(losses, params["accept_loss_kinds"], params["accept_losses"])
    result["unaccepted_losses"] = unaccepted[:MAX_LISTED_LOSSES]
    result["unaccepted_loss_counts"] = bss_source.count_kinds(unaccepted)
    conn = pg_connection.connect(params)
    try:
        strict_stop = params["strict"] and bool(unaccepted)
        current, plan = pg_rows.sync_rows(conn, conversion, mode=params["mode"], scope=scope,
                                          check_mode=module.check_mode or strict_stop, source=params["source"], revision=revision)
    finally:
        conn.close()
    lap("database")
    result["plan"] = plan["counts"]
    result["changed"] = plan["changed"]
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = pg_rows.summarize(current, plan)
    if strict_stop:
        result["changed"] = False
        raise bss_source.StrictStop(result, unaccepted)
    return result


def argument_spec():
    spec = dict(
        source=dict(type="str", choices=["etcd", "snapshot", "bss_api"], default="etcd"),
        validate_certs=dict(type="bool", default=True),
        mode=dict(type="str", choices=list(pg_rows.MODES), default="replace"),
        strict=dict(type="bool", default=True),
        accept_loss_kinds=dict(type="list", elements="str", default=[], choices=list(bss_convert.LOSS_KINDS)),
        accept_losses=dict(type="list", elements="str", default=[]),
        since_revision=dict(type="int"),
        loss_report=dict(type="path"),
    )
    spec.update(bss_source.source_argument_spec())
    spec.update(pg_connection.postgres_argument_spec())
    spec.update(etcd_source.etcd_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("smd_url", "smd_export")],
        mutually_exclusive=[("smd_url", "smd_export")],
        required_if=[("source", "snapshot", ["snapshot_path"]), ("source", "bss_api", ["bss_url"])],
        supports_check_mode=True,
    )
    if not pg_connection.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=pg_connection.PSYCOPG_IMPORT_ERROR)
    if module.params["source"] != "bss_api" and not etcd_source.HAS_ETCD3:
        module.fail_json(msg=missing_required_lib("etcd3 (python3-etcd3)"), exception=etcd_source.ETCD3_IMPORT_ERROR)
    if module.params["since_revision"] is not None and module.params["source"] != "etcd":
        module.fail_json(msg="since_revision needs source=etcd (got source=%s)" % module.params["source"])
    try:
        result = run_import(module)
    except bss_source.StrictStop as stop:
        module.fail_json(msg=stop.message(), **stop.result)
    except (BootImportError, bss_convert.ConversionError, etcd_source.EtcdSourceError, smd_source.SmdSourceError,
            pg_connection.DatabaseError, pg_rows.RowStoreError) as exc:
        module.fail_json(msg="Failed to import boot parameters: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
