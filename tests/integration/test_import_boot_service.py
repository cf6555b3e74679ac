"""hpc_boot.bss.import_boot_service: etcd BSS (the lab's double, fed like the PostgreSQL parity proof) into the REAL boot-service.

After the import every MAC, xname and NID of every node is asked from both services and what each makes
the node boot (kernel, initrd, command line) is compared with ``boot_service_script.compare_boots``;
the only differences allowed are those the loss report names. Then: a rerun writes nothing, check mode
writes nothing, strict mode stops before writing, bad input fails before writing, delta sync moves
exactly the changed node.
"""

import json
import os
import re
import urllib.request

import etcd3
import pytest
import requests

from hpclab import cluster, procs, smd
from hpclab.bss import launch

from ansible_collections.hpc_boot.bss.plugins.module_utils import boot_service_convert, boot_service_script, etcd_source
from ansible_collections.hpc_boot.bss.plugins.modules import import_boot_service

from test_import_golden import run_module

NODE_COUNT = 60
DATASOURCE = "http://10.99.0.1:27777/cloud-init"


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A private etcd, the SMD double and the etcd-mode BSS double holding every key shape the lab generates."""
    workdir = tmp_path_factory.mktemp("bs-import")
    etcd_server = procs.start_etcd()
    nodes = cluster.generate_nodes(NODE_COUNT, seed=12)
    nodes_path = workdir / "nodes.json"
    nodes_path.write_text(json.dumps(nodes))
    services = [etcd_server]
    try:
        smd_service = smd.start_smd(str(nodes_path))
        services.append(smd_service)
        bss = launch.start_bss("bss-etcd-bs-import", "etcd", smd_service.url, etcd=etcd_server, impl="double")
        services.append(bss)
        client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
        for method, body in cluster.api_payloads(nodes, seed=12):
            response = requests.request(method, bss.url + "/boot/v1/bootparameters", json=body, timeout=30)
            assert response.status_code in (200, 201), (method, body, response.text)
        cluster.load_etcd(client, cluster.etcd_records(nodes, seed=12, include_api_shapes=False))
        add_divergent_and_escaped_records(client, nodes)
        client.close()
        yield {"nodes": nodes, "nodes_path": str(nodes_path), "smd": smd_service, "bss": bss, "etcd": etcd_server,
               "workdir": workdir}
    finally:
        for service in reversed(services):
            service.stop()


def add_divergent_and_escaped_records(client, nodes):
    """Shapes boot-service cannot serve as BSS did: a raw MAC record for a node without an xname record (its MAC
    boots the MAC record, its xname and NID fall back to the role), and params holding '&'."""
    compute = [node for node in nodes if node["role"] == "Compute" and len(node["macs"]) == 1]
    kernel = cluster.IMAGES["rescue"][0]
    client.put("/kernel/" + cluster.image_hash(kernel), cluster.image_value(kernel))
    divergent, escaped = compute[-1], compute[-2]
    client.delete("/params/" + divergent["xname"])
    client.put("/params/" + divergent["macs"][0].lower(),
               cluster.params_value(params="console=ttyS0 rescue=1", kernel=kernel))
    client.put("/params/" + escaped["xname"],
               cluster.params_value(params="console=ttyS0 rd.hint=a&b", kernel=kernel))


def args_for(lab, service, **extra):
    args = {"etcd_host": "127.0.0.1", "etcd_port": lab["etcd"].port, "smd_url": lab["smd"].url,
            "boot_service_url": service.url, "datasource_url": DATASOURCE,
            "accept_loss_kinds": list(boot_service_convert.LOSS_KINDS)}
    args.update(extra)
    return args


def resources(service):
    return {kind: sorted((r["metadata"]["name"], r["metadata"]["uid"], json.dumps(r["spec"], sort_keys=True))
                         for r in requests.get("%s/%s" % (service.url, kind), timeout=30).json() or [])
            for kind in ("nodes", "bootconfigurations")}


def identities(node):
    for mac in node["macs"]:
        yield ("mac", mac.lower()), "mac=" + mac.lower()
    yield ("host", node["xname"]), "name=" + node["xname"]
    yield ("nid", str(node["nid"])), "nid=%d" % node["nid"]


def parity(lab, service):
    """One compare_boots row per identity of every node: BSS's effective boot against boot-service's."""
    rows = []
    for node in lab["nodes"]:
        for (key, value), bss_query in identities(node):
            status, old = http(lab["bss"].url + "/boot/v1/bootscript?" + bss_query)
            first = boot_service_script.effective_boot(old) if status == 200 else None
            _status, new = http("%s/bootscript?%s=%s" % (service.url, key, value))
            row = boot_service_script.compare_boots(bss_query, first, boot_service_script.effective_boot(new), node["macs"])
            row["xname"] = node["xname"]
            rows.append(row)
    return rows


def test_every_identity_boots_what_bss_served_except_what_the_loss_report_names(lab, boot_service):
    result = run_module(import_boot_service, args_for(lab, boot_service, loss_report=str(lab["workdir"] / "losses.json")))
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and result["plan"]["create_nodes"] >= NODE_COUNT
    kinds = set(result["loss_counts"])
    assert {"cloud_init", "global_cloud_init", "unknown_mac_record", "script_time_params"} <= kinds
    assert "tag_record" not in kinds or all(loss["name"] not in ("Default", "Compute") for loss in result["losses"]
                                            if loss["kind"] == "tag_record"), "Default and roles are kept as fallbacks"
    rows = parity(lab, boot_service)
    booted = [row for row in rows if row["same"] and "neither_boots" not in row["normalised"]]
    assert len(booted) > NODE_COUNT * 2, "the comparison must cover real kernel scripts"
    explained = {loss["name"] for loss in result["losses"] if loss["kind"] in ("divergent_identities", "html_escaped")}
    unexplained = [row for row in rows if not row["same"] and row["xname"] not in explained]
    assert unexplained == [], "%d of %d identities differ without a loss naming them: %r" % (
        len(unexplained), len(rows), unexplained[:2])
    assert {loss["kind"] for loss in result["losses"] if loss["name"] in explained} >= {"divergent_identities", "html_escaped"}
    assert 0 < len([row for row in rows if not row["same"]]) <= 6, "exactly the divergent and escaped nodes differ"
    with open(lab["workdir"] / "losses.json", encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["loss_counts"] == result["loss_counts"] and report["target"] == "boot-service"


def test_shared_configurations_keep_role_and_default_fallbacks(lab, boot_service):
    result = run_module(import_boot_service, args_for(lab, boot_service, node_params=False))
    assert result["changed"] is True, result.get("msg")
    configs = {r["metadata"]["name"]: r["spec"] for r in requests.get(boot_service.url + "/bootconfigurations", timeout=30).json()}
    assert len(configs) < NODE_COUNT / 2, "configurations are shared per (kernel, initrd, params)"
    assert "bss-default" in configs and not any(configs["bss-default"].get(key) for key in ("hosts", "macs", "nids", "groups"))
    assert configs["bss-role-Compute"]["groups"] == ["bss-role-Compute"]
    fallback = [node for node in lab["nodes"] if node["role"] == "Compute"
                and not any(node["xname"] in spec.get("hosts", []) for spec in configs.values())
                and not any(mac in spec.get("macs", []) for spec in configs.values() for mac in node["macs"])]
    assert fallback, "some compute node falls back to the role record"
    _status, script = http("%s/bootscript?host=%s" % (boot_service.url, fallback[0]["xname"]))
    assert "# Configuration: bss-role-Compute" in script
    kinds = {(loss["kind"], loss["name"]) for loss in result["losses"]}
    assert ("script_time_params", "xname") in kinds and ("tag_record", "Compute") not in kinds


def test_rerun_and_check_mode_write_nothing(lab, boot_service):
    args = args_for(lab, boot_service)
    planned = run_module(import_boot_service, args, check=True, diff=True)
    assert planned["changed"] is True and planned["diff"]["before"] == {"nodes": 0, "bootconfigurations": 0}
    assert resources(boot_service) == {"nodes": [], "bootconfigurations": []}, "check mode wrote to boot-service"
    first = run_module(import_boot_service, args)
    assert first["changed"] is True and first["plan"] == planned["plan"]
    before = resources(boot_service)
    assert len(before["nodes"]) == planned["diff"]["after"]["nodes"]
    again = run_module(import_boot_service, args, diff=True)
    assert again["changed"] is False and again["plan"] == {}
    assert resources(boot_service) == before, "a rerun must not rewrite (uids and specs unchanged)"
    # a Node record changed behind the import's back is put right in place, nothing else is touched
    node = requests.get(boot_service.url + "/nodes", timeout=30).json()[0]
    spec = dict(node["spec"], role="Changed")
    assert requests.put("%s/nodes/%s" % (boot_service.url, node["metadata"]["uid"]),
                        json={"metadata": {"name": node["metadata"]["name"]}, "spec": spec}, timeout=30).ok
    fixed = run_module(import_boot_service, args)
    assert fixed["plan"] == {"replace_nodes": 1}
    assert resources(boot_service) == before, "the changed Node record is put back in place, keeping its uid"


def test_strict_mode_and_refused_input_stop_before_any_write(lab, boot_service, tmp_path):
    args = args_for(lab, boot_service, accept_loss_kinds=[], cloud_init_export=str(tmp_path / "cloud-init.json"))
    stopped = run_module(import_boot_service, args)
    assert stopped["failed"] and "Strict import stopped before writing anything" in stopped["msg"]
    assert stopped["plan"]["create_nodes"] >= NODE_COUNT                 # the plan was computed ...
    assert resources(boot_service) == {"nodes": [], "bootconfigurations": []}   # ... and nothing was written
    with open(tmp_path / "cloud-init.json", encoding="utf-8") as handle:
        export = json.load(handle)
    counted = stopped["loss_counts"]["cloud_init"] + stopped["loss_counts"]["global_cloud_init"]
    assert len(export["entries"]) == counted == stopped["cloud_init_entries"] and "Global" in export["entries"]
    assert oct(os.stat(tmp_path / "cloud-init.json").st_mode & 0o777) == "0o600"
    refused = run_module(import_boot_service, args_for(lab, boot_service, priority=101))
    assert refused["failed"] and "priority 101 is out of range" in refused["msg"]
    bad_nodes = tmp_path / "bad.json"
    bad_nodes.write_text(json.dumps([{"xname": "x3000c0s1b0", "nid": 1, "role": "Compute", "macs": ["02:00:00:00:00:01"]}]))
    bad_args = args_for(lab, boot_service, smd_export=str(bad_nodes))
    del bad_args["smd_url"]
    bad = run_module(import_boot_service, bad_args)
    assert bad["failed"] and "xname 'x3000c0s1b0' is not an xname boot-service accepts" in bad["msg"]
    assert resources(boot_service) == {"nodes": [], "bootconfigurations": []}


def test_delta_sync_moves_only_the_changed_node(lab, boot_service):
    args = args_for(lab, boot_service, mode="merge")
    assert run_module(import_boot_service, args)["changed"] is True
    client = etcd3.client(host="127.0.0.1", port=lab["etcd"].port)
    head = etcd_source.read_bss_keys(client)[1]
    node = next(n for n in lab["nodes"] if n["role"] == "Compute" and len(n["macs"]) == 1)
    original, _meta = client.get("/params/" + node["xname"])
    kernel = cluster.IMAGES["rescue"][0]
    try:
        # the rescue kernel record exists already (the fixture wrote it): only the node's own record changes
        client.put("/params/" + node["xname"], cluster.params_value(params="delta=1", kernel=kernel))
        before = resources(boot_service)
        # a node whose Node record is missing (as for a node SMD gained during the freeze) is written too
        gone = next(r for r in requests.get(boot_service.url + "/nodes", timeout=30).json()
                    if r["metadata"]["name"] == "bss-" + lab["nodes"][-1]["xname"])
        assert requests.delete("%s/nodes/%s" % (boot_service.url, gone["metadata"]["uid"]), timeout=30).ok
        delta = run_module(import_boot_service, dict(args, since_revision=head))
        assert delta["changed"] is True and delta["affected_nodes"] == 2, delta.get("msg")
        assert delta["plan"] == {"replace_bootconfigurations": 1, "create_nodes": 1}
        after = resources(boot_service)
        changed = set(after["bootconfigurations"]) ^ set(before["bootconfigurations"])
        assert {entry[0] for entry in changed} == {"bss-node-" + node["xname"]}
        assert [(name, spec) for name, _uid, spec in after["nodes"]] == [(name, spec) for name, _uid, spec in before["nodes"]]
        _status, script = http("%s/bootscript?mac=%s" % (boot_service.url, node["macs"][0]))
        assert re.search(r"^set params delta=1 xname=%s nid=%d " % (node["xname"], node["nid"]), script, re.M), script
        assert run_module(import_boot_service, dict(args, since_revision=head))["changed"] is False
    finally:
        if original is None:
            client.delete("/params/" + node["xname"])
        else:
            client.put("/params/" + node["xname"], original)
        client.close()


def test_postgres_source_serves_what_the_postgres_import_wrote(lab, boot_service, bss_database):
    """etcd -> PostgreSQL (import_bootparams) -> boot-service (source=postgres): every identity boots the same."""
    from test_import_golden import db_args
    import psycopg
    from ansible_collections.hpc_boot.bss.plugins.module_utils import bss_convert, bss_schema
    from ansible_collections.hpc_boot.bss.plugins.modules import import_bootparams
    with psycopg.connect(bss_database, autocommit=True) as conn:
        bss_schema.apply_migrations(conn)
    database = db_args(bss_database)
    into_pg = run_module(import_bootparams, dict(database, etcd_host="127.0.0.1", etcd_port=lab["etcd"].port,
                                                 smd_url=lab["smd"].url, accept_loss_kinds=list(bss_convert.LOSS_KINDS)))
    assert into_pg["changed"] is True, into_pg.get("msg")
    args = args_for(lab, boot_service, source="postgres", **database)
    result = run_module(import_boot_service, args)
    assert result["changed"] is True and result["revision"] == 0, result.get("msg")
    rows = parity(lab, boot_service)
    explained = {loss["name"] for loss in result["losses"] if loss["kind"] in ("divergent_identities", "html_escaped")}
    # postgres-mode records are named by identifier (xname, MAC, nid<N>): a loss names the record it is about
    owner = {}
    for node in lab["nodes"]:
        owner.update({mac.lower(): node["xname"] for mac in node["macs"]})
        owner.update({node["xname"]: node["xname"], "nid%d" % node["nid"]: node["xname"]})
    explained = {owner.get(name, name) for name in explained}
    assert [row for row in rows if not row["same"] and row["xname"] not in explained] == []
    assert 0 < len([row for row in rows if not row["same"]]) <= 6
    assert len([row for row in rows if row["same"] and "neither_boots" not in row["normalised"]]) > NODE_COUNT * 2
    assert run_module(import_boot_service, args)["changed"] is False
