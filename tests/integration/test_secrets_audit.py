"""Secrets audit: modules and playbooks run with -vvv and --diff; no secret appears anywhere they write.

Every secret is distinctive and really needed: etcd has authentication enabled, SMD and the BSS double
refuse requests without their bearer token, and the database role has its own password. The play
runs the PostgreSQL, etcd and BSS modules (check, apply, apply again), then the boot_config playbook
and the cutover's first phases (so the state file and the report exist); all output, the state file,
the report and every file left in the work directory are searched for each secret. The boot-service modules
run too, against the real boot-service, with a token (boot-service v0.3.2 does not check it: the point is
that the modules never show it), and the import's cloud-init export and loss report are searched as well.
"""

import json
import os
import subprocess
import uuid

import pytest
import requests
import yaml

from hpclab import cutover_lab, procs
from hpclab.bss.launch import start_bss
from hpclab.smd import start_smd

REPO = cutover_lab.REPO
SECRETS = {name: "S3cr3t-%s-%s" % (name, uuid.uuid4().hex[:10]) for name in ("db", "etcd", "smd", "bss", "boot_service")}
NODES = [("x3000c0s1b0n0", "a4:bf:01:3e:1f:a0", 1), ("x3000c0s1b0n1", "a4:bf:01:3e:1f:a1", 2)]
KERNEL = "http://10.1.0.1/boot/vmlinuz-audit"


