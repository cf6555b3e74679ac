"""The collection as a user gets it: the built tarball installed with ansible-galaxy, run from outside the checkout.

One lab (``hpclab up`` + ``load``) serves both runs. The playbooks are called by name (``hpc_boot.bss.cutover``,
``hpc_boot.bss.site``) with ANSIBLE_COLLECTIONS_PATH holding only the installed copy, from a working directory
outside the checkout, and with a broken ``python3`` (and ``python3.X``) first on PATH, like a pyenv shim: the
inventories use ``ansible_python_interpreter: "{{ ansible_playbook_python }}"`` for localhost, as the docs say.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from hpclab import cli, cutover_lab, procs, site_lab

REPO = cutover_lab.REPO
VENV_BIN = os.path.dirname(sys.executable)
CONTROLLER_PYTHON = "{{ ansible_playbook_python }}"
BROKEN_PYTHONS = ("python", "python3", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")


def recap(stdout):
    return {host: dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", rest))
            for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", stdout, re.M)}


def installed_collection(root):
    """Build the tarball, install it under ``root/collections``; returns the installed collection's directory."""
    dist = os.path.join(root, "dist")
    galaxy = os.path.join(VENV_BIN, "ansible-galaxy")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    clean["ANSIBLE_HOME"] = os.path.join(root, "ansible-home")
    subprocess.run([galaxy, "collection", "build", "--output-path", dist, REPO], check=True, capture_output=True,
                   text=True, env=clean)
    (tarball,) = [os.path.join(dist, name) for name in os.listdir(dist) if name.endswith(".tar.gz")]
    subprocess.run([galaxy, "collection", "install", "--offline", "-p", os.path.join(root, "collections"), tarball],
                   check=True, capture_output=True, text=True, env=clean)
    return os.path.join(root, "collections", "ansible_collections", "hpc_boot", "bss")


def user_env(root):
    """A user's shell: the installed collection only, the harness's systemctl, broken pythons first on PATH."""
    broken, tools = os.path.join(root, "broken-python"), os.path.join(root, "bin")
    os.makedirs(broken)
    os.makedirs(tools)
    for name in BROKEN_PYTHONS:
        path = os.path.join(broken, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\necho "pyenv: {name}: command not found" >&2\nexit 127\n')
        os.chmod(path, 0o755)
    for name in ("systemctl", "journalctl"):  # the test harness's stand-in for systemd (docker-systemctl-replacement)
        os.symlink(os.path.join(VENV_BIN, name + "3"), os.path.join(tools, name))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(root, "collections"),
        "ANSIBLE_HOME": os.path.join(root, "ansible-home"),
        "ANSIBLE_INVENTORY_ENABLED": "hpc_boot.bss.smd,ansible.builtin.yaml,ansible.builtin.ini",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "PATH": os.pathsep.join([broken, tools, VENV_BIN, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
    })
    return env


def use_controller_python(path, host_vars):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    host_vars(data)["ansible_python_interpreter"] = CONTROLLER_PYTHON
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)


@pytest.fixture
def installed(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("installed"))
    state_dir = procs.make_workdir("e2e-installed")
    prepared = site = None
    try:
        collection = installed_collection(root)
        cli.up(state_dir, nodes=16, vm=False, out=lambda *_a, **_k: None)
        cli.load(state_dir, out=lambda *_a, **_k: None)
        # The site already runs its gateway (deployed from the checkout: lab set-up, not under test).
        prepared = cutover_lab.prepare(state_dir, power="true")
        cutover_lab.deploy_gateway(prepared, log=os.path.join(state_dir, "setup.log"))
        use_controller_python(prepared["inventory"], lambda d: d["all"]["children"]["bss_head"]["hosts"]["localhost"])
        site = site_lab.write_inventory(state_dir)
        use_controller_python(os.path.join(site["inventory"], "host_vars", "localhost.yml"), lambda d: d)
        cwd = os.path.join(root, "elsewhere")
        os.makedirs(cwd)
        yield {"collection": collection, "env": user_env(root), "cwd": cwd, "cutover": prepared, "site": site,
               "log": os.path.join(state_dir, "ansible.log")}
    finally:
        if site:
            site_lab.remove(site)
        if prepared:
            cutover_lab.remove_gateway(prepared)
        cli.down(state_dir, out=lambda *_a, **_k: None)
        shutil.rmtree(state_dir, ignore_errors=True)


def run(installed, *argv):
    result = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), *argv], cwd=installed["cwd"],
                            env=installed["env"], capture_output=True, text=True, timeout=600, check=False)
    with open(installed["log"], "a", encoding="utf-8") as handle:
        handle.write(f"$ ansible-playbook {' '.join(argv)}\n{result.stdout}{result.stderr}\nrc={result.returncode}\n")
    return result


def test_installed_tarball_runs_the_cutover_dry_run_and_the_site_from_outside_the_checkout(installed):
    # One test, one lab (under xdist, separate tests could each build a lab of their own).
    probe = subprocess.run(["python3", "-c", "print(1)"], env=installed["env"], capture_output=True, text=True,
                           check=False)
    assert probe.returncode == 127 and "command not found" in probe.stderr, "the user's python3 is broken"
    listing = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "list", "hpc_boot.bss"],
                             cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, check=True)
    assert os.path.dirname(os.path.dirname(os.path.dirname(installed["collection"]))) in listing.stdout
    assert REPO not in listing.stdout, "only the installed copy is on the collections path"
    for unwanted in ("tests", "lab", "bench", "extensions", "Makefile", "requirements-test.txt"):
        assert not os.path.exists(os.path.join(installed["collection"], unwanted)), unwanted

    dry = run(installed, "-i", installed["cutover"]["inventory"], "hpc_boot.bss.cutover", "--check")
    assert dry.returncode == 0, dry.stdout[-4000:] + dry.stderr[-2000:]
    assert "import would convert" in dry.stdout and "rollout would freeze" in dry.stdout
    assert "losses by kind" in dry.stdout
    assert not os.path.exists(os.path.join(installed["cutover"]["state_dir"], "state.json")), "check mode writes no state"

    # The dry run wrote nothing, so the site can adopt the lab's PostgreSQL.
    site = run(installed, "-i", installed["site"]["inventory"], "hpc_boot.bss.site")
    assert site.returncode == 0, site.stdout[-4000:] + site.stderr[-2000:]
    assert recap(site.stdout)["localhost"]["changed"] > 0
    checked, problems = site_lab.node_mismatches(installed["site"])
    assert problems == []
    assert checked >= 2 * 13, "every compute and login node was checked by MAC and by xname"
