"""boot_configuration against the real boot-service (fixture ``boot_service``, the pinned upstream binary).

Sequence: check, apply, check, apply — asserting ``changed``, the diff and the writes each time; then a change
of one field is one PUT with a diff of that field; refused records fail before any write; the node's served
``/bootscript`` shows the declared kernel and params.
"""

import json
import urllib.request

import pytest
from bss_play import run_module

from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_client import BootServiceClient
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_model import BootServiceDeclarationError
from ansible_collections.hpc_boot.bss.plugins.module_utils.boot_service_plan import PlanError
from ansible_collections.hpc_boot.bss.plugins.modules import boot_configuration

K1 = "http://10.0.0.1/boot/vmlinuz-6.1"
I1 = "http://10.0.0.1/boot/initrd-6.1.img"
P1 = "console=ttyS0,115200 root=live:http://10.0.0.1/images/compute.squashfs ip=dhcp"
K2 = "http://10.0.0.1/boot/vmlinuz-6.6"
MAC = "de:ca:fc:0f:fe:e1"


DEFAULTS = {"boot_configurations": [], "nodes": [], "declarations": [], "declaration_prefix": "node-", "declaration_nodes": True,
            "state": "present", "exclusive": False, "max_delete_share": 0.25, "allow_large_delete": False}


class Direct(object):
    """The module's work without an ansible-playbook process (the playbook runs above cover the Ansible side)."""

    def __init__(self, url, check=False, **params):
        self.params = dict(DEFAULTS, **params)
        self.check_mode = check
        self.diff_mode = True
        self.client = BootServiceClient(url)
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def run(self):
        result = boot_configuration.reconcile(self)
        result["warnings"] = self.warnings
        return result


def _resources(url, kind):
    with urllib.request.urlopen(f"{url}/{kind}", timeout=10) as answer:  # nosec - loopback test server
        return json.load(answer)


def _script(url, **query):
    key, value = next(iter(query.items()))
    with urllib.request.urlopen(f"{url}/bootscript?{key}={value}", timeout=10) as answer:  # nosec - loopback
        return answer.read().decode()


def _args(url, **extra):
    args = {"url": url,
            "boot_configurations": [{"name": "compute", "groups": ["compute"], "kernel": K1, "initrd": I1, "params": P1,
                                     "priority": 10},
                                    {"name": "fallback", "kernel": K2}],
            "nodes": [{"xname": "x1000c0s0b0n0", "nid": 1, "macs": [MAC.upper()], "groups": ["compute"]},
                      {"xname": "x1000c0s1b0n0", "nid": 2}]}
    args.update(extra)
    return args


def test_check_apply_check_apply_then_one_field_changes_with_one_put(boot_service):
    url = boot_service.url
    checked = run_module("boot_configuration", _args(url), check=True, diff=True)
    assert checked["changed"] is True, checked
    assert [(r["method"], r["path"]) for r in checked["requests"]] == [("POST", "/bootconfigurations")] * 2 + [("POST", "/nodes")] * 2
    assert checked["diff"]["after"]["bootconfigurations"]["compute"]["kernel"] == K1
    assert checked["diff"]["after"]["nodes"]["x1000c0s0b0n0"]["bootMac"] == MAC
    assert _resources(url, "bootconfigurations") == [] and _resources(url, "nodes") == []

    applied = run_module("boot_configuration", _args(url), diff=True)
    assert applied["changed"] is True and applied["changes"]["bootconfigurations"]["created"] == 2, applied
    stored = {c["metadata"]["name"]: c["spec"] for c in _resources(url, "bootconfigurations")}
    assert stored == {"compute": {"groups": ["compute"], "kernel": K1, "initrd": I1, "params": P1, "priority": 10},
                      "fallback": {"kernel": K2}}
    nodes = {n["spec"]["xname"]: n["spec"] for n in _resources(url, "nodes")}
    assert nodes["x1000c0s0b0n0"] == {"xname": "x1000c0s0b0n0", "nid": 1, "bootMac": MAC, "interfaces": [{"mac": MAC}],
                                      "groups": ["compute"]}

    # The node in group compute gets "compute" (group 25 beats the catch-all's 1); BOOTIF comes from its boot MAC.
    script = _script(url, host="x1000c0s0b0n0")
    assert f"set kernel {K1}\n" in script and f"set params {P1} BOOTIF=01-de-ca-fc-0f-fe-e1\n" in script, script
    assert _script(url, mac=MAC) == script
    assert f"set kernel {K2}\n" in _script(url, host="x1000c0s1b0n0")

    for check in (True, False):
        again = run_module("boot_configuration", _args(url), check=check, diff=True)
        assert again["changed"] is False and again["requests"] == [], again
        assert again["diff"] == {"before": {}, "after": {}}
    uids = sorted(c["metadata"]["uid"] for c in _resources(url, "bootconfigurations"))

    changed_args = _args(url)
    changed_args["boot_configurations"][0]["params"] = P1 + " quiet"
    one = run_module("boot_configuration", changed_args, diff=True)
    assert one["changed"] is True
    assert [(r["method"], r["path"].split("/")[1]) for r in one["requests"]] == [("PUT", "bootconfigurations")]
    assert one["diff"] == {"before": {"bootconfigurations": {"compute": {"params": P1}}},
                           "after": {"bootconfigurations": {"compute": {"params": P1 + " quiet"}}}}
    assert sorted(c["metadata"]["uid"] for c in _resources(url, "bootconfigurations")) == uids
    assert f"set params {P1} quiet BOOTIF=01-de-ca-fc-0f-fe-e1\n" in _script(url, host="x1000c0s0b0n0")


