# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.filter.cutover_report import cutover_report

STATE = {"created": "c", "updated": "u", "order": ["preflight"], "phases": {"preflight": {
    "status": "done", "started": "", "started_epoch": 10.0, "finished": "", "duration": 1.0, "data": {}, "reason": ""}}}


def test_filter_builds_the_report_of_a_state():
    built = cutover_report(STATE, loss_report={}, old_url="http://old:1", new_url="http://new:2")
    assert built["outcome"]["text"] == "not finished: next phase backup"
    assert (built["old"]["url"], built["new"]["url"]) == ("http://old:1", "http://new:2")


@pytest.mark.parametrize("bad, message", [
    ("not a state", "'phases' mapping"),
    ({"order": []}, "'phases' mapping"),
])
def test_filter_refuses_what_is_not_a_state(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cutover_report(bad)


def test_filter_refuses_a_loss_report_that_is_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match="loss_report must be"):
        cutover_report(STATE, loss_report=["x"])
