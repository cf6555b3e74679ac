"""End-to-end tests import their harness from this directory."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def _shared_drill_lab():
    from drill_lab import SharedDrillLab  # pylint: disable=import-outside-toplevel
    shared = SharedDrillLab()
    yield shared
    shared.close()


@pytest.fixture
def drill_lab(_shared_drill_lab):  # pylint: disable=redefined-outer-name
    """A 16-node cutover lab with a QEMU canary, as new: reset (and checked) if an earlier drill used it."""
    return _shared_drill_lab.take()
