"""The proof of issue 4: a synthetic cluster in etcd, imported, served by a postgres-mode BSS with equal boot scripts.

etcd is filled through the BSS double in etcd mode (API requests) plus raw writes for the shapes its API
cannot produce (legacy tokens, raw MAC/NID records). After the import a second BSS runs in postgres
mode on the result, and every node's boot script is compared by each MAC, by xname and by NID.
Volatile parts (bss-spec 4.11, 5.2, 5.3): the referral token, each instance's advertise address, ts=.
"""

import json
import re
import urllib.request

import etcd3
import psycopg
import pytest

from hpclab import cluster, procs, smd
from hpclab.bss import launch

from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, bss_schema
from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams

from test_import_golden import db_args, run_module, table_rows

NODE_COUNT = 300


def http(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def normalise(script, service):
    script = script.replace(service.extra["advertise_address"], "<advertise>")
    script = re.sub(r" bss_referral_token=\S+", "", script)
    return re.sub(r"ts=\d+", "ts=<ts>", script)


def identities(node):
    yield "mac=" + node["macs"][0].lower()
    for mac in node["macs"][1:]:
        yield "mac=" + mac.lower()
    yield "name=" + node["xname"]
    yield "nid=%d" % node["nid"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, postgres_server, bss_impl):
    """Per BSS implementation (the double, then upstream): a private etcd (tests of other modules may empty the
    session one between these tests), SMD and etcd-mode BSS."""
    workdir = tmp_path_factory.mktemp("parity")
    etcd_server = procs.start_etcd()
    nodes = cluster.generate_nodes(NODE_COUNT, seed=4, no_endpoint_fraction=0.01)
    nodes_path = workdir / "nodes.json"
    nodes_path.write_text(json.dumps(nodes))
    smd_service = smd.start_smd(str(nodes_path))
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.delete_prefix("/")
    etcd_bss = launch.start_bss("bss-etcd-parity", "etcd", smd_service.url, etcd=etcd_server,
                                impl=bss_impl)
    services = [etcd_server, smd_service, etcd_bss]
    try:
        for method, body in cluster.api_payloads(nodes, seed=4):
            status, text = http(etcd_bss.url + "/boot/v1/bootparameters", method, body)
            assert status in (200, 201), (method, body, status, text)
        cluster.load_etcd(client, cluster.etcd_records(nodes, seed=4, include_api_shapes=False))
        yield {"nodes": nodes, "nodes_path": str(nodes_path), "smd": smd_service, "etcd_bss": etcd_bss,
               "etcd": etcd_server, "postgres": postgres_server, "services": services, "impl": bss_impl}
    finally:
        client.close()
        for service in reversed(services):
            service.stop()


def fresh_db(postgres_server, name):
    procs.psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    procs.psql(postgres_server, f"CREATE DATABASE {name} OWNER {postgres_server.extra['user']}")
    conninfo = procs.postgres_conninfo(postgres_server, dbname=name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    return conninfo


def accept_all():
    return {"accept_loss_kinds": list(bss_convert.LOSS_KINDS)}


def test_every_node_boots_the_same_script_by_mac_xname_and_nid(lab):
    conninfo = fresh_db(lab["postgres"], "parity_proof")
    args = dict(db_args(conninfo), etcd_host="127.0.0.1", etcd_port=lab["etcd"].port, smd_url=lab["smd"].url, **accept_all())
    result = run_module(import_bootparams, args)
    assert result["changed"] is True, result.get("msg")
    kinds = {loss["kind"] for loss in result["losses"]}
    assert {"cloud_init", "global_cloud_init", "tag_record", "unknown_mac_record", "unknown_nid_record",
            "image_params_merged", "divergent_identities"} <= kinds
    again = run_module(import_bootparams, args)
    assert again["changed"] is False and not any(again["plan"].values())
    pg_service = procs.Service.from_dict(dict(lab["postgres"].to_dict(), owns_workdir=False,
                                              extra=dict(lab["postgres"].extra, dbname="parity_proof")))
    pg_bss = launch.start_bss("bss-pg-parity", "postgres", lab["smd"].url, postgres=pg_service, impl=lab["impl"])
    lab["services"].append(pg_bss)
    compared, kernel_scripts, mismatches = 0, 0, []
    for node in lab["nodes"]:
        for ident in identities(node):
            old_status, old = http(lab["etcd_bss"].url + "/boot/v1/bootscript?" + ident)
            new_status, new = http(pg_bss.url + "/boot/v1/bootscript?" + ident)
            compared += 1
            kernel_scripts += "kernel --name kernel" in old
            if (old_status, normalise(old, lab["etcd_bss"])) != (new_status, normalise(new, pg_bss)):
                mismatches.append((ident, old_status, old, new_status, new))
    assert mismatches == [], "%d of %d differ, first: %r" % (len(mismatches), compared, mismatches[:2])
    assert compared >= NODE_COUNT * 3 and kernel_scripts > NODE_COUNT * 2   # the comparison really covered kernel scripts


def test_one_unaccepted_lossy_record_stops_strict_import_with_nothing_written(lab):
    conninfo = fresh_db(lab["postgres"], "parity_strict")
    base = dict(db_args(conninfo), etcd_host="127.0.0.1", etcd_port=lab["etcd"].port, smd_export=lab["nodes_path"])
    first = run_module(import_bootparams, dict(base, **accept_all()))
    assert first["changed"] is True
    before = table_rows(conninfo)
    losses = first["losses"]
    accepted_kinds = sorted({loss["kind"] for loss in losses} - {"unknown_mac_record"})
    accepted_names = sorted(loss["name"] for loss in losses if loss["kind"] == "unknown_mac_record")
    client = etcd3.client(host="127.0.0.1", port=lab["etcd"].port)
    xname = lab["nodes"][0]["xname"]
    try:
        client.put("/params/" + xname, json.dumps({"params": "changed=1", "kernel": "/kernel/" + cluster.image_hash(
            cluster.IMAGES["rescue"][0]), "cloud-init": {}}))
        client.put("/params/02:00:00:00:ee:01", json.dumps({"params": "lossy=1", "cloud-init": {}}))
        stopped = run_module(import_bootparams, dict(base, accept_loss_kinds=accepted_kinds, accept_losses=accepted_names))
        assert stopped["failed"] and "unknown_mac_record:02:00:00:00:ee:01" in stopped["msg"]
        assert [loss["name"] for loss in stopped["unaccepted_losses"]] == ["02:00:00:00:ee:01"]
        assert stopped["plan"]["reassign_nodes"] >= 1          # the plan was computed ...
        assert table_rows(conninfo) == before                    # ... and nothing was written
        accepted = run_module(import_bootparams, dict(base, accept_loss_kinds=accepted_kinds,
                                                      accept_losses=accepted_names + ["02:00:00:00:ee:01"]))
        assert accepted["changed"] is True
        assert table_rows(conninfo) != before
    finally:
        client.delete("/params/02:00:00:00:ee:01")
        client.close()
