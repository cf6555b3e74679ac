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


def _installed(service):
    """The installed upstream manifest of ``service`` ("bss" or "boot-service"); skips the test with the reason
    (fails under CI=true, which must run the real services) if it is absent."""
    from hpclab import upstream
    manifest, reason = upstream.availability(service)
    if manifest:
        return manifest
    if _ci():
        pytest.fail("CI runs the real upstream services: " + reason)
    pytest.skip(reason)


def upstream_bss():
    """The installed upstream BSS manifest; skips the test with the reason (fails under CI=true) if absent."""
    return _installed("bss")


def pytest_report_header(config):  # pylint: disable=unused-argument
    if os.environ.get("ANSIBLE_TEST_PYTHON_INTERPRETER"):
        return []  # ansible-test units: a copy of the tree without .build, and no test there runs a BSS
    from hpclab import upstream
    lines = []
    manifest, reason = upstream.availability("bss")
    if manifest:
        lines.append(f"BSS under test: the lab's double and upstream {manifest['version']} "
                     f"({manifest['boot_script_service']})")
    else:
        lines.append(f"BSS under test: the lab's double only; {reason}")
    manifest, reason = upstream.availability("boot-service")
    lines.append(f"boot-service under test: {manifest['version']} ({manifest['boot_service']})" if manifest
                 else f"boot-service: {reason}; its tests are skipped")
    return lines


@pytest.fixture
def boot_service_factory(tmp_path):
    """Start real boot-services (fresh file storage each): ``boot_service_factory(hsm_url=None, legacy_api=True)``.
    All are stopped by PID at teardown. Skips (fails under CI=true) if boot-service is not installed."""
    from hpclab.boot_service import start_boot_service
    binary = _installed("boot-service")["boot_service"]
    started = []

    def start(**kwargs):
        workdir = tmp_path / f"boot-service-{len(started)}"
        workdir.mkdir()
        service = start_boot_service(str(workdir), binary_path=binary, **kwargs)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def boot_service(boot_service_factory):
    """A real boot-service on a free loopback port with empty file storage (nodes resolved from Node records)."""
    return boot_service_factory()


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
