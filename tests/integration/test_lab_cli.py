"""``lab/bin/hpclab``: up, status, env, load, down, and failures during up leaving nothing behind."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HPCLAB = os.path.join(REPO, "lab", "bin", "hpclab")
PIECES = {"etcd", "postgres", "smd", "bss-etcd", "bss-postgres", "gateway"}

requests = pytest.importorskip("requests")
psycopg = pytest.importorskip("psycopg")


def hpclab(state_dir, *args, check=True, timeout=180):
    result = subprocess.run([HPCLAB, *args, "--state-dir", str(state_dir)], capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"hpclab {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def env_of(state_dir):
    values = {}
    for line in hpclab(state_dir, "env").stdout.splitlines():
        assert line.startswith("export HPCLAB_"), line
        name, value = line[len("export "):].split("=", 1)
        values[name] = shlex.split(value)[0]
    return values


def recorded(state_dir):
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        return json.load(handle)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def work_root():
    """Parent of the lab's temporary directories, traversable by the postgres user."""
    path = tempfile.mkdtemp(prefix="hpclab-test-root-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("lab-state")
    result = hpclab(state_dir, "up", "--no-vm", "--nodes", "64", "--seed", "3")
    yield state_dir, result
    hpclab(state_dir, "down", check=False)


def test_up_starts_every_piece_and_status_says_so(running_lab):
    state_dir, up_result = running_lab
    assert set(recorded(state_dir)) == PIECES
    for name in PIECES:
        assert name in up_result.stdout
    result = hpclab(state_dir, "status", "--json")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == PIECES
    assert all(row["ok"] and row["alive"] for row in rows.values()), rows
    assert "64 components" in rows["smd"]["detail"]
    assert "etcd" in rows["bss-etcd"]["detail"] and "postgres" in rows["bss-postgres"]["detail"]
    assert "bssuser" in rows["postgres"]["detail"]
    text = hpclab(state_dir, "status").stdout
    assert "FAIL" not in text and text.count("ok ") >= len(PIECES)


def test_env_points_at_answering_services(running_lab):
    state_dir = running_lab[0]
    env = env_of(state_dir)
    assert requests.get(env["HPCLAB_ETCD_URL"] + "/health", timeout=5).json()["health"] == "true"
    with psycopg.connect(host=env["HPCLAB_PG_HOST"], port=env["HPCLAB_PG_PORT"], dbname=env["HPCLAB_PG_DBNAME"],
                         user=env["HPCLAB_PG_USER"], password=env["HPCLAB_PG_LAB_PASSWORD"], connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "bssuser"
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchone() == (3, False)
    with psycopg.connect(env["HPCLAB_PG_CONNINFO"], connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 0
    components = requests.get(env["HPCLAB_SMD_URL"] + "/hsm/v2/State/Components", timeout=5).json()["Components"]
    with open(env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
        nodes = json.load(handle)
    assert len(components) == len(nodes) == 64
    assert {c["ID"] for c in components} == {n["xname"] for n in nodes}
    for var, backend in (("HPCLAB_BSS_ETCD_URL", "etcd"), ("HPCLAB_BSS_POSTGRES_URL", "postgres")):
        body = requests.get(env[var] + "/boot/v1/service/storage/status", timeout=5).json()
        assert body["bss-storage-backend"] == {"name": backend, "status": "connected"}
    gateway = env["HPCLAB_GATEWAY_URL"]
    assert requests.get(gateway + "/boot/v1/service/status", timeout=5).json() == {"bss-status": "running"}
    assert requests.get(gateway + "/boot/v1/service/storage/status", timeout=5).json()["bss-storage-backend"]["name"] == "etcd"
    assert requests.get(gateway + "/elsewhere", timeout=5).status_code == 404
    ports = {env[var].rsplit(":", 1)[1] for var in env if var.endswith("_URL")} | {env["HPCLAB_PG_PORT"]}
    assert len(ports) == 6 and "2379" not in ports and "27778" not in ports


def test_up_when_up_says_so_and_changes_nothing(running_lab):
    state_dir = running_lab[0]
    before = {name: data["pid"] for name, data in recorded(state_dir).items()}
    result = hpclab(state_dir, "up", "--no-vm")
    assert "already up" in result.stdout
    assert {name: data["pid"] for name, data in recorded(state_dir).items()} == before


def assert_etcd_holds_predicted_records(env, nodes):
    """API payloads through the BSS plus raw writes give exactly what etcd_records predicts (tokens aside)."""
    import etcd3
    from hpclab import cluster
    client = etcd3.client(host=env["HPCLAB_ETCD_HOST"], port=int(env["HPCLAB_ETCD_PORT"]))
    try:
        actual = {meta.key.decode(): value for value, meta in client.get_prefix("/")}
    finally:
        client.close()
    actual.pop("/bss/etcdTest", None)
    expected = cluster.etcd_records(nodes, seed=3)

    def token_free(value):
        return re.sub(rb'"(referral-token|ReferralToken)":"[0-9a-f-]{36}"', rb'"\1":"<token>"', value)
    assert sorted(actual) == sorted(expected)
    assert {key: token_free(value) for key, value in actual.items()} == {key: token_free(value) for key, value in expected.items()}


def test_load_fills_etcd_bss_only(running_lab):
    state_dir = running_lab[0]
    result = hpclab(state_dir, "load")
    assert "loaded 64 nodes" in result.stdout
    env = env_of(state_dir)
    with open(env["HPCLAB_SMD_NODES_FILE"], encoding="utf-8") as handle:
        nodes = json.load(handle)
    assert_etcd_holds_predicted_records(env, nodes)
    listed = requests.get(env["HPCLAB_BSS_ETCD_URL"] + "/boot/v1/bootparameters", timeout=10).json()
    hosts = {host for entry in listed for host in entry.get("hosts", [])}
    assert {"Default", "Compute", "Global"} <= hosts
    assert len(hosts & {node["xname"] for node in nodes}) > 20
    compute = next(node for node in nodes if node["role"] == "Compute" and node["xname"] in hosts)
    mac = compute["macs"][0]
    script = requests.get(env["HPCLAB_GATEWAY_URL"] + "/boot/v1/bootscript", params={"mac": mac}, timeout=10)
    assert script.status_code == 200 and "\nkernel " in script.text and f"xname={compute['xname']}" in script.text
    empty = requests.get(env["HPCLAB_BSS_POSTGRES_URL"] + "/boot/v1/bootscript", params={"mac": mac}, timeout=10)
    assert "\nkernel " not in empty.text and "chain " in empty.text
    again = hpclab(state_dir, "load")
    assert again.stdout.split("(")[0] == result.stdout.split("(")[0]
    refused = hpclab(state_dir, "load", "--nodes", "65", check=False)
    assert refused.returncode == 1 and "nodes:" in refused.stderr and "65" in refused.stderr


def test_down_stops_every_recorded_pid_and_is_safe_twice(tmp_path, work_root):
    hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root)
    state = recorded(tmp_path)
    pids = {name: data["pid"] for name, data in state.items()}
    dirs = [data["workdir"] for data in state.values()]
    assert all(alive(pid) for pid in pids.values()) and all(os.path.isdir(path) for path in dirs)
    assert all(path.startswith(work_root + "/") for path in dirs)
    result = hpclab(tmp_path, "down")
    assert all(name in result.stdout for name in pids)
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not [path for path in dirs if os.path.exists(path)]
    assert not os.path.exists(tmp_path / "state.json")
    assert os.listdir(work_root) == []
    second = hpclab(tmp_path, "down")
    assert "not up" in second.stdout
    status = hpclab(tmp_path, "status", check=False)
    assert status.returncode == 3 and "not up" in status.stdout


def _assert_nothing_left(state_dir, work_root, result):
    started = [int(line.split("pid", 1)[1].split()[0]) for line in result.stdout.splitlines() if " pid " in line]
    assert len(started) >= 5, result.stdout
    assert not [pid for pid in started if alive(pid)]
    assert os.listdir(work_root) == []
    assert not os.path.exists(os.path.join(state_dir, "state.json"))
    assert hpclab(state_dir, "status", check=False).returncode == 3


def test_bad_gateway_config_stops_everything(tmp_path, work_root):
    config = tmp_path / "bad.cfg"
    config.write_text("frontend boot\n    bind 127.0.0.1:{port}\n    no_such_keyword here\n", encoding="utf-8")
    result = hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root,
                    "--gateway-config", str(config), check=False)
    assert result.returncode == 1
    assert "gateway failed to start" in result.stderr and "no_such_keyword" in result.stderr
    _assert_nothing_left(tmp_path, work_root, result)


def test_occupied_gateway_port_is_refused_and_nothing_left(tmp_path, work_root):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root,
                        "--gateway-port", str(port), check=False)
    assert result.returncode == 1
    assert "gateway failed to start" in result.stderr and f"port {port}" in result.stderr and "in use" in result.stderr
    _assert_nothing_left(tmp_path, work_root, result)


def test_gateway_dying_at_start_shows_its_log_and_nothing_left(tmp_path, work_root):
    """A config haproxy accepts (-c) but cannot run: the second bind hits a port someone else holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        config = tmp_path / "gateway.cfg"
        config.write_text(
            "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n"
            f"frontend boot\n    bind 127.0.0.1:{{port}}\n    bind 127.0.0.1:{busy.getsockname()[1]}\n"
            "    default_backend bss_etcd\nbackend bss_etcd\n    server bss 127.0.0.1:{bss_etcd_port}\n", encoding="utf-8")
        result = hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root,
                        "--gateway-config", str(config), check=False)
    assert result.returncode == 1, result.stdout
    assert "gateway failed to start" in result.stderr and "gateway.log" in result.stderr
    assert "cannot bind" in result.stderr.lower()
    _assert_nothing_left(tmp_path, work_root, result)


@pytest.mark.parametrize("ports,field", [((0, 80), "bss_etcd_port"), ((80, "81"), "bss_postgres_port"), ((80, 70000), "bss_postgres_port")])
def test_lab_gateway_config_rejects_bad_ports(ports, field):
    from hpclab import gateway_lab
    with pytest.raises(ValueError, match=field):
        gateway_lab.lab_gateway_config(*ports)


def test_dead_pieces_show_in_status_and_up_starts_afresh(tmp_path, work_root):
    import signal
    hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root)
    try:
        first = recorded(tmp_path)
        os.kill(first["smd"]["pid"], signal.SIGKILL)
        for _attempt in range(400):
            if not alive(first["smd"]["pid"]):
                break
            time.sleep(0.05)
        status = hpclab(tmp_path, "status", check=False)
        assert status.returncode == 1
        assert [line for line in status.stdout.splitlines() if line.startswith("FAIL")] == [
            line for line in status.stdout.splitlines() if " smd " in line]
        for data in first.values():
            if alive(data["pid"]):
                os.kill(data["pid"], signal.SIGKILL)
        result = hpclab(tmp_path, "up", "--no-vm", "--nodes", "8", "--work-root", work_root)
        assert "already up" not in result.stdout
        second = recorded(tmp_path)
        assert all(alive(data["pid"]) for data in second.values())
        assert not [data["workdir"] for data in first.values() if os.path.exists(data["workdir"])]
        assert hpclab(tmp_path, "status").returncode == 0
    finally:
        hpclab(tmp_path, "down", check=False)
    assert os.listdir(work_root) == []
