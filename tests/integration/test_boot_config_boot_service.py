"""The boot_config role with boot_config_target=boot_service, against the real boot-service.

Check, apply, apply again: the same host variables that feed BSS give each node a BootConfiguration and a
Node record, the served boot script carries the class's kernel and params, and a rerun changes nothing.
"""

import json
import os
import subprocess
import sys
import urllib.request

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K1 = "http://10.0.0.1/boot/compute/vmlinuz"
I1 = "http://10.0.0.1/boot/compute/initrd.img"
P1 = "ro ip=dhcp console=ttyS0,115200"
MACS = {"x1000c0s0b0n0": "de:ca:fc:0f:fe:e1", "x1000c0s1b0n0": "de:ca:fc:0f:fe:e2"}


def _play(work, url, check=False):
    inventory = {"compute": {"hosts": dict(
        ("node%d" % index, {"bss_xname": xname, "bss_macs": [mac], "bss_nid": index + 1})
        for index, (xname, mac) in enumerate(sorted(MACS.items()))),
        "vars": {"bss_boot_config": {"kernel": K1, "initrd": I1, "params": P1}, "ansible_connection": "local",
                 "ansible_python_interpreter": sys.executable}}}
    out = os.path.join(work, "result.json")
    play = [{"hosts": "compute", "gather_facts": False, "roles": [{
        "role": "hpc_boot.bss.boot_config", "boot_config_target": "boot_service", "boot_config_boot_service_url": url}],
        "tasks": [{"name": "save the role's result", "run_once": True, "delegate_to": "localhost", "check_mode": False,
                   "ansible.builtin.copy": {"content": "{{ boot_config_result | to_json }}", "dest": out, "mode": "0600"}}]}]
    with open(os.path.join(work, "inventory.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    with open(os.path.join(work, "play.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)
    environ = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
                   ANSIBLE_HOME=os.path.join(work, "home"), ANSIBLE_NOCOLOR="1")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(work, "inventory.yml"),
            os.path.join(work, "play.yml"), "--diff"] + (["--check"] if check else [])
    completed = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with open(out, encoding="utf-8") as handle:
        return json.load(handle)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as answer:  # nosec - loopback test server
        return answer.read().decode()


def test_the_role_declares_every_node_in_boot_service_and_a_rerun_changes_nothing(boot_service, tmp_path):
    url = boot_service.url
    checked = _play(str(tmp_path), url, check=True)
    assert checked["changed"] is True and len(checked["requests"]) == 4
    assert json.loads(_get(url + "/bootconfigurations")) == []

    applied = _play(str(tmp_path), url)
    assert applied["changed"] is True
    assert applied["changes"] == {"bootconfigurations": {"created": 2, "replaced": 0, "deleted": 0},
                                  "nodes": {"created": 2, "replaced": 0, "deleted": 0}}
    names = sorted(c["metadata"]["name"] for c in json.loads(_get(url + "/bootconfigurations")))
    assert names == ["node-x1000c0s0b0n0", "node-x1000c0s1b0n0"]
    for xname, mac in MACS.items():
        script = _get(url + "/bootscript?mac=" + mac)
        assert f"# Node: {xname}" in script and f"set kernel {K1}\n" in script, script
        assert f"set params {P1} BOOTIF=01-{mac.replace(':', '-')}\n" in script, script

    again = _play(str(tmp_path), url)
    assert again["changed"] is False and again["requests"] == []
