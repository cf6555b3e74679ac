"""BSS API objects: ``BootParams`` decoding/encoding, cloud-init shapes, validation (bss-spec 1.1)."""

import json
import re

from hpclab.bss.gotext import go_map

MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9a-fA-F]{2}$")
NODE_XNAME_RE = re.compile(r"^x([0-9]{1,4})c([0-7])s([0-9]+)b([0-9]+)n([0-9]+)$")
PHONE_HOME_FIELDS = ("pub_key_dsa", "pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn")
# Loose patterns for other xname types, used only to word the "invalid xname type" error.
XNAME_TYPES = (
    (re.compile(r"^x\d{1,4}c[0-7]s\d+b\d+n\d+i\d+$"), "NodeHsnNic"),
    (re.compile(r"^x\d{1,4}c[0-7]s\d+b\d+n\d+$"), "Node"),
    (re.compile(r"^x\d{1,4}c[0-7]s\d+b\d+$"), "NodeBMC"),
    (re.compile(r"^x\d{1,4}c[0-7]s\d+$"), "ComputeModule"),
    (re.compile(r"^x\d{1,4}c[0-7]b\d+$"), "ChassisBMC"),
    (re.compile(r"^x\d{1,4}c[0-7]$"), "Chassis"),
    (re.compile(r"^x\d{1,4}$"), "Cabinet"),
)


class BadRequest(ValueError):
    """The request body cannot be used; ``str()`` is the Go-like error text."""


def empty_cloud_init():
    return {"meta-data": None, "user-data": None, "phone-home": phone_home({})}


def phone_home(data):
    data = data or {}
    out = {}
    for field in PHONE_HOME_FIELDS:
        value = data.get(field, "")
        if field == "pub_key_ed25519" and not value:
            continue
        out[field] = value
    return out


def cloud_init(data):
    """Normalise a decoded cloud-init object into Go's struct shape (maps sorted, phone-home complete)."""
    data = data or {}
    return {"meta-data": go_map(data.get("meta-data")), "user-data": go_map(data.get("user-data")),
            "phone-home": phone_home(data.get("phone-home"))}


def go_field(obj, name):
    """Go's case-insensitive JSON field matching (exact match preferred)."""
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def _type_error(value, field, gotype):
    kinds = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}
    kind = kinds.get(type(value), "value")
    if kind == "number" and gotype == "int32":
        kind = f"number {json.dumps(value)}"
    return BadRequest(f"json: cannot unmarshal {kind} into Go struct field BootParams.{field} of type {gotype}")


def go_decode_first(text):
    """``json.NewDecoder(body).Decode``: the first JSON value; trailing data is ignored."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise BadRequest("EOF")
    try:
        return json.JSONDecoder().raw_decode(stripped)[0]
    except ValueError as exc:
        if exc.pos >= len(stripped):
            raise BadRequest("unexpected EOF") from exc
        char = stripped[exc.pos]
        where = "looking for beginning of value" if exc.pos == 0 else "after object key or value"
        raise BadRequest(f"invalid character {char!r} {where}") from exc


def decode_boot_params(raw):
    """Decode a request body into a BootParams dict (hosts, macs, nids, params, kernel, initrd, cloud-init)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    obj = go_decode_first(text)
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise BadRequest(f"json: cannot unmarshal {type(obj).__name__} into Go value of type bssTypes.BootParams")
    params = {"hosts": [], "macs": [], "nids": [], "params": "", "kernel": "", "initrd": "",
              "cloud-init": empty_cloud_init()}
    for name in ("hosts", "macs"):
        value = go_field(obj, name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _type_error(value if not isinstance(value, list) else next(i for i in value if not isinstance(i, str)),
                              name, "string" if isinstance(value, list) else "[]string")
        params[name] = list(value)
    nids = go_field(obj, "nids")
    if nids is not None:
        if not isinstance(nids, list):
            raise _type_error(nids, "nids", "[]int32")
        for nid in nids:
            if isinstance(nid, bool) or not isinstance(nid, (int, float)) or int(nid) != nid or not -2**31 <= nid < 2**31:
                raise _type_error(nid, "nids", "int32")
        params["nids"] = [int(nid) for nid in nids]
    for name in ("params", "kernel", "initrd"):
        value = go_field(obj, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _type_error(value, name, "string")
        params[name] = value
    ci_value = go_field(obj, "cloud-init")
    if ci_value is not None:
        if not isinstance(ci_value, dict):
            raise _type_error(ci_value, "cloud-init", "bssTypes.CloudInit")
        params["cloud-init"] = cloud_init({"meta-data": go_field(ci_value, "meta-data"),
                                           "user-data": go_field(ci_value, "user-data"),
                                           "phone-home": go_field(ci_value, "phone-home")})
    return params


def check_macs(params):
    for mac in params["macs"]:
        if not MAC_RE.match(mac):
            raise BadRequest(f"invalid MAC address format: {mac}\n")


def xname_type(name):
    for pattern, kind in XNAME_TYPES:
        if pattern.match(name):
            return kind
    return None


def is_node_xname(name):
    return bool(NODE_XNAME_RE.match(name))


def check_xnames(params):
    for host in params["hosts"]:
        kind = xname_type(host)
        if kind is None:
            raise BadRequest(f"invalid xname: {host}")
        if kind != "Node" or not is_node_xname(host):
            raise BadRequest(f"invalid xname type: {kind}")


def boot_params_json(hosts=None, macs=None, nids=None, params="", kernel="", initrd="", cloud=None):
    """A BootParams object in Go field order, empty fields omitted, cloud-init always present."""
    out = {}
    if hosts:
        out["hosts"] = list(hosts)
    if macs:
        out["macs"] = list(macs)
    if nids:
        out["nids"] = list(nids)
    if params:
        out["params"] = params
    if kernel:
        out["kernel"] = kernel
    if initrd:
        out["initrd"] = initrd
    out["cloud-init"] = cloud if cloud is not None else empty_cloud_init()
    return out


class BootData:  # pylint: disable=too-few-public-methods
    """Resolved boot data of one host (bss-spec 1.2)."""

    def __init__(self, params="", kernel="", initrd="", kernel_params="", initrd_params="", cloud=None, token=""):
        self.params = params
        self.kernel = kernel
        self.initrd = initrd
        self.kernel_params = kernel_params
        self.initrd_params = initrd_params
        self.cloud = cloud or empty_cloud_init()
        self.token = token

    def json(self, params):
        kernel = {"path": self.kernel}
        if self.kernel_params:
            kernel["params"] = self.kernel_params
        initrd = {"path": self.initrd}
        if self.initrd_params:
            initrd["params"] = self.initrd_params
        return {"params": params, "kernel": kernel, "initrd": initrd}
