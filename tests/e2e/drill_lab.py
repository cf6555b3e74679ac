"""One cutover lab for the fault drills, reset between drills to what a new lab holds, and proven so.

Building a lab (``hpclab up`` + ``load`` + the gateway playbook) takes about a minute on a busy machine,
most of it the gateway playbook; the drills share one lab. What a cutover changes on the lab is known
and undone without ansible: the state file, the backup, the canary VM's workdir, the rows it wrote to
PostgreSQL (restored to the new lab's rows) and the gateway's configuration and map files (restored as
the new lab had them, then the gateway reloaded). etcd is never changed by a cutover; every drill
checks that. The reset then compares the lab with the new lab's record (database, etcd, gateway files
and maps, routing through the running gateway, no state file) and fails if anything differs, so a
drill never starts on a used lab.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import psycopg
from psycopg import sql

from cutover_harness import CutoverLab, non_canary_macs
from hpclab import cutover_lab

OLD_GATEWAY = {"active": "bss_etcd", "freeze": "off"}

# The drills' xdist group: ``make pytest`` runs with ``--dist loadgroup``, which sends every test of a group
# to one worker, so the drills share this lab; any other distribution still works (a worker that gets one
# drill builds a lab of its own).
DRILL_GROUP = "cutover_drill_lab"


def database_rows(lab):
    """The boot configuration the new BSS serves: (MAC, xname, kernel, cmdline) of every node."""
    with psycopg.connect(lab.env["HPCLAB_PG_CONNINFO"]) as conn:
        return sorted(conn.execute("SELECT n.boot_mac, n.xname, c.kernel_uri, c.cmdline FROM nodes n"
                                   " JOIN boot_group_assignments a ON a.node_id = n.id"
                                   " JOIN boot_groups g ON g.id = a.boot_group_id"
                                   " JOIN boot_configs c ON c.id = g.boot_config_id").fetchall())


def etcd_records(lab):
    """etcd's boot records as the cutover must leave them. BSS's own bookkeeping is left out: the
    /endpoint-access/ stamps and the referral token it adds to a record when serving a boot script
    (each request, this test's included, writes them) and its /bss/ health key."""
    import etcd3  # pylint: disable=import-outside-toplevel
    client = etcd3.client(host="127.0.0.1", port=int(lab.env["HPCLAB_ETCD_PORT"]))
    try:
        records = []
        for value, meta in client.get_all():
            if meta.key.startswith((b"/endpoint-access/", b"/bss/")):
                continue
            if meta.key.startswith(b"/params/"):
                record = json.loads(value)
                record.pop("referral-token", None)
                value = json.dumps(record, sort_keys=True).encode()
            records.append((meta.key, value))
        return sorted(records)
    finally:
        client.close()


def database_snapshot(lab):
    """Every schema, table and row of the lab's database (it holds a few hundred rows at most)."""
    with psycopg.connect(lab.env["HPCLAB_PG_CONNINFO"]) as conn:
        schemas = [name for (name,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            " ORDER BY 1")]
        tables = {}
        for schema, table in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall():
            cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table)))
            tables[(schema, table)] = ([column.name for column in cursor.description], sorted(cursor.fetchall(), key=repr))
    return {"schemas": schemas, "tables": tables}


def restore_database(lab, snapshot):
    """Put the database back to ``snapshot``: drop what the cutover created, refill what existed."""
    current = database_snapshot(lab)
    with psycopg.connect(lab.env["HPCLAB_PG_CONNINFO"]) as conn:
        conn.execute("SET lock_timeout = '20s'")
        extra_schemas = set(current["schemas"]) - set(snapshot["schemas"])
        for schema in sorted(extra_schemas):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        for schema, table in sorted(set(current["tables"]) - set(snapshot["tables"])):
            if schema not in extra_schemas:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, table)))
        for (schema, table), (columns, rows) in snapshot["tables"].items():
            if (schema, table) not in current["tables"]:
                raise AssertionError(f"table {schema}.{table} of the new lab is gone: the lab cannot be reset")
            name = sql.Identifier(schema, table)
            conn.execute(sql.SQL("TRUNCATE {}").format(name))
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                name, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns)))
            for row in rows:
                conn.execute(insert, row)