@pytest.fixture(scope="module")
def secured(golden_dir, postgres_server):
    """etcd with auth holding the golden records, SMD and a memory BSS behind tokens, a database role."""
    started = []
    role, dbname = "audit_" + uuid.uuid4().hex[:8], "audit_" + uuid.uuid4().hex[:8]
    try:
        etcd = procs.start_etcd(name="etcd-auth")
        started.append(etcd)
        with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
            records = json.load(handle)
        import etcd3  # pylint: disable=import-outside-toplevel
        client = etcd3.client(host="127.0.0.1", port=etcd.port)
        for key, value in records.items():
            client.put(key, value)
        client.close()
        ctl = ["etcdctl", "--endpoints", etcd.url]
        subprocess.run(ctl + ["user", "add", "root", "--new-user-password", SECRETS["etcd"]], check=True, capture_output=True)
        subprocess.run(ctl + ["auth", "enable"], check=True, capture_output=True)
        smd = start_smd(os.path.join(golden_dir, "smd-nodes.json"), token=SECRETS["smd"])
        started.append(smd)
        bss = start_bss("bss-audit", "memory", smd.url, env={"HPCLAB_BSS_TOKEN": SECRETS["bss"], "HPCLAB_SMD_TOKEN": SECRETS["smd"]})
        started.append(bss)
        auth = {"Authorization": "Bearer " + SECRETS["bss"]}
        for xname, mac, _nid in NODES:
            body = {"macs": [mac], "kernel": KERNEL, "initrd": "http://10.1.0.1/boot/initrd", "params": "console=ttyS0 " + xname}
            assert requests.put(bss.url + "/boot/v1/bootparameters", json=body, headers=auth, timeout=10).status_code == 200
        procs.psql(postgres_server, "CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, SECRETS["db"]))
        procs.psql(postgres_server, "CREATE DATABASE %s OWNER %s" % (dbname, role))
        db = {"db_host": "127.0.0.1", "db_port": postgres_server.port, "db_name": dbname, "db_user": role,
              "db_sslmode": "disable"}
        yield {"etcd": etcd, "smd": smd, "bss": bss, "db": db}
    finally:
        for service in reversed(started):
            service.stop()
        procs.psql(postgres_server, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname)
        procs.psql(postgres_server, "DROP ROLE IF EXISTS %s" % role)


def module_play(secured, work, boot_service_url):
    db = dict(secured["db"], db_password=SECRETS["db"])
    etcd = {"etcd_host": "127.0.0.1", "etcd_port": secured["etcd"].port, "etcd_user": "root", "etcd_password": SECRETS["etcd"]}
    bss = {"url": secured["bss"].url, "token": SECRETS["bss"]}
    node = {"macs": [NODES[0][1]], "kernel": KERNEL, "initrd": "http://10.1.0.1/boot/initrd",
            "params": "console=ttyS0 audit.changed=1"}
    imported = dict(db, **etcd)
    imported.update(source="etcd", smd_url=secured["smd"].url, smd_token=SECRETS["smd"], strict=False)
    tasks = [
        {"name": "schema", "hpc_boot.bss.schema": dict(db, state="latest")},
        {"name": "snapshot", "hpc_boot.bss.etcd_snapshot": dict(etcd, path=os.path.join(work, "snap.db"))},
        {"name": "import check", "hpc_boot.bss.import_bootparams": imported, "check_mode": True},
        {"name": "import", "hpc_boot.bss.import_bootparams": imported},
        {"name": "import again", "hpc_boot.bss.import_bootparams": imported, "register": "again"},
        {"name": "bootparams", "hpc_boot.bss.bootparams": dict(bss, declarations=[node])},
        {"name": "bootparams_info", "hpc_boot.bss.bootparams_info": bss},
        {"name": "bootscript_info", "hpc_boot.bss.bootscript_info": dict(bss, macs=[NODES[0][1]])},
        {"name": "service_info", "hpc_boot.bss.service_info": bss},
        {"name": "idempotent import", "ansible.builtin.assert": {"that": ["not again.changed"]}},
    ]
    boot_service = {"url": boot_service_url, "token": SECRETS["boot_service"]}
    configuration = {"name": "audit", "hosts": [NODES[0][0]], "kernel": KERNEL, "params": "console=ttyS0 audit=1"}
    into_boot_service = dict(etcd, source="etcd", smd_url=secured["smd"].url, smd_token=SECRETS["smd"], strict=False,
                             boot_service_url=boot_service_url, boot_service_token=SECRETS["boot_service"],
                             loss_report=os.path.join(work, "boot-service-losses.json"),
                             cloud_init_export=os.path.join(work, "cloud-init.json"))
    tasks += [
        {"name": "boot_configuration check", "hpc_boot.bss.boot_configuration": dict(
            boot_service, boot_configurations=[configuration]), "check_mode": True},
        {"name": "boot_configuration", "hpc_boot.bss.boot_configuration": dict(
            boot_service, boot_configurations=[configuration])},
        {"name": "import_boot_service check", "hpc_boot.bss.import_boot_service": into_boot_service, "check_mode": True},
        {"name": "import_boot_service", "hpc_boot.bss.import_boot_service": dict(into_boot_service, mode="merge")},
    ]
    return [{"name": "modules", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def cutover_vars(secured, work):
    db = secured["db"]
    return {
        "ansible_connection": "local", "ansible_python_interpreter": cutover_lab.sys.executable,
        "cutover_state_dir": os.path.join(work, "state"), "cutover_backup_dir": os.path.join(work, "backup"),
        "cutover_import_source": "bss_api", "cutover_old_bss_url": secured["bss"].url,
        "cutover_new_bss_url": secured["bss"].url, "cutover_bss_token": SECRETS["bss"],
        "cutover_smd_url": secured["smd"].url, "cutover_smd_token": SECRETS["smd"],
        "cutover_etcd_host": "127.0.0.1", "cutover_etcd_port": secured["etcd"].port,
        "cutover_etcd_user": "root", "cutover_etcd_password": SECRETS["etcd"], "cutover_validate_certs": False,
        "cutover_db_host": db["db_host"], "cutover_db_port": db["db_port"], "cutover_db_name": db["db_name"],
        "cutover_db_user": db["db_user"], "cutover_db_password": SECRETS["db"], "cutover_db_sslmode": "disable",
        "cutover_deploy_postgres": False, "cutover_deploy_new_bss": False,
    }


def boot_config_inventory(secured):
    hosts = {xname: {"bss_xname": xname, "bss_macs": [mac], "bss_nid": nid,
                     "bss_boot_config": {"kernel": KERNEL, "initrd": "http://10.1.0.1/boot/initrd",
                                         "params": "console=ttyS0 audit.boot_config=1"}}
             for xname, mac, nid in NODES}
    return {"all": {"children": {"compute": {"hosts": hosts}}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": cutover_lab.sys.executable,
        "boot_config_bss_url": secured["bss"].url, "boot_config_bss_token": SECRETS["bss"],
        "boot_config_smd_url": secured["smd"].url, "boot_config_smd_token": SECRETS["smd"]}}}


def write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def run(work, playbook, inventory, *args):
    result = cutover_lab.run_playbook(playbook, inventory, "-vvv", "--diff", *args,
                                      extra={"ANSIBLE_LOG_PATH": os.path.join(work, "ansible.log")})
    return result.stdout + result.stderr


def test_no_secret_in_output_state_file_report_or_files(secured, boot_service, tmp_path):
    work = str(tmp_path)
    outputs = {}
    local = write_yaml(os.path.join(work, "local.yml"), {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": cutover_lab.sys.executable}}}})
    playbook = write_yaml(os.path.join(work, "modules.yml"), module_play(secured, work, boot_service.url))
    outputs["modules"] = run(work, playbook, local)
    assert "failed=0" in outputs["modules"], outputs["modules"][-4000:]

    inventory = write_yaml(os.path.join(work, "nodes.yml"), boot_config_inventory(secured))
    boot_config = os.path.join(REPO, "playbooks", "boot_config.yml")
    outputs["boot_config check"] = run(work, boot_config, inventory, "--check")
    outputs["boot_config"] = run(work, boot_config, inventory)
    assert "failed=0" in outputs["boot_config"] and "changed=1" in outputs["boot_config"], outputs["boot_config"][-4000:]

    head = write_yaml(os.path.join(work, "head.yml"), {"all": {"children": {"bss_head": {"hosts": {
        "localhost": cutover_vars(secured, work)}}}}})
    cutover = os.path.join(REPO, "playbooks", "cutover.yml")
    outputs["cutover"] = run(work, cutover, head, "--tags", "preflight,backup,postgres,schema,import")
    assert "failed=0" in outputs["cutover"], outputs["cutover"][-4000:]
    state_dir = os.path.join(work, "state")
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    assert [state["phases"][phase]["status"] for phase in ("preflight", "backup", "import")] == ["done"] * 3
    assert os.path.exists(os.path.join(state_dir, "report.md"))

    for name, text in outputs.items():
        for kind, secret in SECRETS.items():
            assert secret not in text, "the %s secret appears in the output of %s" % (kind, name)
    # -vvv really printed the module arguments, with the secrets masked
    assert '"module_args"' in outputs["modules"] and "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in outputs["modules"]
    files = 0
    for root, _dirs, names in os.walk(work):
        for name in names:
            path = os.path.join(root, name)
            if name.endswith((".yml",)) and root == work:
                continue  # the inventories and the play hold the secrets by design
            with open(path, "rb") as handle:
                data = handle.read()
            files += 1
            for kind, secret in SECRETS.items():
                assert secret.encode() not in data, "the %s secret is written to %s" % (kind, path)
    assert files >= 7, "state file, report, snapshot, exports, loss reports and log were searched"
    assert os.path.exists(os.path.join(work, "cloud-init.json")), "the cloud-init export was written and searched"
