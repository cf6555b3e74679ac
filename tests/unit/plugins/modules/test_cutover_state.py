# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hpc_boot.bss.plugins.modules import cutover_state


def run(args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            cutover_state.main()


@pytest.fixture
def result(capsys):
    def read():
        return json.loads(capsys.readouterr().out)
    return read


def test_phase_lifecycle_and_resume(tmp_path, result):
    path = str(tmp_path / "state.json")
    run({"path": path, "phase": "import"})
    first = result()
    assert first["changed"] is False and first["done"] is False
    assert not (tmp_path / "state.json").exists()

    run({"path": path, "phase": "import", "status": "started"})
    assert result()["changed"] is True
    run({"path": path, "phase": "import", "status": "started"})
    assert result()["changed"] is False, "re-starting a started phase (a resumed run) changes nothing"

    run({"path": path, "phase": "import", "status": "done", "data": {"nodes": 3}})
    done = result()
    assert done["changed"] is True and done["done"] is True
    assert done["phase_record"]["data"] == {"nodes": 3}
    run({"path": path, "phase": "import", "status": "done", "data": {"nodes": 3}})
    assert result()["changed"] is False

    on_disk = json.loads((tmp_path / "state.json").read_text())
    assert on_disk["order"] == ["import"] and on_disk["phases"]["import"]["status"] == "done"


def test_failed_phase_keeps_reason_and_is_not_done(tmp_path, result):
    path = str(tmp_path / "state.json")
    run({"path": path, "phase": "canary", "status": "failed", "reason": "cmdline mismatch on x3000c0s1b0n0"})
    failed = result()
    assert failed["done"] is False
    assert failed["phase_record"]["reason"] == "cmdline mismatch on x3000c0s1b0n0"


def test_check_mode_writes_nothing(tmp_path, result):
    path = str(tmp_path / "state.json")
    run({"path": path, "phase": "backup", "status": "done", "_ansible_check_mode": True})
    assert result()["changed"] is True
    assert not (tmp_path / "state.json").exists()


def test_reset_keeps_previous_file(tmp_path, result):
    path = str(tmp_path / "state.json")
    run({"path": path, "phase": "backup", "status": "done"})
    result()
    run({"path": path, "reset": True})
    assert result()["cutover"]["phases"] == {}
    assert len(list(tmp_path.glob("state.json.*"))) == 1


def test_corrupt_state_file_is_a_clear_error(tmp_path, result):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    run({"path": str(path), "phase": "backup"})
    failed = result()
    assert failed["failed"] is True and str(path) in failed["msg"]
