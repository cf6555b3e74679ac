#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: import_boot_service
short_description: Import BSS boot parameters into OpenCHAMI's boot-service, faithfully
version_added: 0.1.0
description:
  - Reads the boot records of a BSS (etcd, an etcd snapshot, a PostgreSQL-mode database, or a live BSS API) and the
    node inventory of SMD, computes for every MAC, xname and NID of every node the boot configuration the old BSS
    serves it, and writes boot-service Node records and BootConfigurations so that boot-service serves the same
    kernel, initrd and command line.
  - BSS's C(Default) record becomes a catch-all configuration and each role record (C(Compute) ...) a group
    configuration, so nodes added later still fall back as they did; nodes get one Node record per MAC.
  - Everything that cannot be carried over, and every way boot-service serves a script differently (HTML-escaped
    values, C(BOOTIF=) appended, no referral token), is reported as a loss. With O(strict=true) (the default) the
    module fails before writing anything unless every loss is accepted.
  - A record boot-service would refuse (an xname or MAC it rejects, a kernel that is neither an http(s) URL nor an
    absolute path, O(priority) out of range) fails the module before any write, naming the field and the value.
  - Resources are named deterministically (prefix C(bss-)) and compared with boot-service's own list, so unchanged
    input writes nothing and reports C(changed=false).
  - The rules are documented in C(docs/import-rules-boot-service.md) of the collection.
author:
  - hpc_boot.bss contributors (@hpc-boot)
extends_documentation_fragment:
  - hpc_boot.bss.bss_source
  - hpc_boot.bss.postgres
  - hpc_boot.bss.etcd
attributes:
  check_mode:
    support: full
    description: Returns the plan, the counts and the loss report; sends no write to boot-service.
  diff_mode:
    support: full
    description: Resource counts before and after, and the names of the resources that change.
