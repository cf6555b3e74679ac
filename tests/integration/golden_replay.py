"""Replay the golden upstream-BSS transcripts (tests/fixtures/golden) against a running BSS.

Order (golden/README.md): POST requests/01..06, PUT 04 and 05, POST 01 again (``dup_01``), then the
GETs: bootparameters, bootscripts (each file's first line holds its exact request), cloud-init,
endpoint-history, hosts, service status. The GET order matters for postgres endpoint history
(rows are appended) and matches the golden run.

Normalised (golden/README.md, compare.txt): referral tokens (mapped to the request that created them),
``ts=`` of discovery chains, epochs, random instance-id suffixes, the etcd health-probe value, UUIDs of
postgres rows (rows are compared by content), and the order of the postgres GET-all.
"""

import base64
import http.client
import json
import os
import re

# tests/fixtures/golden in the repository (as tests/conftest.py finds it), or HPC_BOOT_GOLDEN.
GOLDEN = os.environ.get("HPC_BOOT_GOLDEN", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        "fixtures", "golden"))

ETCD_ADVERTISE = "http://127.0.0.1:27778"
POSTGRES_ADVERTISE = "http://127.0.0.1:27779"
CHAIN_ENV = {"BSS_IPXE_SERVER": "127.0.0.1", "BSS_CHAIN_PROTO": "http", "BSS_GW_URI": ""}
REQUEST_LABELS = ["01_hosts_xnames", "02_macs_mixed_case", "03_nids", "04_default", "05_global_cloudinit",
                  "06_host_cloudinit"]
PUT_LABELS = ["04_default", "05_global_cloudinit"]
BOOTPARAMETER_QUERIES = {
    "bootparameters_all": "", "bootparameters_mac_0a1B2c3D4e5F": "?mac=0a:1B:2c:3D:4e:5F",
    "bootparameters_mac_A4BF013E1FB0": "?mac=A4:BF:01:3E:1F:B0", "bootparameters_mac_a4bf013e1fb0": "?mac=a4:bf:01:3e:1f:b0",
    "bootparameters_name_Default": "?name=Default", "bootparameters_name_Global": "?name=Global",
    "bootparameters_name_unknown": "?name=x9999c0s0b0n0", "bootparameters_name_x3000c0s1b0n0": "?name=x3000c0s1b0n0",
    "bootparameters_nid_100": "?nid=100", "bootparameters_nid_4": "?nid=4",
}
CLOUD_INIT = {  # golden file stem -> (path, X-Forwarded-For)
    "cloudinit_meta-data_unknown_ip": ("/meta-data", "10.9.9.9"),
    "cloudinit_meta-data_x3000c0s1b0n0": ("/meta-data", "10.1.1.1"),
    "cloudinit_meta-data_x3000c0s4b0n0": ("/meta-data", "10.1.1.5"),
    "cloudinit_user-data_unknown_ip": ("/user-data", "10.9.9.9"),
    "cloudinit_user-data_x3000c0s4b0n0": ("/user-data", "10.1.1.5"),
}
SERVICE_PATHS = {"endpoint-history": "/boot/v1/endpoint-history", "hosts": "/boot/v1/hosts",
                 "service_status_all": "/boot/v1/service/status/all"}
NO_RESPONSE = "NO_RESPONSE"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def request(base_url, method, path, body=None, headers=None):
    """One request on a fresh connection: {status, headers, body(bytes)} or status NO_RESPONSE."""
    host, port = base_url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return {"status": resp.status, "headers": dict(resp.getheaders()), "body": resp.read()}
    except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
        return {"status": NO_RESPONSE, "headers": {}, "body": repr(exc).encode()}
    finally:
        conn.close()


def replay_plan(golden_dir, backend):
    """Ordered list of (kind, label, method, path, headers, body)."""
    plan = []
    for label in REQUEST_LABELS:
        with open(os.path.join(golden_dir, "requests", label + ".json"), "rb") as handle:
            plan.append(("post", label, "POST", "/boot/v1/bootparameters", {}, handle.read()))
    for label in PUT_LABELS:
        with open(os.path.join(golden_dir, "requests", label + ".json"), "rb") as handle:
            plan.append(("put", label, "PUT", "/boot/v1/bootparameters", {}, handle.read()))
    with open(os.path.join(golden_dir, "requests", "01_hosts_xnames.json"), "rb") as handle:
        plan.append(("post", "dup_01_hosts_xnames", "POST", "/boot/v1/bootparameters", {}, handle.read()))
    get_dir = os.path.join(golden_dir, backend, "get")
    for stem, query in sorted(BOOTPARAMETER_QUERIES.items()):
        plan.append(("get", stem + ".json", "GET", "/boot/v1/bootparameters" + query, {}, None))
    for name in sorted(os.listdir(get_dir)):
        if name.startswith("bootscript_"):
            with open(os.path.join(get_dir, name), encoding="utf-8") as handle:
                target = handle.readline().split(" ", 2)[2].strip()
            plan.append(("get", name, "GET", target, {}, None))
    for stem, (path, address) in sorted(CLOUD_INIT.items()):
        plan.append(("get", stem + ".json", "GET", path, {"X-Forwarded-For": address}, None))
    for stem, path in SERVICE_PATHS.items():
        plan.append(("get", stem + ".json", "GET", path, {}, None))
    return plan


