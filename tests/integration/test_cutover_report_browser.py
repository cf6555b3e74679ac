"""The cutover report at site scale, written by the role and read in a real browser (Debian's headless Chromium).

A 2,000-node cutover's state file and complete loss report (the real conversion's losses of the synthetic
cluster, plus record names carrying HTML) are rendered with ``ansible-playbook hpc_boot.bss.cutover --tags
report``; the same for the cutover stopped by its parity phase. Chromium loads each report.html at
1280x800 with a read-only probe script appended to a copy of the page (the report itself has no script),
which reports what the browser built: texts, the loss table, the timeline's phases, the <details> state,
element positions. A screenshot is saved in .build/report-browser/ for people to look at; pixels are
never compared.
"""

import html
import json
import os
import re
import shutil

import pytest

from hpclab import report_fixture

SHOTS = os.path.join(report_fixture.REPO, ".build", "report-browser")
# One worker renders the reports once for the three tests (make pytest runs with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cutover_report_browser")

PROBE = """
<script>
(function () {
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
  const text = (sel) => { const el = document.querySelector(sel); return el ? el.textContent.replace(/\\s+/g, ' ').trim() : null; };
  const summary = document.querySelector('#summary'), losses = document.querySelector('#losses');
  const out = {
    viewport: [window.innerWidth, window.innerHeight],
    result: text('#result'), traffic: text('#traffic'), parity: text('#parity-summary'), canary: text('#canary-summary'),
    lossTotal: text('#loss-total'),
    lossCounts: [...document.querySelectorAll('#loss-counts tr')].slice(1).map(tr => [tr.cells[0].textContent.trim(), tr.cells[1].textContent.trim()]),
    phases: [...document.querySelectorAll('#timeline-chart g.phase')].map(g => [g.dataset.phase, g.dataset.status, !!g.querySelector('rect')]),
    details: document.querySelectorAll('#losses details').length,
    detailsOpen: document.querySelectorAll('details[open]').length,
    detailsInSummary: summary ? summary.querySelectorAll('details').length : -1,
    lossNames: [...document.querySelectorAll('#losses details code, #losses details li')].map(el => el.textContent),
    parityRows: [...document.querySelectorAll('#parity tr')].slice(1).map(tr => [...tr.cells].map(td => td.textContent)),
    scripts: document.scripts.length,
    bold: document.querySelectorAll(['#summary', '#timeline', '#parity', '#losses'].map(s => s + ' b, ' + s + ' i').join(', ')).length,
    summaryBox: box(summary), lossCountsBox: box(document.querySelector('#loss-counts')), firstDetails: box(document.querySelector('details')),
    summaryBeforeLosses: !!(summary && losses && (summary.compareDocumentPosition(losses) & Node.DOCUMENT_POSITION_FOLLOWING)),
  };
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>
"""


def probe(page, work):
    """What Chromium builds from ``page`` at 1280x800, as the probe script saw it."""
    with open(page, encoding="utf-8") as handle:
        source = handle.read()
    assert "<script" not in source, "the report carries no script of its own (and no unescaped <script> record name)"
    copy = os.path.join(work, "probe-" + os.path.basename(os.path.dirname(page)) + ".html")
    with open(copy, "w", encoding="utf-8") as handle:
        handle.write(source.replace("</body>", PROBE + "</body>"))
    dom = report_fixture.chromium(copy, "--dump-dom", "--virtual-time-budget=2000")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: make deps installs Debian's chromium package")
    work = str(tmp_path_factory.mktemp("cutover-report"))
    complete, stopped = os.path.join(work, "complete"), os.path.join(work, "stopped")
    state, loss_report = report_fixture.fixture_state(2000)
    report_fixture.write_state_dir(complete, state, loss_report)
    report_fixture.write_state_dir(stopped, report_fixture.stopped_at_parity(state), loss_report)
    result = report_fixture.render(complete, stopped)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return {"work": work, "complete": complete, "stopped": stopped, "loss_report": loss_report}


