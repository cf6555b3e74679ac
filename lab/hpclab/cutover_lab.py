"""Run the cutover playbook on the lab: inventory, the pre-existing gateway, canary nodes that boot for real.

Used by ``make demo`` and by the end-to-end tests. The lab (``hpclab up`` + ``hpclab load``) provides etcd,
SMD, the old BSS on etcd, PostgreSQL and the new BSS instance on PostgreSQL (adopted by the cutover); this
module adds what a site already has in front of them: the gateway, deployed with the collection's
``gateway`` role as a real systemd unit (docker-systemctl-replacement on PATH in the lab), and canary nodes
whose boot parameters point at the lab kernel so that ``lab/bin/hpclab-vm`` can network-boot them.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys

import requests
import yaml

from hpclab import cli, procs, vm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
CANARY_PARAMS = "console=ttyS0 hpclab.canary=1 quiet"


def ansible_env(extra=None):
    """Environment for ansible-playbook: the collection in place, the systemctl shim, no colour."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".build", "collections"),
        "ANSIBLE_HOME": os.path.join(REPO, ".build", "ansible-home"),
        "PATH": os.pathsep.join([os.path.join(REPO, ".build", "bin"), VENV_BIN, env.get("PATH", "")]),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
    })
    env.update(extra or {})
    os.makedirs("/run/systemd/system", exist_ok=True)
    return env


def run_playbook(playbook, inventory, *args, extra=None, log=None):
    """``ansible-playbook`` with the lab environment; returns the CompletedProcess (output also to ``log``)."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, playbook, *args]
    result = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(extra), check=False, cwd=REPO)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}\nrc={result.returncode}\n")
    return result


def pick_canaries(nodes, count=1):
    """The first Ready compute nodes with an enabled endpoint and a MAC."""
    chosen = [node for node in nodes
              if node.get("role") == "Compute" and node.get("state", "Ready") == "Ready" and node.get("endpoint", True)
              and node.get("endpoint_enabled", True) and (node.get("macs") or node.get("mac"))]
    if len(chosen) < count:
        raise procs.LabError(f"the lab has {len(chosen)} bootable compute nodes, {count} canaries asked for")
    return chosen[:count]


def point_canaries_at_lab_images(bss_url, canaries):
    """Give each canary, on the old BSS, boot parameters that the lab VM can really boot (by xname, as sites do)."""
    for node in canaries:
        body = vm.canary_boot_parameters([], f"{CANARY_PARAMS} hpclab.node={node['xname']}")
        body.pop("macs")
        body["hosts"] = [node["xname"]]
        response = requests.put(f"{bss_url}/boot/v1/bootparameters", json=body, timeout=30)
        if response.status_code != 200:
            raise procs.LabError(f"PUT canary parameters for {node['xname']}: {response.status_code} {response.text}")


def start_lab_boot_service(state_dir):
    """The real boot-service beside the lab's BSS instances (file storage, Node records only, legacy API on),
    recorded in the lab's state so that ``hpclab down`` stops it by PID. A running one is reused."""
    from hpclab import boot_service  # pylint: disable=import-outside-toplevel
    lab = cli.LabState(state_dir)
    with lab.locked():
        services = lab.services()
        if "boot-service" in services and services["boot-service"].alive():
            return services["boot-service"]
        service = boot_service.start_boot_service(procs.make_workdir("boot-service"), name="boot-service")
        services["boot-service"] = service
        lab.save(services, lab.meta())
    return service


