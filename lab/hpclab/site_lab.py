"""Run playbooks/site.yml against the lab: the example site's inventory layout with the lab's addresses.

The lab (``hpclab up``) provides SMD (the node inventory, through the hpc_boot.bss.smd plugin) and a
running PostgreSQL, which the site adopts (the bss_db group stays empty). site.yml then deploys BSS on
PostgreSQL with the bss role (the BSS double as the binary), the gateway in front of it, and the boot
configuration declared per SMD group in group_vars.
"""

import os
import sys

import yaml

from hpclab import cli, cutover_lab, procs
from hpclab.bss import launch

# Two node classes, as in docs/examples/site: compute and login (SMD group labels).
NODE_CLASSES = {
    "compute": {"kernel": "http://10.1.0.1/images/compute/vmlinuz-6.1.0-26-amd64",
                "initrd": "http://10.1.0.1/images/compute/initramfs-6.1.0-26-amd64.img",
                "params": "console=ttyS0,115200 ip=dhcp root=live:http://10.1.0.1/images/compute/rootfs.squashfs rd.neednet=1"},
    "login": {"kernel": "http://10.1.0.1/images/login/vmlinuz-6.1.0-26-amd64",
              "initrd": "http://10.1.0.1/images/login/initramfs-6.1.0-26-amd64.img",
              "params": "console=ttyS0,115200 ip=dhcp root=live:http://10.1.0.1/images/login/rootfs.squashfs nosmt"},
}


