"""etcd-mode storage of the BSS double: upstream's raw key layout and write semantics (bss-spec 2).

Keys: ``/params/<name>`` (BootDataStore JSON), ``/kernel/<fnv1a>`` and ``/initrd/<fnv1a>`` (ImageData),
``/endpoint-access/<name>/<endpoint>`` (epoch text), ``/UpdateTimestamp``, ``/bss/etcdTest``. No prefix.
``mem:`` uses a process-local dict (upstream's in-memory store), which lists keys in insertion order
(upstream: random order) and holds one extra entry named after the program.
"""

import json
import random
import threading
import time
import uuid

from hpclab.bss.gotext import go_json, go_map, image_key_hash
from hpclab.bss.model import BootData, boot_params_json, cloud_init, empty_cloud_init, go_field
from hpclab.bss.script import go_parse_int


PROGRAM_NAME = "boot-script-service"


class StoreError(Exception):
    """A storage-level error; ``str()`` is upstream's message."""


class MemoryKV:
    def __init__(self):
        self.data = {PROGRAM_NAME: PROGRAM_NAME}  # upstream's in-memory store holds the program name
        self.lock = threading.Lock()

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        with self.lock:
            self.data[key] = value

    def delete(self, key):
        with self.lock:
            return self.data.pop(key, None) is not None

    def range(self, start, end):
        return [(k, v) for k, v in list(self.data.items()) if start <= k < end]