options:
  source:
    description:
      - Where the boot records come from. V(etcd) a live etcd, V(snapshot) an etcd snapshot file restored into a
        throwaway etcd, V(bss_api) a live BSS's C(/boot/v1/bootparameters) (any BSS backend), V(postgres) the tables
        of a PostgreSQL-mode BSS (the C(db_*) options).
    type: str
    choices: [etcd, snapshot, bss_api, postgres]
    default: etcd
  validate_certs:
    description: Verify TLS certificates of SMD, BSS and boot-service.
    type: bool
    default: true
  boot_service_url:
    description: Base URL of boot-service (its resource API, for example C(http://127.0.0.1:8080)).
    type: str
    required: true
  boot_service_token:
    description: Bearer token for boot-service (when it runs with C(enable_auth)).
    type: str
  boot_service_ca_path:
    description: PEM file of the CA that signed boot-service's certificate.
    type: path
  timeout:
    description: Seconds to wait for each boot-service request.
    type: float
    default: 30
  write_workers:
    description: Writes sent to boot-service in parallel (configurations first, then Node records, deletions last).
    type: int
    default: 4
  mode:
    description:
      - V(replace) makes boot-service's Node records and BootConfigurations equal to the conversion (others are deleted).
      - V(merge) writes the conversion and deletes only this import's resources (C(bss-) names) that are no longer
        wanted, and other Node records that claim an xname, MAC or NID of an imported node.
    type: str
    choices: [replace, merge]
    default: replace
  node_params:
    description:
      - Bake what BSS adds to the command line at script time (C(xname=), C(nid=), and C(ds=) with O(datasource_url))
        into one configuration per node, as BSS served it. Role and C(Default) records still become group and
        catch-all configurations, for nodes added later.
      - V(false) shares one configuration per distinct (kernel, initrd, params) and lets the role and catch-all
        configurations serve the nodes that fell back to them; nodes then boot without C(xname=)/C(nid=) (a loss).
    type: bool
    default: true
  datasource_url:
    description:
      - Base URL of the cloud-init datasource the nodes should use after the move; with O(node_params) each node's
        command line gets C(ds=nocloud-net;s=<datasource_url>/) as BSS added it. Unset, no C(ds=) is served (a loss).
    type: str
  priority:
    description: Priority of every imported configuration (boot-service accepts 0 to 100; it only breaks ties).
    type: int
    default: 0
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
              shadowed_record, undecodable_record, unsafe_params, html_escaped, script_time_params, initrd_quirk,
              endpoint_disabled]
  accept_losses:
    description: Record, node or parameter names whose losses are accepted (for example C(Global), C(x3000c0s4b0n0), C(BOOTIF)).
    type: list
    elements: str
    default: []
  loss_report:
    description:
      - Write the complete loss report (every loss, with the etcd revision) to this JSON file, also in check mode.
    type: path
  cloud_init_export:
    description:
      - Write every record's cloud-init data (meta-data, user-data, phone-home) and C(Global) to this JSON file
        (mode 0600), also in check mode. Its entries are exactly the C(cloud_init) and C(global_cloud_init) losses.
    type: path
  since_revision:
    description:
      - Delta sync. Only Node records of nodes whose served configuration depends on an etcd key changed or deleted
        after this revision, and the configuration selectors naming them, are written. Needs O(source=etcd).
    type: int
'''

EXAMPLES = r'''
- name: Import etcd BSS into boot-service, accepting the differences we reviewed
  hpc_boot.bss.import_boot_service:
    etcd_host: etcd.cluster.local
    smd_url: https://smd.cluster.local
    boot_service_url: https://boot.cluster.local:8443
    datasource_url: http://cloud-init.cluster.local:27777/cloud-init
    accept_loss_kinds: [cloud_init, global_cloud_init, script_time_params]
    cloud_init_export: /var/backups/bss/cloud-init.json
    loss_report: /var/backups/bss/boot-service-losses.json

- name: Plan only, from a PostgreSQL-mode BSS
  hpc_boot.bss.import_boot_service:
    source: postgres
    db_host: pg.cluster.local
    db_password: "{{ bss_db_password }}"
    smd_export: /var/backups/bss/smd.json
    boot_service_url: http://127.0.0.1:8080
    strict: false
  check_mode: true

- name: Freeze-and-sync step of the cutover
  hpc_boot.bss.import_boot_service:
    etcd_host: etcd.cluster.local
    smd_url: https://smd.cluster.local
    boot_service_url: https://boot.cluster.local:8443
    since_revision: "{{ snapshot.revision }}"
    mode: merge
    strict: false
'''

RETURN = r'''
revision:
  description: etcd revision the records were read at (0 for O(source=bss_api) and O(source=postgres)).
  returned: always
  type: int
counts:
  description: Conversion counts (records, smd_nodes, node_records, configurations, identities, served_identities, losses).
  returned: always
  type: dict
plan:
  description: Writes planned (and sent unless in check mode or stopped), as counts per operation and kind.
  returned: always
  type: dict
  sample: {create_nodes: 300, create_bootconfigurations: 301}
losses:
  description: Losses, as C(kind), C(name) and C(detail); at most 200 (see O(loss_report) for all).
  returned: always
  type: list
  elements: dict
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
cloud_init_entries:
  description: Number of entries written to O(cloud_init_export) (equal to the cloud_init and global_cloud_init losses).
  returned: when cloud_init_export is set
  type: int
affected_nodes:
  description:
    - With O(since_revision), the number of nodes whose Node records and selectors were re-planned, including SMD nodes
      that have no Node record in boot-service yet.
  returned: when since_revision is set
  type: int
timings:
  description: Seconds spent reading the source, reading SMD, converting, and talking to boot-service.
  returned: always
  type: dict
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hpc_boot.bss.plugins.module_utils import (
    boot_service_client, boot_service_convert, boot_service_sync, bss_convert, bss_source, cloud_init_export,
    etcd_source, pg_connection, pg_rows, smd_source)

MAX_LISTED = 200


def _scope(smd_nodes, affected):
    scope = pg_rows.scope_of(smd_nodes, affected)
    return {"xnames": scope["xnames"], "macs": scope["macs"], "nids": scope["nids"]}


def run_import(module, client):
    params = module.params
    clock = [time.monotonic()]
    timings = {}

    def lap(name):
        now = time.monotonic()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    kvs, revision, changed_keys = bss_source.read_source(module)
    lap("read_source")
    smd_nodes = bss_source.read_smd(module)
    lap("read_smd")
    if not smd_nodes:
        raise bss_source.SourceError("SMD knows no nodes: refusing to import (check smd_url/smd_export)")
    records_kvs, kernels, initrds, _access = bss_convert.split_etcd_keys(kvs)
    del kvs
    conversion = boot_service_convert.convert(records_kvs, kernels, initrds, smd_nodes, node_params=params["node_params"],
                                              datasource_url=params["datasource_url"], priority=params["priority"],
                                              served_by="postgres" if params["source"] == "postgres" else "etcd")
    refused = boot_service_convert.refusals(conversion, params["priority"])
    if refused:
        more = "" if len(refused) <= 20 else " and %d more" % (len(refused) - 20)
        raise boot_service_convert.BootServiceInputError("boot-service would refuse %d value(s), nothing was written: %s%s"
                                                         % (len(refused), "; ".join(refused[:20]), more))
    losses = conversion["losses"]
    result = {"revision": revision, "counts": conversion["counts"], "losses": losses[:MAX_LISTED],
              "losses_truncated": len(losses) > MAX_LISTED, "loss_counts": bss_source.count_kinds(losses), "timings": timings}
    if params["cloud_init_export"]:
        entries = cloud_init_export.collect(records_kvs, smd_nodes)
        cloud_init_export.write(params["cloud_init_export"], entries, revision)
        result["cloud_init_entries"] = len(entries)
        losses = [_exported(loss, params["cloud_init_export"]) for loss in losses]
    if params["loss_report"]:
        bss_source.write_loss_report(params["loss_report"], revision, losses, target="boot-service")
    scope = None
    affected = set()
    if changed_keys is not None:
        records, _decode = bss_convert.resolve_records(records_kvs, kernels, initrds)
        pointers = {name: {rec["kernel_key"], rec["initrd_key"]} for name, rec in records.items()}
        affected = bss_convert.affected_nodes(smd_nodes, changed_keys, pointers)
        scope = _scope(smd_nodes, affected)
        result["affected_nodes"] = len(affected)
    lap("convert")
    unaccepted = bss_convert.unaccepted_losses(losses, params["accept_loss_kinds"], params["accept_losses"])
    result["unaccepted_losses"] = unaccepted[:MAX_LISTED]
    result["unaccepted_loss_counts"] = bss_source.count_kinds(unaccepted)
    current = {kind: client.list(kind) for kind in boot_service_sync.KINDS}
    desired = {"bootconfigurations": conversion["configs"], "nodes": conversion["nodes"]}
    if scope is not None:
        # SMD nodes added since the base import have no Node record yet: BSS served them from the start
        # (role or Default), boot-service cannot until they have one.
        present = {(resource.get("metadata") or {}).get("name") for resource in current["nodes"]}
        missing = {spec["xname"] for name, spec in conversion["nodes"].items() if name not in present}
        if missing:
            added = _scope(smd_nodes, missing)
            scope = {key: scope[key] | added[key] for key in scope}
            result["affected_nodes"] = len(affected | missing)
    plan = boot_service_sync.plan_changes(current, desired, mode=params["mode"], scope=scope)
    result["plan"] = plan["counts"]
    result["changed"] = plan["changed"]
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = boot_service_sync.summarize(current, plan)
    if params["strict"] and unaccepted:
        result["changed"] = False
        lap("boot_service")
        raise bss_source.StrictStop(result, unaccepted)
    if plan["changed"] and not module.check_mode:
        boot_service_sync.apply_plan(client, plan, workers=params["write_workers"])
    lap("boot_service")
    return result


def _exported(loss, path):
    if loss["kind"] in ("cloud_init", "global_cloud_init"):
        return dict(loss, detail="%s; exported to %s" % (loss["detail"], path))
    return loss


def argument_spec():
    spec = dict(
        source=dict(type="str", choices=["etcd", "snapshot", "bss_api", "postgres"], default="etcd"),
        validate_certs=dict(type="bool", default=True),
        boot_service_url=dict(type="str", required=True),
        boot_service_token=dict(type="str", no_log=True),
        boot_service_ca_path=dict(type="path"),
        timeout=dict(type="float", default=30),
        write_workers=dict(type="int", default=4),
        mode=dict(type="str", choices=list(boot_service_sync.MODES), default="replace"),
        node_params=dict(type="bool", default=True),
        datasource_url=dict(type="str"),
        priority=dict(type="int", default=0),
        strict=dict(type="bool", default=True),
        accept_loss_kinds=dict(type="list", elements="str", default=[], choices=list(boot_service_convert.LOSS_KINDS)),
        accept_losses=dict(type="list", elements="str", default=[]),
        loss_report=dict(type="path"),
        cloud_init_export=dict(type="path"),
        since_revision=dict(type="int"),
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
    params = module.params
    if params["source"] == "postgres" and not pg_connection.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg"), exception=pg_connection.PSYCOPG_IMPORT_ERROR)
    if params["source"] in ("etcd", "snapshot") and not etcd_source.HAS_ETCD3:
        module.fail_json(msg=missing_required_lib("etcd3 (python3-etcd3)"), exception=etcd_source.ETCD3_IMPORT_ERROR)
    if not boot_service_client.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=str(boot_service_client.REQUESTS_IMPORT_ERROR))
    if params["since_revision"] is not None and params["source"] != "etcd":
        module.fail_json(msg="since_revision needs source=etcd (got source=%s)" % params["source"])
    if params["write_workers"] < 1:
        module.fail_json(msg="write_workers must be at least 1 (got %d)" % params["write_workers"])
    try:
        client = boot_service_client.BootServiceClient(
            params["boot_service_url"], token=params["boot_service_token"], validate_certs=params["validate_certs"],
            timeout=params["timeout"], ca_path=params["boot_service_ca_path"])
        result = run_import(module, client)
    except bss_source.StrictStop as stop:
        module.fail_json(msg=stop.message(), **stop.result)
    except boot_service_client.BootServiceError as exc:
        module.fail_json(msg="Failed to import into boot-service: %s" % exc, exception=traceback.format_exc())
    except (bss_source.SourceError, bss_convert.ConversionError, boot_service_convert.BootServiceInputError,
            cloud_init_export.CloudInitExportError, etcd_source.EtcdSourceError, smd_source.SmdSourceError,
            pg_connection.DatabaseError, pg_rows.RowStoreError) as exc:
        module.fail_json(msg="Failed to import boot parameters into boot-service: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
