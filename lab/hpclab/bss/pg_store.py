"""PostgreSQL-mode storage of the BSS double: upstream's rows and operation semantics (bss-spec 3.5, 3.6).

Like upstream, look-up queries are assembled by string interpolation inside single quotes (so a value
containing ``'`` makes them fail with a database syntax error), INSERTs use bind parameters, and every
statement auto-commits on its own (no transaction). Connections come from a small pool.
"""

import queue
import threading
import time
import uuid

from hpclab.bss.gotext import go_quote
from hpclab.bss.model import BootData, boot_params_json, is_node_xname
from hpclab.bss.etcd_store import StoreError


class Panic(RuntimeError):
    """Upstream BSS panics on this path (nil etcd handle in postgres mode)."""


def sql_strings(values):
    if not values:
        return "('')"
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def sql_ints(values):
    return "(" + ", ".join(str(int(value)) for value in values) + ")"


def go_list(values):
    return "[" + " ".join(str(value) for value in values) + "]"


def group_name(kernel, initrd, params):
    return f"BootGroup(kernel={go_quote(kernel)},initrd={go_quote(initrd)},params={go_quote(params)})"


def group_description(kernel, initrd, params):
    return f"Boot group for nodes with kernel={go_quote(kernel)} initrd={go_quote(initrd)} params={go_quote(params)}"


class Pool:
    def __init__(self, conninfo, size=8):
        import psycopg  # pylint: disable=import-outside-toplevel
        self.psycopg = psycopg
        self.conninfo = conninfo
        self.idle = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)

    def connect(self):
        return self.psycopg.connect(self.conninfo, autocommit=True)

    def run(self, sql, args=None):
        """Execute one statement; returns fetched rows (or [] for no result set)."""
        with self.slots:
            try:
                conn = self.idle.get_nowait()
            except queue.Empty:
                try:
                    conn = self.connect()
                except self.psycopg.OperationalError as exc:
                    raise StoreError(f"dial tcp: {exc}") from exc
            try:
                cur = conn.execute(sql, args) if args is not None else conn.execute(sql)
                rows = cur.fetchall() if cur.description else []
            except self.psycopg.OperationalError as exc:
                conn.close()
                raise StoreError(f"pq: {exc}") from exc
            except self.psycopg.Error as exc:
                self.idle.put(conn)
                raise StoreError(f"pq: {exc.diag.message_primary or exc}") from exc
            self.idle.put(conn)
            return rows


NODE_CONFIG_SQL = ("SELECT n.id, n.boot_mac, n.xname, n.nid, bg.id, bg.name, bg.description, bc.id, bc.kernel_uri, "
                   "bc.initrd_uri, bc.cmdline FROM nodes AS n JOIN boot_group_assignments AS bga ON n.id=bga.node_id "
                   "JOIN boot_groups AS bg ON bga.boot_group_id=bg.id JOIN boot_configs AS bc ON bg.boot_config_id=bc.id")