class EtcdKV:
    def __init__(self, url):
        import etcd3  # pylint: disable=import-outside-toplevel
        hostport = url.split("://", 1)[-1].rstrip("/")
        host, _colon, port = hostport.rpartition(":")
        self.client = etcd3.client(host=host or "localhost", port=int(port or 2379), timeout=5)

    def get(self, key):
        value, _meta = self.client.get(key)
        return None if value is None else value.decode("utf-8", "surrogateescape")

    def put(self, key, value):
        self.client.put(key, value.encode("utf-8", "surrogateescape"))

    def delete(self, key):
        return bool(self.client.delete(key))

    def range(self, start, end):
        return [(meta.key.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
                for value, meta in self.client.get_range(start, end, sort_order="ascend", sort_target="key")]


def record_json(params, kernel_key, initrd_key, cloud, token):
    out = {}
    if params:
        out["params"] = params
    if kernel_key:
        out["kernel"] = kernel_key
    if initrd_key:
        out["initrd"] = initrd_key
    out["cloud-init"] = cloud
    if token:
        out["referral-token"] = token
    return go_json(out)


def decode_record(raw):
    """BootDataStore JSON -> dict; None when absent or undecodable (upstream: record unusable)."""
    if raw is None:
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    return {"params": go_field(obj, "params") or "", "kernel": go_field(obj, "kernel") or "",
            "initrd": go_field(obj, "initrd") or "", "cloud-init": cloud_init(go_field(obj, "cloud-init")),
            "token": go_field(obj, "referral-token") or ""}


def decode_image(raw):
    try:
        obj = json.loads(raw) if raw else {}
    except ValueError:
        obj = {}
    return (obj.get("path") or "", obj.get("params") or "") if isinstance(obj, dict) else ("", "")


def merge_patch(target, patch):
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class EtcdBackend:  # pylint: disable=too-many-public-methods
    name = "etcd"

    def __init__(self, datastore, smd):
        self.kv = MemoryKV() if datastore.startswith("mem:") else EtcdKV(datastore)
        self.smd = smd
        self.image_lock = threading.Lock()

    # -- records ---------------------------------------------------------------------------------
    def record(self, name):
        return decode_record(self.kv.get("/params/" + name))

    def records(self):
        """Every decodable ``/params/*`` record in key order, from one range read."""
        out = []
        for key, raw in self.kv.range("/params/ ", "/params/~"):
            rec = decode_record(raw)
            if rec is not None:
                out.append((key[len("/params/"):], rec))
        return out

    def image_cache(self):
        """All image records from two range reads: {key: (path, params)}."""
        return {key: decode_image(raw) for kind in ("kernel", "initrd") for key, raw in self.images(kind)}

    def image(self, key, cache=None):
        if not key:
            return ("", "")
        if cache is not None:
            return cache.get(key, ("", ""))
        return decode_image(self.kv.get(key))

    def boot_data(self, record, cache=None):
        kernel, kernel_params = self.image(record["kernel"], cache)
        initrd, initrd_params = self.image(record["initrd"], cache)
        return BootData(record["params"], kernel, initrd, kernel_params, initrd_params, record["cloud-init"], record["token"])

    def images(self, kind):
        return self.kv.range(f"/{kind}/ ", f"/{kind}/~")  # upstream's keyMin/keyMax range

    def find_image(self, kind, path):
        for key, raw in self.images(kind):
            try:
                if json.loads(raw).get("path") == path:
                    return key
            except (ValueError, AttributeError):
                continue
        return None

    def ensure_image(self, kind, path):
        if not path:
            return ""
        with self.image_lock:
            key = self.find_image(kind, path)
            if key is None:
                key = f"/{kind}/{image_key_hash(path)}"
                self.kv.put(key, go_json({"path": path}))
        return key

    def _set_image_params(self, kind, path, params):
        with self.image_lock:
            key = self.find_image(kind, path) or f"/{kind}/{image_key_hash(path)}"
            value = {"path": path}
            if params:
                value["params"] = params
            self.kv.put(key, go_json(value))

    def _target_names(self, bp, known_only=False):
        """Record names addressed by a write (first non-empty identifier list)."""
        if bp["hosts"]:
            return list(bp["hosts"])
        if bp["macs"]:
            names = []
            for mac in bp["macs"]:
                comp = self.smd.by_mac(mac)
                if comp is not None:
                    names.append(comp["ID"])
                elif not known_only:
                    names.append(mac)
            return names
        names = []
        for nid in bp["nids"]:
            comp = self.smd.by_nid(nid)
            names.append(comp["ID"] if comp is not None else f"nid{nid}")
        return names

    # -- writes ----------------------------------------------------------------------------------
    def add(self, bp):
        """POST: create only; returns the referral token ('' when no identifiers)."""
        if bp["hosts"]:
            for host in bp["hosts"]:
                if self.kv.get("/params/" + host) is not None:
                    raise StoreError(f"Already exists: {host}")
        elif bp["macs"]:
            for mac in bp["macs"]:
                comp = self.smd.by_mac(mac)
                if comp is not None and self.kv.get("/params/" + comp["ID"]) is not None:
                    raise StoreError(f"Already exists: {mac}")
        elif bp["nids"]:
            for nid in bp["nids"]:
                comp = self.smd.by_nid(nid)
                if comp is not None and self.kv.get("/params/" + comp["ID"]) is not None:
                    raise StoreError(f"Already exists: {nid}")
        elif bp["kernel"]:
            if self.find_image("kernel", bp["kernel"]):
                raise StoreError(f"Already exists: {bp['kernel']}")
        elif bp["initrd"]:
            if self.find_image("initrd", bp["initrd"]):
                raise StoreError(f"Already exists: {bp['initrd']}")
        return self.store(bp)

    def store(self, bp):
        """PUT: create or replace; returns the referral token ('' when no identifiers)."""
        kernel_key = self.ensure_image("kernel", bp["kernel"])
        initrd_key = self.ensure_image("initrd", bp["initrd"])
        if bp["hosts"] or bp["macs"] or bp["nids"]:
            token = str(uuid.uuid4())
            value = record_json(bp["params"], kernel_key, initrd_key, bp["cloud-init"], token)
            for name in self._target_names(bp):
                self.kv.put("/params/" + name, value)
            return token
        if bp["kernel"]:
            self._set_image_params("kernel", bp["kernel"], bp["params"])
        elif bp["initrd"]:
            self._set_image_params("initrd", bp["initrd"], bp["params"])
        return ""

    def _patch_targets(self, bp):
        names = []
        for host in bp["hosts"]:
            if self.kv.get("/params/" + host) is None:
                raise StoreError(f"Error looking up {host}: Key /params/{host} does not exist")
            names.append(host)
        for mac in bp["macs"]:
            comp = self.smd.by_mac(mac)
            if comp is None:
                continue
            names.append(self._existing_or_error(comp["ID"], mac))
        for nid in bp["nids"]:
            comp = self.smd.by_nid(nid)
            if comp is None:
                continue
            names.append(self._existing_or_error(comp["ID"], f"nid{nid}"))
        return names

    def _existing_or_error(self, first, second):
        for name in (first, second):
            if self.kv.get("/params/" + name) is not None:
                return name
        raise StoreError(f"Error looking up {second}: Key /params/{second} does not exist")

    def update(self, bp):
        """PATCH."""
        kernel_key = self.ensure_image("kernel", bp["kernel"])
        initrd_key = self.ensure_image("initrd", bp["initrd"])
        targets = list(dict.fromkeys(self._patch_targets(bp)))
        if not targets:  # also when every MAC/NID given was unknown to SMD (upstream's switch)
            if bp["kernel"]:
                self._set_image_params("kernel", bp["kernel"], bp["params"])
            elif bp["initrd"]:
                self._set_image_params("initrd", bp["initrd"], bp["params"])
            return
        request_ci = bp["cloud-init"]
        for name in targets:
            rec = self.record(name)
            if rec is None:
                raise StoreError(f"Error looking up {name}: Key /params/{name} does not exist")
            new = dict(rec)
            if bp["params"] and bp["params"] != rec["params"]:
                new["params"] = bp["params"]
            if kernel_key:
                new["kernel"] = kernel_key
            if initrd_key:
                new["initrd"] = initrd_key
            cloud = dict(rec["cloud-init"])
            for part in ("meta-data", "user-data"):
                patch = request_ci.get(part)
                if isinstance(patch, dict) and patch:  # empty existing data is replaced as-is (nulls kept)
                    cloud[part] = go_map(merge_patch(cloud[part], patch) if cloud.get(part) else patch)
            if any(request_ci["phone-home"].values()):
                cloud["phone-home"] = request_ci["phone-home"]
            new["cloud-init"] = cloud
            if new != rec:
                self.kv.put("/params/" + name, record_json(new["params"], new["kernel"], new["initrd"],
                                                           new["cloud-init"], new["token"]))

    def remove(self, bp):
        """DELETE: hosts, SMD-known MACs, NIDs, then kernel/initrd image records and their pointers."""
        names = list(bp["hosts"])
        names += [comp["ID"] for comp in (self.smd.by_mac(mac) for mac in bp["macs"]) if comp is not None]
        for nid in bp["nids"]:
            comp = self.smd.by_nid(nid)
            names.append(comp["ID"] if comp is not None else f"nid{nid}")
        first_error = None
        for name in names:
            if not self.kv.delete("/params/" + name):
                first_error = first_error or StoreError(f"Key {name} deletion: Key /params/{name} does not exist")
        for kind in ("kernel", "initrd"):
            if not bp[kind]:
                continue
            key = self.find_image(kind, bp[kind])
            if key is None:
                continue
            self.kv.delete(key)
            for name, rec in self.records():
                if rec[kind] == key:
                    rec[kind] = ""
                    self.kv.put("/params/" + name, record_json(rec["params"], rec["kernel"], rec["initrd"],
                                                               rec["cloud-init"], rec["token"]))
        if first_error:
            raise first_error

    # -- reads -----------------------------------------------------------------------------------
    def _entry(self, name, rec, cache, with_cloud=True):
        data = self.boot_data(rec, cache)
        return boot_params_json(hosts=[name], params=rec["params"], kernel=data.kernel, initrd=data.initrd,
                                cloud=rec["cloud-init"] if with_cloud else empty_cloud_init())

    def _image_entries(self, kernel=None, initrd=None):
        """Image records as BootParams ({params, kernel|initrd}); with a filter only matching paths."""
        out = []
        for kind, wanted in (("kernel", kernel), ("initrd", initrd)):
            for _key, raw in self.images(kind):
                path, params = decode_image(raw)
                if wanted is None or path == wanted:
                    out.append(boot_params_json(params=params, **{kind: path}))
        return out

    def get_all(self, with_cloud=True):
        cache = self.image_cache()
        out = self._image_entries()
        out += [self._entry(name, rec, cache, with_cloud) for name, rec in self.records()]
        return out or None  # Go encodes the nil slice as null

    def get_filtered(self, hosts, macs, nids, kernel="", initrd=""):
        """Direct look-ups for hosts, then a scan matching SMD ID/FQDN, MAC list or NID (bss-spec 4.4)."""
        out = self._image_entries(kernel, initrd) if (kernel or initrd) else []
        cache = self.image_cache()
        missing = []
        for host in hosts:
            rec = self.record(host)
            if rec is not None:
                out.append(self._entry(host, rec, cache))
            else:
                missing.append(host)
        if missing or macs or nids:
            low_macs = {mac.lower() for mac in macs}
            comps = {comp["ID"]: comp for comp in self.smd.state()}
            for name, rec in self.records():
                comp = comps.get(name)
                if comp is None:
                    continue
                if (name in missing or (comp.get("FQDN") and comp.get("FQDN") in missing)
                        or low_macs & {m.lower() for m in comp.get("MAC") or []} or comp.get("NID") in nids):
                    out.append(self._entry(name, rec, cache))
        return out

    def bootscript_data(self, comp, raw_name):
        """Fallback chain: xname (or raw id), raw id, Role, Default. Returns (BootData, found)."""
        candidates = [comp["ID"] if comp else raw_name, raw_name, (comp or {}).get("Role", ""), "Default"]
        for name in candidates:
            rec = self.record(name)
            if rec is not None:
                return self.boot_data(rec), True
        return BootData(), False

    def unknown_arch_data(self, arch):
        rec = self.record("Unknown-" + arch)
        return (self.boot_data(rec), True) if rec is not None else (BootData(), False)

    def update_timestamp(self):
        raw = self.kv.get("/UpdateTimestamp")
        try:
            return int(raw) if raw else 0
        except ValueError:
            return 0

    def scn(self):
        self.kv.put("/UpdateTimestamp", str(int(time.time())))

    # -- endpoint access, health -----------------------------------------------------------------
    def log_access(self, name, endpoint):
        self.kv.put(f"/endpoint-access/{name}/{endpoint}", str(int(time.time())))

    def endpoint_history(self, name, endpoint):
        if not name and endpoint:
            raise StoreError(f"invalid search combination of name ({name}) and endpoint ({endpoint})")
        if name and endpoint:
            if endpoint not in ("bootscript", "user-data"):
                return []
            raw = self.kv.get(f"/endpoint-access/{name}/{endpoint}")
            return [{"name": name, "endpoint": endpoint, "last_epoch": int(raw) if raw else 0}]
        prefix = f"/endpoint-access/{name}/" if name else "/endpoint-access/"
        out = []
        for key, raw in self.kv.range(prefix, prefix[:-1] + "0"):  # "/" + 1 == "0": a true prefix search
            parts = key.split("/")
            epoch = go_parse_int(raw, 0)
            out.append({"name": parts[-2], "endpoint": parts[-1], "last_epoch": epoch})
        return out

    def storage_ok(self):
        try:
            value = str(random.randint(0, 254))
            self.kv.put("/bss/etcdTest", value)
            return self.kv.get("/bss/etcdTest") == value
        except Exception:  # pylint: disable=broad-except
            return False
