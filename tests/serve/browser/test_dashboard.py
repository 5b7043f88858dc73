"""`conveyor serve` end to end, as a person uses it: the history of real runs that
tests/serve/conftest.py makes (a failure, a flaky JUnit test, cache hits, gates, a
secret, HTML in names and logs), the real server process, Chromium. Every page loads
without a console error and passes axe-core in light and dark; the numbers on the pages
are the ones `conveyor stats` prints; filters and search work; a run going on updates in
place; the token is enforced; HTML is shown as text; the secret never shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import pytest

from tests.serve.browser.pages import Watched
from tests.serve.conftest import EVIL_JOB, SECRET, TOKEN, Server, Workspace, make_workspace

EVIL_RUN = "20200101-000000.000-evil"
EVIL_TEST = "s.<img src=x onerror=alert(2)>"


@pytest.fixture
def page(browser_page: Watched, server: Server) -> Watched:
    """A page logged in with the token's link (the cookie it sets)."""
    browser_page.open(f"{server.base}/?token={TOKEN}")
    assert browser_page.page.url == f"{server.base}/"  # the token is not left in the address
    return browser_page


def pages(history: Workspace) -> dict[str, str]:
    """Each page of the dashboard, with a run of the history where it needs one."""
    first, _, lint_failed, _ = history.run_ids()
    return {
        "runs": "/",
        "run": f"/runs/{lint_failed}",
        "log": f"/runs/{first}/jobs/build/log",
        "trends": "/trends",
        "tests": "/tests",
        "cache": "/cache",
        "deps": "/deps",
        "artifacts": "/artifacts",
        "html-run": f"/runs/{EVIL_RUN}",
    }


@pytest.mark.parametrize(
    ("scheme", "width"), [("light", 1280), ("dark", 390)], ids=["light-desktop", "dark-phone"]
)
def test_every_page_loads_clean_and_accessible(
    page: Watched,
    server: Server,
    history: Workspace,
    scheme: Literal["light", "dark"],
    width: int,
) -> None:
    """Light on a desktop's screen, dark on a phone's (where wide tables scroll)."""
    page.page.emulate_media(color_scheme=scheme)
    page.page.set_viewport_size({"width": width, "height": 900})
    for name, path in pages(history).items():
        page.open(server.base + path)
        for figure in page.page.locator("figure[data-chart]").all():
            assert figure.get_attribute("data-drawn") == "true", (name, figure.inner_html())
        page.accessible()
        # nothing wider than the screen: wide tables scroll in their own box
        assert page.page.evaluate("document.documentElement.scrollWidth") <= width, name
        page.shot(f"{name}-{scheme}-{width}")
        assert SECRET not in page.page.content(), name
        page.clean()


def _stats_rows(text: str, jobs: list[str]) -> dict[str, list[str]]:
    """`conveyor stats`' table: each job's runs, success, cached, p50, p95, trend,
    queue and saved, as it printed them."""
    rows = {}
    for line in text.splitlines():
        for job in jobs:
            if line.startswith(job + " ") and job not in rows:
                rows[job] = line[len(job) :].split()[:8]
    return rows


def _table(page: Watched, selector: str) -> list[list[str]]:
    cells: list[list[str]] = page.page.eval_on_selector_all(
        selector + " tbody tr",
        "rows => rows.map(r => [...r.children].map(c => c.innerText.trim()))",
    )
    return cells