def _dump(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("---\n")
        yaml.safe_dump(data, handle, sort_keys=False)


def write_inventory(state_dir, bss=None):
    """The site inventory for a running lab, under ``<state_dir>/site``; returns a dict of its facts.

    ``bss``: the binary the bss role deploys: "double" (a zipapp of the lab's double) or "upstream" (the real
    boot-script-service from ``make upstream``); default $HPCLAB_BSS_IMPL, else the double.
    """
    env = cli.env_vars(state_dir)
    site = os.path.join(state_dir, "site")
    inventory = os.path.join(site, "inventory")
    tag = "".join(ch for ch in os.path.basename(state_dir.rstrip("/")).lower() if ch.isalnum())[-10:] or "lab"
    bss_port, gateway_port = procs.free_port(), procs.free_port()
    unit = f"hpclab-site-bss-{tag}"
    os.makedirs(os.path.join(site, "bin"), exist_ok=True)
    if launch.resolve_impl(bss) == "upstream":
        binary = launch.upstream_binaries()["boot_script_service"]
    else:
        binary = launch.build_executable(os.path.join(site, "boot-script-service.pyz"), sys.executable)
    _dump(os.path.join(inventory, "01-smd.smd.yml"),
          {"plugin": "hpc_boot.bss.smd", "url": env["HPCLAB_SMD_URL"], "states": ["Ready", "On", "Off"]})
    _dump(os.path.join(inventory, "02-head.yml"), {"all": {"children": {
        "bss_db": {"hosts": {}},
        "bss_head": {"hosts": {"localhost": None}},
        "bss_gateway": {"hosts": {"localhost": None}}}}})
    _dump(os.path.join(inventory, "host_vars", "localhost.yml"),
          {"ansible_connection": "local", "ansible_python_interpreter": sys.executable})
    _dump(os.path.join(inventory, "group_vars", "all", "main.yml"), {
        "bss_method": "binary", "bss_binary_src": binary, "bss_binary_path": os.path.join(site, "bin", "bss"),
        "bss_config_dir": os.path.join(site, "etc"), "bss_user": "root", "bss_group": "root",
        "bss_listen_address": procs.LOOPBACK, "bss_hsm_url": env["HPCLAB_SMD_URL"],
        "bss_advertise_address": f"http://{procs.LOOPBACK}:{gateway_port}",
        "bss_ipxe_server": f"{procs.LOOPBACK}:{gateway_port}", "bss_chain_proto": "http", "bss_gw_uri": "",
        "bss_insecure": True, "bss_db_host": env["HPCLAB_PG_HOST"], "bss_db_port": int(env["HPCLAB_PG_PORT"]),
        "bss_db_name": env["HPCLAB_PG_DBNAME"], "bss_db_user": env["HPCLAB_PG_USER"],
        "bss_db_password": env["HPCLAB_PG_LAB_PASSWORD"],
        "bss_instances": [{"name": unit, "port": bss_port, "backend": "postgres"}],
        "gateway_install_packages": False, "gateway_service_name": f"hpclab-site-gw-{tag}",
        "gateway_config_file": os.path.join(site, "gateway", "haproxy.cfg"),
        "gateway_map_dir": os.path.join(site, "gateway", "maps"),
        "gateway_runtime_socket": os.path.join(site, "gateway", "run", "admin.sock"),
        "gateway_bind_address": procs.LOOPBACK, "gateway_port": gateway_port,
        "gateway_instances": [{"name": "bss", "address": procs.LOOPBACK, "port": bss_port}],
        "gateway_active_instance": "bss",
        "boot_config_bss_url": f"http://{procs.LOOPBACK}:{gateway_port}",
        "boot_config_bss_validate_certs": False,
    })
    for label, declaration in NODE_CLASSES.items():
        _dump(os.path.join(inventory, "group_vars", f"{label}.yml"), {"bss_boot_config": declaration})
    os.chmod(site, 0o755)
    return {"inventory": inventory, "site": site, "units": [unit, f"hpclab-site-gw-{tag}"], "bss_port": bss_port,
            "gateway_url": f"http://{procs.LOOPBACK}:{gateway_port}", "lab_env": env}


def run_site(prepared, *args, log=None):
    playbook = os.path.join(cutover_lab.REPO, "playbooks", "site.yml")
    return cutover_lab.run_playbook(playbook, prepared["inventory"], *args, log=log,
                                    extra={"ANSIBLE_INVENTORY_ENABLED": "hpc_boot.bss.smd,ansible.builtin.yaml,ansible.builtin.ini"})


def remove(prepared):
    """Stop the units site.yml started and remove their unit files (only those)."""
    for unit in prepared["units"]:
        cutover_lab.remove_unit(unit)


def node_mismatches(prepared):
    """``(checked, problems)``: every declared node's boot script through the gateway, by MAC and by xname."""
    import json  # pylint: disable=import-outside-toplevel
    import requests  # pylint: disable=import-outside-toplevel
    with open(prepared["lab_env"]["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
        nodes = json.load(handle)
    checked, problems = 0, []
    with requests.Session() as session:
        for node in nodes:
            label = next((group for group in node.get("groups", []) if group in NODE_CLASSES), None)
            if label is None or not node.get("endpoint", True):
                continue
            declared = NODE_CLASSES[label]
            for query in ({"mac": (node.get("macs") or [node.get("mac")])[0]}, {"name": node["xname"]}):
                script = session.get(prepared["gateway_url"] + "/boot/v1/bootscript", params=query, timeout=30).text
                lines = script.split("\n")
                kernel_line = lines[1] if len(lines) > 1 else ""
                if not (kernel_line.startswith(f"kernel --name kernel {declared['kernel']} ")
                        and declared["params"].split()[-1] in kernel_line and f"xname={node['xname']}" in kernel_line
                        and f"initrd --name initrd {declared['initrd']} " in script):
                    problems.append(f"{node['xname']} ({label}) by {query}: {kernel_line[:160]}")
                checked += 1
    return checked, problems


def check_nodes(prepared):
    """Print and return 1 if any declared node does not boot its group's declaration, else 0."""
    checked, problems = node_mismatches(prepared)
    print(f"{checked} lookups checked, {len(problems)} wrong")
    for problem in problems:
        print("  " + problem)
    return 1 if problems or not checked else 0


def main(argv=None):
    """``make lab-site``: bring a lab up, run site.yml on it twice, check every node, tear down."""
    import argparse  # pylint: disable=import-outside-toplevel
    import re  # pylint: disable=import-outside-toplevel
    import tempfile  # pylint: disable=import-outside-toplevel
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--nodes", type=int, default=16)
    args = parser.parse_args(argv)
    state = tempfile.mkdtemp(prefix="hpclab-site-")
    os.chmod(state, 0o755)
    prepared = None
    try:
        cli.up(state, nodes=args.nodes, vm=False)
        prepared = write_inventory(state)
        print(f"site inventory: {prepared['inventory']} (SMD plugin + head node + group_vars compute/login)")
        for run in ("first run", "second run"):
            result = run_site(prepared, log=os.path.join(state, "ansible.log"))
            changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", result.stdout))
            print(f"site.yml {run}: rc={result.returncode}, changed={changed}")
            if result.returncode != 0:
                print(result.stdout[-3000:])
                return 1
        return check_nodes(prepared)
    finally:
        if prepared:
            remove(prepared)
        cli.down(state)
        procs.shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