def run_replay(base_url, golden_dir, backend):
    """Execute the plan; returns {"post/<label>.json" | "put/..." | "get/<file>": response}."""
    results = {}
    for kind, label, method, path, headers, body in replay_plan(golden_dir, backend):
        key = f"{kind}/{label}" if kind == "get" else f"{kind}/{label}.json"
        results[key] = request(base_url, method, path, body, headers)
    return results


def token_map(golden_dir, backend, results):
    """Map golden and observed referral tokens to the same placeholder <TOKEN:kind/label>."""
    mapping = {}
    for kind in ("post", "put"):
        for name in os.listdir(os.path.join(golden_dir, backend, kind)):
            with open(os.path.join(golden_dir, backend, kind, name), encoding="utf-8") as handle:
                golden = json.load(handle)
            placeholder = f"<TOKEN:{kind}/{name}>"
            token = golden.get("headers", {}).get("Bss-Referral-Token")
            if token:
                mapping[token] = placeholder
            ours = results.get(f"{kind}/{name}", {}).get("headers", {}).get("Bss-Referral-Token")
            if ours:
                mapping[ours] = placeholder
    return mapping


def normalise_text(text, tokens):
    for token, placeholder in tokens.items():
        text = text.replace(token, placeholder)
    text = re.sub(r"ts=\d+", "ts=<TS>", text)
    return text


def normalise_json(value, tokens):
    """Tokens, epochs and random instance-id suffixes inside decoded JSON."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "last_epoch" and isinstance(item, int):
                out[key] = "<EPOCH>"
            elif key == "instance-id" and isinstance(item, str):
                out[key] = re.sub(r"-[0-9a-f]{12}$", "-<RAND>", item)
            else:
                out[key] = normalise_json(item, tokens)
        return out
    if isinstance(value, list):
        return [normalise_json(item, tokens) for item in value]
    if isinstance(value, str):
        return normalise_text(value, tokens)
    return value


def canonical_set(entries):
    """Order-insensitive form of a postgres GET-all body (entries and their identifier lists)."""
    def canon(entry):
        entry = dict(entry)
        for key in ("hosts", "macs", "nids"):
            if key in entry:
                entry[key] = sorted(entry[key], key=str)
        return json.dumps(entry, sort_keys=True)
    return sorted(canon(entry) for entry in entries or [])


def parse_script_file(path):
    """A golden bootscript transcript: (request line, status, body text)."""
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    first, second, body = text.split("\n", 2)
    status = second.split(":", 1)[1].strip()
    return first[2:], (status if status == NO_RESPONSE else int(status)), body


def etcd_golden_decoded(golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcd_decoded.json"), encoding="utf-8") as handle:
        return json.load(handle)


def etcd_golden_from_json_dump(golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcdctl_get_prefix_json.json"), encoding="utf-8") as handle:
        dump = json.load(handle)
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode() for kv in dump["kvs"]}


def etcd_golden_from_plain(golden_dir):
    with open(os.path.join(golden_dir, "etcd", "raw", "etcdctl_get_prefix_plain.txt"), encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return dict(zip(lines[0::2], lines[1::2]))


def normalise_etcd(kvs, tokens):
    out = {}
    for key, value in kvs.items():
        if key.startswith("/endpoint-access/"):
            value = "<EPOCH>" if value.isdigit() else value
        elif key == "/bss/etcdTest":
            value = "<0-254>" if value.isdigit() and 0 <= int(value) <= 254 else value
        out[key] = normalise_text(value, tokens)
    return out


def normalise_tables(tables):
    """Replace row ids by content references so two runs' rows compare equal; returns sorted lists."""
    configs = {row["id"]: (row["kernel_uri"], row["initrd_uri"], row["cmdline"]) for row in tables["boot_configs"]}
    groups = {row["id"]: row for row in tables["boot_groups"]}
    nodes = {row["id"]: (row["boot_mac"], row["xname"], row["nid"]) for row in tables["nodes"]}
    out = {
        "boot_configs": sorted(configs.values()),
        "boot_groups": sorted((configs.get(row["boot_config_id"]), row["name"], row["description"])
                              for row in tables["boot_groups"]),
        "nodes": sorted(nodes.values()),
        "boot_group_assignments": sorted((groups[row["boot_group_id"]]["name"] if row["boot_group_id"] in groups else None,
                                          nodes.get(row["node_id"])) for row in tables["boot_group_assignments"]),
        "endpoint_access": sorted((row["name"], row["endpoint"]) for row in tables["endpoint_access"]),
        "schema_migrations": [(row["version"], row["dirty"]) for row in tables["schema_migrations"]],
    }
    ids_ok = all(UUID_RE.fullmatch(row["id"]) for name in ("boot_configs", "boot_groups", "nodes") for row in tables[name])
    return out, ids_ok


def parse_inserts(path):
    """Rows of a pg_dump --inserts file: {table: [tuple of values]}; values are SQL literals decoded."""
    rows = {}
    pattern = re.compile(r"^INSERT INTO public\.(\w+) VALUES \((.*)\);$")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = pattern.match(line.strip())
            if match:
                values = [m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2).strip()
                          for m in re.finditer(r"'((?:[^']|'')*)'|([^,'\s][^,]*)", match.group(2))]
                rows.setdefault(match.group(1), []).append(values)
    return rows
