"""BSS's cached view of SMD (bss-spec 1.4, 6.5): ``http(s)://``, ``file://`` and ``mem:`` sources."""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BAD_MACS = ("ff:ff:ff:ff:ff:ff", "not available")
COMPONENT_FIELDS = ("ID", "Type", "State", "Flag", "Enabled", "SoftwareStatus", "Role", "SubRole", "NID",
                    "Subtype", "NetType", "Arch", "Class", "ReservationDisabled", "Locked")


class SMDUnavailable(RuntimeError):
    """SMD could not be read."""


def legal_mac(mac):
    """Go's ``net.ParseMAC`` round trip for EthernetInterfaces MACs (colon or bare hex forms)."""
    text = mac.strip()
    if len(text) == 12 and all(c in "0123456789abcdefABCDEF" for c in text):
        text = ":".join(text[i:i + 2] for i in range(0, 12, 2))
    parts = text.replace("-", ":").split(":")
    if len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return ":".join(parts).lower()
    return "not available"


def _mem_fixture():
    comps = []
    for index in range(256):
        slot, node = divmod(index, 2)
        comps.append({"ID": f"x0c0s{slot}b0n{node}", "Type": "Node", "State": "Ready", "Flag": "OK", "Enabled": True,
                      "Role": "System", "NID": index + 4, "NetType": "Sling", "Arch": "X86",
                      "MAC": [f"00:1e:67:e3:{index // 256:02x}:{index % 256:02x}"], "EndpointEnabled": True})
    comps[0]["MAC"] = ["00:1e:67:e3:46:93", "00:1e:67:e3:46:94"]
    return {"Components": comps, "IPAddresses": {}}