def gateway_settings(work_dir, lab_env, port, new_instance=None):
    """gateway_* variables for a gateway in ``work_dir`` in front of both lab BSS instances.

    ``new_instance``: (name, port) of the new side when it is not the lab's BSS on PostgreSQL (boot-service)."""
    tag = "".join(ch for ch in os.path.basename(os.path.dirname(work_dir.rstrip("/"))).lower() if ch.isalnum())[-12:]
    unit = "hpclab-gw-" + (tag or "lab")
    return {
        "gateway_install_packages": False,
        "gateway_service_name": unit,
        "gateway_config_file": os.path.join(work_dir, "haproxy.cfg"),
        "gateway_map_dir": os.path.join(work_dir, "maps"),
        "gateway_runtime_socket": os.path.join(work_dir, "run", "admin.sock"),
        "gateway_bind_address": procs.LOOPBACK,
        "gateway_port": port,
        "gateway_instances": [
            {"name": "bss_etcd", "address": procs.LOOPBACK, "port": int(lab_env["HPCLAB_BSS_ETCD_URL"].rsplit(":", 1)[1])},
            {"name": new_instance[0], "address": procs.LOOPBACK, "port": new_instance[1]} if new_instance else
            {"name": "bss_postgres", "address": procs.LOOPBACK, "port": int(lab_env["HPCLAB_BSS_POSTGRES_URL"].rsplit(":", 1)[1])},
        ],
        "gateway_active_instance": "bss_etcd",
    }


