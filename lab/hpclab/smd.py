"""A small State Manager (SMD / HSM v2) double serving a fixed node set, with real SMD's JSON shapes.

Run it with ``python -m hpclab.smd --nodes FILE [--port N] [--token T]`` or, from Python,
``start_smd(nodes_path)`` (a child process on a free 127.0.0.1 port; ``service.url`` is the base URL
without ``/hsm/v2``, i.e. what BSS expects in ``HSM_URL``).

Node file: a JSON list of objects, one per node::

    {"xname": "x3000c0s1b0n0",        required, the component ID
     "nid": 1,                        required, integer
     "role": "Compute",               required
     "subrole": "UAN",                optional
     "mac": "a4:bf:01:3e:1f:a0",      a string, or
     "macs": ["..", ".."],            a list (the first is the boot MAC)
     "ip": "10.1.1.1",                optional, put on the first (boot) MAC's EthernetInterface
     "state": "Ready",                optional, default "Ready"
     "enabled": true,                 optional, default true (Component.Enabled)
     "endpoint": true,                optional, default true; false = no ComponentEndpoint, which makes
                                      the node "unknown" to BSS (EndpointEnabled=false)
     "endpoint_enabled": true,        optional, default true (ComponentEndpoint.Enabled)
     "groups": ["compute"],           optional, SMD group labels
     "arch": "X86",                   optional, default "X86"
     "class": "River"}                optional, default "River"

Served (GET only): ``/hsm/v2/State/Components`` (filters type, id, role, subrole, state, nid),
``/hsm/v2/State/Components/{xname}``, ``/hsm/v2/Inventory/EthernetInterfaces`` (ComponentID,
MACAddress, IPAddress, type), ``/hsm/v2/Inventory/ComponentEndpoints`` (type),
``/hsm/v2/Inventory/RedfishEndpoints``, ``/hsm/v2/groups[/{label}]``, ``/hsm/v2/memberships[/{xname}]``,
``/hsm/v2/service/values/class``, ``/hsm/v2/service/ready``. MACs are served as in the file, one
EthernetInterface per MAC; the ComponentEndpoint carries no MACs of its own (as in the golden set-up),
so BSS's ``MAC`` list is exactly the file's list. With a token every request lacking
``Authorization: Bearer <token>`` gets 401.
"""

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
LAST_UPDATE = "2025-01-01T00:00:00.000000Z"
NODE_FIELDS = {"xname", "nid", "role", "subrole", "mac", "macs", "ip", "state", "enabled", "endpoint",
               "endpoint_enabled", "groups", "arch", "class"}


class NodeFileError(ValueError):
    """The node file is not valid; the message names the node, the field and the value."""