def test_refused_records_fail_before_any_write_naming_field_and_value(boot_service):
    url = boot_service.url
    bad_xname = _args(url)
    bad_xname["nodes"].append({"xname": "x1000c0s0b0", "nid": 3})
    result = run_module("boot_configuration", bad_xname)
    assert result.get("failed") is True
    assert "nodes[2].xname: 'x1000c0s0b0' is not a node xname" in result["msg"], result["msg"]
    bad_priority = _args(url)
    bad_priority["boot_configurations"][1]["priority"] = 101
    with pytest.raises(BootServiceDeclarationError, match=r"boot_configurations\[1\]\.priority: 101 .*\(0\.\.100\)"):
        Direct(url, boot_configurations=bad_priority["boot_configurations"], nodes=bad_priority["nodes"]).run()
    assert _resources(url, "bootconfigurations") == [] and _resources(url, "nodes") == []


def test_a_wildcard_host_is_stored_but_warned_about_because_boot_service_never_matches_it(boot_service):
    url = boot_service.url
    result = Direct(url, boot_configurations=[{"name": "chassis", "hosts": ["x1000c0s*"], "kernel": K1}],
                    nodes=[{"xname": "x1000c0s0b0n0"}]).run()
    assert result["changed"] is True
    assert any("x1000c0s*" in w and "match no node" in w for w in result["warnings"]), result
    script = _script(url, host="x1000c0s0b0n0")
    assert "found node x1000c0s0b0n0 but no config" in script and K1 not in script, script


def test_declarations_of_the_boot_config_role_become_named_configurations_and_nodes(boot_service):
    url = boot_service.url
    declarations = [{"macs": [MAC], "hosts": ["x1000c0s0b0n0"], "nids": [1], "kernel": K1, "initrd": "", "params": P1},
                    {"hosts": ["x1000c0s1b0n0"], "kernel": K2, "initrd": "", "params": ""}]
    applied = Direct(url, declarations=declarations).run()
    assert applied["changed"] is True and applied["configurations_declared"] == 2 and applied["nodes_declared"] == 2, applied
    assert sorted(c["metadata"]["name"] for c in _resources(url, "bootconfigurations")) == ["node-x1000c0s0b0n0", "node-x1000c0s1b0n0"]
    assert f"set kernel {K1}\n" in _script(url, nid=1)
    assert f"set kernel {K2}\n" in _script(url, host="x1000c0s1b0n0")
    assert Direct(url, declarations=declarations).run()["changed"] is False

    # What an import or SMD sync adds to a Node record (role, groups) is kept: a rerun still changes nothing.
    node = next(n for n in _resources(url, "nodes") if n["spec"]["xname"] == "x1000c0s0b0n0")
    BootServiceClient(url).replace("nodes", node["metadata"]["uid"], node["metadata"]["name"],
                                   dict(node["spec"], role="Compute", groups=["bss-role-compute"]))
    assert Direct(url, declarations=declarations).run()["changed"] is False
    renumbered = Direct(url, declarations=[dict(declarations[0], nids=[5])] + declarations[1:]).run()
    assert renumbered["diff"] == {"before": {"bootconfigurations": {"node-x1000c0s0b0n0": {"nids": [1]}}, "nodes": {"x1000c0s0b0n0": {"nid": 1}}},
                                  "after": {"bootconfigurations": {"node-x1000c0s0b0n0": {"nids": [5]}}, "nodes": {"x1000c0s0b0n0": {"nid": 5}}}}
    assert [n["spec"].get("role") for n in _resources(url, "nodes") if n["spec"]["xname"] == "x1000c0s0b0n0"] == ["Compute"]
    Direct(url, declarations=declarations).run()

    # Exclusive with only one node declared: the other configuration and node go (allowed past the 25 % guard).
    with pytest.raises(PlanError, match="exclusive would delete 1 of the 2 nodes .* max_delete_share=0.25"):
        Direct(url, declarations=declarations[:1], exclusive=True).run()
    pruned = Direct(url, declarations=declarations[:1], exclusive=True, allow_large_delete=True).run()
    assert [r["method"] for r in pruned["requests"]] == ["DELETE", "DELETE"]
    assert list(pruned["diff"]["before"]["bootconfigurations"]) == ["node-x1000c0s1b0n0"]
    assert [n["spec"]["xname"] for n in _resources(url, "nodes")] == ["x1000c0s0b0n0"]
    gone = Direct(url, declarations=declarations[:1], state="absent").run()
    assert gone["changed"] is True and _resources(url, "bootconfigurations") == [] and _resources(url, "nodes") == []
