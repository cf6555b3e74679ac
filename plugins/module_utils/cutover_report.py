# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cutover report shows, built from the cutover state file and the loss report (pure).

The templates ``report.md.j2`` and ``report.html.j2`` only lay out what ``build`` returns: the
summary (result, where boot traffic goes, parity per run, the canary, losses counted by kind with what
each kind means and what to do), the losses grouped by kind, the phase timeline and the parity
differences. Nothing here escapes text: the HTML template escapes every value.
"""

from __future__ import annotations

import datetime

# Phases of the cutover in the order the role runs them, per destination; phases absent from the state are "not run".
DESTINATION_PHASES = {
    "postgres": ("preflight", "backup", "postgres", "schema", "import", "new_bss", "parity", "canary", "rollout"),
    "boot_service": ("preflight", "backup", "boot_service", "import", "parity", "canary", "rollout"),
}
MAIN_PHASES = DESTINATION_PHASES["postgres"]
# Records listed per kind on the page; the loss report (JSON) the page links holds all of them.
LISTED_PER_KIND = 1000
# Timeline geometry (SVG user units): label column, bar area, text after the bars, row height.
LABEL_WIDTH = 110
BAR_WIDTH = 560
ROW_HEIGHT = 22
MIN_BAR = 3

PARITY_RUNS = {
    "parity": "before the canary",
    "rollout": "on the frozen data, before the switch",
    "rollback": "after the rollback",
}

# kind -> (what it means for the nodes, what the admin can do). "{export}" is replaced by where the data is kept.
LOSS_KINDS = {
    "cloud_init": (
        "these nodes get no cloud-init meta-data, user-data or phone-home from the new side, which cannot store it",
        "move their cloud-init data to the cloud-init service{export}"),
    "global_cloud_init": (
        "the Global record's cloud-init data, shared by every node, is not carried over",
        "move it to the cloud-init service's global data{export}"),
    "unknown_mac_record": (
        "records named by a MAC that SMD does not know; such a MAC gets the discovery script from both sides, so no node changes",
        "delete the records, or add the hardware to SMD and re-run the import"),
    "unknown_nid_record": (
        "records named by a NID that SMD does not know; no node boots from them on either side",
        "delete the records, or give the node that NID in SMD and re-run the import"),
    "unknown_xname_record": (
        "records for xnames SMD does not know; no node boots from them on either side",
        "add the nodes to SMD and re-run the import, or delete the records"),
    "shadowed_record": (
        "raw MAC or nid records of known nodes that no boot lookup reaches; nodes boot as before",
        "nothing is needed; delete the records to tidy up"),
    "tag_record": (
        "Default, role and other tag records: the nodes they served now have their own rows and boot the same, "
        "but nodes added later get no fallback",
        "give new nodes boot parameters explicitly (for example with the boot_config role) when you add them"),
    "image_params_merged": (
        "kernel or initrd image params were appended to the nodes' command line, so they boot the same; "
        "GET /bootparameters shows the merged line",
        "nothing is needed; change these params per node from now on"),
    "kernel_missing": (
        "the record serving these nodes has no kernel: they got the discovery script before and still do",
        "nothing changes; give them a kernel when they should boot"),
    "divergent_identities": (
        "the node's MACs, xname and NID were served different configurations; each keeps booting exactly as before, "
        "but a later change by one identity no longer moves the others",
        "set one configuration for the whole node, by xname"),
    "node_without_mac": (
        "SMD lists no MAC for these nodes: their rows hold xname and NID only, and a boot request by MAC finds nothing, as before",
        "fix the nodes' Ethernet interfaces in SMD and re-run the import"),
    "undecodable_record": (
        "records the old BSS itself cannot decode; no node boots from them on either side",
        "read the detail, then fix or delete each record"),
    "unsafe_params": (
        "values that change the structure of the boot script were imported exactly as etcd served them: "
        "the nodes boot the same, and run what these values make them run",
        "read each detail and correct the record with hpc_boot.bss.bootparams, which refuses such values"),
}
# Kinds the boot-service import reports, and kinds whose meaning differs there.
LOSS_KINDS_BOOT_SERVICE = {
    "divergent_identities": (
        "the node's MACs, xname and NID were served different configurations; boot-service serves one configuration "
        "per node, so the identities named in the detail now boot that one",
        "check the detail, then set the configuration you want for the whole node"),
    "html_escaped": (
        "boot-service writes these values through Go's html/template, so the nodes are served them escaped (&amp; and the like)",
        "remove the characters HTML escapes from these kernel, initrd or params values"),
    "initrd_quirk": (
        "BSS cut the first word holding 'initrd' from the command line and added initrd=initrd; boot-service serves the line as written",
        "check that the kernel still finds its initrd, and write the command line as the nodes need it"),
    "endpoint_disabled": (
        "SMD lists no enabled endpoint for these nodes: BSS answered them with the discovery script, boot-service boots them",
        "enable their endpoints in SMD, or remove them from boot-service if they must not boot"),
    "script_time_params": (
        "parameters BSS adds to every script at boot time (named in the detail) are added differently or not at all by boot-service",
        "put the parameters the nodes need into their configuration, or set the import's matching option"),
}
UNKNOWN_KIND = ("no description for this kind", "read each record's detail and docs/import-rules.md")


def build(state, loss_report=None, accept_kinds=None, accept_names=None, old_url="", new_url="", loss_report_path=""):
    """The report as one dict: summary, timeline, losses, parity runs, backups, import counts."""
    state = state or {}
    phases = state.get("phases") or {}
    order = [name for name in state.get("order") or list(phases) if name in phases]
    destination = str(_data(phases.get("preflight")).get("destination") or ("boot_service" if "boot_service" in phases else "postgres"))
    main_phases = DESTINATION_PHASES.get(destination, MAIN_PHASES)
    old = _side(phases.get("preflight"), old_url, "old BSS", "old_bss_backend", "etcd")
    if destination == "boot_service":
        new = _side(phases.get("boot_service"), new_url, "boot-service", "backend", "")
    else:
        new = _side(phases.get("new_bss"), new_url, "new BSS", "backend", "")
    kinds = dict(LOSS_KINDS, **LOSS_KINDS_BOOT_SERVICE) if destination == "boot_service" else LOSS_KINDS
    losses = _losses(phases, loss_report, accept_kinds or [], accept_names or [], loss_report_path, kinds)
    parity = _parity_runs(phases, order)
    return {
        "created": state.get("created", ""),
        "updated": state.get("updated", ""),
        "old": old,
        "new": new,
        "title": "BSS cutover report: %s to %s" % (old["label"], new["label"]),
        "destination": destination,
        "outcome": _outcome(phases, order, main_phases),
        "traffic": _traffic(phases, old, new),
        "parity": parity,
        "parity_differences": [run for run in parity if run["differences"]],
        "canary": _canary(phases.get("canary")),
        "losses": losses,
        "timeline": _timeline(phases, order, main_phases),
        "backups": list(_data(phases.get("backup")).get("files") or []),
        "backup_revision": _data(phases.get("backup")).get("revision", ""),
        "import_counts": [{"name": key, "value": value} for key, value in sorted((_data(phases.get("import")).get("counts") or {}).items())],
    }


def _data(record):
    data = (record or {}).get("data")
    return data if isinstance(data, dict) else {}


def _side(record, url, default_name, backend_key, default_backend):
    data = _data(record)
    name = str(data.get("name") or default_name)
    backend = str(data.get(backend_key) or default_backend)
    if backend.startswith("not started"):
        backend = ""
    label = "%s (%s)" % (name, backend) if backend else name
    return {"name": name, "backend": backend, "label": label, "url": str(data.get("url") or url or ""),
            "version": str(data.get("version") or data.get("old_bss_version") or "")}


def _outcome(phases, order, main_phases):
    rollback = phases.get("rollback")
    if rollback:
        status = rollback.get("status")
        if status == "done":
            return _result("rolled_back", "ROLLED BACK", "rolled back at %s" % rollback.get("finished", ""), "rollback", "")
        word = "failed" if status == "failed" else "was interrupted"
        return _result("rollback_failed", "FAILED", "the rollback %s" % word, "rollback", rollback.get("reason", ""))
    for name in order:
        record = phases[name]
        if record.get("status") == "failed":
            return _result("stopped", "FAILED", "stopped at phase %s" % name, name, record.get("reason", ""))
    for name in order:
        if phases[name].get("status") == "started":
            return _result("interrupted", "INTERRUPTED", "interrupted in phase %s (a re-run resumes there)" % name, name, "")
    if (phases.get("rollout") or {}).get("status") == "done":
        return _result("complete", "COMPLETE", "every phase done", "", "")
    done = [index for index, name in enumerate(main_phases) if (phases.get(name) or {}).get("status") == "done"]
    later = main_phases[done[-1] + 1:] if done else main_phases
    nxt = later[0] if later else ""
    return _result("partial", "IN PROGRESS", "not finished: next phase %s" % nxt, nxt, "")


def _result(status, word, text, phase, reason):
    return {"status": status, "word": word, "text": text, "phase": phase, "reason": str(reason or "")}


def _canary_nodes(phases):
    data = _data(phases.get("canary"))
    nodes = data.get("nodes") or ([data["node"]] if data.get("node") else [])
    return [str(node) for node in nodes]


def _traffic(phases, old, new):
    """Where boot traffic goes now, as far as the state file tells."""
    rollback = phases.get("rollback")
    rollout = (phases.get("rollout") or {}).get("status")
    canary = (phases.get("canary") or {}).get("status")
    if rollback and rollback.get("status") == "done":
        return {"side": "old", "text": "all nodes: %s" % old["label"], "url": old["url"], "nodes": []}
    if rollback:
        return {"side": "unknown", "text": "unknown: the rollback did not finish; check the gateway, then run the rollback again",
                "url": "", "nodes": []}
    if rollout == "done":
        return {"side": "new", "text": "all nodes: %s" % new["label"], "url": new["url"], "nodes": []}
    if rollout == "started":
        return {"side": "unknown", "text": "unknown: the rollout was interrupted, the gateway may be frozen; re-run the cutover "
                "(it resumes) or run the rollback", "url": "", "nodes": []}
    nodes = _canary_nodes(phases) if canary == "done" and rollout != "failed" else []
    if nodes:
        return {"side": "canary", "text": "all nodes: %s, except %d canary node(s): %s" % (old["label"], len(nodes), new["label"]),
                "url": old["url"], "nodes": nodes}
    return {"side": "old", "text": "all nodes: %s" % old["label"], "url": old["url"], "nodes": []}


def _canary(record):
    if not record:
        return {"verdict": "not run", "node": "", "mac": "", "cmdline": "", "kernel": "", "reason": ""}
    data = _data(record)
    verdict = {"done": "passed", "failed": "failed", "started": "interrupted", "skipped": "skipped"}.get(record.get("status"), "not run")
    return {"verdict": verdict, "node": str(data.get("node", "")), "mac": str(data.get("mac", "")),
            "cmdline": str(data.get("cmdline", "")), "kernel": str(data.get("kernel", "")),
            "power": str(data.get("power", "")), "reason": str(record.get("reason", ""))}


def _parity_runs(phases, order):
    runs = []
    for name in order:
        parity = _data(phases[name]).get("parity")
        if not isinstance(parity, dict) or not parity:
            continue
        compared = _int(parity.get("compared"))
        different = _int(parity.get("different"))
        equal = _int(parity.get("equal"))
        verdict = "not compared" if not compared else ("equal" if different == 0 else "different")
        note = str(parity.get("note", ""))
        freeze = _data(phases[name]).get("freeze")
        if not note and isinstance(freeze, dict) and compared < _int(freeze.get("lookups_total")):
            note = "a re-check of %d of all %d lookups: those of nodes changed since the backup (%d) and a sample (%d)" % (
                compared, _int(freeze.get("lookups_total")), _int(freeze.get("lookups_changed")), _int(freeze.get("lookups_sampled")))
        runs.append({"run": name, "label": PARITY_RUNS.get(name, name), "compared": compared, "equal": equal,
                     "different": different, "nodes": _int(parity.get("nodes")), "verdict": verdict, "note": note,
                     "differences": [_difference(row) for row in parity.get("differences") or [] if isinstance(row, dict)]})
    return runs


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def script_lines(parsed):
    """The boot script lines a parsed, normalised script stands for (bootscript_info's parity ``first``/``second``).

    BSS scripts (kernel, initrd, params, retry_delay, chain) are rebuilt line by line; what a boot-service
    comparison reports for a node that does not boot (kind, ended_by, message) is one line.
    """
    if parsed is None:
        return ["(no script: HTTP 404)"]
    if not isinstance(parsed, dict):
        return [str(parsed)]
    kind = parsed.get("kind", "")
    if kind == "error":
        return ["(error: %s)" % parsed.get("error", "")]
    bss_tail = "chain" in parsed or "retry_delay" in parsed
    lines = ["#!ipxe"]
    if kind == "boot":
        lines.append(("kernel --name kernel %s %s" % (parsed.get("kernel", ""), parsed.get("params", ""))).rstrip() + " || goto boot_retry")
        if parsed.get("initrd"):
            lines.append("initrd --name initrd %s || goto boot_retry" % parsed["initrd"])
        lines.append("boot || goto boot_retry")
        if bss_tail:
            lines.append(":boot_retry")
    elif not bss_tail:
        ended = ": ".join(str(part) for part in (parsed.get("ended_by"), parsed.get("message")) if part)
        return ["(%s%s)" % (kind or "no script", ", " + ended if ended else "")]
    elif kind == "other":
        lines.append("(not a BSS boot script)")
    if bss_tail:
        lines.extend(["sleep %s" % parsed.get("retry_delay", ""), "chain %s" % parsed.get("chain", "")])
    return lines


def _difference(row):
    """One differing lookup: the node, the fields, and the first line where the old and new scripts differ."""
    old, new = script_lines(row.get("first")), script_lines(row.get("second"))
    line = next((index for index, pair in enumerate(zip(old, new)) if pair[0] != pair[1]), min(len(old), len(new)))
    return {"node": str(row.get("node", "")), "fields": ", ".join(str(field) for field in row.get("differences") or []),
            "line": line + 1, "old_line": old[line] if line < len(old) else "(no line)",
            "new_line": new[line] if line < len(new) else "(no line)"}


def _export_path(phases):
    """Where cloud-init data left behind is kept: the import's export file, else the logical backup."""
    path = _data(phases.get("import")).get("cloud_init_export")
    if path:
        return str(path)
    for entry in _data(phases.get("backup")).get("files") or []:
        if isinstance(entry, dict) and str(entry.get("kind", "")).startswith("logical export"):
            return str(entry.get("path", ""))
    return ""


def _losses(phases, loss_report, accept_kinds, accept_names, loss_report_path, sentences):
    data = _data(phases.get("import"))
    counts = {}
    # A loss report without an import in this state is left over from an earlier cutover in the same directory.
    complete = bool(phases.get("import")) and isinstance(loss_report, dict) and isinstance(loss_report.get("losses"), list)
    entries = loss_report["losses"] if complete else list(data.get("losses") or [])
    for kind, number in (data.get("loss_counts") or {}).items():
        counts[kind] = _int(number)
    if complete:
        counts = {}
        for loss in entries:
            counts[loss.get("kind", "")] = counts.get(loss.get("kind", ""), 0) + 1
    export = _export_path(phases)
    grouped = {}
    for loss in entries:
        grouped.setdefault(str(loss.get("kind", "")), []).append(loss)
    kinds = []
    for kind in sorted(counts, key=lambda name: (-counts[name], name)):
        listed = grouped.get(kind, [])
        accepted = sum(1 for loss in listed if kind in accept_kinds or loss.get("name") in accept_names)
        if kind in accept_kinds:
            accepted = counts[kind]
        meaning, action = sentences.get(kind, UNKNOWN_KIND)
        details = {str(loss.get("detail", "")) for loss in listed}
        kinds.append({
            "kind": kind, "count": counts[kind], "accepted": accepted, "unaccepted": counts[kind] - accepted,
            "meaning": meaning, "action": action.replace("{export}", "; it is kept in %s" % export if export else ""),
            "export": export if "{export}" in action else "",
            "common_detail": details.pop() if len(details) == 1 else "",
            "records": [{"name": str(loss.get("name", "")), "detail": str(loss.get("detail", ""))} for loss in listed[:LISTED_PER_KIND]],
            "listed": min(len(listed), LISTED_PER_KIND),
        })
    total = sum(counts.values())
    return {"total": total, "kinds": kinds, "complete": complete, "report_path": loss_report_path if complete else "",
            "unaccepted": sum(kind["unaccepted"] for kind in kinds), "imported": bool(phases.get("import"))}


def _epoch(record):
    epoch = record.get("started_epoch")
    if isinstance(epoch, (int, float)) and epoch > 0:
        return float(epoch)
    try:
        stamp = datetime.datetime.strptime(record.get("started", ""), "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def _timeline(phases, order, main_phases):
    """One row per phase (recorded ones in order, then main phases not run), with bar geometry on a shared time axis."""
    names = list(order)
    if "rollback" not in phases or any(name in phases for name in main_phases):
        names += [name for name in main_phases if name not in phases]
    starts = {name: _epoch(phases[name]) for name in order}
    known = [value for value in starts.values() if value is not None]
    first = min(known) if known else 0.0
    ends = [starts[name] + float(phases[name].get("duration") or 0) for name in order if starts[name] is not None]
    span = max(max(ends) - first if ends else 0.0, 1.0)
    rows = []
    for index, name in enumerate(names):
        record = phases.get(name) or {}
        status = record.get("status", "not run")
        start = starts.get(name)
        duration = float(record.get("duration") or 0)
        offset = (start - first) if start is not None else 0.0
        drawn = status != "not run" and start is not None
        x = LABEL_WIDTH + round(BAR_WIDTH * offset / span, 1)
        width = max(round(BAR_WIDTH * duration / span, 1), MIN_BAR) if drawn else 0
        rows.append({"phase": name, "status": status, "offset": round(offset, 1), "duration": round(duration, 1),
                     "started": record.get("started", ""), "reason": str(record.get("reason", "")),
                     "bar": drawn, "x": x, "width": width, "y": 20 + index * ROW_HEIGHT, "text_x": LABEL_WIDTH + BAR_WIDTH + 8,
                     "blocks": "\u2588" * max(1, round(20 * duration / span)) if drawn else ""})
    return {"rows": rows, "span": round(span, 1), "height": 28 + len(rows) * ROW_HEIGHT,
            "width": LABEL_WIDTH + BAR_WIDTH + 190, "axis_end": LABEL_WIDTH + BAR_WIDTH, "label_width": LABEL_WIDTH}
