# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cutover_report
short_description: Turn the cutover state and its loss report into what the cutover report shows
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Used by the C(hpc_boot.bss.cutover) role to write report.md and report.html from the same data.
  - Returns the outcome (complete, stopped at a phase, interrupted, rolled back), where boot traffic goes now, the parity
    of each parity run with only the differing lookups (old and new script line where they first differ), the canary's
    verdict, the losses grouped by kind with a count, what the kind means for the nodes and what to do, and a phase
    timeline with bar geometry for inline SVG.
  - Nothing is escaped here; the HTML template escapes every value.
options:
  _input:
    description: The cutover state, as RV(hpc_boot.bss.cutover_state#module:cutover) returns it.
    type: dict
    required: true
  loss_report:
    description:
      - The import's complete loss report (the JSON file O(hpc_boot.bss.import_bootparams#module:loss_report) writes).
      - When empty, the losses kept in the state are used (at most 200, counted in full by kind).
    type: dict
    default: {}
  accept_kinds:
    description: Loss kinds accepted for the import (C(cutover_accept_loss_kinds)).
    type: list
    elements: str
    default: []
  accept_names:
    description: Record or node names whose losses were accepted (C(cutover_accept_losses)).
    type: list
    elements: str
    default: []
  old_url:
    description: URL of the old side, used when the state does not record it.
    type: str
    default: ""
  new_url:
    description: URL of the new side, used when the state does not record it.
    type: str
    default: ""
  loss_report_path:
    description: Path of the loss report file, for the link on the page.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Build the report data
  ansible.builtin.set_fact:
    report: "{{ state.cutover | hpc_boot.bss.cutover_report(loss_report=losses, accept_kinds=['cloud_init']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(outcome) (C(status), C(word), C(text), C(phase), C(reason)), C(traffic), C(parity) (one entry per run),
      C(parity_differences), C(canary), C(losses) (C(total), C(kinds) each with C(count), C(meaning), C(action) and
      C(records)), C(timeline) (C(rows) with C(x), C(width), C(y)), C(backups), C(import_counts), C(old), C(new), C(title).
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.hpc_boot.bss.plugins.module_utils.cutover_report import build


def cutover_report(state, loss_report=None, accept_kinds=None, accept_names=None, old_url="", new_url="", loss_report_path=""):
    if not isinstance(state, Mapping) or not isinstance(state.get("phases"), Mapping):
        raise AnsibleFilterError("cutover_report: the input must be the cutover state with a 'phases' mapping, got %r" % (type(state).__name__,))
    if loss_report and not isinstance(loss_report, Mapping):
        raise AnsibleFilterError("cutover_report: loss_report must be the loss report mapping, got %r" % (type(loss_report).__name__,))
    return build(state, loss_report or None, list(accept_kinds or []), list(accept_names or []),
                 str(old_url or ""), str(new_url or ""), str(loss_report_path or ""))


class FilterModule:
    def filters(self):
        return {"cutover_report": cutover_report}