def test_the_numbers_on_the_pages_are_conveyor_stats(
    page: Watched, server: Server, history: Workspace
) -> None:
    text = history.conveyor("stats").stdout
    head = re.search(
        r"(\d+) runs since .*?; success rate ([\d.]+%) .*?; mean wall time (\S+); "
        r"the cache saved (\S+)",
        text,
    )
    assert head is not None, text

    page.open(server.base + "/trends")
    summary = page.page.locator("#summary").inner_text()
    assert summary.startswith(f"{head[1]} runs since ")
    assert f"success rate {head[2]} " in summary
    assert f"mean wall time {head[3]};" in summary
    assert f"the cache saved {head[4]}." in summary
    shown = {row[0]: row[1:9] for row in _table(page, "table.stats")}
    printed = _stats_rows(text, list(shown))
    assert set(shown) == {"build", "test", "lint"}
    for job, cells in shown.items():
        runs, success, cached, p50, p95, trend, queue, saved = cells
        assert [runs, success, cached, p50, p95, trend, queue, saved] == printed[job], job

    # the cache page's hit rate and time saved per job are stats' too
    page.open(server.base + "/cache")
    assert {row[0]: (row[2], row[3]) for row in _table(page, "table.per-job")} == {
        job: (cells[2], cells[7]) for job, cells in printed.items()
    }

    # a run's Gantt chart: a bar for each job that ran, the critical path `conveyor show`'s
    run_id = history.run_ids()[2]
    shown_run = json.loads(history.conveyor("show", run_id, "--json").stdout)
    page.open(f"{server.base}/runs/{run_id}")
    bars = page.page.locator("figure.gantt .gantt-bar").evaluate_all(
        "bars => bars.map(b => [b.dataset.job, b.getAttribute('aria-label')])"
    )
    ran = [j["name"] for j in shown_run["jobs"] if j["started_at"] is not None]
    assert sorted(name for name, _ in bars) == sorted(ran)
    critical = [name for name, label in bars if "on the critical path" in label]
    assert sorted(critical) == sorted(shown_run["critical_path"])
    assert page.page.locator("dl.facts").inner_text().count(" → ") == len(critical) - 1

    # the runs page counts what `conveyor history` lists (the run from 2020 too)
    listed = json.loads(history.conveyor("history", "--json").stdout)
    page.open(server.base + "/")
    assert page.page.locator("#run-count").inner_text() == f"{len(listed)} runs"
    rows = _table(page, "table.runs")
    assert [row[0] for row in rows] == [run["id"] for run in listed]
    assert [row[2] for row in rows] == [run["status"] for run in listed]
    page.clean()


