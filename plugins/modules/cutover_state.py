#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cutover_state
short_description: Record the progress of an etcd-to-PostgreSQL cutover so a re-run resumes where it stopped
version_added: 0.1.0
author:
  - hpc_boot.bss contributors (@hpc-boot)
description:
  - Keeps one JSON state file per cutover. Each phase (preflight, backup, postgres, schema, import, new_bss, parity, canary,
    rollout, report) is recorded as V(started), V(done), V(failed) or V(skipped), with timestamps, duration, a reason and
    the figures the phase wants in the report.
  - The file is written atomically (temporary file, fsync, rename), so a killed run never leaves it half-written.
  - The cutover playbook asks for a phase's record before running it and skips phases already V(done).
options:
  path:
    description: The state file.
    type: path
    required: true
  phase:
    description: The phase to query or record. Not needed with O(status=query) to read the whole state, or with O(reset=true).
    type: str
  status:
    description:
      - V(query) reads and changes nothing.
      - V(started) records the start time (kept when the phase was already started, so a resumed phase keeps its first start).
      - V(done) and V(failed) close the phase and store O(data) and O(reason).
      - V(skipped) marks a phase not run on purpose.
    type: str
    choices: [query, started, done, failed, skipped]
    default: query
  data:
    description: Figures to keep with the phase (counts, paths, checksums); merged into what the phase already holds.
    type: dict
    default: {}
  reason:
    description: Why a phase failed or was skipped.
    type: str
    default: ""
  reset:
    description: Start a new cutover record. The previous file is kept beside it with a timestamp suffix.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would be recorded and writes nothing.
  diff_mode:
    support: full
    description: Shows the phase record before and after.
"""

EXAMPLES = r"""
- name: Read the cutover progress
  hpc_boot.bss.cutover_state:
    path: /var/lib/hpc_boot/cutover/state.json
    phase: import
  register: import_phase

- name: Import only when not done in an earlier run
  when: not import_phase.done
  block:
    - name: Mark the import as started
      hpc_boot.bss.cutover_state:
        path: /var/lib/hpc_boot/cutover/state.json
        phase: import
        status: started

    - name: Mark the import as done, with its counts
      hpc_boot.bss.cutover_state:
        path: /var/lib/hpc_boot/cutover/state.json
        phase: import
        status: done
        data:
          nodes: 1024
"""

RETURN = r"""
done:
  description: Whether O(phase) is recorded as done (after this call).
  returned: always
  type: bool
  sample: true
phase_record:
  description: The record of O(phase) after this call.
  returned: when O(phase) is given
  type: dict
  sample: {"status": "done", "started": "2026-11-25T01:02:03Z", "finished": "2026-11-25T01:02:09Z", "duration": 6.1, "data": {}, "reason": ""}
cutover:
  description: The whole state after this call.
  returned: always
  type: dict
  sample: {"created": "2026-11-25T01:00:00Z", "phases": {}, "order": []}
"""

import copy
import datetime
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

STATES_CLOSING = ("done", "failed", "skipped")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_state():
    return {"created": now_iso(), "updated": now_iso(), "phases": {}, "order": []}


def read_state(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            state = json.load(handle)
        except ValueError as exc:
            raise ValueError(f"cutover state file {path} is not valid JSON: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("phases"), dict):
        raise ValueError(f"cutover state file {path} has no 'phases' mapping")
    state.setdefault("order", list(state["phases"]))
    return state


def write_state(path, state):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cutover-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record_phase(state, phase, status, data, reason, clock=time.time):
    """Pure: the new state after recording ``status`` for ``phase``."""
    new = copy.deepcopy(state)
    blank = {"status": "pending", "started": "", "finished": "", "duration": 0.0, "data": {}, "reason": "", "started_epoch": 0.0}
    record = new["phases"].setdefault(phase, blank)
    if phase not in new["order"]:
        new["order"].append(phase)
    if status == "started":
        if record["status"] not in ("started", "failed") or not record["started_epoch"]:
            record["started"] = now_iso()
            record["started_epoch"] = clock()
        record["status"] = "started"
        record["finished"] = ""
    else:
        if not record["started_epoch"]:
            record["started"] = now_iso()
            record["started_epoch"] = clock()
        record["status"] = status
        record["finished"] = now_iso()
        record["duration"] = round(clock() - record["started_epoch"], 3)
        record["data"].update(data or {})
        record["reason"] = reason or ""
    return new


def comparable(record):
    """The parts of a phase record that decide whether a call changed anything (times excluded)."""
    if record is None:
        return None
    return {key: record.get(key) for key in ("status", "data", "reason")}


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "phase": {"type": "str"},
            "status": {"type": "str", "default": "query", "choices": ["query", "started", "done", "failed", "skipped"]},
            "data": {"type": "dict", "default": {}},
            "reason": {"type": "str", "default": ""},
            "reset": {"type": "bool", "default": False},
        },
        required_if=[("status", "started", ["phase"]), ("status", "done", ["phase"]), ("status", "failed", ["phase"]),
                     ("status", "skipped", ["phase"])],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    try:
        current = read_state(path)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"Failed to read cutover state '{path}': {exc}")
    changed = False
    state = current or empty_state()
    if params["reset"] and current is not None:
        changed = True
        if not module.check_mode:
            os.replace(path, f"{path}.{time.strftime('%Y%m%dT%H%M%S')}")
        state = empty_state()
    phase = params["phase"]
    before = state["phases"].get(phase) if phase else None
    if params["status"] != "query":
        new = record_phase(state, phase, params["status"], params["data"], params["reason"])
        if comparable(before) != comparable(new["phases"][phase]):
            changed = True
            state = new
    if changed and not module.check_mode:
        state["updated"] = now_iso()
        try:
            write_state(path, state)
        except OSError as exc:
            module.fail_json(msg=f"Failed to write cutover state '{path}': {exc}")
    record = state["phases"].get(phase) if phase else None
    result = {"changed": changed, "cutover": state, "done": bool(record and record["status"] == "done")}
    if phase:
        result["phase_record"] = record or {}
    if module._diff and phase:
        result["diff"] = {"before": json.dumps(before or {}, indent=2, sort_keys=True) + "\n",
                          "after": json.dumps(record or {}, indent=2, sort_keys=True) + "\n",
                          "before_header": f"{path} [{phase}]", "after_header": f"{path} [{phase}]"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
