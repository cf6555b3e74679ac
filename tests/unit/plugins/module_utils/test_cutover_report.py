# -*- coding: utf-8 -*-
# Copyright: hpc_boot.bss contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy

import pytest

from ansible_collections.hpc_boot.bss.plugins.module_utils import cutover_report as report

EXPORT = "/var/backups/bss-etcd-1.bootparameters.json"
PARITY = {"nodes": 3, "compared": 9, "equal": 9, "different": 0, "differences": []}


def phase(status, started, duration, data=None, reason=""):
    return {"status": status, "started": "", "started_epoch": started, "finished": "", "duration": duration,
            "data": data or {}, "reason": reason}


def complete_state():
    phases = {
        "preflight": phase("done", 1000.0, 1.0, {"old_bss_backend": "etcd"}),
        "backup": phase("done", 1002.0, 2.0, {"files": [{"kind": "etcd snapshot", "path": "/b/s.db", "sha256": "aa"},
                                                        {"kind": "logical export (GET /boot/v1/bootparameters)", "path": EXPORT,
                                                         "sha256": "bb"}], "revision": 7}),
        "import": phase("done", 1005.0, 5.0, {"counts": {"nodes": 3}, "loss_counts": {"cloud_init": 2, "tag_record": 1},
                                              "losses": [{"kind": "cloud_init", "name": "x1", "detail": "dropped"}]}),
        "new_bss": phase("done", 1011.0, 1.0, {"url": "http://new:1", "backend": "postgres"}),
        "parity": phase("done", 1013.0, 4.0, {"parity": dict(PARITY)}),
        "canary": phase("done", 1018.0, 30.0, {"node": "x1", "nodes": ["x1", "x2"], "mac": "aa:bb:cc:dd:ee:01",
                                               "cmdline": "console=ttyS0 xname=x1", "power": "command"}),
        "rollout": phase("done", 1050.0, 10.0, {"active": "new", "parity": dict(PARITY)}),
    }
    return {"created": "c", "updated": "u", "order": list(phases), "phases": phases}


LOSS_REPORT = {"revision": 7, "losses": [
    {"kind": "cloud_init", "name": "x1", "detail": "dropped"},
    {"kind": "cloud_init", "name": "x2", "detail": "dropped"},
    {"kind": "tag_record", "name": "<script>alert(1)</script>", "detail": "tag lost"},
    {"kind": "tag_record", "name": "Compute", "detail": "fallback materialised"},
    {"kind": "tag_record", "name": "Default", "detail": "fallback materialised"},
]}


def test_complete_cutover_summary():
    built = report.build(complete_state(), LOSS_REPORT, accept_kinds=["cloud_init", "tag_record"], loss_report_path="/s/losses.json")
    assert built["outcome"]["status"] == "complete" and built["outcome"]["word"] == "COMPLETE"
    assert built["traffic"]["side"] == "new" and built["traffic"]["url"] == "http://new:1"
    assert built["title"] == "BSS cutover report: old BSS (etcd) to new BSS (postgres)"
    assert [(run["run"], run["equal"], run["compared"], run["verdict"]) for run in built["parity"]] == [
        ("parity", 9, 9, "equal"), ("rollout", 9, 9, "equal")]
    assert built["parity_differences"] == []
    assert built["canary"]["verdict"] == "passed" and built["canary"]["cmdline"] == "console=ttyS0 xname=x1"


def test_losses_grouped_by_kind_from_the_complete_loss_report_largest_first():
    built = report.build(complete_state(), LOSS_REPORT, accept_kinds=["cloud_init"], accept_names=["Compute"],
                         loss_report_path="/s/losses.json")
    losses = built["losses"]
    assert losses["complete"] and losses["report_path"] == "/s/losses.json" and losses["total"] == 5
    assert [(group["kind"], group["count"], group["accepted"], group["unaccepted"]) for group in losses["kinds"]] == [
        ("tag_record", 3, 1, 2), ("cloud_init", 2, 2, 0)]
    cloud = losses["kinds"][1]
    assert cloud["common_detail"] == "dropped" and EXPORT in cloud["action"] and cloud["export"] == EXPORT
    assert "cloud-init service" in cloud["action"]
    tags = losses["kinds"][0]
    assert tags["common_detail"] == "" and tags["records"][0]["name"] == "<script>alert(1)</script>", "names are kept raw; the template escapes"
    assert losses["unaccepted"] == 2


