"""bootparams, bootparams_info, bootscript_info and service_info against the BSS double and the real upstream BSS.

Every test runs once per BSS implementation (``bss_impl``: the lab's double, then upstream installed from the
Go module proxy) and, where it says so, per backend.

Every BSS is fronted by a recording proxy so the tests assert on the exact requests that reached it.
Sequence: check, apply, check, apply — asserting ``changed``, the diff and the writes each time.
"""

import os
import types
import uuid

import pytest
import requests

from bss_play import run_module
from bss_recorder import BssRecorder

K1 = "http://10.0.0.1/boot/vmlinuz-6.1"
I1 = "http://10.0.0.1/boot/initrd-6.1.img"
P1 = "console=ttyS0,115200 root=live:http://10.0.0.1/images/compute.squashfs ip=dhcp"
K0 = "http://10.0.0.1/boot/vmlinuz-5.14"

# SMD (golden node set): a4:bf:01:3e:1f:a0 = x3000c0s1b0n0, a4:bf:01:3e:1f:a1 = x3000c0s1b0n1, nid 6 = x3000c0s5b0n0.
DECLARATIONS = [{"kernel": K1, "initrd": I1, "params": P1 + "  ",
                 "macs": ["a4:bf:01:3e:1f:a0", "A4:BF:01:3E:1F:A1", "02:00:00:0a:bc:99"], "nids": [6]}]
EXPECTED_WRITES = {
    "etcd": [("PUT", "/boot/v1/bootparameters",
              {"hosts": ["02:00:00:0a:bc:99", "x3000c0s1b0n1", "x3000c0s5b0n0"], "kernel": K1, "initrd": I1, "params": P1})],
    "postgres": [("PUT", "/boot/v1/bootparameters", {"macs": ["02:00:00:0a:bc:99", "a4:bf:01:3e:1f:a1"], "kernel": K1, "initrd": I1,
                                                     "params": P1}),
                 ("PUT", "/boot/v1/bootparameters", {"nids": [6], "kernel": K1, "initrd": I1, "params": P1})],
}
CHANGED_NODES = {
    "etcd": ["02:00:00:0a:bc:99", "x3000c0s1b0n1", "x3000c0s5b0n0"],
    "postgres": ["02:00:00:0a:bc:99", "a4:bf:01:3e:1f:a1", "nid6"],
}


@pytest.fixture(scope="module")
def smd_service(golden_dir, bss_impl):  # pylint: disable=unused-argument
    """The golden SMD; taking ``bss_impl`` makes every test here run once per BSS implementation."""
    from hpclab import smd
    service = smd.start_smd(os.path.join(golden_dir, "smd-nodes.json"))
    yield service
    service.stop()


def _start_lab(request, backend, smd_service, name):
    """A fresh BSS (``bss_impl``) of ``backend`` on an empty store behind a recording proxy, stopped at teardown."""
    from hpclab import procs
    from hpclab.bss import launch
    impl = request.getfixturevalue("bss_impl")

    def start_bss(*args, **kwargs):
        return launch.start_bss(*args, impl=impl, **kwargs)

    if backend == "memory":
        service = start_bss(name + "-mem", "memory", smd_service.url)
    elif backend == "etcd":
        etcd = request.getfixturevalue("etcd_server")
        _empty_etcd(etcd)
        service = start_bss(name + "-etcd", "etcd", smd_service.url, etcd=etcd)
    else:
        postgres = request.getfixturevalue("postgres_server")
        database = "h3_" + uuid.uuid4().hex[:10]
        procs.psql(postgres, "CREATE DATABASE %s OWNER %s" % (database, postgres.extra["user"]))
        request.addfinalizer(lambda: procs.psql(postgres, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database))
        target = types.SimpleNamespace(port=postgres.port, extra=dict(postgres.extra, dbname=database))
        service = start_bss(name + "-pg", "postgres", smd_service.url, postgres=target)
    request.addfinalizer(service.stop)
    recorder = BssRecorder(service.url)
    request.addfinalizer(recorder.stop)
    return types.SimpleNamespace(backend=backend, service=service, direct=service.url, url=recorder.url, recorder=recorder)


@pytest.fixture(params=["etcd", "postgres"])
def bss(request, smd_service):
    """A fresh BSS double on an empty store, behind a recording proxy."""
    return _start_lab(request, request.param, smd_service, "bss-h3")


def _empty_etcd(etcd):
    import etcd3
    client = etcd3.client(host="127.0.0.1", port=etcd.port)
    for prefix in ("/", "hbtd_dist_lock"):
        client.delete_prefix(prefix)
    client.close()


def seed(lab, body):
    response = requests.put(lab.direct + "/boot/v1/bootparameters", json=body, timeout=10)
    assert response.status_code == 200, response.text


