"""Fixtures shared by the integration tests of the doubles."""

import os

import pytest

from golden_replay import GOLDEN


@pytest.fixture(scope="module")
def golden_smd():
    """The SMD double serving the golden node set (golden/smd-nodes.json)."""
    from hpclab.smd import start_smd
    service = start_smd(os.path.join(GOLDEN, "smd-nodes.json"))
    yield service
    service.stop()
