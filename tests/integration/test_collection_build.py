"""The built collection tarball carries the collection and nothing of the development tree."""

import os
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tarball_has_plugins_and_docs_but_no_tests_lab_bench_or_build_outputs(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), REPO],
                   check=True, capture_output=True, text=True)
    (tarball,) = tmp_path.glob("hpc_boot-bss-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"plugins", "meta", "README.md", "COPYING", "MANIFEST.json"} <= tops
    assert "meta/runtime.yml" in names
    # requirements.txt is the collection's own Python needs (execution environment); the test pins stay out.
    assert "requirements.txt" in tops
    for unwanted in ("tests", "lab", "bench", ".venv", ".build", ".ci", ".git", "extensions", "Makefile", "requirements-test.txt"):
        assert unwanted not in tops, f"{unwanted} must not be in the collection tarball"
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