def gateway_files(lab):
    """The gateway's configuration and map files (what the cutover's gateway switches rewrite)."""
    paths = [os.path.join(lab.prepared["work_dir"], "haproxy.cfg")]
    maps = os.path.join(lab.prepared["work_dir"], "maps")
    paths += [os.path.join(maps, name) for name in sorted(os.listdir(maps))]
    files = {}
    for path in paths:
        with open(path, "rb") as handle:
            files[path] = handle.read()
    return files


def restore_gateway(lab, files):
    """Put the gateway's files back as ``files`` recorded them and reload it if any differed; wait for the reload."""
    current = gateway_files(lab)
    if current == files:
        return
    for path in set(current) - set(files):
        os.unlink(path)
    for path, content in files.items():
        if current.get(path) != content:
            with open(path, "wb") as handle:
                handle.write(content)
    env = cutover_lab.ansible_env()
    systemctl = shutil.which("systemctl", path=env["PATH"])
    result = subprocess.run([systemctl, "reload", lab.prepared["gateway_unit"] + ".service"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"reloading the lab gateway failed: {result.stdout}{result.stderr}"
    macs = non_canary_macs(lab) + [lab.canary["macs"][0]]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(lab.gateway_instance(mac) != "bss_etcd" for mac in macs):
        time.sleep(0.5)


def fresh_record(lab):
    """What a new lab holds, to compare a reset lab with."""
    return {"database": database_snapshot(lab), "etcd": etcd_records(lab), "gateway": lab.gateway_state(),
            "canary_map": lab.canary_map(), "gateway_files": gateway_files(lab)}


def canary_vm_processes(lab):
    """PIDs of the processes (QEMU, its socat helpers) working in this lab's canary VM workdir."""
    workdir = os.path.join(lab.prepared["work_dir"], "canary-vm")
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
        except OSError:
            continue
        if workdir in cmdline:
            pids.append(int(entry))
    return pids


def wait_for_canary_vm_exit(lab, timeout=90):
    """Wait until no process of this lab's canary VM is left; stop the ones left (by PID) after ``timeout``.

    Returns the PIDs that had to be stopped (a VM started by a killed run powers itself off after its boot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and canary_vm_processes(lab):
        time.sleep(0.5)
    stopped = canary_vm_processes(lab)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stopped


def reset(lab, fresh):
    """Undo what a drill's cutover did on ``lab`` and check the lab is as ``fresh`` recorded it."""
    wait_for_canary_vm_exit(lab, timeout=30)
    for path in (lab.prepared["state_dir"], os.path.join(lab.prepared["work_dir"], "backup"),
                 os.path.join(lab.prepared["work_dir"], "canary-vm"), os.path.join(lab.state_dir, "drill-bin")):
        shutil.rmtree(path, ignore_errors=True)
    restore_database(lab, fresh["database"])
    restore_gateway(lab, fresh["gateway_files"])
    check_fresh(lab, fresh)


def check_fresh(lab, fresh):
    assert lab.state() is None, "no cutover state file"
    assert not os.path.exists(os.path.join(lab.prepared["work_dir"], "backup")), "no backup"
    assert database_snapshot(lab) == fresh["database"], "the database as in a new lab"
    assert etcd_records(lab) == fresh["etcd"], "etcd as in a new lab"
    assert lab.gateway_state() == fresh["gateway"] == OLD_GATEWAY, "the gateway's maps as in a new lab"
    assert lab.canary_map() == fresh["canary_map"] == [], "no canary routed"
    assert gateway_files(lab) == fresh["gateway_files"], "the gateway's configuration and maps as in a new lab"
    for mac in non_canary_macs(lab) + [lab.canary["macs"][0]]:
        assert lab.gateway_instance(mac) == "bss_etcd", f"the running gateway sends {mac} to the old BSS"


class SharedDrillLab:
    """The lab of the drills and its fresh record; :meth:`take` hands it to a drill, reset if used before."""

    def __init__(self):
        self.lab = CutoverLab(nodes=16)
        self.fresh = fresh_record(self.lab)
        self.used = False

    def take(self):
        if self.used:
            reset(self.lab, self.fresh)
        else:
            check_fresh(self.lab, self.fresh)
        self.used = True
        return self.lab

    def close(self):
        wait_for_canary_vm_exit(self.lab, timeout=30)
        self.lab.close()


def run_until(lab, predicate, *args, timeout=400):
    """Start the cutover (``args`` added) and SIGKILL its process group as soon as ``predicate(lab)`` holds.

    Returns the run's return code (``-SIGKILL`` when it was killed)."""
    proc = lab.popen_cutover(*args)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if predicate(lab):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return proc.returncode
