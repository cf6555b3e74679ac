"""Import and parity of a synthetic cluster into the REAL boot-service, against a naive per-node POST loop.

A synthetic cluster (lab/hpclab/cluster.py, every record shape real sites carry) is written to etcd as raw keys.
Then, each into its own empty boot-service (file storage in a temporary directory):

1. our import: ``hpc_boot.bss.import_boot_service`` (the module's main() in a child process) from etcd, then a
   rerun (no write expected);
2. the naive loop a hand-written migration does: for every node, one ``POST /nodes`` and one
   ``POST /bootconfigurations`` (hosts=[xname], what the node's own record or fallback serves), one at a time.

Parity: boot-service is asked by MAC, xname and NID and the script's kernel, initrd and command line (iPXE
semantics, ``boot_service_script.effective_boot``) are compared with what BSS served (the conversion's ``expected``,
the etcd lookup the PostgreSQL proofs check against the real BSS), BOOTIF= of the node's own MAC removed.
boot-service reads every Node and BootConfiguration file on each boot-script request, so a full parity at 10,000
nodes is long; ``--parity-sample N`` asks N identities spread evenly over the cluster (0 = all of them).

Usage: .venv/bin/python bench/bench_boot_service_import.py [--nodes 10000] [--parity-sample 600] [--workers 4]
       [--shared-configurations]
Needs `make upstream` (boot-service). Everything runs on 127.0.0.1 on free ports and is stopped by PID.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "lab"), os.path.join(REPO, ".build", "collections")]

import etcd3  # noqa: E402  pylint: disable=wrong-import-position
import requests  # noqa: E402  pylint: disable=wrong-import-position

from hpclab import boot_service, cluster, procs  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.hpc_boot.bss.plugins.module_utils import (  # noqa: E402  pylint: disable=wrong-import-position
    boot_service_convert, boot_service_script, bss_convert, smd_source)

CHILD = r'''
import io, json, sys, contextlib
sys.path[:0] = {paths!r}
from unittest import mock
from ansible.module_utils import basic
from ansible_collections.hpc_boot.bss.plugins.modules import import_boot_service
payload = json.dumps({{"ANSIBLE_MODULE_ARGS": {args!r}}}).encode()
out = io.StringIO()
with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy"), \
        contextlib.redirect_stdout(out):
    try:
        import_boot_service.main()
    except SystemExit:
        pass
result = json.loads(out.getvalue())
print(json.dumps({{k: result.get(k) for k in ("changed", "failed", "msg", "counts", "plan", "timings", "loss_counts")}}))
'''


def run_import(args):
    code = CHILD.format(paths=sys.path[:2], args=args)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError("import child failed: %s" % proc.stderr[-2000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("failed"):
        raise RuntimeError("import failed: %s" % result.get("msg"))
    return elapsed, result


def naive_loop(url, conversion, nodes):
    """One POST per Node record and one per node's configuration, sequentially, as a hand-written migration does."""
    session = requests.Session()
    started = time.perf_counter()
    for name, spec in conversion["nodes"].items():
        session.post(url + "/nodes", json={"metadata": {"name": name}, "spec": spec}, timeout=60).raise_for_status()
    for node in nodes:
        served = conversion["expected"].get("name:" + node["xname"])
        if served is None:
            continue
        spec = {"hosts": [node["xname"]], "kernel": served[0], "initrd": served[1], "params": served[2]}
        session.post(url + "/bootconfigurations", json={"metadata": {"name": node["xname"]}, "spec": spec},
                     timeout=60).raise_for_status()
    return time.perf_counter() - started


def parity(url, conversion, nodes, sample):
    identities = []
    for node in nodes:
        for mac in node["macs"]:
            identities.append(("mac", mac, "mac:" + mac, node))
        identities.append(("host", node["xname"], "name:" + node["xname"], node))
        identities.append(("nid", str(node["nid"]), "nid:%d" % node["nid"], node))
    if sample and sample < len(identities):
        step = len(identities) / float(sample)
        identities = [identities[int(index * step)] for index in range(sample)]
    session = requests.Session()
    same = 0
    started = time.perf_counter()
    for key, value, ident, node in identities:
        text = session.get(url + "/bootscript", params={key: value}, timeout=120).text
        boot = boot_service_script.effective_boot(text)
        want = conversion["expected"].get(ident)
        params = " ".join(token for token in boot.get("params", "").split()
                          if not (token.startswith("BOOTIF=01-") and token[10:].replace("-", ":") in node["macs"]))
        if want is None:
            same += boot["kind"] != "boot"
        else:
            same += (boot["kind"], boot["kernel"], boot["initrd"], params) == ("boot", want[0], want[1], want[2])
    return len(identities), same, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--parity-sample", type=int, default=600)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--shared-configurations", action="store_true",
                        help="node_params=false: configurations shared per (kernel, initrd, cmdline), fallbacks serve nodes")
    options = parser.parse_args()
    binary = boot_service.binary()
    work = tempfile.mkdtemp(prefix="bench-bs-import-")
    nodes = cluster.generate_nodes(options.nodes, seed=7)
    smd_path = os.path.join(work, "nodes.json")
    with open(smd_path, "w", encoding="utf-8") as handle:
        json.dump(nodes, handle)
    services = []
    try:
        etcd_server = procs.start_etcd()
        services.append(etcd_server)
        client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
        records = cluster.etcd_records(nodes, seed=7)
        cluster.load_etcd(client, records)
        client.close()
        kvs = {key: value.decode("utf-8") if isinstance(value, bytes) else value for key, value in records.items()}
        params, kernels, initrds, _access = bss_convert.split_etcd_keys(kvs)
        smd_nodes = smd_source.nodes_from_export(nodes)
        node_params = not options.shared_configurations
        conversion = boot_service_convert.convert(params, kernels, initrds, smd_nodes, node_params=node_params)
        ours = boot_service.start_boot_service(os.path.join(work, "ours"), binary_path=binary)
        services.append(ours)
        args = {"etcd_host": "127.0.0.1", "etcd_port": etcd_server.port, "smd_export": smd_path, "boot_service_url": ours.url,
                "strict": False, "write_workers": options.workers, "node_params": node_params}
        first, result = run_import(args)
        rerun, again = run_import(args)
        naive_service = boot_service.start_boot_service(os.path.join(work, "naive"), binary_path=binary)
        services.append(naive_service)
        naive = naive_loop(naive_service.url, conversion, smd_nodes)
        asked, same, parity_seconds = parity(ours.url, conversion, smd_nodes, options.parity_sample)
        figures = {
            "nodes": options.nodes, "node_records": result["counts"]["node_records"],
            "configurations": result["counts"]["configurations"], "plan": result["plan"], "timings": result["timings"],
            "divergent_nodes": result["loss_counts"].get("divergent_identities", 0),
            "import_seconds": round(first, 1), "rerun_seconds": round(rerun, 1), "rerun_plan": again["plan"],
            "rerun_changed": again["changed"], "naive_post_loop_seconds": round(naive, 1),
            "ratio_naive_to_import": round(naive / first, 2),
            "parity_identities": asked, "parity_same": same, "parity_seconds": round(parity_seconds, 1),
            "seconds_per_bootscript": round(parity_seconds / max(asked, 1), 3), "write_workers": options.workers,
            "node_params": node_params,
            "cpus": os.cpu_count(), "load": os.getloadavg(),
        }
        print(json.dumps(figures, indent=1))
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