def test_the_filters_and_the_log_search_work(
    page: Watched, server: Server, history: Workspace
) -> None:
    p = page.page
    listed = json.loads(history.conveyor("history", "--json").stdout)
    p.get_by_label("Status").select_option("failed")
    p.get_by_role("button", name="Filter").click()
    p.wait_for_url(re.compile(r"status=failed"))
    failed = [run["id"] for run in listed if run["status"] == "failed"]
    assert len(failed) == 2
    assert (
        p.locator("table.runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
        == failed
    )
    assert p.locator("#run-count").inner_text() == "2 runs"
    page.shot("runs-filtered-failed")
    p.get_by_label("Branch").select_option("feature")
    p.get_by_label("Status").select_option("")
    p.get_by_role("button", name="Filter").click()
    p.wait_for_url(re.compile(r"branch=feature"))
    assert p.locator("table.runs tbody tr").count() == 1
    assert p.locator("table.runs tbody tr td").nth(3).inner_text() == "feature"

    # a day after today: nothing
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    page.open(f"{server.base}/?from={tomorrow}")
    assert p.locator("table.runs").count() == 0
    assert "No runs match" in p.locator("main").inner_text()

    # the log: its ANSI colours as classes, its HTML as text, its search
    page.open(f"{server.base}/runs/{history.run_ids()[0]}/jobs/build/log")
    assert p.locator("pre.log .ansi-b.ansi-fg2").first.inner_text() == "built"
    assert "<b>not bold</b> & done" in p.locator("pre.log").inner_text()
    assert p.locator("pre.log b").count() == 0
    p.get_by_role("searchbox", name="Search").fill("not bold")
    p.get_by_role("button", name="Find").click()
    p.wait_for_url(re.compile(r"q=not\+bold"))
    assert p.locator("#matches").inner_text().startswith("1 match")
    assert "<b>not bold</b>" in p.locator("pre.log .line.match").inner_text()
    page.shot("log-search")
    page.clean()


def test_html_is_text_and_the_secret_is_masked(
    page: Watched, server: Server, history: Workspace
) -> None:
    p = page.page
    page.open(f"{server.base}/")
    assert "<b>branch</b>" in p.locator("table.runs").inner_text()
    page.open(f"{server.base}/runs/{EVIL_RUN}")
    assert p.locator("h1").inner_text().startswith(f"Run {EVIL_RUN}")
    assert EVIL_JOB in p.locator("table.jobs tbody th").all_inner_texts()
    assert "<img src=x onerror=alert(3)>" in p.locator("table.jobs").inner_text()
    bar = p.locator("figure.gantt .gantt-bar")
    assert bar.get_attribute("data-job") == EVIL_JOB
    bar.focus()
    assert p.locator("figure.gantt .chart-tip").inner_text().startswith(EVIL_JOB)
    # its log is recorded at /etc/passwd: not a run directory's, so not shown
    page.open(f"{server.base}/runs/{EVIL_RUN}/jobs/{quote(EVIL_JOB, safe='')}/log")
    assert "root:" not in p.locator("main").inner_text()
    page.open(f"{server.base}/tests")
    assert EVIL_TEST in p.locator("main").inner_text()
    assert "boom <script>" in p.locator("main").inner_text()
    assert p.locator("main img, main script").count() == 0

    # the test job's log: the secret masked on the page, in the raw text and the API
    run_id = history.run_ids()[0]
    page.open(f"{server.base}/runs/{run_id}/jobs/test/log")
    assert "the token is ***" in p.locator("pre.log").inner_text()
    for path in (f"/runs/{run_id}/jobs/test/log.txt", f"/api/runs/{run_id}/jobs/test/log"):
        response = p.request.get(server.base + path)
        assert response.status == 200, path
        assert "the token is ***" in response.text(), path
        assert SECRET not in response.text(), path
    page.clean()  # no dialog opened: nothing of the names ran


def test_the_token_is_enforced(browser_page: Watched, server: Server) -> None:
    p = browser_page.page
    refused = p.goto(server.base + "/trends")
    assert refused is not None
    assert refused.status == 401
    assert "needs its token" in p.locator("body").inner_text()
    for path in ("/api/runs", "/static/app.css", "/metrics"):
        assert p.request.get(server.base + path).status == 401, path
    wrong = p.goto(server.base + "/?token=not-the-token-at-all")
    assert wrong is not None
    assert wrong.status == 401

    browser_page.open(f"{server.base}/trends?token={TOKEN}")
    assert p.url == server.base + "/trends"
    assert p.locator("h1").inner_text().startswith("Trends")
    assert p.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    browser_page.open(server.base + "/api/runs")
    # the browser logs each refused page as an error, and asks a page without an icon
    # link (the refusals, the JSON) for /favicon.ico: none of the dashboard's pages
    browser_page.errors = [
        e for e in browser_page.errors if "/favicon.ico" not in e and "401" not in e
    ]
    browser_page.clean()


def test_a_run_going_on_updates_in_place(browser_page: Watched, tmp_path: Path) -> None:
    """Its own workspace: a run here must not change the shared history's numbers."""
    ws = make_workspace(tmp_path)
    server = Server(ws, "--token", TOKEN)
    go = ws.root.parent / "go"
    runs = ws.root / ".conveyor" / "runs"
    runs.mkdir(parents=True)
    run = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", "live"],
        cwd=ws.root,
        env=ws.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (new := set(ws.run_ids())):
            assert time.monotonic() < deadline, "the run did not start"
            assert run.poll() is None
            time.sleep(0.05)
        run_id = new.pop()
        events = runs / run_id / "events.jsonl"
        while "first-line" not in (events.read_text() if events.exists() else ""):
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.05)
        page = browser_page
        p = page.page
        page.open(f"{server.base}/runs/{run_id}?token={TOKEN}")
        assert p.locator("h1 .status").inner_text() == "running"
        p.wait_for_selector("#live-log .line")
        assert "[live] first-line" in p.locator("#live-log").inner_text()
        assert p.locator("#live-jobs tr[data-job='live'] .status").inner_text() == "running"
        page.shot("live-run")
        go.write_text("go")
        page.until(
            "document.getElementById('live-log') === null"
            " || document.getElementById('live-log').innerText.includes('second-line')"
        )
        # the run ends: the page reloads as the recorded run, its chart drawn
        p.wait_for_selector("figure.gantt[data-drawn]", timeout=30_000)
        assert p.locator("h1 .status").inner_text() == "success"
        page.shot("live-run-finished")
        page.clean()
        assert run.wait(timeout=60) == 0
    finally:
        go.write_text("go")
        if run.poll() is None:
            run.wait(timeout=60)
        server.stop()