def prepare(state_dir, canary_count=1, power="vm", destination="postgres"):
    """Write ``<state_dir>/cutover/inventory.yml`` for the cutover on this lab and deploy its gateway.

    Returns a dict with the inventory path, the work dir, the canaries and the gateway unit/port.
    ``power`` is ``vm`` (boot the canary in QEMU), ``fetch`` (no VM: the canary's boot-script request through the gateway,
    with curl, for timing the rest of the cutover), or a shell command template for fault drills.
    ``destination`` ``boot_service`` starts the real boot-service (:func:`start_lab_boot_service`) as the new side,
    behind the same gateway as instance ``boot_service``, adopted by the cutover.
    """
    lab_env = cli.env_vars(state_dir)
    services = cli.LabState(state_dir).services()
    work_dir = os.path.join(state_dir, "cutover")
    os.makedirs(work_dir, exist_ok=True)
    os.chmod(work_dir, 0o755)
    with open(lab_env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
        nodes = json.load(handle)
    canaries = pick_canaries(nodes, canary_count)
    point_canaries_at_lab_images(lab_env["HPCLAB_BSS_ETCD_URL"], canaries)
    gateway_port = procs.free_port()
    image_port = int(lab_env["HPCLAB_IMAGES_URL"].rsplit(":", 1)[1]) if "HPCLAB_IMAGES_URL" in lab_env else 0
    if power == "vm":
        power_command = (f"{os.path.join(REPO, 'lab', 'bin', 'hpclab-vm')} boot --mac {{mac}} "
                         f"--gateway-port {gateway_port} --image-port {image_port} --timeout 240 --json "
                         f"--workdir {os.path.join(work_dir, 'canary-vm')}")
    elif power == "fetch":
        # No VM: the canary's boot request only, as its iPXE sends it through the gateway (bench_cutover.py).
        power_command = f"curl -sSf -o /dev/null http://{procs.LOOPBACK}:{gateway_port}/boot/v1/bootscript?mac={{mac}}"
    else:
        power_command = power
    new_side = {"url": lab_env["HPCLAB_BSS_POSTGRES_URL"], "instance": "bss_postgres", "log": services["bss-postgres"].log}
    if destination == "boot_service":
        boot_service = start_lab_boot_service(state_dir)
        new_side = {"url": boot_service.url, "instance": "boot_service", "log": boot_service.log}
    settings = gateway_settings(work_dir, lab_env, gateway_port,
                                (new_side["instance"], int(new_side["url"].rsplit(":", 1)[1])) if destination == "boot_service" else None)
    settings.update({
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "cutover_state_dir": os.path.join(work_dir, "state"),
        "cutover_backup_dir": os.path.join(work_dir, "backup"),
        "cutover_etcd_host": lab_env["HPCLAB_ETCD_HOST"],
        "cutover_etcd_port": int(lab_env["HPCLAB_ETCD_PORT"]),
        "cutover_smd_url": lab_env["HPCLAB_SMD_URL"],
        "cutover_old_bss_url": lab_env["HPCLAB_BSS_ETCD_URL"],
        "cutover_destination": destination,
        "cutover_new_bss_url": new_side["url"],
        "cutover_validate_certs": False,
        "cutover_db_host": lab_env["HPCLAB_PG_HOST"],
        "cutover_db_port": int(lab_env["HPCLAB_PG_PORT"]),
        "cutover_db_name": lab_env["HPCLAB_PG_DBNAME"],
        "cutover_db_user": lab_env["HPCLAB_PG_USER"],
        "cutover_db_password": lab_env["HPCLAB_PG_LAB_PASSWORD"],
        "cutover_db_sslmode": "disable",
        "cutover_deploy_postgres": False,
        "cutover_deploy_new_bss": False,
        "cutover_deploy_boot_service": False,
        "cutover_gateway_url": f"http://{procs.LOOPBACK}:{gateway_port}",
        "cutover_gateway_old_instance": "bss_etcd",
        "cutover_gateway_new_instance": new_side["instance"],
        "cutover_canary_nodes": [node["xname"] for node in canaries],
        "cutover_power_method": "command",
        "cutover_power_command": power_command,
        "cutover_canary_timeout": 60,
        "cutover_new_bss_log": new_side["log"],
        "cutover_check_url_rewrites": [{"from": vm.guest_image_url(""), "to": lab_env.get("HPCLAB_IMAGES_URL", "") + "/"}],
        # The lab's synthetic cluster holds every shape an etcd BSS has, cloud-init included, which
        # PostgreSQL cannot carry: the lab accepts those losses by kind, as an operator would by name.
        "cutover_accept_loss_kinds": ["cloud_init", "global_cloud_init", "unknown_mac_record", "unknown_nid_record",
                                      "unknown_xname_record", "node_without_mac", "tag_record", "image_params_merged",
                                      "divergent_identities", "shadowed_record", "kernel_missing"],
    })
    if destination == "boot_service":
        settings.update({
            # The lab's nodes keep the old BSS as their cloud-init datasource; a site names its cloud-init service.
            "cutover_boot_service_datasource_url": services["bss-etcd"].extra["advertise_address"],
            # What boot-service serves differently by design (docs/cutover.md), accepted by name as an operator would.
            "cutover_accept_losses": ["BOOTIF", "bss_referral_token"],
        })
    inventory = {"all": {"children": {"bss_head": {"hosts": {"localhost": settings}}}}}
    path = os.path.join(work_dir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle, sort_keys=False)
    return {"inventory": path, "work_dir": work_dir, "canaries": canaries, "gateway_unit": settings["gateway_service_name"],
            "gateway_port": gateway_port, "state_dir": settings["cutover_state_dir"], "lab_env": lab_env}


def deploy_gateway(prepared, log=None):
    """Deploy the gateway as the site already has it: every node on the old BSS."""
    playbook = os.path.join(REPO, "lab", "playbooks", "gateway.yml")
    result = run_playbook(playbook, prepared["inventory"], log=log)
    if result.returncode != 0:
        raise procs.LabError(f"deploying the lab gateway failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return result


def remove_gateway(prepared):
    """Stop the gateway unit and remove its unit file (only what :func:`deploy_gateway` created)."""
    remove_unit(prepared["gateway_unit"])


def remove_unit(unit):
    """Stop a systemd unit the lab's playbooks created (through the systemctl on the lab's PATH) and remove its files."""
    env = ansible_env()
    systemctl = shutil.which("systemctl", path=env["PATH"])
    if systemctl:
        subprocess.run([systemctl, "stop", unit + ".service"], env=env, capture_output=True, check=False)
    for path in (f"/etc/systemd/system/{unit}.service", f"/etc/systemd/system/multi-user.target.wants/{unit}.service",
                 f"/var/log/journal/{unit}.service.log"):
        if os.path.lexists(path):
            os.unlink(path)