def test_the_import_export_file_wins_over_the_logical_backup():
    state = complete_state()
    state["phases"]["import"]["data"]["cloud_init_export"] = "/s/cloud-init.json"
    cloud = [group for group in report.build(state, LOSS_REPORT)["losses"]["kinds"] if group["kind"] == "cloud_init"][0]
    assert cloud["export"] == "/s/cloud-init.json" and "/s/cloud-init.json" in cloud["action"]


def test_without_a_loss_report_the_state_counts_and_its_listed_losses_are_used():
    losses = report.build(complete_state())["losses"]
    assert not losses["complete"] and losses["report_path"] == ""
    assert [(group["kind"], group["count"], group["listed"]) for group in losses["kinds"]] == [("cloud_init", 2, 1), ("tag_record", 1, 0)]


def test_long_kinds_are_listed_up_to_the_cap_and_counted_in_full():
    many = {"losses": [{"kind": "cloud_init", "name": "x%d" % number, "detail": "dropped"} for number in range(report.LISTED_PER_KIND + 5)]}
    group = report.build(complete_state(), many)["losses"]["kinds"][0]
    assert group["count"] == report.LISTED_PER_KIND + 5 and group["listed"] == report.LISTED_PER_KIND
    assert len(group["records"]) == report.LISTED_PER_KIND


def test_an_unknown_kind_still_gets_a_sentence():
    group = report.build(complete_state(), {"losses": [{"kind": "boot_service_only", "name": "n", "detail": "d"}]})["losses"]["kinds"][0]
    assert (group["meaning"], group["action"]) == report.UNKNOWN_KIND


def test_stopped_at_the_canary_keeps_traffic_on_the_old_side_and_lists_phases_not_run():
    state = complete_state()
    del state["phases"]["rollout"]
    state["order"].remove("rollout")
    state["phases"]["canary"] = phase("failed", 1018.0, 12.0, {}, "Canary x1 failed: booted with '<b>wrong</b>'")
    built = report.build(state)
    assert built["outcome"] == {"status": "stopped", "word": "FAILED", "text": "stopped at phase canary", "phase": "canary",
                                "reason": "Canary x1 failed: booted with '<b>wrong</b>'"}
    assert built["traffic"]["side"] == "old" and built["canary"]["verdict"] == "failed"
    rows = {row["phase"]: row for row in built["timeline"]["rows"]}
    assert rows["canary"]["status"] == "failed" and rows["canary"]["bar"]
    assert rows["rollout"]["status"] == "not run" and not rows["rollout"]["bar"] and rows["postgres"]["status"] == "not run"


def test_canary_done_sends_only_the_canary_nodes_to_the_new_side():
    state = complete_state()
    del state["phases"]["rollout"]
    state["order"].remove("rollout")
    built = report.build(state)
    assert built["traffic"]["side"] == "canary" and built["traffic"]["nodes"] == ["x1", "x2"]
    assert built["outcome"]["status"] == "partial" and "rollout" in built["outcome"]["text"]


def test_an_interrupted_rollout_leaves_the_traffic_unknown():
    state = complete_state()
    state["phases"]["rollout"]["status"] = "started"
    built = report.build(state)
    assert built["outcome"]["status"] == "interrupted" and built["outcome"]["phase"] == "rollout"
    assert built["traffic"]["side"] == "unknown" and "frozen" in built["traffic"]["text"]


