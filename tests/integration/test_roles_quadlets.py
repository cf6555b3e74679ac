# Copyright: (c) 2026, hpc_boot.bss developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content tests of the podman quadlet files the postgresql and bss roles write.

podman cannot run on the test machine, so these render the files with the roles' own tasks
(tasks_from: quadlet_files) into a temporary directory and check what an adopted OpenCHAMI
install depends on: unit, container, volume, network and secret names, concrete environment
values, and that no password reaches a file.
"""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
DB_PASSWORD = "s3cret-bss-pw"

PLAY = """
- hosts: localhost
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Render the {role} quadlets
      ansible.builtin.include_role:
        name: hpc_boot.bss.{role}
        tasks_from: {tasks_from}
    # Stop here: the handlers (daemon-reload, restarts) need a service manager this test does not use.
    - name: End without running handlers
      ansible.builtin.meta: end_play
"""


def run_role(tmp_path, role, extra_vars, tasks_from="quadlet_files"):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(role=role, tasks_from=tasks_from), encoding="utf-8")
    args = [PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook), "-e", "ansible_python_interpreter=" + sys.executable]
    for key, value in extra_vars.items():
        args += ["-e", f"{key}={value}" if isinstance(value, str) else "@" + str(value)]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)


def read_units(directory):
    return {name: (directory / name).read_text(encoding="utf-8") for name in sorted(os.listdir(directory))}


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture(name="bss_quadlets")
def fixture_bss_quadlets(tmp_path):
    varfile = tmp_path / "vars.yml"
    varfile.write_text(
        "bss_quadlet_dir: {dir}\n"
        "bss_db_host: postgres\n"
        "bss_db_password: {pw}\n"
        "bss_hsm_url: http://smd:27779\n"
        "bss_ipxe_server: https://demo.openchami.cluster:8443\n"
        "bss_advertise_address: https://demo.openchami.cluster:8443\n"
        "bss_instances:\n"
        "  - {{name: bss, port: 27778, backend: postgres}}\n"
        "  - {{name: bss-etcd, port: 27780, backend: etcd, etcd_host: etcd, etcd_port: 2379}}\n".format(
            dir=tmp_path / "quadlets", pw=DB_PASSWORD), encoding="utf-8")
    result = run_role(tmp_path, "bss", {"vars": varfile})
    assert result.returncode == 0, result.stdout[-3000:]
    return read_units(tmp_path / "quadlets")


def test_bss_quadlets_keep_openchami_names(bss_quadlets):
    assert sorted(bss_quadlets) == ["bss-etcd.container", "bss-init.container", "bss.container"]
    server = lines(bss_quadlets["bss.container"])
    for expected in ("ContainerName=bss", "Image=ghcr.io/openchami/bss:v1.32.2",
                     "Secret=bss_postgres_password,type=env,target=BSS_DBPASS", "Network=openchami-internal.network",
                     "PartOf=openchami.target", "Requires=bss-init.service", "After=bss-init.service",
                     'Environment="BSS_USESQL=true"', 'Environment="BSS_DBHOST=postgres"', 'Environment="BSS_DBNAME=bssdb"',
                     'Environment="BSS_DBUSER=bss-user"', 'Environment="BSS_HTTP_LISTEN=:27778"',
                     'Environment="BSS_IPXE_SERVER=https://demo.openchami.cluster:8443"', 'Environment="HSM_URL=http://smd:27779"'):
        assert expected in server, expected


def test_bss_schema_step_waits_for_postgres_and_pins_the_version(bss_quadlets):
    init = lines(bss_quadlets["bss-init.container"])
    assert "After=postgres.service" in init
    assert "Environment=BSS_DBSTEP=3" in init
    assert "Type=oneshot" in init and "RemainAfterExit=yes" in init
    assert "Secret=bss_postgres_password,type=env,target=BSS_DBPASS" in init


def test_bss_etcd_instance_has_no_database_settings(bss_quadlets):
    etcd = bss_quadlets["bss-etcd.container"]
    assert 'Environment="ETCD_HOST=etcd"' in etcd and 'Environment="ETCD_PORT=2379"' in etcd
    assert 'Environment="BSS_USESQL=false"' in etcd
    assert "BSS_DB" not in etcd and "Secret=" not in etcd and "bss-init" not in etcd


def test_bss_quadlets_hold_no_password_and_no_variable_references(bss_quadlets):
    for name, text in bss_quadlets.items():
        assert DB_PASSWORD not in text, name
        assert "${" not in text, name


def test_bss_role_refuses_variable_references(tmp_path):
    varfile = tmp_path / "vars.yml"
    varfile.write_text("bss_db_password: x\nbss_extra_env: {BSS_IPXE_SERVER: '${SYSTEM_URL}'}\n", encoding="utf-8")
    result = run_role(tmp_path, "bss", {"vars": varfile}, tasks_from="main")
    assert result.returncode != 0
    assert "environment values must be concrete (no ${VAR})" in result.stdout


def test_postgresql_quadlets_keep_openchami_names(tmp_path):
    quadlets = tmp_path / "quadlets"
    varfile = tmp_path / "vars.yml"
    varfile.write_text(f"postgresql_quadlet_dir: {quadlets}\npostgresql_bss_db_password: {DB_PASSWORD}\n", encoding="utf-8")
    result = run_role(tmp_path, "postgresql", {"vars": varfile})
    assert result.returncode == 0, result.stdout[-3000:]
    units = read_units(quadlets)
    assert sorted(units) == ["openchami-internal.network", "openchami-jwt-internal.network", "postgres-data.volume",
                             "postgres.container"]
    server = lines(units["postgres.container"])
    for expected in ("ContainerName=postgres", "Image=docker.io/library/postgres:11.5-alpine",
                     "Volume=postgres-data.volume:/var/lib/postgresql/data", "Environment=POSTGRES_USER=ochami",
                     "Secret=postgres_password,type=env,target=POSTGRES_PASSWORD",
                     "Secret=bss_postgres_password,type=env,target=BSS_POSTGRES_PASSWORD",
                     "Network=openchami-internal.network", "PartOf=openchami.target"):
        assert expected in server, expected
    assert "Internal=true" in units["openchami-internal.network"]
    assert all(DB_PASSWORD not in text for text in units.values())