def test_complete_report_first_screen_losses_and_timeline_in_chromium(reports):
    page = os.path.join(reports["complete"], "report.html")
    seen = probe(page, reports["work"])
    counts = reports["loss_report"]["loss_counts"]
    assert sum(counts.values()) >= 250 and counts["cloud_init"] >= 50, "site-scale losses from the real conversion"
    # layout depends on the width; positions are measured from the top of the page (not scrolled), so the
    # first screen of a 1280x800 window is y < 800 whatever height headless Chromium gives the DOM dump's viewport
    assert seen["viewport"][0] == 1280
    assert seen["result"].startswith("COMPLETE")
    assert "new BSS (postgres)" in seen["traffic"] and "http://127.0.0.1:27780" in seen["traffic"]
    assert re.search(r"before the canary \(phase parity\): (\d+)/\1 lookups equal \(2000 nodes\)", seen["parity"]), seen["parity"]
    assert re.search(r"before the switch \(phase rollout\): (\d+)/\1 lookups equal", seen["parity"])
    assert seen["canary"].startswith("passed: x1000c0s0b0n0") and "booted with console=ttyS0,115200" in seen["canary"]
    assert seen["lossTotal"].startswith(f"{sum(counts.values())} in {len(counts)} kinds, all accepted; full list: ")
    assert dict((kind, int(count)) for kind, count in seen["lossCounts"]) == counts
    assert [count for _kind, count in seen["lossCounts"]] == sorted((str(c) for c in counts.values()), key=int, reverse=True)
    # first screen at 1280x800: the whole summary (result, traffic, parity, canary, counts by kind) fits above 800 px
    assert seen["summaryBox"]["top"] >= 0 and seen["summaryBox"]["bottom"] <= 800, seen["summaryBox"]
    assert seen["summaryBeforeLosses"] and seen["firstDetails"]["top"] > seen["summaryBox"]["bottom"]
    assert seen["phases"] == [[name, "done", True] for name, _seconds in report_fixture.PHASE_SECONDS]
    assert seen["details"] == len(counts) and seen["detailsOpen"] == 0 and seen["detailsInSummary"] == 0
    assert report_fixture.HOSTILE_NAME in seen["lossNames"] and report_fixture.HOSTILE_XNAME in seen["lossNames"], \
        "record names with HTML are shown as text"
    assert seen["scripts"] == 1 and seen["bold"] == 0, "only the probe runs; no record name became an element"
    assert seen["parityRows"] == []
    shot = report_fixture.screenshot(page, os.path.join(SHOTS, "cutover-report.png"))
    assert os.path.getsize(shot) > 10000


def test_report_stopped_by_parity_shows_the_differing_lookups(reports):
    seen = probe(os.path.join(reports["stopped"], "report.html"), reports["work"])
    assert seen["result"].startswith("FAILED: stopped at phase parity") and "<i>" in seen["result"]
    assert seen["traffic"].startswith("all nodes: old BSS (etcd)")
    assert seen["canary"] == "not run"
    statuses = {phase: status for phase, status, _bar in seen["phases"]}
    assert statuses["parity"] == "failed" and statuses["canary"] == statuses["rollout"] == "not run"
    assert [row[0] for row in seen["parityRows"]] == ["98:03:9b:00:00:01", "nid2"]
    first, second = seen["parityRows"]
    assert first[1:3] == ["params", "2"] and first[4].endswith("quiet <b>xname</b>=x1000c0s0b0n0 || goto boot_retry")
    assert second[4] == "(no script: HTTP 404)"
    assert seen["scripts"] == 1 and seen["bold"] == 0


def test_markdown_report_from_the_same_data(reports):
    with open(os.path.join(reports["complete"], "report.md"), encoding="utf-8") as handle:
        complete = handle.read()
    with open(os.path.join(reports["stopped"], "report.md"), encoding="utf-8") as handle:
        stopped = handle.read()
    counts = reports["loss_report"]["loss_counts"]
    assert "Result: **COMPLETE**" in complete and "## Loss report" in complete and "sha256" in complete
    for kind, count in counts.items():
        assert f"| `{kind}` | {count} |" in complete and f"### {kind}: {count}" in complete
    assert re.search(r"^\| canary \| done \| \+\d+\.\d \| 48\.2 \| █+ \|", complete, re.M)
    assert "`" + report_fixture.HOSTILE_NAME.replace("`", "'") + "`" in complete, "record names stay in code spans"
    assert "Result: **FAILED**: stopped at phase parity" in stopped and "&lt;i>" in stopped
    assert re.search(r"^\| rollout \| not run \|", stopped, re.M) and re.search(r"^\| parity \| \*\*failed\*\* \|", stopped, re.M)
    assert "| `nid2` | script | 1 |" in stopped