def test_check_apply_check_apply(bss):
    selector = {"etcd": "hosts", "postgres": "macs"}[bss.backend]
    first, second = {"etcd": ("x3000c0s1b0n0", "x3000c0s1b0n1"), "postgres": ("a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a1")}[bss.backend]
    seed(bss, {selector: [first], "kernel": K1, "initrd": I1, "params": P1})  # already as declared
    seed(bss, {selector: [second], "kernel": K0, "params": "quiet"})
    args = {"url": bss.url, "declarations": DECLARATIONS}

    result = run_module("bootparams", args, check=True, diff=True)
    assert result["changed"] is True and result["backend"] == bss.backend
    assert bss.recorder.writes() == []
    assert sorted(result["diff"]["after"]) == CHANGED_NODES[bss.backend]
    assert result["diff"]["before"][second] == {"kernel": K0, "initrd": "", "params": "quiet"}
    assert result["diff"]["after"][second] == {"kernel": K1, "initrd": I1, "params": P1}
    assert [(r["method"], "/boot/v1/bootparameters", r["body"]) for r in result["requests"]] == EXPECTED_WRITES[bss.backend]

    result = run_module("bootparams", args, diff=True)
    assert result["changed"] is True
    assert bss.recorder.writes() == EXPECTED_WRITES[bss.backend]
    assert sorted(result["diff"]["after"]) == CHANGED_NODES[bss.backend]

    bss.recorder.clear()
    result = run_module("bootparams", args, check=True, diff=True)
    assert result["changed"] is False and result["requests"] == []
    assert result["diff"] == {"before": {}, "after": {}}
    result = run_module("bootparams", args)
    assert result["changed"] is False and "diff" not in result
    assert bss.recorder.writes() == []

    scripts = run_module("bootscript_info", {"url": bss.url, "macs": ["a4:bf:01:3e:1f:a1"], "nids": [6]})["scripts"]
    for node in ("a4:bf:01:3e:1f:a1", "nid6"):
        assert scripts[node]["kind"] == "boot" and scripts[node]["kernel"] == K1 and scripts[node]["initrd"] == I1
        assert scripts[node]["params"].startswith("initrd=initrd " + P1.replace("root=", "root="))


def test_one_changed_node_is_one_write_and_absent_deletes(bss):
    run_module("bootparams", {"url": bss.url, "declarations": DECLARATIONS})
    bss.recorder.clear()
    changed = [dict(DECLARATIONS[0], macs=["a4:bf:01:3e:1f:a0", "02:00:00:0a:bc:99"], nids=[6]),
               {"kernel": K1, "initrd": I1, "params": "console=ttyS0,115200 rd.shell", "macs": ["a4:bf:01:3e:1f:a1"]}]
    result = run_module("bootparams", {"url": bss.url, "declarations": changed})
    target = {"etcd": {"hosts": ["x3000c0s1b0n1"]}, "postgres": {"macs": ["a4:bf:01:3e:1f:a1"]}}[bss.backend]
    assert result["changed"] and result["nodes_changed"] == 1
    assert bss.recorder.writes() == [("PUT", "/boot/v1/bootparameters",
                                      dict(target, kernel=K1, initrd=I1, params="console=ttyS0,115200 rd.shell"))]
    bss.recorder.clear()
    result = run_module("bootparams", {"url": bss.url, "state": "absent", "declarations": [{"macs": ["02:00:00:0a:bc:99"]}]},
                        diff=True)
    assert result["changed"] and result["diff"]["after"] == {"02:00:00:0a:bc:99": None}
    deleted = {"etcd": {"hosts": ["02:00:00:0a:bc:99"]}, "postgres": {"macs": ["02:00:00:0a:bc:99"]}}[bss.backend]
    assert bss.recorder.writes() == [("DELETE", "/boot/v1/bootparameters", deleted)]
    result = run_module("bootparams", {"url": bss.url, "state": "absent", "declarations": [{"macs": ["02:00:00:0a:bc:99"]}]})
    assert not result["changed"]
    assert len(bss.recorder.writes()) == 1


def test_exclusive_removes_undeclared_nodes_behind_a_guard(bss):
    run_module("bootparams", {"url": bss.url, "declarations": DECLARATIONS})
    bss.recorder.clear()
    keep = [dict(DECLARATIONS[0], macs=["a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a1", "02:00:00:0a:bc:99"], nids=[])]
    result = run_module("bootparams", {"url": bss.url, "declarations": keep, "exclusive": True, "max_delete_share": 0.2})
    assert result["failed"] and "exclusive would delete 1 of 4 boot parameter entries (25% > max_delete_share 20%)" in result["msg"]
    assert bss.recorder.writes() == []
    result = run_module("bootparams", {"url": bss.url, "declarations": keep, "exclusive": True, "max_delete_share": 0.5})
    gone = {"etcd": {"hosts": ["x3000c0s5b0n0"]}, "postgres": {"nids": [6]}}[bss.backend]
    assert result["changed"] and bss.recorder.writes() == [("DELETE", "/boot/v1/bootparameters", gone)]
    info = run_module("bootparams_info", {"url": bss.url})
    assert info["entries"] == [dict({"etcd": {"hosts": ["x3000c0s1b0n0", "x3000c0s1b0n1"], "macs": ["02:00:00:0a:bc:99"]},
                                     "postgres": {"macs": ["02:00:00:0a:bc:99", "a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a1"]}}[bss.backend],
                                    kernel=K1, initrd=I1, params=P1)]
    assert info["checksum"] == run_module("bootparams_info", {"url": bss.url})["checksum"]


