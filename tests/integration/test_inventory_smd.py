"""The hpc_boot.bss.smd inventory plugin against the SMD double, through ansible-inventory."""

import json
import os
import subprocess
import sys

import pytest

from hpclab import smd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODES = [
    {"xname": "x3000c0s1b0n0", "nid": 1, "role": "Compute", "macs": ["a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a9"],
     "ip": "10.1.1.1", "groups": ["compute", "gpu"]},
    {"xname": "x3000c0s1b0n1", "nid": 2, "role": "Compute", "mac": "a4:bf:01:3e:1f:a1", "groups": ["compute"]},
    {"xname": "x3000c0s3b0n0", "nid": 4, "role": "Application", "subrole": "UAN", "mac": "de:ad:be:ef:00:04",
     "groups": ["login"]},
    {"xname": "x3000c0s5b0n0", "nid": 6, "role": "Compute", "mac": "de:ad:be:ef:00:06", "state": "Off"},
]


@pytest.fixture(scope="module")
def smd_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("smd") / "nodes.json"
    path.write_text(json.dumps(NODES))
    service = smd.start_smd(str(path), token="lab-token")
    yield service
    service.stop()


def plain(value):
    """ansible-inventory marks strings from SMD as unsafe (never templated); compare their text."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def run_inventory(tmp_path, config, env=None):
    source = tmp_path / "lab.smd.yml"
    source.write_text(config)
    environ = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
                   ANSIBLE_INVENTORY_ENABLED="hpc_boot.bss.smd", **(env or {}))
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(source), "--list"],
                            capture_output=True, text=True, env=environ, check=False)
    return result


def test_hosts_groups_and_identity_vars(tmp_path, smd_server):
    result = run_inventory(tmp_path, f"plugin: hpc_boot.bss.smd\nurl: {smd_server.url}\ncluster: lab\n", {"LAB_ACCESS_TOKEN": "lab-token"})
    assert result.returncode == 0, result.stderr
    inventory = plain(json.loads(result.stdout))
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == ["x3000c0s1b0n0", "x3000c0s1b0n1", "x3000c0s3b0n0", "x3000c0s5b0n0"]
    node = hostvars["x3000c0s1b0n0"]
    assert node["bss_macs"] == ["a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a9"]
    assert node["bss_nid"] == 1 and node["bss_role"] == "Compute"
    assert sorted(inventory["compute"]["hosts"]) == ["x3000c0s1b0n0", "x3000c0s1b0n1"]
    assert inventory["gpu"]["hosts"] == ["x3000c0s1b0n0"]
    assert sorted(inventory["smd_nodes"]["hosts"]) == sorted(hostvars)
    assert inventory["login"]["hosts"] == ["x3000c0s3b0n0"]
    assert inventory["subrole_uan"]["hosts"] == ["x3000c0s3b0n0"]
    assert sorted(inventory["role_compute"]["hosts"]) == ["x3000c0s1b0n0", "x3000c0s1b0n1", "x3000c0s5b0n0"]


def test_filters_and_nid_names(tmp_path, smd_server):
    config = (f"plugin: hpc_boot.bss.smd\nurl: {smd_server.url}/hsm/v2\ntoken: lab-token\nhostname: 'nid{{nid:06d}}'\n"
              "roles: [compute]\nstates: [Ready]\n")
    result = run_inventory(tmp_path, config)
    assert result.returncode == 0, result.stderr
    hostvars = plain(json.loads(result.stdout))["_meta"]["hostvars"]
    assert sorted(hostvars) == ["nid000001", "nid000002"]
    assert hostvars["nid000002"]["bss_xname"] == "x3000c0s1b0n1"


def test_wrong_token_fails_without_printing_it(tmp_path, smd_server):
    result = run_inventory(tmp_path, f"plugin: hpc_boot.bss.smd\nurl: {smd_server.url}\ntoken: s3cret-wrong\n")
    combined = result.stdout + result.stderr
    assert "401" in combined
    assert "s3cret-wrong" not in combined
    assert "x3000c0s1b0n0" not in result.stdout