class PostgresBackend:
    name = "postgres"

    def __init__(self, conninfo, retries=10, wait=10.0, pool_size=8):
        self.pool = Pool(conninfo, pool_size)
        for attempt in range(retries):
            try:
                self.pool.run("SELECT 1")
                break
            except Exception:  # pylint: disable=broad-except
                if attempt == retries - 1:
                    raise
                time.sleep(wait)

    # -- helpers ---------------------------------------------------------------------------------
    def _where(self, macs, xnames, nids, alias=""):
        parts = []
        if macs:
            parts.append(f"{alias}boot_mac IN {sql_strings([m.lower() for m in macs])}")
        if xnames:
            parts.append(f"{alias}xname IN {sql_strings(xnames)}")
        if nids:
            parts.append(f"{alias}nid IN {sql_ints(nids)}")
        return " OR ".join(parts)

    def nodes_by_items(self, macs, xnames, nids):
        where = self._where(macs, xnames, nids)
        rows = self.pool.run("SELECT * FROM nodes" + (f" WHERE {where};" if where else ";"))
        if any(None in row for row in rows):
            raise StoreError("could not scan results into Node: converting NULL to string is unsupported")
        return rows

    def configs_by_items(self, kernel, initrd, params):
        parts = [f"{col}='{val}'" for col, val in (("kernel_uri", kernel), ("initrd_uri", initrd), ("cmdline", params)) if val]
        sql = ("SELECT bg.id, bg.name, bg.description, bc.id, bc.kernel_uri, bc.initrd_uri, bc.cmdline "
               "FROM boot_groups AS bg LEFT JOIN boot_configs AS bc ON bg.boot_config_id=bc.id")
        try:
            rows = self.pool.run(sql + (" WHERE " + " OR ".join(parts) if parts else "") + ";")
        except StoreError as exc:
            raise StoreError(f"postgres.Get: GetBootConfigsAll: unable to query database: {exc}") from exc
        if any(None in row for row in rows):
            raise StoreError("GetBootConfigsAll: could not scan SQL result: converting NULL to string is unsupported")
        return rows

    def _find_group(self, kernel, initrd, params):
        name, desc = group_name(kernel, initrd, params), group_description(kernel, initrd, params)
        for bg_id, bg_name, bg_desc, _bc_id, k, i, c in self.configs_by_items(kernel, initrd, params):
            if bg_name == name and bg_desc == desc and (k, i, c) == (kernel, initrd, params):
                return bg_id
        return None

    def _new_group(self, kernel, initrd, params):
        if not kernel:
            raise StoreError("kernel URI cannot be blank")
        bc_id, bg_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.pool.run("INSERT INTO boot_configs (id, kernel_uri, initrd_uri, cmdline) VALUES (%s, %s, %s, %s);",
                      (bc_id, kernel, initrd, params))
        self.pool.run("INSERT INTO boot_groups (id, boot_config_id, name, description) VALUES (%s, %s, %s, %s);",
                      (bg_id, bc_id, group_name(kernel, initrd, params), group_description(kernel, initrd, params)))
        return bg_id

    def _add_nodes(self, nodes, kernel, initrd, params):
        try:
            bg_id = self._find_group(kernel, initrd, params)
        except StoreError as exc:
            raise StoreError(f"could not get boot configs by kernel/initrd URI or params: {exc}") from exc
        if not kernel:
            raise StoreError("could not create BootConfig: kernel URI cannot be blank")
        bg_id = bg_id or self._new_group(kernel, initrd, params)
        ids = []
        for mac, xname, nid in nodes:
            node_id = str(uuid.uuid4())
            self.pool.run("INSERT INTO nodes (id, boot_mac, xname, nid) VALUES (%s, %s, %s, %s);",
                          (node_id, mac.lower(), xname, nid))
            ids.append(node_id)
        for node_id in ids:
            self.pool.run("INSERT INTO boot_group_assignments (boot_group_id, node_id) VALUES (%s, %s);", (bg_id, node_id))

    # -- writes ----------------------------------------------------------------------------------
    def add(self, bp):
        try:
            existing = self.nodes_by_items(bp["macs"], bp["hosts"], bp["nids"])
        except StoreError as exc:
            raise StoreError(f"postgres.Add: could not query node table in boot database: {exc}") from exc
        to_add = []
        if bp["hosts"]:
            if any(not is_node_xname(host) for host in bp["hosts"]):
                return str(uuid.uuid4())  # group request: no BootGroup(<name>) ever exists -> nothing happens
            have = {row[2] for row in existing}
            to_add = [("", host, 0) for host in bp["hosts"] if host not in have]
        elif bp["macs"]:
            have = {row[1] for row in existing}
            to_add = [(mac, "", 0) for mac in bp["macs"] if mac.lower() not in have]
        elif bp["nids"]:
            have = {row[3] for row in existing}
            to_add = [("", "", nid) for nid in bp["nids"] if nid not in have]
        if not to_add:
            raise StoreError("postgres.Add: data already exists")
        try:
            self._add_nodes(to_add, bp["kernel"], bp["initrd"], bp["params"])
        except StoreError as exc:
            raise StoreError(f"postgres.Add: {exc}") from exc
        return str(uuid.uuid4())

    def _missing(self, bp):
        rows = self.nodes_by_items(bp["macs"], bp["hosts"], bp["nids"]) if (bp["macs"] or bp["hosts"] or bp["nids"]) else []
        macs = {row[1] for row in rows}
        xnames = {row[2] for row in rows}
        nids = {row[3] for row in rows}
        return ([m for m in bp["macs"] if m.lower() not in macs], [h for h in bp["hosts"] if h not in xnames],
                [n for n in bp["nids"] if n not in nids])

    def set(self, bp):
        """PUT: add missing identifiers, update existing nodes (all nodes when none given)."""
        if not (bp["params"] or bp["kernel"] or bp["initrd"]):
            raise StoreError("postgres.Update: must specify at least one of params, kernel, or initrd")
        miss_macs, miss_hosts, miss_nids = self._missing(bp)
        existing = self.nodes_by_items(bp["macs"], bp["hosts"], bp["nids"])
        triple = {"kernel": bp["kernel"], "initrd": bp["initrd"], "params": bp["params"]}
        if miss_macs or miss_hosts or miss_nids:
            try:
                self.add(dict(triple, hosts=miss_hosts, macs=miss_macs, nids=miss_nids))
            except StoreError as exc:
                raise StoreError(f"postgres.Set: failed to add new boot configuration: {exc}") from exc
        if existing:
            update = dict(triple, macs=[r[1] for r in existing if r[1]], hosts=[r[2] for r in existing if r[2]],
                          nids=[r[3] for r in existing if r[3]])
            try:
                self.update(update)
            except StoreError as exc:
                raise StoreError(f"postgres.Set: failed to update existing boot configuration: {exc}") from exc
        return str(uuid.uuid4())

    def update(self, bp):
        """PATCH: re-point the selected nodes to configs with the given fields substituted."""
        miss_macs, miss_hosts, miss_nids = self._missing(bp)
        if miss_macs or miss_hosts or miss_nids:
            raise StoreError("postgres.Update: data does not exist: nodes table: "
                             f"macs={go_list(miss_macs)} xnames={go_list(miss_hosts)} nids={go_list(miss_nids)}")
        if not (bp["params"] or bp["kernel"] or bp["initrd"]):
            raise StoreError("postgres.Update: must specify at least one of params, kernel, or initrd")
        where = self._where(bp["macs"], bp["hosts"], bp["nids"], "n.")
        try:
            rows = self.pool.run(NODE_CONFIG_SQL + (f" WHERE {where};" if where else ";"))
            similar = self.configs_by_items(bp["kernel"], bp["initrd"], bp["params"])
        except StoreError as exc:
            raise StoreError(f"postgres.Update: {exc}") from exc
        by_config = {}
        for row in rows:
            by_config.setdefault(row[7], (row[8], row[9], row[10], []))[3].append(row[0])
        for kernel, initrd, params, node_ids in by_config.values():
            new = (bp["kernel"] or kernel, bp["initrd"] or initrd, bp["params"] or params)
            name, desc = group_name(*new), group_description(*new)
            target = next((r[0] for r in similar if (r[4], r[5], r[6]) == new and r[1] == name and r[2] == desc), None)
            try:
                target = target or self._new_group(*new)
            except StoreError as exc:
                raise StoreError(f"postgres.Update: could not create new BootConfig: {exc}") from exc
            self.pool.run(f"UPDATE boot_group_assignments bga SET boot_group_id = %s WHERE bga.node_id IN {sql_strings(node_ids)};",
                          (target,))

    def delete(self, bp):
        nothing = StoreError("postgres.Delete: error deleting BootGroupAssignment(s): "
                             "no node IDs specified for deleting boot group assignments")
        if bp["hosts"] and any(not is_node_xname(h) for h in bp["hosts"]):
            # only groups named exactly like that would be deleted; BSS never creates such groups
            groups = [h for h in bp["hosts"] if not is_node_xname(h)]
            deleted = self.pool.run(f"DELETE FROM boot_groups WHERE name IN {sql_strings(groups)} RETURNING boot_config_id;")
            if not deleted:
                raise StoreError("postgres.Delete: error deleting BootConfig(s): no boot config IDs specified to delete")
            self.pool.run(f"DELETE FROM boot_configs WHERE id IN {sql_strings([r[0] for r in deleted])};")
            return
        if bp["hosts"] or bp["macs"] or bp["nids"]:
            lists = ([], bp["hosts"], []) if bp["hosts"] else ((bp["macs"], [], []) if bp["macs"] else ([], [], bp["nids"]))
            nodes = self.nodes_by_items(*lists)
            if not nodes:
                raise nothing
            ids = [row[0] for row in nodes]
            groups = {row[0] for row in self.pool.run(
                f"SELECT boot_group_id FROM boot_group_assignments WHERE node_id IN {sql_strings(ids)};")}
            self.pool.run(f"DELETE FROM boot_group_assignments WHERE node_id IN {sql_strings(ids)};")
            self.pool.run(f"DELETE FROM nodes WHERE id IN {sql_strings(ids)};")
            for bg_id in groups:
                if not self.pool.run("SELECT 1 FROM boot_group_assignments WHERE boot_group_id = %s;", (bg_id,)):
                    self.pool.run("DELETE FROM boot_configs WHERE id IN (SELECT boot_config_id FROM boot_groups WHERE id = %s);",
                                  (bg_id,))
                    self.pool.run("DELETE FROM boot_groups WHERE id = %s;", (bg_id,))
            return
        parts = [f"{col}='{val}'" for col, val in (("kernel_uri", bp["kernel"]), ("initrd_uri", bp["initrd"]),
                                                   ("cmdline", bp["params"])) if val]
        if not parts:
            return  # nothing selected: upstream returns success without touching anything
        # configs matching ALL given fields, then their groups, the groups' assignments and the nodes themselves
        configs = [r[0] for r in self.pool.run("DELETE FROM boot_configs WHERE " + " AND ".join(parts) + " RETURNING id;")]
        groups = [r[0] for r in self.pool.run(f"DELETE FROM boot_groups WHERE boot_config_id IN {sql_strings(configs)} "
                                              "RETURNING id;")]
        nodes = [r[0] for r in self.pool.run(f"DELETE FROM boot_group_assignments WHERE boot_group_id IN {sql_strings(groups)} "
                                             "RETURNING node_id;")]
        self.pool.run(f"DELETE FROM nodes WHERE id IN {sql_strings(nodes)};")

    # -- reads -----------------------------------------------------------------------------------
    def get_all(self, with_cloud=True):  # pylint: disable=unused-argument
        try:
            rows = self.pool.run(NODE_CONFIG_SQL + ";")
        except StoreError:
            return None
        if any(None in row for row in rows):
            return None
        configs = {}
        for row in rows:
            entry = configs.setdefault(row[7], {"k": row[8], "i": row[9], "c": row[10], "h": [], "m": [], "n": []})
            if row[2]:
                entry["h"].append(row[2])
            if row[1]:
                entry["m"].append(row[1])
            if row[3]:
                entry["n"].append(row[3])
        if not configs:
            return None
        return [boot_params_json(e["h"], e["m"], e["n"], e["c"], e["k"], e["i"]) for e in configs.values()]

    def _by(self, column, values):
        """Upstream's GetBootParamsBy{Mac,Name,Nid}: (identifier, kernel, initrd, cmdline) rows."""
        if column == "nid":
            where = f"n.nid IN {sql_ints(values)}"
        else:
            where = f"n.{column} IN {sql_strings([v.lower() for v in values] if column == 'boot_mac' else values)}"
        rows = self.pool.run(f"SELECT n.{column}, bc.kernel_uri, bc.initrd_uri, bc.cmdline FROM nodes AS n "
                             "LEFT JOIN boot_group_assignments AS bga ON n.id=bga.node_id "
                             "JOIN boot_groups AS bg on bga.boot_group_id=bg.id "
                             f"JOIN boot_configs AS bc ON bg.boot_config_id=bc.id WHERE {where};")
        if any(None in row for row in rows):
            raise StoreError("could not scan SQL result: converting NULL to string is unsupported")
        return rows

    def get_filtered(self, hosts, macs, nids, kernel="", initrd=""):  # pylint: disable=unused-argument
        """SqlGetBootParams: MAC, name and NID matches merged into one entry per (params, kernel, initrd)."""
        merged = {}
        try:
            for column, values, key in (("boot_mac", macs, "macs"), ("xname", hosts, "hosts"), ("nid", nids, "nids")):
                if values:
                    for ident, kern, init, params in self._by(column, values):
                        merged.setdefault((params, kern, init), {"macs": [], "hosts": [], "nids": []})[key].append(ident)
        except StoreError:
            return []
        return [boot_params_json(ids["hosts"], ids["macs"], ids["nids"], params, kern, init)
                for (params, kern, init), ids in merged.items()]

    def bootscript_data(self, comp, raw_name, kind="name", value=None):  # pylint: disable=unused-argument
        column = {"mac": "boot_mac", "name": "xname", "nid": "nid"}[kind]
        try:
            rows = self._by(column, [value])
        except StoreError:
            return BootData(), False
        if not rows:
            return BootData(), False
        _ident, kernel, initrd, params = rows[0]
        return BootData(params, kernel, initrd), True

    def unknown_arch_data(self, arch):
        raise Panic(f"Unknown-{arch}: nil etcd handle")

    def update_timestamp(self):
        raise Panic("UpdateTimestamp: nil etcd handle")

    def scn(self):
        raise Panic("scn: nil etcd handle")

    def log_access(self, name, endpoint):
        if not name:
            return
        try:
            self.pool.run("INSERT INTO endpoint_access (name, endpoint, last_epoch) VALUES (%s, %s, %s);",
                          (name, endpoint, int(time.time())))
        except StoreError:
            pass

    def endpoint_history(self, name, endpoint):
        parts = [f"{col}='{val}'" for col, val in (("name", name), ("endpoint", endpoint)) if val]
        rows = self.pool.run("SELECT name, endpoint, last_epoch FROM endpoint_access" +
                             (" WHERE " + " AND ".join(parts) if parts else "") + ";")
        return [{"name": r[0], "endpoint": r[1], "last_epoch": r[2]} for r in rows]

    def storage_ok(self):
        try:
            self.pool.run(NODE_CONFIG_SQL + ";")
            return True
        except Exception:  # pylint: disable=broad-except
            return False