def test_backend_rules(bss):
    declared = [{"kernel": K1, "hosts": ["Default"]}, {"kernel": K1, "hosts": ["x3000c0s1b0n0"]}]
    result = run_module("bootparams", {"url": bss.url, "declarations": declared})
    if bss.backend == "postgres":
        assert result["failed"] and "declarations[0].hosts: 'Default' is a tag name" in result["msg"]
        assert bss.recorder.writes() == []
        result = run_module("bootparams", {"url": bss.url, "declarations": [{"kernel": K1, "hosts": ["x3000c0s1b0n0"]}]})
        assert any("keyed only by xname" in warning for warning in result["warnings"])
    else:
        assert result["changed"] and "warnings" not in result
        assert bss.recorder.writes() == [("PUT", "/boot/v1/bootparameters", {"hosts": ["Default", "x3000c0s1b0n0"], "kernel": K1})]
    assert [w for w in bss.recorder.writes() if not w[2].get("hosts") and not w[2].get("macs") and not w[2].get("nids")] == []


@pytest.mark.parametrize("bss", ["etcd"], indirect=True)
def test_etcd_cloud_init_survives(bss):
    seed(bss, {"hosts": ["x3000c0s4b0n0"], "kernel": K0, "params": "quiet",
               "cloud-init": {"user-data": {"runcmd": ["echo hi"]}, "meta-data": None}})
    args = {"url": bss.url, "declarations": [{"kernel": K1, "params": "console=ttyS0", "hosts": ["x3000c0s4b0n0"]}]}
    run_module("bootparams", args)
    patch = {"hosts": ["x3000c0s4b0n0"], "kernel": K1, "params": "console=ttyS0"}
    assert bss.recorder.writes() == [("PATCH", "/boot/v1/bootparameters", patch)]
    entry = requests.get(bss.direct + "/boot/v1/bootparameters?name=x3000c0s4b0n0", timeout=10).json()[0]
    assert entry["cloud-init"]["user-data"] == {"runcmd": ["echo hi"]} and entry["kernel"] == K1
    assert not run_module("bootparams", args)["changed"]
    result = run_module("bootparams", {"url": bss.url, "declarations": [{"kernel": K1, "hosts": ["x3000c0s4b0n0"]}]})
    assert result["failed"] and "carries cloud-init data" in result["msg"]
    assert len(bss.recorder.writes()) == 1


def test_service_info(bss):
    result = run_module("service_info", {"url": bss.url})
    assert result["status"] == "running" and result["backend"] == {"name": bss.backend, "status": "connected"}
    assert result["in_memory"] is ({"etcd": None, "postgres": False}[bss.backend])


def test_bootscript_parity_across_backends(request, smd_service):
    etcd = _start_lab(request, "etcd", smd_service, "bss-h3-a")
    postgres = _start_lab(request, "postgres", smd_service, "bss-h3-b")
    for lab in (etcd, postgres):
        run_module("bootparams", {"url": lab.url, "declarations": DECLARATIONS})
    macs = ["a4:bf:01:3e:1f:a0", "a4:bf:01:3e:1f:a1", "de:ad:be:ef:00:06"]
    result = run_module("bootscript_info", {"url": etcd.url, "compare_url": postgres.url, "macs": macs, "hosts": ["x3000c0s1b0n0"]})
    rows = dict((row["node"], row) for row in result["parity"])
    assert result["parity_summary"] == {"nodes": 4, "same": 2, "different": 2}
    assert rows["a4:bf:01:3e:1f:a0"]["same"] and rows["a4:bf:01:3e:1f:a1"]["same"]
    # nid 6 was declared by NID: etcd stores it under the xname, so mac= finds it; postgres only by nid=.
    assert rows["de:ad:be:ef:00:06"]["first"]["kind"] == "boot" and rows["de:ad:be:ef:00:06"]["second"]["kind"] == "wait"
    # x3000c0s1b0n0 was declared by MAC: postgres has no xname row for it.
    assert rows["x3000c0s1b0n0"]["differences"][0] == "kind"
    assert [w for w in etcd.recorder.writes() + postgres.recorder.writes() if w[0] != "PUT"] == []


@pytest.mark.parametrize("backend, in_memory", [("memory", True), ("etcd", False)])
def test_service_info_flags_the_in_memory_store(request, smd_service, backend, in_memory):
    lab = _start_lab(request, backend, smd_service, "bss-h3-store")
    for xname in ("x3000c0s5b0n0", "x3000c0s1b0n0", "x3000c0s3b0n0", "x3000c0s2b0n0"):
        seed(lab, {"hosts": [xname], "kernel": K1})
    result = run_module("service_info", {"url": lab.url})
    assert result["backend"]["name"] == "etcd"  # the in-memory store reports itself as etcd
    assert result["in_memory"] is in_memory, result["in_memory_evidence"]
