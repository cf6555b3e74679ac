"""Secondary BSS endpoints: hosts, dumpstate, endpoint history, service status, scn, cloud-init (bss-spec 4.5-4.10)."""

import json
import os
import secrets
import urllib.error
import urllib.request

from hpclab.bss.etcd_store import StoreError
from hpclab.bss.gotext import go_json, go_map
from hpclab.bss.httpkit import JSON_UTF8, TEXT_SNIFFED, Panic, Response, json_response, problem
from hpclab.bss.model import BadRequest, boot_params_json, empty_cloud_init, go_decode_first
from hpclab.bss.model import phone_home as phone_home_shape
from hpclab.bss.script import go_parse_int
from hpclab.bss.smdcache import component_json


def _values(query, name):
    """Upstream joins repeated values with "," and splits again only when the result is non-empty."""
    joined = ",".join(query.get(name, []))
    return joined.split(",") if joined else []


def hosts(app, req):
    if req.method == "POST":
        app.smd.refresh()
        return Response(204, b"", JSON_UTF8, [("Cache-Control", "no-cache")])
    comps = app.smd.state()
    names, macs, nid_texts = _values(req.query, "name"), _values(req.query, "mac"), _values(req.query, "nid")
    if not (names or macs or nid_texts):
        return json_response([component_json(comp) for comp in comps], content_type=JSON_UTF8)
    out = []
    for name in names:
        comp = app.smd.by_name(name)
        if comp is None:
            return problem(404, f"Not Found - Unknown host name '{name}'")
        out.append(component_json(comp))
    for mac in macs:
        comp = app.smd.by_mac(mac)
        if comp is None:
            return problem(404, f"Not Found - Unknown MAC address '{mac}'")
        out.append(component_json(comp))
    for text in nid_texts:
        nid = go_parse_int(text, None)
        if nid is None:
            return problem(400, f"Bad Request - Invalid nid '{text}'")
        comp = app.smd.by_nid(nid)
        if comp is None:
            return problem(404, f"Not Found - Unknown NID '{text}'")
        out.append(component_json(comp))
    return json_response(out, content_type=JSON_UTF8)


def dumpstate(app, _req):
    params = app.backend.get_all(with_cloud=False)
    comps = [component_json(comp) for comp in app.smd.state()]
    return json_response({"Components": comps, "Params": params}, content_type=JSON_UTF8)


def endpoint_history(app, req):
    name = "".join(req.query.get("name", []))
    endpoint = "".join(req.query.get("endpoint", []))
    try:
        found = app.backend.endpoint_history(name, endpoint)
    except StoreError as exc:
        return problem(500, f"Failed to search for name={json.dumps(name)}, endpoint={json.dumps(endpoint)}: {exc}")
    return json_response(found, content_type=JSON_UTF8)


def _status(body, status=200):
    return Response(status, go_json(body, newline=True), TEXT_SNIFFED)


def service_status(_app):
    return _status({"bss-status": "running"})


def service_version():
    for path in (".version", os.path.join("..", "..", ".version")):
        try:
            with open(path, encoding="utf-8") as handle:
                return _status({"bss-version": handle.read().strip()})
        except OSError:
            continue
    return _status({"bss-version": "error"}, 500)


def _hsm_ok(app):
    if not app.smd.is_http:
        raise Panic("HSM status with a mem:/file: SMD")
    try:
        with urllib.request.urlopen(app.smd.base.rstrip("/") + "/hsm/v2/service/values/class", timeout=10):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def service_hsm(app):
    good = _hsm_ok(app)
    return _status({"bss-status-hsm": "connected" if good else "error"}, 200 if good else 500)


def service_storage(app):
    good = app.backend.storage_ok()
    return _status({"bss-storage-backend": {"name": app.backend.name, "status": "connected" if good else "error"}},
                   200 if good else 500)


def service_status_all(app):
    hsm_good = _hsm_ok(app)
    storage_good = app.backend.storage_ok()
    body = {"bss-status": "running", "bss-status-hsm": "connected" if hsm_good else "error",
            "bss-storage-backend": {"name": app.backend.name, "status": "connected" if storage_good else "error"}}
    return _status(body, 200 if hsm_good and storage_good else 500)


def scn(app, req):
    if app.backend.name != "etcd":
        raise Panic("scn in postgres mode: nil etcd handle")
    try:
        json.loads(req.body or b"null")
    except ValueError:
        return Response(400)
    app.backend.scn()
    return Response(200)


