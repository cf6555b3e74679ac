"""Start or stop the lab of the boot_config molecule scenario: SMD double, PostgreSQL, BSS double.

    lab.py start STATE_FILE   start everything on free 127.0.0.1 ports, write their PIDs and URLs (JSON)
    lab.py stop STATE_FILE    stop what STATE_FILE lists, by PID
"""

import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "lab"))

from hpclab import procs, smd  # noqa: E402  pylint: disable=wrong-import-position
from hpclab.bss.launch import start_bss  # noqa: E402  pylint: disable=wrong-import-position


def start(state_file):
    services = {}
    try:
        services["smd"] = smd.start_smd(os.path.join(HERE, "smd-nodes.json"))
        services["postgres"] = procs.start_postgres()
        database = types.SimpleNamespace(port=services["postgres"].port, extra=services["postgres"].extra)
        services["bss"] = start_bss("bss-molecule", "postgres", services["smd"].url, postgres=database)
    except Exception:
        for service in services.values():
            service.stop()
        raise
    procs.save_state(state_file, services)
    with open(state_file + ".vars.json", "w", encoding="utf-8") as handle:
        json.dump({"lab_bss_url": services["bss"].url, "lab_smd_url": services["smd"].url}, handle)


def stop(state_file):
    if not os.path.exists(state_file):
        return
    for service in procs.load_state(state_file).values():
        service.stop()
    for path in (state_file, state_file + ".vars.json"):
        os.remove(path)


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1]](sys.argv[2])
