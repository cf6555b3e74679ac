"""Shared pytest set-up: import paths for the collection and the lab, and real-service fixtures.

The collection is imported as ``ansible_collections.hpc_boot.bss`` through a symlink farm under
``.build/collections`` (made here if missing); the lab package ``hpclab`` lives in ``lab/``.
Services run on 127.0.0.1 on free ports and are stopped by PID at teardown.
"""

import os
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "hpc_boot", "bss")
GOLDEN = os.environ.get("HPC_BOOT_GOLDEN", os.path.join(REPO, "tests", "fixtures", "golden"))


def _paths():
    if not os.path.lexists(LINK) and not os.environ.get("ANSIBLE_TEST_PYTHON_INTERPRETER"):
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        os.symlink(os.path.relpath(REPO, os.path.dirname(LINK)), LINK)
    for path in (os.path.join(REPO, "lab"), COLLECTIONS):
        if path not in sys.path:
            sys.path.insert(0, path)


_paths()


def _ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def upstream_bss():
    """The installed upstream BSS manifest; skips the test with the reason (fails under CI=true) if absent."""
    from hpclab import upstream
    manifest = upstream.read_manifest()
    if manifest and not manifest.get("unavailable"):
        return manifest
    reason = manifest["unavailable"] if manifest else "not installed: run `make upstream`"
    message = f"upstream BSS {upstream.bss_version()} not available ({reason})"
    if _ci():
        pytest.fail("CI runs the real upstream BSS: " + message)
    pytest.skip(message)


def pytest_report_header(config):  # pylint: disable=unused-argument
    if os.environ.get("ANSIBLE_TEST_PYTHON_INTERPRETER"):
        return []  # ansible-test units: a copy of the tree without .build, and no test there runs a BSS
    from hpclab import upstream
    manifest = upstream.read_manifest()
    if manifest and not manifest.get("unavailable"):
        return [f"BSS under test: the lab's double and upstream {manifest['version']} ({manifest['boot_script_service']})"]
    reason = manifest["unavailable"] if manifest else "not installed: run `make upstream`"
    return [f"BSS under test: the lab's double only; upstream {upstream.bss_version()} is not available ({reason})"]


@pytest.fixture(scope="session", params=["double", "upstream"])
def bss_impl(request):
    """Which BSS a BSS-facing test runs against: the lab's double, then the real upstream binary."""
    if request.param == "upstream":
        upstream_bss()
    return request.param


@pytest.fixture(scope="session")
def golden_dir():
    if not os.path.isdir(GOLDEN):
        pytest.fail(f"golden reference data not found at {GOLDEN} (set HPC_BOOT_GOLDEN)")
    return GOLDEN


@pytest.fixture(scope="session")
def etcd_server():
    from hpclab import procs
    service = procs.start_etcd()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server():
    from hpclab import procs
    service = procs.start_postgres()
    yield service
    service.stop()


@pytest.fixture
def etcd_prefix_clean(etcd_server):
    """The session etcd, emptied before the test."""
    import etcd3
    client = etcd3.client(host="127.0.0.1", port=etcd_server.port)
    client.delete_prefix("/")
    client.delete_prefix("hbtd_dist_lock")
    yield etcd_server
    client.close()


@pytest.fixture
def bss_database(postgres_server):
    """A fresh, empty database owned by the BSS user; yields its libpq conninfo string."""
    from hpclab import procs
    name = "t_" + uuid.uuid4().hex[:12]
    procs.psql(postgres_server, f"CREATE DATABASE {name} OWNER {postgres_server.extra['user']}")
    yield procs.postgres_conninfo(postgres_server, dbname=name)
    procs.psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
