"""A synthetic HPC cluster for the lab: SMD nodes and the etcd records an etcd-mode BSS holds for them.

``generate_nodes`` builds nodes in the SMD double's node-file format (a JSON list of
``{"xname", "nid", "role", "subrole"?, "macs", "ip", "state", "enabled", "endpoint", "groups"}``),
laid out like a CSM site: compute blades in liquid-cooled cabinets ``x1000``... (chassis c0-c7,
slots s0-s7, two BMCs with two nodes each, 256 nodes a cabinet) and service nodes (management,
UAN, gateway, LNet router, storage) in air-cooled river cabinets ``x3000``... (``c0s<U>b0n0``).

``etcd_records`` returns every key an etcd-mode BSS would hold for those nodes, in every value
shape real sites carry (bss-spec.md section 2), ``api_payloads`` the requests that create the
API-expressible part through a live BSS, and ``load_etcd`` writes raw records in transactions.
Everything is deterministic for a given seed and linear in the number of nodes.
"""

import json
import random
import re
import uuid

XNAME_NODE_RE = re.compile(r"^x([0-9]{1,4})c([0-7])s([0-9]+)b([0-9]+)n([0-9]+)$")
IMAGE_SERVER = "http://10.1.0.1/boot"
VENDOR_OUIS = ("a4:bf:01", "b4:2e:99", "ec:0d:9a", "98:03:9b", "00:40:a6", "b8:59:9f")
MAX_NODES = 1000000
EPOCH_BASE = 1763000000

# name -> (kernel, initrd or "", node params, image params for the kernel record)
IMAGES = {
    "compute": (f"{IMAGE_SERVER}/compute/vmlinuz-6.1.0-25", f"{IMAGE_SERVER}/compute/initramfs-6.1.0-25.img",
                "console=ttyS0,115200 ip=dhcp rd.neednet=1 root=live:http://10.1.0.1/boot/compute/rootfs-6.1.squashfs", ""),
    "gpu": (f"{IMAGE_SERVER}/gpu/vmlinuz-6.1.0-25-gpu", f"{IMAGE_SERVER}/gpu/initramfs-6.1.0-25-gpu.img",
            "console=ttyS0,115200 ip=dhcp rd.neednet=1 root=live:http://10.1.0.1/boot/gpu/rootfs-6.1-cuda.squashfs",
            "nvidia-drm.modeset=1"),
    "uan": (f"{IMAGE_SERVER}/uan/vmlinuz-5.14.0-427", f"{IMAGE_SERVER}/uan/initramfs-5.14.0-427.img",
            "console=tty0 console=ttyS0,115200 ip=dhcp rd.neednet=1 root=live:http://10.1.0.1/boot/uan/rootfs-5.14.squashfs", ""),
    "service": (f"{IMAGE_SERVER}/service/vmlinuz-5.14.0-427", f"{IMAGE_SERVER}/service/initramfs-5.14.0-427.img",
                "console=ttyS0,115200 ip=dhcp rd.neednet=1 root=live:http://10.1.0.1/boot/service/rootfs.squashfs", ""),
    "rescue": (f"{IMAGE_SERVER}/rescue/vmlinuz-rescue", "", "console=ttyS0,115200 rescue", ""),
    "legacy": (f"{IMAGE_SERVER}/legacy/vmlinuz-4.18.0-305", f"{IMAGE_SERVER}/legacy/initrd-4.18.0-305.img",
               "console=ttyS0,115200 ip=dhcp root=live:http://10.1.0.1/boot/legacy/rootfs-4.18.squashfs", ""),
    "default": (f"{IMAGE_SERVER}/default/vmlinuz-default", f"{IMAGE_SERVER}/default/initramfs-default.img",
                "console=ttyS0,115200 ip=dhcp", ""),
}
ROLE_IMAGE = {"Compute": "compute", "Application": "uan"}