class SMDCache:
    """Node components with MAC lists, FQDN, EndpointEnabled and the IP -> interface map."""

    def __init__(self, base, token="", timeout=10.0):
        self.base = base
        self.token = token
        self.timeout = timeout
        self.lock = threading.Lock()
        self.refreshing = threading.Lock()
        self.components = None
        self.index = {"mac": {}, "id": {}, "nid": {}}
        self.ip_map = {}
        self.fetched_at = 0.0

    @property
    def is_http(self):
        return self.base.startswith(("http://", "https://"))

    def _get(self, path):
        request = urllib.request.Request(self.base.rstrip("/") + "/hsm/v2" + path,
                                         headers={"User-Agent": "boot-script-service"})
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # status codes are not checked upstream, only decoding
            try:
                return json.loads(exc.read())
            except ValueError as inner:
                raise SMDUnavailable(f"GET {path}: {exc}") from inner
        except (OSError, ValueError) as exc:
            raise SMDUnavailable(f"GET {path}: {exc}") from exc

    def probe(self, retries=10, wait=5.0):
        """Startup check: upstream GETs RedfishEndpoints up to 10 times and exits if SMD never answers."""
        if not self.is_http:
            return
        for attempt in range(retries):
            try:
                request = urllib.request.Request(self.base.rstrip("/") + "/hsm/v2/Inventory/RedfishEndpoints")
                if self.token:
                    request.add_header("Authorization", "Bearer " + self.token)
                with urllib.request.urlopen(request, timeout=self.timeout):
                    return
            except urllib.error.HTTPError:
                return
            except OSError as exc:
                if attempt == retries - 1:
                    raise SMDUnavailable(f"Access to SM service {self.base} failed: {exc}") from exc
                time.sleep(wait)

    def _fetch_http(self):
        comps = self._get("/State/Components?type=Node").get("Components") or []
        comps = [dict(comp, MAC=None, FQDN="", EndpointEnabled=False) for comp in comps]
        index = {comp["ID"]: comp for comp in comps}
        endpoints = self._get("/Inventory/ComponentEndpoints?type=Node").get("ComponentEndpoints") or []
        for endpoint in endpoints:
            comp = index.get(endpoint.get("ID"))
            if comp is None:
                continue
            comp["FQDN"] = endpoint.get("FQDN", "")
            mac = endpoint.get("MACAddr", "")
            if mac and mac.lower() not in BAD_MACS:
                comp["MAC"] = (comp["MAC"] or []) + [mac]
            comp["EndpointEnabled"] = endpoint.get("Enabled", True) if endpoint.get("Enabled") is not None else True
            info = endpoint.get("RedfishSystemInfo") or endpoint.get("RedfishManagerInfo") or {}
            for nic in info.get("EthernetNICInfo") or []:
                nic_mac = nic.get("MACAddress", "")
                if nic_mac and nic_mac.lower() != BAD_MACS[0] and nic_mac not in (comp["MAC"] or []):
                    comp["MAC"] = (comp["MAC"] or []) + [nic_mac]
        ip_map = {}
        for iface in self._get("/Inventory/EthernetInterfaces?type=Node") or []:
            for address in iface.get("IPAddresses") or []:
                if address.get("IPAddress"):
                    ip_map[address["IPAddress"]] = iface
            comp = index.get(iface.get("ComponentID"))
            if comp is not None:
                comp["MAC"] = (comp["MAC"] or []) + [legal_mac(iface.get("MACAddress", ""))]
        return comps, ip_map

    def _fetch_file(self):
        path = urllib.parse.urlsplit(self.base).path
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data.get("Components") or [], data.get("IPAddresses") or {}

    def refresh(self):
        """Re-read SMD now; on failure the old cache stays (and the error is returned)."""
        try:
            if self.is_http:
                comps, ip_map = self._fetch_http()
            elif self.base.startswith("file:"):
                comps, ip_map = self._fetch_file()
            else:
                data = _mem_fixture()
                comps, ip_map = data["Components"], data["IPAddresses"]
        except (SMDUnavailable, OSError, ValueError) as exc:
            return exc
        index = {"mac": {}, "id": {}, "nid": {}}
        for comp in comps:
            index["id"].setdefault(comp.get("ID"), comp)
            index["nid"].setdefault(comp.get("NID"), comp)
            if comp.get("State") != "Empty":
                for mac in comp.get("MAC") or []:
                    index["mac"].setdefault(mac.lower(), comp)
        with self.lock:
            self.components = comps
            self.index = index
            self.ip_map = ip_map
            self.fetched_at = time.time()
        return None

    def refresh_in_background(self):
        """Start one background re-fetch; requests arriving while it runs do not start more."""
        if not self.refreshing.acquire(blocking=False):  # pylint: disable=consider-using-with
            return

        def run():
            try:
                self.refresh()
            finally:
                self.refreshing.release()
        threading.Thread(target=run, daemon=True).start()

    def state(self):
        if self.components is None:
            error = self.refresh()
            if self.components is None:
                raise SMDUnavailable(f"no SMD data: {error}")
        return self.components

    def _lookup(self, kind, key):
        self.state()
        return self.index[kind].get(key)

    def by_mac(self, mac):
        """Case-insensitive; components in State Empty are skipped (first match in SMD order)."""
        return self._lookup("mac", mac.lower())

    def by_name(self, name):
        return self._lookup("id", name)

    def by_nid(self, nid):
        return self._lookup("nid", nid)

    def xname_by_ip(self, ip):
        """Cloud-init look-up: a miss or a cache older than 10 minutes forces a re-fetch."""
        if ip not in self.ip_map or time.time() - self.fetched_at > 600:
            self.refresh()
        iface = self.ip_map.get(ip)
        return iface.get("ComponentID", "") if iface else ""


def component_json(comp):
    """SMComponent as /boot/v1/hosts shows it: Component fields (omitempty), FQDN, MAC, EndpointEnabled."""
    out = {}
    for field in COMPONENT_FIELDS:
        value = comp.get(field)
        if field in ("ID", "Type") or value not in (None, "", 0, False):
            out[field] = value if value is not None else ""
    out["FQDN"] = comp.get("FQDN", "")
    out["MAC"] = comp.get("MAC")
    out["EndpointEnabled"] = bool(comp.get("EndpointEnabled"))
    return out
