"""Run a collection module for real with ``ansible-playbook`` and return its registered result.

A one-task playbook registers the result and saves it to a file, so check mode and ``--diff`` behave
exactly as for a user; the module runs in a separate process with the venv interpreter.
"""

import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def run_module(module, args, check=False, diff=False, env=None):
    """Run ``hpc_boot.bss.<module>`` in a one-task playbook; returns the registered result (with ``diff``)."""
    with tempfile.TemporaryDirectory(prefix="h3-play-") as work:
        out = os.path.join(work, "result.json")
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "module under test", "hpc_boot.bss." + module: args, "register": "__result", "ignore_errors": True},
            {"name": "save result", "ansible.builtin.copy": {"content": "{{ __result | to_json }}", "dest": out, "mode": "0600"},
             "check_mode": False, "diff": False},
        ]}]
        playbook = os.path.join(work, "play.yml")
        with open(playbook, "w") as handle:
            json.dump(play, handle)
        environ = dict(os.environ)
        environ.update({
            "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".build", "collections"),
            "ANSIBLE_HOME": os.path.join(work, "home"),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1",
        })
        environ.update(env or {})
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=%s" % sys.executable, playbook]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        completed = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300, check=False)
        if not os.path.exists(out):
            raise AssertionError("no result from %s (rc %d):\n%s\n%s" % (module, completed.returncode, completed.stdout, completed.stderr))
        with open(out) as handle:
            result = json.load(handle)
        result["_stdout"] = completed.stdout
        return result
