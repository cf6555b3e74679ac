"""`make demo`: the lab, both BSS modes, the whole cutover with a QEMU canary, and nothing left behind."""

import os
import re
import subprocess
import tempfile

import pytest

from hpclab import procs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.vm


def test_demo_runs_the_cutover_and_leaves_nothing():
    work_root = tempfile.mkdtemp(prefix="hpclab-demo-test-")
    os.chmod(work_root, 0o755)  # the postgres user enters the lab's directories
    try:
        env = dict(os.environ, HPCLAB_WORK_ROOT=work_root,
                   PATH=os.pathsep.join([os.path.join(REPO, ".build", "bin"), os.environ.get("PATH", "")]))
        result = subprocess.run([os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "lab", "demo.py")],
                                capture_output=True, text=True, timeout=900, check=False, env=env)
        out = result.stdout
        assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
        assert "storage: etcd connected" in out and "storage: postgres connected" in out
        assert "postgres-mode BSS: 0/64 nodes get a kernel script" in out, "before the import the new BSS boots nobody"
        assert "import would convert" in out and "losses by kind" in out, "the dry run is shown"
        for phase in ("preflight", "backup", "import", "parity", "canary", "rollout"):
            assert re.search(rf"^\s+{phase}\s+done\s", out, re.M), f"phase {phase} done"
        parity = re.search(r"parity (\d+)/(\d+) lookups equal", out)
        assert parity and parity.group(1) == parity.group(2) and int(parity.group(2)) >= 64 * 3
        assert "All boot traffic now goes to the PostgreSQL BSS" in out
        assert re.search(r"Canary x\S+ booted with: .*hpclab.canary=1", out)
        assert os.path.exists(os.path.join(REPO, ".build", "demo", "report.html"))
        started = [int(line.split("pid", 1)[1].split()[0]) for line in out.splitlines() if " pid " in line and "stopped" not in line]
        assert len(started) == 7 and not [pid for pid in started if procs.pid_alive(pid)]
        assert os.listdir(work_root) == []
        # the demo's own gateway unit (named after its hpclab-demo-* state dir); other e2e tests run labs meanwhile
        assert not [name for name in os.listdir("/etc/systemd/system") if name.startswith("hpclab-gw-") and "demo" in name], \
            "the gateway unit is removed"
    finally:
        procs.shutil.rmtree(work_root, ignore_errors=True)
