# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the snapshot file handling: atomic write, checksum."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.hpc_boot.bss.plugins.modules import etcd_snapshot


def test_atomic_write_leaves_complete_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "snap.db")
    etcd_snapshot.write_atomically(path, lambda handle: handle.write(b"x" * 3000000))
    assert os.path.getsize(path) == 3000000 and os.listdir(str(tmp_path)) == ["snap.db"]
    assert etcd_snapshot.sha256_of(path) == hashlib.sha256(b"x" * 3000000).hexdigest()


def test_failed_write_keeps_the_previous_file_untouched(tmp_path):
    path = str(tmp_path / "snap.db")
    etcd_snapshot.write_atomically(path, lambda handle: handle.write(b"old"))

    def broken(handle):
        handle.write(b"partial")
        raise IOError("stream cut")

    with pytest.raises(IOError, match="stream cut"):
        etcd_snapshot.write_atomically(path, broken)
    with open(path, "rb") as handle:
        assert handle.read() == b"old"
    assert os.listdir(str(tmp_path)) == ["snap.db"]