def test_a_rollback_sends_traffic_back_and_is_the_result():
    state = complete_state()
    state["phases"]["rollback"] = phase("done", 2000.0, 20.0, {"parity": dict(PARITY)})
    state["order"].append("rollback")
    built = report.build(state)
    assert built["outcome"]["status"] == "rolled_back" and built["traffic"]["side"] == "old"
    assert [run["run"] for run in built["parity"]] == ["parity", "rollout", "rollback"]
    failed = copy.deepcopy(state)
    failed["phases"]["rollback"]["status"] = "failed"
    assert report.build(failed)["outcome"]["status"] == "rollback_failed"
    assert report.build(failed)["traffic"]["side"] == "unknown"


def test_parity_shows_only_differing_lookups_with_their_first_differing_line():
    old = {"kind": "boot", "kernel": "http://k/a", "initrd": "http://i/a", "params": "quiet", "retry_delay": "30", "chain": "c"}
    new = dict(old, initrd="http://i/b")
    state = complete_state()
    state["phases"]["parity"] = phase("failed", 1013.0, 4.0, {"parity": {
        "nodes": 3, "compared": 9, "equal": 7, "different": 2, "differences": [
            {"node": "aa:bb:cc:dd:ee:01", "same": False, "differences": ["initrd"], "first": old, "second": new},
            {"node": "x2", "same": False, "differences": ["script"], "first": old, "second": None}]}}, "2 of 9 lookups differ")
    built = report.build(state)
    run = built["parity_differences"][0]
    assert (run["run"], run["different"], run["verdict"]) == ("parity", 2, "different")
    first, second = run["differences"]
    assert (first["line"], first["fields"]) == (3, "initrd")
    assert first["old_line"] == "initrd --name initrd http://i/a || goto boot_retry"
    assert first["new_line"] == "initrd --name initrd http://i/b || goto boot_retry"
    assert (second["line"], second["new_line"]) == (1, "(no script: HTTP 404)")
    assert [item["run"] for item in built["parity_differences"]] == ["parity"], "the equal rollout run is not listed"


def test_script_lines_of_a_waiting_node():
    assert report.script_lines({"kind": "wait", "retry_delay": "30", "chain": "http://bss/boot?mac=x"}) == [
        "#!ipxe", "sleep 30", "chain http://bss/boot?mac=x"]


def test_timeline_bars_share_one_time_axis():
    timeline = report.build(complete_state())["timeline"]
    rows = {row["phase"]: row for row in timeline["rows"]}
    assert timeline["span"] == 60.0
    assert rows["preflight"]["x"] == report.LABEL_WIDTH
    assert rows["rollout"]["x"] == pytest.approx(report.LABEL_WIDTH + report.BAR_WIDTH * 50 / 60, abs=0.1)
    assert rows["canary"]["width"] == pytest.approx(report.BAR_WIDTH * 30 / 60, abs=0.1) and rows["preflight"]["width"] >= report.MIN_BAR
    assert all(row["x"] + row["width"] <= timeline["axis_end"] + 0.1 for row in timeline["rows"] if row["bar"])
    assert [row["y"] for row in timeline["rows"]] == sorted(row["y"] for row in timeline["rows"])
    assert rows["postgres"]["status"] == "not run", "a main phase absent from the state is shown as not run"


def test_the_new_side_is_named_from_the_state():
    state = complete_state()
    state["phases"]["new_bss"]["data"] = {"name": "boot-service", "backend": "postgres", "url": "http://bs:8080"}
    built = report.build(state, new_url="http://ignored")
    assert built["new"]["label"] == "boot-service (postgres)" and built["traffic"]["url"] == "http://bs:8080"
    assert built["title"].endswith("to boot-service (postgres)")


