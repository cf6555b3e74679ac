# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start or stop the services the bss scenario runs BSS against (etcd, PostgreSQL, the SMD double).

Usage: lab_services.py start REPO STATEDIR   -> prints the lab settings as JSON
       lab_services.py stop REPO STATEDIR
"start" also names the binary the role installs: the real upstream boot-script-service from `make upstream` when
HPCLAB_BSS_IMPL=upstream (the Makefile runs the scenario once that way), else the BSS double built as one executable.
Everything binds 127.0.0.1 on free ports; "stop" stops exactly the processes "start" recorded.
"""
import json
import os
import sys


def start(statedir):
    from hpclab import procs, smd  # pylint: disable=import-outside-toplevel
    from hpclab.bss import launch  # pylint: disable=import-outside-toplevel
    nodes = os.path.join(statedir, "nodes.json")
    with open(nodes, "w", encoding="utf-8") as handle:
        json.dump([{"xname": "x3000c0s1b0n0", "nid": 1, "role": "Compute", "mac": "aa:bb:cc:00:00:01"}], handle)
    services = {"etcd": procs.start_etcd(), "postgres": procs.start_postgres()}
    services["smd"] = smd.start_smd(nodes)
    procs.save_state(os.path.join(statedir, "services.json"), services)
    if launch.resolve_impl() == "upstream":
        binary = launch.upstream_binaries()["boot_script_service"]
    else:
        binary = launch.build_executable(os.path.join(statedir, "boot-script-service"), sys.executable)
    pg = services["postgres"]
    print(json.dumps({
        "lab_etcd_port": services["etcd"].port,
        "lab_pg_port": pg.port, "lab_pg_db": pg.extra["dbname"], "lab_pg_user": pg.extra["user"],
        "lab_pg_password": pg.extra["password"],
        "lab_smd_url": services["smd"].url,
        "lab_binary": binary, "lab_bss_impl": launch.resolve_impl(),
        "lab_old_port": procs.free_port(), "lab_new_port": procs.free_port(),
    }))


def stop(statedir):
    from hpclab import procs  # pylint: disable=import-outside-toplevel
    path = os.path.join(statedir, "services.json")
    if os.path.exists(path):
        for service in procs.load_state(path).values():
            service.stop()
        os.unlink(path)


def main():
    action, repo, statedir = sys.argv[1:4]
    sys.path.insert(0, os.path.join(repo, "lab"))
    if action == "start":
        start(statedir)
    else:
        stop(statedir)


if __name__ == "__main__":
    main()