# Fractions are of all nodes (one shape a node, drawn in this order); counts are absolute.
DEFAULT_SHAPES = {
    "own_record": 0.62, "cloud_init": 0.05, "legacy_token": 0.05, "no_token": 0.03,
    "raw_mac_record": 0.03, "nid_record": 0.02,
    "by_mac": 0.15, "by_nid": 0.10, "kernel_only": 0.03,
    "unknown_macs": 3, "unknown_nids": 2, "endpoint_access": 0.5,
    "role_records": True, "default_record": True, "global_record": True, "subrole_record": True,
    "image_params": True,
}
NODE_SHAPES = ("own_record", "cloud_init", "legacy_token", "no_token", "raw_mac_record", "nid_record")
RAW_ONLY_SHAPES = ("legacy_token", "no_token", "raw_mac_record", "nid_record")
EMPTY_PHONE_HOME = {"pub_key_dsa": "", "pub_key_rsa": "", "pub_key_ecdsa": "", "instance_id": "", "hostname": "", "fqdn": ""}


class ClusterError(ValueError):
    """Bad generator input: the message names the field and the value."""


# ---------------------------------------------------------------------------------------------
# SMD nodes


def _service_plan(count):
    """(role, subrole or None, groups, how many) for the service nodes of a cluster of ``count``."""
    if count < 4:
        return []
    if count < 16:
        return [("Application", "UAN", ["login"], 1)]
    big = count >= 64
    return [
        ("Management", "Master", ["management"], 3 if big else 1),
        ("Management", "Worker", ["management"], max(2 if big else 1, count // 400)),
        ("Management", "Storage", ["management"], 3 if big else 0),
        ("Application", "UAN", ["login"], max(1, count // 100)),
        ("Application", "Gateway", ["gateway"], 1 if big else 0),
        ("Application", "LNETRouter", ["lnet"], count // 1000),
        ("Storage", None, ["storage"], max(1, count // 250)),
    ]


def _compute_xnames():
    cabinet = 1000
    while True:
        for chassis in range(8):
            for slot in range(8):
                for bmc in range(2):
                    for node in range(2):
                        yield f"x{cabinet}c{chassis}s{slot}b{bmc}n{node}", slot
        cabinet += 1


def _service_xnames():
    cabinet = 3000
    while True:
        for slot in range(1, 41):
            yield f"x{cabinet}c0s{slot}b0n0"
        cabinet += 1


def _ipv4(base, index):
    value = base + index
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


class _MacAllocator:
    """Unique MACs under one vendor OUI: a bijective scramble of a 24-bit counter."""

    def __init__(self, rng):
        self.oui = rng.choice(VENDOR_OUIS)
        self.offset = rng.getrandbits(24)
        self.counter = 0

    def next(self):
        if self.counter >= 1 << 24:
            raise ClusterError(f"macs: more than {1 << 24} MACs requested under OUI {self.oui}")
        value = (self.counter * 0x9E3779 + self.offset) & 0xFFFFFF
        self.counter += 1
        return f"{self.oui}:{value >> 16:02x}:{value >> 8 & 255:02x}:{value & 255:02x}"


def generate_nodes(count, seed=0, two_mac_fraction=0.1, off_fraction=0.02, no_endpoint_fraction=0.0):
    """``count`` SMD nodes, deterministic for ``seed``.

    Compute nodes get NIDs 1..n, service nodes NIDs above ``max(100000, n)``. Service nodes
    always have two MACs, compute nodes with probability ``two_mac_fraction``; the first MAC is the
    boot MAC. ``off_fraction`` of nodes are in state ``Off`` (BSS does not care), and
    ``no_endpoint_fraction`` have no ComponentEndpoint (``"endpoint": false``: unknown to BSS).
    Groups: compute, gpu (compute nodes in slot 7 of every chassis), login, gateway, lnet,
    storage, management.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1 or count > MAX_NODES:
        raise ClusterError(f"count: expected an integer from 1 to {MAX_NODES}, got {count!r}")
    for field, value in (("two_mac_fraction", two_mac_fraction), ("off_fraction", off_fraction),
                         ("no_endpoint_fraction", no_endpoint_fraction)):
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ClusterError(f"{field}: expected a fraction from 0 to 1, got {value!r}")
    rng = random.Random(seed)
    macs = _MacAllocator(rng)
    service = _service_plan(count)
    n_service = sum(entry[3] for entry in service)
    n_compute = count - n_service
    nodes = []
    for index, (xname, slot) in zip(range(n_compute), _compute_xnames()):
        groups = ["compute", "gpu"] if slot == 7 else ["compute"]
        nodes.append(_node(xname, index + 1, "Compute", None, groups, _ipv4(0x0A640000, index + 1),
                           rng.random() < two_mac_fraction, macs, rng, off_fraction, no_endpoint_fraction))
    locations = _service_xnames()
    nid = max(100000, n_compute)
    for role, subrole, groups, how_many in service:
        for _number in range(how_many):
            nid += 1
            nodes.append(_node(next(locations), nid, role, subrole, groups, _ipv4(0x0A010000, nid - 99999),
                               True, macs, rng, off_fraction, no_endpoint_fraction))
    return nodes


def _node(xname, nid, role, subrole, groups, ip, two_macs, macs, rng, off_fraction, no_endpoint_fraction):
    node = {"xname": xname, "nid": nid, "role": role}
    if subrole:
        node["subrole"] = subrole
    node["macs"] = [macs.next(), macs.next()] if two_macs else [macs.next()]
    node["ip"] = ip
    node["state"] = "Off" if rng.random() < off_fraction else "Ready"
    node["enabled"] = True
    node["endpoint"] = not rng.random() < no_endpoint_fraction
    node["groups"] = list(groups)
    return node


# ---------------------------------------------------------------------------------------------
# etcd value shapes


def image_hash(path):
    """BSS's etcd image key: 64-bit FNV-1a of the UTF-8 bytes, 16 lower-case hex digits."""
    value = 0xcbf29ce484222325
    for byte in path.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def go_json(value, sort_keys=True):
    """JSON as Go's encoding/json writes it: compact, UTF-8, HTML characters escaped, map keys sorted."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def image_value(path, params=""):
    """``/kernel/<h>`` or ``/initrd/<h>`` value: ``{"path":...}`` plus ``"params"`` when set."""
    body = '{"path":' + go_json(path)
    if params:
        body += ',"params":' + go_json(params)
    return (body + "}").encode("utf-8")


def cloud_init_json(meta_data=None, user_data=None, phone_home=None):
    """The ``cloud-init`` object exactly as BSS stores it (meta-data/user-data are Go maps: sorted)."""
    phone = dict(EMPTY_PHONE_HOME, **(phone_home or {}))
    parts = [go_json(phone.get(key, "")) for key in ("pub_key_dsa", "pub_key_rsa", "pub_key_ecdsa")]
    text = '{"pub_key_dsa":%s,"pub_key_rsa":%s,"pub_key_ecdsa":%s' % tuple(parts)
    if phone.get("pub_key_ed25519"):
        text += ',"pub_key_ed25519":' + go_json(phone["pub_key_ed25519"])
    text += ',"instance_id":%s,"hostname":%s,"fqdn":%s}' % tuple(go_json(phone[key]) for key in ("instance_id", "hostname", "fqdn"))
    return ('{"meta-data":%s,"user-data":%s,"phone-home":%s}'
            % (go_json(meta_data) if meta_data is not None else "null",
               go_json(user_data) if user_data is not None else "null", text))


def params_value(params="", kernel="", initrd="", cloud_init=None, token="", token_style="current"):
    """A ``/params/<name>`` value (bss-spec.md 2.3); ``kernel``/``initrd`` are image paths.

    ``token_style``: ``current`` writes ``"referral-token"`` (omitted when empty, v1.32.1+),
    ``legacy`` writes ``"ReferralToken"`` last, even when empty (v1.15.0-v1.32.0), ``none``
    writes no token key (records from before 2022).
    """
    parts = []
    if params:
        parts.append('"params":' + go_json(params))
    if kernel:
        parts.append('"kernel":' + go_json("/kernel/" + image_hash(kernel)))
    if initrd:
        parts.append('"initrd":' + go_json("/initrd/" + image_hash(initrd)))
    parts.append('"cloud-init":' + cloud_init_json(**(cloud_init or {})))
    if token_style == "current":
        if token:
            parts.append('"referral-token":' + go_json(token))
    elif token_style == "legacy":
        parts.append('"ReferralToken":' + go_json(token))
    elif token_style != "none":
        raise ClusterError(f"token_style: expected current, legacy or none, got {token_style!r}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Which node gets which shape


def _check_shapes(shapes):
    merged = dict(DEFAULT_SHAPES)
    for key, value in (shapes or {}).items():
        if key not in DEFAULT_SHAPES:
            raise ClusterError(f"shapes: unknown shape {key!r} (known: {', '.join(sorted(DEFAULT_SHAPES))})")
        merged[key] = value
    for key, default in DEFAULT_SHAPES.items():
        value = merged[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ClusterError(f"shapes.{key}: expected true or false, got {value!r}")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ClusterError(f"shapes.{key}: expected a count >= 0, got {value!r}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise ClusterError(f"shapes.{key}: expected a fraction from 0 to 1, got {value!r}")
    total = sum(merged[key] for key in NODE_SHAPES)
    if total > 1.0 + 1e-9:
        raise ClusterError(f"shapes: node shape fractions {', '.join(NODE_SHAPES)} add up to {total:g} > 1")
    return merged


def _node_image(node):
    if node["role"] == "Compute":
        return "gpu" if "gpu" in node.get("groups", ()) else "compute"
    if node["role"] == "Application":
        return "uan"
    return "service"


def _token(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Batch:
    """One request's worth of nodes: same shape, same boot parameters, one referral token."""

    def __init__(self, shape, method, image, params, token, cloud_init=None):
        self.shape, self.method, self.image, self.params = shape, method, image, params
        self.token, self.cloud_init, self.nodes = token, cloud_init, []


def _plan(nodes, seed, shapes):
    """Assign every node a shape and group nodes into request-sized batches (pure, linear)."""
    rng = random.Random(f"etcd-records-{seed}")
    cuts, acc = [], 0.0
    for key in NODE_SHAPES:
        acc += shapes[key]
        cuts.append((acc, key))
    batches, open_batches = [], {}
    limits = {"hosts": 100, "macs": 50, "nids": 50}
    # Unless every node is meant to have a record, the first node of each role/subrole has none,
    # so role-record and Default fallbacks are always exercised.
    # The next compute nodes get one of each node shape asked for, so even a small cluster shows them all.
    fallback_kinds = None if acc >= 1.0 - 1e-9 else set()
    forced = [key for key in NODE_SHAPES if shapes[key] > 0]
    for index, node in enumerate(nodes):
        draw = rng.random()
        shape = next((key for cut, key in cuts if draw < cut), None)
        kind = (node["role"], node.get("subrole"))
        if fallback_kinds is not None and kind not in fallback_kinds:
            fallback_kinds.add(kind)
            shape = None
        elif forced and node["role"] == "Compute":
            shape = forced.pop(0)
        if shape is None:
            continue
        image = _node_image(node)
        if shape in ("legacy_token", "no_token"):
            image = "legacy"
        elif shape == "own_record" and rng.random() < shapes["kernel_only"]:
            image = "rescue"
        params = IMAGES[image][2]
        if shape == "own_record" and index % 16 == 5:
            params += " crashkernel=512M"
        method = "hosts"
        if shape == "own_record":
            draw = rng.random()
            method = "macs" if draw < shapes["by_mac"] else "nids" if draw < shapes["by_mac"] + shapes["by_nid"] else "hosts"
        if shape == "cloud_init":
            batch = _Batch(shape, "hosts", image, params, _token(rng), _node_cloud_init(node, index))
            batch.nodes.append(node)
            batches.append(batch)
            continue
        key = (shape, method, image, params)
        batch = open_batches.get(key)
        if batch is None or len(batch.nodes) >= limits[method]:
            batch = open_batches[key] = _Batch(shape, method, image, params, _token(rng))
            batches.append(batch)
        batch.nodes.append(node)
    return batches, rng


def _node_cloud_init(node, index):
    meta = {"instance-type": node["role"].lower(), "rack": node["xname"].split("c", 1)[0]}
    user = {"runcmd": [f"echo booted {node['xname']} > /etc/motd"], "timezone": "UTC"}
    phone = None
    if index % 2:
        phone = {"pub_key_rsa": f"ssh-rsa AAAAB3NzaC1yc2E{index:08d} root@{node['xname']}",
                 "pub_key_ed25519": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{index:08d} root@{node['xname']}",
                 "instance_id": f"{node['xname']}-{index:012x}", "hostname": node["xname"],
                 "fqdn": f"{node['xname']}.hpc.example.org"}
    return {"meta_data": meta, "user_data": user, "phone_home": phone}


def _unknown_macs(count, rng):
    """MACs under a locally administered prefix no SMD node uses, in mixed case as operators type them."""
    result = []
    for number in range(count):
        octets = ["0a", f"b{rng.getrandbits(4):x}", "2c", f"{number >> 8 & 255:02x}", f"{number & 255:02x}", f"e{rng.getrandbits(4):x}"]
        result.append(":".join(octet.upper() if position % 2 else octet for position, octet in enumerate(octets)))
    return result


def _tag_records(nodes, shapes):
    """(name, params, image, cloud-init) of the Default, role, Global and SubRole records asked for."""
    roles = {node["role"] for node in nodes}
    subroles = {node.get("subrole") for node in nodes}
    records = []
    if shapes["default_record"]:
        records.append(("Default", IMAGES["default"][2], "default", None))
    if shapes["role_records"]:
        for role in sorted(ROLE_IMAGE):
            if role in roles:
                records.append((role, IMAGES[ROLE_IMAGE[role]][2], ROLE_IMAGE[role], None))
    if shapes["global_record"]:
        records.append(("Global", "", None, {"meta_data": {"cluster-name": "hpclab", "ntp-servers": ["10.1.0.1"]},
                                             "user_data": {"runcmd": ["echo global"]}}))
    if shapes["subrole_record"] and "UAN" in subroles:
        records.append(("UAN", "", None, {"meta_data": {"motd": "Welcome to the login nodes <hpclab>"},
                                          "user_data": {"packages": ["tmux", "vim"]}}))
    return records


def _image_params(shapes):
    """(kernel path, params) of kernel image records that carry their own params."""
    if not shapes["image_params"]:
        return []
    return [(IMAGES[name][0], IMAGES[name][3]) for name in IMAGES if IMAGES[name][3]]


# ---------------------------------------------------------------------------------------------
# Public: records, payloads, loading


def etcd_records(nodes, seed=0, shapes=None, include_api_shapes=True):
    """Every etcd key -> value (bytes) an etcd-mode BSS holds for ``nodes``.

    ``shapes`` overrides entries of ``DEFAULT_SHAPES``. Node shapes (fractions of all nodes; a
    node gets at most one, the rest have no record of their own and boot from their role record
    or ``Default``):

    - ``own_record``: ``/params/<xname>``, current shape with ``"referral-token"`` (API). Of these,
      ``by_mac``/``by_nid`` are written by MAC/NID in ``api_payloads`` (same stored shape) and
      ``kernel_only`` boot a kernel without initrd (no ``"initrd"`` key).
    - ``cloud_init``: own record carrying meta-data/user-data; every second one also phone-home
      data with ``pub_key_ed25519`` (API, one request each).
    - ``legacy_token``: own record with ``"ReferralToken":"<uuid>"`` (every fourth ``""``) as last key,
      legacy image (raw only: BSS v1.15-v1.32.0 wrote it).
    - ``no_token``: own record without any token key, legacy image (raw only: before 2022).
    - ``raw_mac_record``: ``/params/<boot MAC>`` for an SMD-known MAC, no xname record; BSS finds it
      only as second choice for ``?mac=`` (raw only: today's BSS maps known MACs to the xname).
    - ``nid_record``: ``/params/nid<N>`` for an SMD-known NID, no xname record (raw only).

    Counts: ``unknown_macs`` records named by MACs SMD does not know, mixed case kept (API, POST
    by macs); ``unknown_nids`` records ``nid<N>`` for NIDs SMD does not know (API). Flags:
    ``default_record`` (``/params/Default``), ``role_records`` (``/params/Compute``,
    ``/params/Application``; Storage and Management nodes fall back to Default),
    ``global_record`` (``/params/Global``, cloud-init only), ``subrole_record`` (``/params/UAN``,
    cloud-init only), ``image_params`` (GPU kernel record with its own params), all API via PUT.
    ``endpoint_access`` (fraction of nodes): ``/endpoint-access/<xname>/bootscript`` epochs
    (raw only). Image records ``/kernel/<fnv>``/``/initrd/<fnv>`` exist for every image referenced.

    ``include_api_shapes=False`` returns only the raw-only records (and the image records they
    point at, with the same values the API path writes) so that ``api_payloads`` + these equal
    the full set apart from referral tokens.
    """
    shapes = _check_shapes(shapes)
    batches, rng = _plan(nodes, seed, shapes)
    records, images = {}, {}
    image_params = dict(_image_params(shapes))

    def use_image(name):
        kernel, initrd = IMAGES[name][0], IMAGES[name][1]
        images[f"/kernel/{image_hash(kernel)}"] = image_value(kernel, image_params.get(kernel, ""))
        if initrd:
            images[f"/initrd/{image_hash(initrd)}"] = image_value(initrd)
        return kernel, initrd

    for batch in batches:
        if batch.shape not in RAW_ONLY_SHAPES and not include_api_shapes:
            continue
        kernel, initrd = use_image(batch.image)
        for position, node in enumerate(batch.nodes):
            token, style, name = batch.token, "current", node["xname"]
            if batch.shape == "legacy_token":
                style = "legacy"
                token = "" if position % 4 == 3 else token
            elif batch.shape == "no_token":
                style = "none"
            elif batch.shape == "raw_mac_record":
                name = node["macs"][0]
            elif batch.shape == "nid_record":
                name = f"nid{node['nid']}"
            records[f"/params/{name}"] = params_value(batch.params, kernel, initrd, batch.cloud_init, token, style)
    if include_api_shapes:
        for name, params, image, cloud_init in _tag_records(nodes, shapes):
            kernel, initrd = use_image(image) if image else ("", "")
            records[f"/params/{name}"] = params_value(params, kernel, initrd, cloud_init, _token(rng))
        orphans = _unknown_macs(shapes["unknown_macs"], rng) + [f"nid{nid}" for nid in _unknown_nids(nodes, shapes)]
        for name in orphans:
            kernel, initrd = use_image("rescue")
            records[f"/params/{name}"] = params_value(IMAGES["rescue"][2], kernel, initrd, None, _token(rng))
    access = {}
    epochs = random.Random(f"endpoint-access-{seed}")
    for node in nodes:
        if epochs.random() < shapes["endpoint_access"]:
            access[f"/endpoint-access/{node['xname']}/bootscript"] = str(EPOCH_BASE + epochs.randrange(604800)).encode("ascii")
    result = dict(sorted(images.items()))
    result.update(records)
    result.update(access)
    return result


def _unknown_nids(nodes, shapes):
    top = max((node["nid"] for node in nodes), default=0)
    return [top + 900001 + number for number in range(shapes["unknown_nids"])]


def api_payloads(nodes, seed=0, shapes=None):
    """``(method, body)`` requests to ``/boot/v1/bootparameters`` creating the API-expressible records.

    PUT for ``Default``, role, ``Global`` and ``UAN`` records (POST rejects non-xname hosts), POST
    by ``hosts``, ``macs`` (some upper-cased: BSS maps SMD-known MACs to the xname
    case-insensitively) and ``nids``, POST for MACs/NIDs SMD does not know, and finally kernel-only
    PUTs that give image records their own params. Same ``seed``/``shapes`` as ``etcd_records``.
    """
    shapes = _check_shapes(shapes)
    batches, rng = _plan(nodes, seed, shapes)
    payloads = []
    for name, params, image, cloud_init in _tag_records(nodes, shapes):
        body = {"hosts": [name]}
        _add_boot(body, params, image, cloud_init)
        payloads.append(("PUT", body))
        _token(rng)
    for batch in batches:
        if batch.shape in RAW_ONLY_SHAPES:
            continue
        if batch.method == "macs":
            body = {"macs": [node["macs"][0].upper() if position % 3 == 0 else node["macs"][0]
                             for position, node in enumerate(batch.nodes)]}
        elif batch.method == "nids":
            body = {"nids": [node["nid"] for node in batch.nodes]}
        else:
            body = {"hosts": [node["xname"] for node in batch.nodes]}
        _add_boot(body, batch.params, batch.image, batch.cloud_init)
        payloads.append(("POST", body))
    unknown_macs = _unknown_macs(shapes["unknown_macs"], rng)
    if unknown_macs:
        body = {"macs": unknown_macs}
        _add_boot(body, IMAGES["rescue"][2], "rescue", None)
        payloads.append(("POST", body))
    unknown_nids = _unknown_nids(nodes, shapes)
    if unknown_nids:
        body = {"nids": unknown_nids}
        _add_boot(body, IMAGES["rescue"][2], "rescue", None)
        payloads.append(("POST", body))
    for kernel, params in _image_params(shapes):
        payloads.append(("PUT", {"params": params, "kernel": kernel}))
    return payloads


def _add_boot(body, params, image, cloud_init):
    if params:
        body["params"] = params
    if image:
        kernel, initrd = IMAGES[image][0], IMAGES[image][1]
        body["kernel"] = kernel
        if initrd:
            body["initrd"] = initrd
    if cloud_init:
        body["cloud-init"] = {"meta-data": cloud_init.get("meta_data"), "user-data": cloud_init.get("user_data"),
                              "phone-home": dict(EMPTY_PHONE_HOME, **(cloud_init.get("phone_home") or {}))}


def load_etcd(client_or_url, records, ops_per_txn=128, max_txn_bytes=1 << 20):
    """Write ``records`` (key -> bytes or str) as raw etcd keys, in transactions; returns the count.

    ``client_or_url`` is an ``etcd3`` client or ``http://host:port``. Transactions hold at most
    ``ops_per_txn`` puts (etcd's default --max-txn-ops is 128) and about ``max_txn_bytes``.
    """
    import etcd3  # pylint: disable=import-outside-toplevel

    client, own = client_or_url, False
    if isinstance(client_or_url, str):
        match = re.match(r"^(?:https?://)?([^:/]+):(\d+)/?$", client_or_url)
        if not match:
            raise ClusterError(f"client_or_url: expected http://host:port, got {client_or_url!r}")
        client, own = etcd3.client(host=match.group(1), port=int(match.group(2)), timeout=30), True
    try:
        ops, size, written = [], 0, 0
        for key, value in records.items():
            value = value.encode("utf-8") if isinstance(value, str) else value
            if ops and (len(ops) >= ops_per_txn or size + len(key) + len(value) > max_txn_bytes):
                client.transaction(compare=[], success=ops, failure=[])
                written += len(ops)
                ops, size = [], 0
            ops.append(client.transactions.put(key, value))
            size += len(key) + len(value)
        if ops:
            client.transaction(compare=[], success=ops, failure=[])
            written += len(ops)
        return written
    finally:
        if own:
            client.close()
