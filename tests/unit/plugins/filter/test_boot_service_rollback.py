"""boot_service_rollback: what a rollback from boot-service writes back to the etcd BSS, and what it reports instead."""

from ansible_collections.hpc_boot.bss.plugins.filter.boot_service_rollback import boot_service_rollback, chosen_spec

NODE = {"xname": "x1000c0s0b0n0", "nid": 1, "macs": ["aa:bb:cc:00:00:01"]}
TWO_MACS = {"xname": "x1000c0s1b0n0", "nid": 2, "macs": ["aa:bb:cc:00:00:02", "aa:bb:cc:00:00:03"]}
CHANGED = {"metadata": {"name": "after-rollout"},
           "spec": {"macs": ["aa:bb:cc:00:00:01"], "kernel": "http://10.1.0.1/vmlinuz?a=1&b=2", "params": "quiet x=a&b"}}
IMPORTED = {"metadata": {"name": "bss-x1000c0s0b0n0"},
            "spec": {"hosts": ["x1000c0s0b0n0"], "kernel": "http://10.1.0.1/vmlinuz", "initrd": "http://10.1.0.1/initrd", "params": "console=ttyS0"}}


def served(config, name=None, params_suffix=" BOOTIF=01-aa-bb-cc-00-00-01"):
    """What boot-service's script gives for this configuration (escaped, BOOTIF appended)."""
    spec = config["spec"]
    return {"kind": "boot", "config_name": name or config["metadata"]["name"], "kernel": spec["kernel"].replace("&", "&amp;"),
            "initrd": spec.get("initrd", ""), "params": spec["params"].replace("&", "&amp;") + params_suffix}


def rows(*different):
    return [{"node": label, "same": label not in different} for label in ("aa:bb:cc:00:00:01", "x1000c0s0b0n0", "nid1")]


def test_a_change_on_every_lookup_is_carried_with_the_configuration_values_not_the_escaped_script():
    scripts = dict((label, served(CHANGED)) for label in ("aa:bb:cc:00:00:01", "x1000c0s0b0n0", "nid1"))
    result = boot_service_rollback(rows("aa:bb:cc:00:00:01", "x1000c0s0b0n0"), scripts, [IMPORTED, CHANGED], [NODE])
    assert result == {"declarations": [{"hosts": ["x1000c0s0b0n0"], "kernel": "http://10.1.0.1/vmlinuz?a=1&b=2",
                                        "params": "quiet x=a&b"}], "not_carried": []}


def test_image_params_the_etcd_bss_appends_itself_are_not_carried_twice():
    scripts = {"x1000c0s0b0n0": served(IMPORTED)}
    images = [{"kernel": "http://10.1.0.1/vmlinuz", "params": "console=ttyS0"}]
    result = boot_service_rollback([{"node": "x1000c0s0b0n0", "same": False}], scripts, [IMPORTED], [NODE], images)
    assert result["declarations"][0]["params"] == "" and result["declarations"][0]["initrd"] == "http://10.1.0.1/initrd"


def test_nodes_without_a_differing_lookup_are_left_alone():
    scripts = {"x1000c0s0b0n0": served(IMPORTED)}
    assert boot_service_rollback(rows(), scripts, [IMPORTED], [NODE]) == {"declarations": [], "not_carried": []}


def test_a_configuration_for_one_mac_of_two_is_reported_not_carried():
    one_mac = {"metadata": {"name": "one-mac"}, "spec": {"macs": ["aa:bb:cc:00:00:02"], "kernel": "http://k/2", "params": "p2"}}
    other = {"metadata": {"name": "bss-x1000c0s1b0n0"}, "spec": {"hosts": ["x1000c0s1b0n0"], "kernel": "http://k/1", "params": "p1"}}
    scripts = {"aa:bb:cc:00:00:02": served(one_mac), "aa:bb:cc:00:00:03": served(other), "x1000c0s1b0n0": served(other)}
    result = boot_service_rollback([{"node": "aa:bb:cc:00:00:02", "same": False}], scripts, [one_mac, other], [TWO_MACS])
    assert result["declarations"] == []
    assert result["not_carried"][0]["node"] == "x1000c0s1b0n0" and "2 different configurations" in result["not_carried"][0]["reason"]
    assert result["not_carried"][0]["served"]["aa:bb:cc:00:00:02"]["kernel"] == "http://k/2"


def test_a_node_boot_service_does_not_boot_is_reported_with_its_error():
    scripts = {"x1000c0s0b0n0": {"kind": "halt", "message": "Node resolution failed: node not found"}}
    result = boot_service_rollback([{"node": "x1000c0s0b0n0", "same": False}], scripts, [IMPORTED], [NODE])
    assert result["declarations"] == [] and "node not found" in result["not_carried"][0]["reason"]


def test_same_named_configurations_are_told_apart_by_what_they_render_to():
    twin = {"metadata": {"name": "bss-x1000c0s0b0n0"}, "spec": dict(IMPORTED["spec"], kernel="http://10.1.0.1/other")}
    spec, why_not = chosen_spec(served(IMPORTED), [twin, IMPORTED])
    assert spec == IMPORTED["spec"] and why_not is None
    same_render = {"metadata": {"name": "bss-x1000c0s0b0n0"}, "spec": dict(IMPORTED["spec"], params="console=tty0")}
    spec, why_not = chosen_spec(served(IMPORTED), [same_render, IMPORTED])
    assert spec is None and "cannot be told" in why_not


def test_a_script_naming_a_configuration_that_no_longer_exists_is_not_carried():
    spec, why_not = chosen_spec(served(IMPORTED, name="gone"), [IMPORTED])
    assert spec is None and "no BootConfiguration named 'gone'" in why_not