def _check(node, index, field, kind, required=False):
    if field not in node:
        if required:
            raise NodeFileError(f"node #{index}: field '{field}' is required")
        return
    value = node[field]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise NodeFileError(f"node #{index}: field '{field}' must be an integer, got {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise NodeFileError(f"node #{index}: field '{field}' must be {kind.__name__}, got {value!r}")


def load_nodes(path):
    """Read and validate a node file; returns a list of normalised node dicts."""
    with open(path, encoding="utf-8") as handle:
        try:
            data = json.load(handle)
        except ValueError as exc:
            raise NodeFileError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise NodeFileError(f"{path}: expected a JSON list of nodes, got {type(data).__name__}")
    nodes, seen = [], set()
    for index, node in enumerate(data):
        if not isinstance(node, dict):
            raise NodeFileError(f"node #{index}: expected an object, got {node!r}")
        unknown = sorted(set(node) - NODE_FIELDS)
        if unknown:
            raise NodeFileError(f"node #{index}: unknown field(s) {', '.join(unknown)}")
        for field, kind, required in (("xname", str, True), ("nid", int, True), ("role", str, True),
                                      ("subrole", str, False), ("mac", str, False), ("macs", list, False),
                                      ("ip", str, False), ("state", str, False), ("enabled", bool, False),
                                      ("endpoint", bool, False), ("endpoint_enabled", bool, False),
                                      ("groups", list, False), ("arch", str, False), ("class", str, False)):
            _check(node, index, field, kind, required)
        if node["xname"] in seen:
            raise NodeFileError(f"node #{index}: duplicate xname {node['xname']!r}")
        seen.add(node["xname"])
        macs = list(node.get("macs") or ([node["mac"]] if node.get("mac") else []))
        for mac in macs:
            if not isinstance(mac, str) or not MAC_RE.match(mac):
                raise NodeFileError(f"node #{index} ({node['xname']}): invalid MAC {mac!r}")
        nodes.append({
            "xname": node["xname"], "nid": node["nid"], "role": node["role"], "subrole": node.get("subrole", ""),
            "macs": macs, "ip": node.get("ip", ""), "state": node.get("state", "Ready"),
            "enabled": node.get("enabled", True), "endpoint": node.get("endpoint", True),
            "endpoint_enabled": node.get("endpoint_enabled", True), "groups": list(node.get("groups", [])),
            "arch": node.get("arch", "X86"), "class": node.get("class", "River")})
    return nodes


def component_json(node):
    """hms-base Component: ID and Type always, the rest omitted when empty."""
    comp = {"ID": node["xname"], "Type": "Node", "State": node["state"], "Flag": "OK", "Enabled": node["enabled"],
            "Role": node["role"], "SubRole": node["subrole"], "NID": node["nid"], "NetType": "Sling",
            "Arch": node["arch"], "Class": node["class"]}
    return {key: value for key, value in comp.items() if key in ("ID", "Type", "Enabled") or value not in ("", None, 0)}


def ethernet_interfaces(node):
    result = []
    for index, mac in enumerate(node["macs"]):
        ips = [{"IPAddress": node["ip"]}] if index == 0 and node["ip"] else []
        result.append({"ID": mac.replace(":", "").lower(), "Description": "", "MACAddress": mac,
                       "LastUpdate": LAST_UPDATE, "ComponentID": node["xname"], "Type": "Node", "IPAddresses": ips})
    return result


def bmc_of(xname):
    return re.sub(r"n\d+$", "", xname)


def component_endpoint(node):
    bmc = bmc_of(node["xname"])
    return {"ID": node["xname"], "Type": "Node", "Domain": "", "FQDN": "", "RedfishType": "ComputerSystem",
            "RedfishSubtype": "Physical", "UUID": "", "OdataID": "/redfish/v1/Systems/Node0",
            "RedfishEndpointID": bmc, "Enabled": node["endpoint_enabled"], "RedfishEndpointFQDN": bmc,
            "RedfishURL": f"{bmc}/redfish/v1/Systems/Node0", "ComponentEndpointType": "ComponentEndpointComputerSystem",
            "RedfishSystemInfo": {"Name": "Node0", "Actions": {}, "EthernetNICInfo": []}}


def redfish_endpoint(bmc):
    return {"ID": bmc, "Type": "NodeBMC", "Hostname": bmc, "Domain": "", "FQDN": bmc, "Enabled": True,
            "User": "root", "Password": "", "RediscoverOnUpdate": False,
            "DiscoveryInfo": {"LastDiscoveryAttempt": LAST_UPDATE, "LastDiscoveryStatus": "DiscoverOK"}}


def _not_found(detail):
    return 404, {"type": "about:blank", "title": "Not Found", "detail": detail, "status": 404}


# The full-list reads BSS makes to fill its cache (on its first boot-script request, and when told SMD changed) and
# that the cutover and the inventory plugin make: serialised once when the double starts (see SMDState.answer).
HOT_PATHS = ("/hsm/v2/State/Components?type=Node", "/hsm/v2/Inventory/ComponentEndpoints?type=Node",
             "/hsm/v2/Inventory/EthernetInterfaces?type=Node", "/hsm/v2/Inventory/EthernetInterfaces",
             "/hsm/v2/Inventory/RedfishEndpoints", "/hsm/v2/State/Components")
ANSWERS_KEPT = 4096


class SMDState:
    """The node set and the HSM v2 views of it."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.answers = {}

    def answer(self, path, query):
        """(status, serialised body) of a GET, each distinct request built once: the node set never changes, and
        building the JSON of a 10,000-node list in Python takes seconds where the real SMD answers at once (a
        lab artefact that held BSS's first boot-script request for as long)."""
        key = (path, tuple(sorted((name, tuple(values)) for name, values in query.items())))
        kept = self.answers.get(key)
        if kept is not None:
            return kept
        status, body = self.route(path, query)
        data = None if body is None else (json.dumps(body, separators=(",", ":")) + "\n").encode()
        kept = (status, data)
        if len(self.answers) < ANSWERS_KEPT:
            self.answers[key] = kept
        return kept

    def warm(self):
        """Build the answers of HOT_PATHS (in a thread when the double starts)."""
        for target in HOT_PATHS:
            parts = urlsplit(target)
            self.answer(parts.path, parse_qs(parts.query))

    def _filter(self, items, query, fields):
        for qname, getter in fields.items():
            wanted = [v for value in query.get(qname, []) for v in value.split(",") if v != ""]
            if wanted:
                low = {w.lower() for w in wanted}
                items = [item for item in items if str(getter(item)).lower() in low]
        return items

    def components(self, query):
        items = self._filter(self.nodes, query, {"type": lambda n: "Node", "id": lambda n: n["xname"],
                                                 "role": lambda n: n["role"], "subrole": lambda n: n["subrole"],
                                                 "state": lambda n: n["state"], "nid": lambda n: n["nid"]})
        return 200, {"Components": [component_json(node) for node in items]}

    def route(self, path, query):  # pylint: disable=too-many-return-statements
        """Map a GET path to (status, JSON body)."""
        if path == "/hsm/v2/State/Components":
            return self.components(query)
        if path.startswith("/hsm/v2/State/Components/"):
            xname = path.rsplit("/", 1)[1]
            for node in self.nodes:
                if node["xname"].lower() == xname.lower():
                    return 200, component_json(node)
            return _not_found("no such xname.")
        if path == "/hsm/v2/Inventory/EthernetInterfaces":
            items = [eth for node in self.nodes for eth in ethernet_interfaces(node)]
            items = self._filter(items, query, {"ComponentID": lambda e: e["ComponentID"],
                                                "MACAddress": lambda e: e["MACAddress"],
                                                "type": lambda e: e["Type"]})
            ips = [ip for value in query.get("IPAddress", []) for ip in value.split(",") if ip]
            if ips:
                items = [e for e in items if any(a["IPAddress"] in ips for a in e["IPAddresses"])]
            return 200, items
        if path == "/hsm/v2/Inventory/ComponentEndpoints":
            items = [component_endpoint(node) for node in self.nodes if node["endpoint"]]
            items = self._filter(items, query, {"type": lambda e: e["Type"], "id": lambda e: e["ID"]})
            return 200, {"ComponentEndpoints": items}
        if path == "/hsm/v2/Inventory/RedfishEndpoints":
            bmcs = sorted({bmc_of(node["xname"]) for node in self.nodes if node["endpoint"]})
            return 200, {"RedfishEndpoints": [redfish_endpoint(bmc) for bmc in bmcs]}
        if path in ("/hsm/v2/groups", "/hsm/v2/groups/labels"):
            groups = self.groups()
            if path.endswith("labels"):
                return 200, [group["label"] for group in groups]
            return 200, groups
        if path.startswith("/hsm/v2/groups/"):
            label = path.rsplit("/", 1)[1]
            for group in self.groups():
                if group["label"] == label.lower():
                    return 200, group
            return _not_found("No such group: " + label)
        if path == "/hsm/v2/memberships":
            return 200, [self.membership(node) for node in self.nodes]
        if path.startswith("/hsm/v2/memberships/"):
            xname = path.rsplit("/", 1)[1]
            for node in self.nodes:
                if node["xname"] == xname:
                    return 200, self.membership(node)
            return _not_found("No such xname: " + xname)
        if path == "/hsm/v2/service/values/class":
            return 200, {"Class": ["River", "Mountain", "Hill"]}
        if path == "/hsm/v2/service/ready":
            return 200, {"code": 0, "message": "HSM is healthy"}
        if path == "/hsm/v2/service/liveness":
            return 204, None
        return _not_found(f"no route for {path}")

    def groups(self):
        labels = {}
        for node in self.nodes:
            for label in node["groups"]:
                labels.setdefault(label.lower(), []).append(node["xname"])
        return [{"label": label, "description": "", "members": {"ids": ids}} for label, ids in sorted(labels.items())]

    @staticmethod
    def membership(node):
        return {"id": node["xname"], "groupLabels": sorted(label.lower() for label in node["groups"]), "partitionName": ""}


def make_handler(state, token):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY keep-alive clients stall ~40 ms
        # on Nagle and delayed ACKs, which Go's net/http does not do.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            sys.stderr.write("smd: %s %s\n" % (self.address_string(), format % args))

        def _send(self, status, body, ctype="application/json"):
            data = b"" if body is None else (body if isinstance(body, bytes) else
                                             (json.dumps(body, separators=(",", ":")) + "\n").encode())
            self.send_response(status)
            if data:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)

        def _authorised(self):
            if not token:
                return True
            header = self.headers.get("Authorization", "")
            return header[:7].lower() == "bearer " and header[7:].strip() == token

        def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
            if not self._authorised():
                self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8")
                return
            parts = urlsplit(self.path)
            status, body = state.answer(parts.path.rstrip("/") or "/", parse_qs(parts.query))
            self._send(status, body, "application/problem+json" if status == 404 else "application/json")

        do_HEAD = do_GET  # noqa: N815

        def _unsupported(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if not self._authorised():
                self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8")
                return
            self._send(405, {"type": "about:blank", "title": "Method Not Allowed",
                             "detail": "the SMD double is read-only", "status": 405}, "application/problem+json")

        do_POST = do_PUT = do_PATCH = do_DELETE = _unsupported  # noqa: N815

    return Handler


def serve(nodes_path, port=0, token=None, host="127.0.0.1"):
    state = SMDState(load_nodes(nodes_path))
    server = ThreadingHTTPServer((host, port), make_handler(state, token))
    server.daemon_threads = True
    threading.Thread(target=state.warm, name="warm", daemon=True).start()
    return server


def start_smd(nodes_path, workdir=None, token=None):
    """Start the SMD double as a child process on a free port; returns a ``procs.Service``."""
    from hpclab import procs  # pylint: disable=import-outside-toplevel
    nodes_path = os.path.abspath(nodes_path)
    load_nodes(nodes_path)  # fail here, with a clear message, rather than in the child
    owns_workdir = workdir is None
    workdir = workdir or procs.make_workdir("smd")
    port = procs.free_port()
    argv = [sys.executable, "-m", "hpclab.smd", "--nodes", nodes_path, "--port", str(port)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [LAB_DIR, os.environ.get("PYTHONPATH")])))
    if token:
        env["HPCLAB_SMD_TOKEN"] = token
    proc, log = procs.spawn("smd", argv, workdir, env=env)
    service = procs.Service("smd", proc.pid, port, workdir, log,
                            {"url": f"http://{procs.LOOPBACK}:{port}", "nodes": nodes_path, "token": token or ""},
                            owns_workdir=owns_workdir)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return procs._started(service, proc,  # pylint: disable=protected-access
                          lambda: _wait_ready(f"http://{procs.LOOPBACK}:{port}/hsm/v2/service/ready", headers, proc))


def _wait_ready(url, headers, proc, timeout=20.0):
    import time  # pylint: disable=import-outside-toplevel
    import urllib.request  # pylint: disable=import-outside-toplevel
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"smd exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hpclab.smd", description="SMD (HSM v2) double")
    parser.add_argument("--nodes", required=True, help="JSON node file")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=os.environ.get("HPCLAB_SMD_TOKEN"), help="required bearer token")
    args = parser.parse_args(argv)
    try:
        server = serve(args.nodes, args.port, args.token, args.host)
    except (OSError, NodeFileError) as exc:
        parser.exit(2, f"hpclab.smd: {exc}\n")
    sys.stderr.write(f"smd: listening on http://{args.host}:{server.server_address[1]}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        threading.Thread(target=server.server_close).start()


if __name__ == "__main__":
    main()