def boot_service_state():
    state = complete_state()
    phases = state["phases"]
    phases["preflight"]["data"]["destination"] = "boot_service"
    del phases["new_bss"]
    phases["boot_service"] = phase("done", 1003.0, 1.0, {"url": "http://bs:8080", "version": "v0.3.2"})
    phases["import"]["data"]["cloud_init_export"] = "/s/cloud-init.json"
    state["order"] = ["preflight", "backup", "boot_service", "import", "parity", "canary", "rollout"]
    return state


def test_a_boot_service_cutover_names_its_side_phases_and_kinds():
    losses = {"losses": [{"kind": "html_escaped", "name": "x1", "detail": "params '&' is served as '&amp;'"},
                         {"kind": "divergent_identities", "name": "x2", "detail": "mac -> Compute"},
                         {"kind": "cloud_init", "name": "x3", "detail": "dropped"}]}
    built = report.build(boot_service_state(), losses, new_url="http://ignored")
    assert built["destination"] == "boot_service" and built["new"]["label"] == "boot-service"
    assert built["title"] == "BSS cutover report: old BSS (etcd) to boot-service"
    assert built["traffic"] == {"side": "new", "text": "all nodes: boot-service", "url": "http://bs:8080", "nodes": []}
    rows = [row["phase"] for row in built["timeline"]["rows"]]
    assert rows == ["preflight", "backup", "boot_service", "import", "parity", "canary", "rollout"], "no PostgreSQL phases shown as not run"
    groups = {group["kind"]: group for group in built["losses"]["kinds"]}
    assert groups["html_escaped"]["meaning"] == report.LOSS_KINDS_BOOT_SERVICE["html_escaped"][0]
    assert "boot-service serves one configuration" in groups["divergent_identities"]["meaning"]
    assert groups["cloud_init"]["export"] == "/s/cloud-init.json"


def test_a_boot_service_cutover_stopped_before_its_import_names_the_next_phase():
    state = boot_service_state()
    for name in ("import", "parity", "canary", "rollout"):
        del state["phases"][name]
    state["order"] = ["preflight", "backup", "boot_service"]
    built = report.build(state)
    assert built["outcome"]["text"] == "not finished: next phase import"
    assert [row["phase"] for row in built["timeline"]["rows"] if row["status"] == "not run"] == ["import", "parity", "canary", "rollout"]


def test_script_lines_of_a_boot_service_comparison():
    assert report.script_lines({"kind": "boot", "kernel": "http://k", "initrd": "http://i", "params": "quiet"}) == [
        "#!ipxe", "kernel --name kernel http://k quiet || goto boot_retry", "initrd --name initrd http://i || goto boot_retry",
        "boot || goto boot_retry"]
    assert report.script_lines({"kind": "no boot", "ended_by": "HTTP 404"}) == ["(no boot, HTTP 404)"]
    assert report.script_lines({"kind": "halt", "ended_by": "exit", "message": "no config"}) == ["(halt, exit: no config)"]


def test_a_rollout_parity_that_rechecked_part_of_the_lookups_says_so():
    state = complete_state()
    state["phases"]["rollout"]["data"]["parity"] = {"nodes": 3, "compared": 2, "equal": 2, "different": 0}
    state["phases"]["rollout"]["data"]["freeze"] = {"lookups_total": 9, "lookups_changed": 1, "lookups_sampled": 1}
    runs = {run["run"]: run for run in report.build(state)["parity"]}
    assert runs["rollout"]["note"] == "a re-check of 2 of all 9 lookups: those of nodes changed since the backup (1) and a sample (1)"
    assert runs["parity"]["note"] == ""


def test_a_loss_report_left_from_an_earlier_cutover_is_not_shown_before_the_import():
    state = complete_state()
    for name in ("import", "new_bss", "parity", "canary", "rollout"):
        del state["phases"][name]
    state["order"] = ["preflight", "backup"]
    losses = report.build(state, LOSS_REPORT, loss_report_path="/s/losses.json")["losses"]
    assert (losses["imported"], losses["total"], losses["kinds"], losses["report_path"]) == (False, 0, [], "")