def _client_ip(req):
    """Upstream's findRemoteAddr: last X-Forwarded-For entry (untrimmed), else RemoteAddr minus its last
    ``:``-separated piece (so an X-Real-IP without port yields "" for IPv4, as upstream)."""
    forwarded = req.headers.get("X-Forwarded-For", "")
    if forwarded:
        return forwarded.split(",")[-1]
    return ":".join(req.remote_addr.split(":")[:-1])


def _lookup(app, xname):
    comp = app.smd.by_name(xname) if xname else None
    data, _found = app.backend.bootscript_data(comp, xname)
    return data, comp


def _generate(meta, xname, comp):
    meta["instance-id"] = f"{xname or 'default'}-{secrets.token_hex(6)}"
    if comp is None:
        return
    meta.setdefault("local-hostname", xname)
    meta.setdefault("shasta-type", comp.get("Role", ""))
    meta.setdefault("shasta-role", comp.get("SubRole", ""))


def _merge(first, second):
    for key, value in second.items():
        if isinstance(first.get(key), dict) and isinstance(value, dict):
            first[key] = _merge(first[key], value)
        else:
            first[key] = value
    return first


def _role_data(app, role, part):
    if not isinstance(role, str):
        return {}
    rec = app.backend.record(role)
    return dict((rec or {}).get("cloud-init", {}).get(part) or {})


def meta_data(app, req):
    if app.backend.name != "etcd":
        raise Panic("meta-data in postgres mode: nil etcd handle")
    xname = app.smd.xname_by_ip(_client_ip(req))
    data, comp = _lookup(app, xname)
    meta = dict(data.cloud.get("meta-data") or {})
    if not xname:
        meta["instance-id"] = f"default-{secrets.token_hex(6)}"
    else:
        _generate(meta, xname, comp)
    merged = _merge(_role_data(app, meta.get("shasta-role"), "meta-data"), meta)
    global_rec = app.backend.record("Global")
    merged["Global"] = dict((global_rec or {}).get("cloud-init", {}).get("meta-data") or {})
    keys = req.query.get("key")
    if keys:
        value = merged
        for part in keys[0].split("."):
            if not isinstance(value, dict) or part not in value:
                return problem(404, "Not Found")
            value = value[part]
        return Response(200, go_json(go_map(value), newline=True), TEXT_SNIFFED)
    return Response(200, go_json(go_map(merged), newline=True), TEXT_SNIFFED)


def _yaml(value):
    import yaml  # pylint: disable=import-outside-toplevel
    if not value:
        return "{}\n"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 30)


def user_data(app, req):
    xname = app.smd.xname_by_ip(_client_ip(req))
    if app.backend.name != "etcd":
        if xname:
            raise Panic("user-data in postgres mode: nil etcd handle")
        return Response(200, "#cloud-config\n{}\n", "text/yaml")
    data, comp = _lookup(app, xname)
    meta = dict(data.cloud.get("meta-data") or {})
    if xname:
        _generate(meta, xname, comp)
    role_user = _role_data(app, meta.get("shasta-role"), "user-data")
    merged = _merge(role_user, dict(data.cloud.get("user-data") or {}))
    if merged.get("local-hostname") is None and meta.get("local-hostname") is not None:
        merged["local-hostname"] = meta["local-hostname"]
    body = "#cloud-config\n" + _yaml(merged)
    app.backend.log_access(xname, "user-data")
    return Response(200, body, "text/yaml")


def phone_home(app, req):
    """Stores the PhoneHome object into the node's record with PATCH semantics; echoes hosts + cloud-init."""
    try:
        home = go_decode_first(req.body.decode("utf-8", "replace"))
        if not isinstance(home, dict) or not all(isinstance(v, str) for v in home.values()):
            raise BadRequest("not a PhoneHome object")
    except BadRequest:
        return problem(400, "Bad Request")
    xname = app.smd.xname_by_ip(_client_ip(req))
    if not xname:
        return problem(404, "XName not found for IP")
    comp = app.smd.by_name(xname)
    if app.backend.name == "etcd":
        data, _found = app.backend.bootscript_data(comp, xname)
        cloud = dict(data.cloud)
    else:
        cloud = empty_cloud_init()
    cloud["phone-home"] = phone_home_shape({key.lower(): value for key, value in home.items()})
    bp = {"hosts": [xname], "macs": [], "nids": [], "params": "", "kernel": "", "initrd": "", "cloud-init": cloud}
    try:
        app.backend.update(bp)
    except StoreError as exc:
        return problem(404, f"Not Found: {exc}")
    return json_response(boot_params_json([xname], cloud=cloud))
