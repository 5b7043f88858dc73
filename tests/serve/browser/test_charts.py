"""The dashboard's frame and charts (base.html, _charts.html, app.css, charts.js with the
vendored uPlot) as Chromium shows them: a page rendered from the macros with Jinja and
served with the app's Content-Security-Policy (no inline script or style: a chart drawn
under it proves charts.js and uPlot need neither), drawn, read by keyboard, checked by
axe-core in light and dark, and photographed."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import pytest

import conveyor
from conveyor.serve.guard import CSP
from tests.serve.browser.pages import Watched

SERVE = Path(conveyor.__file__).resolve().parent / "serve"
EVIL = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
DAY = 86400
START = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())

JOBS: list[dict[str, Any]] = [
    {"name": "setup", "start": 0.0, "end": 2.1, "status": "success", "critical": True},
    {"name": "deps", "start": 0.0, "end": 0.05, "status": "cached", "critical": False},
    {"name": "lint", "start": 2.1, "end": 5.0, "status": "failed", "critical": False},
    {"name": "build", "start": 2.1, "end": 14.0, "status": "success", "critical": True},
    {"name": EVIL, "start": 5.0, "end": 9.0, "status": "success", "critical": False},
    {"name": "docs", "start": 2.1, "end": 2.1, "status": "skipped", "critical": False},
    {"name": "e2e", "start": 14.0, "end": 20.0, "status": "cancelled", "critical": False},
    {"name": "test", "start": 14.0, "end": 31.5, "status": "running", "critical": True},
]
for _job in JOBS:
    _job["href"] = f"/log/{_job['name']}" if _job["name"] in ("build", "lint") else None

PAGE = """{% extends "base.html" %}
{% from "_charts.html" import sparkline, timeseries, gantt %}
{% block title %}Charts{% endblock %}
{% block content %}
<h1>Charts</h1>
{{ sparkline(spark, "Wall time of the last runs, oldest first") }}
<div class="charts">
{{ timeseries(durations, "Wall time per day: p50 and p95") }}
{{ timeseries(cache, "Cache hit rate and time saved per day") }}
</div>
{{ timeseries(empty, "Queue time per day") }}
<h2>A run</h2>
{{ gantt(jobs, "The jobs on a timeline; the critical path is marked") }}
<table><thead><tr><th scope="col">Status</th></tr></thead><tbody>
{% for s in statuses %}
<tr><td><span class="status status-{{ s }}">{{ s }}</span></td></tr>
{% endfor %}
</tbody></table>
{% endblock %}
"""


def render() -> str:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.DictLoader({"page.html": PAGE}), jinja2.FileSystemLoader(SERVE / "templates")]
        ),
        # as the app's environment has them (conveyor.serve.app)
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    xs = [START + i * DAY for i in range(14)]
    p50: list[float | None] = [40.0 + 3 * (i % 5) for i in range(14)]
    p50[6] = None  # a day with no run
    return env.get_template("page.html").render(
        nav="trends",
        spark=[41.0, 39.5, None, 44.2, 61.0, 43.0, 42.5, 40.1],
        durations={
            "x": xs,
            "series": [
                {"label": "wall time p50", "unit": "s", "values": p50},
                {"label": "wall time p95", "unit": "s", "values": [v and v * 1.6 for v in p50]},
            ],
        },
        cache={
            "x": xs,
            "series": [
                {"label": "cache hit rate", "unit": "%", "values": [50 + 3 * i for i in range(14)]},
                {"label": "time saved", "unit": "s", "values": [120.0 + 30 * i for i in range(14)]},
            ],
        },
        empty={"x": [], "series": []},
        jobs=JOBS,
        statuses=["success", "failed", "cached", "skipped", "cancelled", "running", "warned"],
    )


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The page and the package's static files, on 127.0.0.1, with the app's policy."""
    page = render().encode()
    static = (SERVE / "static").resolve()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind, code = b"not found", "text/plain", 404
            if self.path == "/":
                body, kind, code = page, "text/html; charset=utf-8", 200
            elif self.path.startswith("/static/"):
                path = (static / self.path.removeprefix("/static/")).resolve()
                if path.is_relative_to(static) and path.is_file():
                    body, code = path.read_bytes(), 200
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.send_response(code)
            self.send_header("content-type", kind)
            self.send_header("content-security-policy", CSP)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def drawn(page: Watched) -> None:
    """Every figure with data is drawn (uPlot's canvas in it), the empty one says so."""
    page.page.wait_for_selector("figure.gantt[data-drawn] .gantt-bar")
    figures = page.page.eval_on_selector_all(
        "figure[data-chart]",
        """figs => figs.map(f => ({kind: f.dataset.chart, drawn: f.dataset.drawn === "true",
            canvases: f.querySelectorAll(".uplot canvas").length,
            empty: (f.querySelector(".chart-empty") || {}).textContent || ""}))""",
    )
    assert [f["kind"] for f in figures] == [
        "sparkline",
        "timeseries",
        "timeseries",
        "timeseries",
        "gantt",
    ]
    for f in figures[:3] + figures[4:]:
        assert f["drawn"], f
        assert f["canvases"] >= 1, f
    assert figures[3] == {
        "kind": "timeseries",
        "drawn": False,
        "canvases": 0,
        "empty": "No data in this window.",
    }


def test_the_charts_draw_and_pass_axe_in_light_and_dark(site: str, browser_page: Watched) -> None:
    page = browser_page
    page.page.emulate_media(color_scheme="light")
    page.open(site)
    drawn(page)
    assert page.page.locator("figure.gantt[data-scheme='light']").count() == 1
    # the tables' unix times are written as dates
    assert page.page.locator("figure.timeseries time").first.text_content() == "2026-11-01"
    page.accessible()
    page.shot("charts-light")
    assert page.page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
        "rgb(255, 255, 255)"
    )

    page.page.emulate_media(color_scheme="dark")
    # redrawn in the dark palette
    page.page.wait_for_selector("figure.gantt[data-scheme='dark']")
    drawn(page)
    page.accessible()
    page.shot("charts-dark")
    assert page.page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
        "rgb(18, 20, 23)"
    )
    page.clean()


def test_every_bar_is_reached_by_keyboard_with_its_tooltip(
    site: str, browser_page: Watched
) -> None:
    page = browser_page
    page.open(site)
    drawn(page)
    keyboard = page.page.keyboard
    keyboard.press("Tab")
    first = page.page.evaluate("document.activeElement.textContent")
    assert first == "Skip to the content"
    reached: list[str] = []
    for _ in range(60):
        keyboard.press("Tab")
        job = page.page.evaluate("document.activeElement.dataset.job || null")
        if job is None:
            continue
        reached.append(job)
        tip = page.page.locator("figure.gantt .chart-tip")
        assert tip.is_visible()
        assert tip.inner_text().splitlines()[0] == job
        if len(reached) == len(JOBS):
            break
    assert reached == [j["name"] for j in JOBS]
    page.shot("gantt-focused-bar")
    # the arrow keys move between bars too
    keyboard.press("ArrowUp")
    assert page.page.evaluate("document.activeElement.dataset.job") == JOBS[-2]["name"]
    keyboard.press("Home")
    assert page.page.evaluate("document.activeElement.dataset.job") == JOBS[0]["name"]
    # a bar with a link goes to it: Enter on "lint" follows its href
    assert page.page.locator(".gantt-bar[data-job='lint']").get_attribute("href") == "/log/lint"

    # the arrow keys read a time chart point by point, out loud (a live region)
    chart = page.page.locator("figure.timeseries .u-wrap").first
    chart.focus()
    keyboard.press("ArrowRight")
    said = page.page.locator("figure.timeseries [aria-live]").first
    assert said.inner_text() == "2026-11-01; wall time p50: 40.0 s; wall time p95: 1m 04s"
    keyboard.press("End")
    assert said.inner_text().startswith("2026-11-14; wall time p50: 49.0 s")
    page.shot("timeseries-keyboard")
    page.clean()


def test_a_job_named_with_html_is_shown_as_text(site: str, browser_page: Watched) -> None:
    page = browser_page
    page.open(site)
    drawn(page)
    cells = page.page.locator("figure.gantt table tbody th").all_text_contents()
    assert EVIL in cells
    bar = page.page.locator("figure.gantt .gantt-bar").nth(4)
    assert bar.get_attribute("data-job") == EVIL
    label = bar.get_attribute("aria-label")
    assert label is not None
    assert label.startswith(EVIL + ", success")
    bar.focus()
    assert page.page.locator("figure.gantt .chart-tip").inner_text().startswith(EVIL)
    assert page.page.locator("img").count() == 0
    page.clean()  # no alert: nothing of the name ran


# Each swatch of the Gantt chart's legend as a shape: its pixels lighter (+), darker (-)
# or the same (=) as the middle of its own range, transparent (.): what is left of it
# with every colour taken away.
_SHAPES = """() => [...document.querySelectorAll("figure.gantt .chart-legend li")].map(li => {
  const c = li.querySelector("canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const lum = [];
  for (let i = 0; i < d.length; i += 4) {
    lum.push(d[i + 3] < 128 ? -1 : 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2]);
  }
  const ink = lum.filter(v => v >= 0);
  const mid = (Math.min(...ink) + Math.max(...ink)) / 2;
  return [li.innerText, lum.map(v => v < 0 ? "." : v > mid + 8 ? "+" : v < mid - 8 ? "-" : "=")
    .join("")];
})"""


def test_statuses_differ_without_colour(site: str, browser_page: Watched) -> None:
    """The legend's swatches differ in shape alone (pattern, outline), and the chart
    photographed as a person with deuteranopia and one with no colour vision see it."""
    page = browser_page
    page.open(site)
    drawn(page)
    shapes = page.page.evaluate(_SHAPES)
    assert [label for label, _ in shapes] == [
        "✓ success",
        "↺ cached",
        "✗ failed",
        "→ skipped",
        "⊘ cancelled",
        "▶ running",
        "★ critical path (outlined)",
    ]
    assert len({shape for _, shape in shapes}) == len(shapes), "two swatches differ by colour alone"
    cdp = page.page.context.new_cdp_session(page.page)
    for vision in ("deuteranopia", "achromatopsia"):
        cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": vision})
        page.page.locator("figure.gantt").screenshot(
            path=str(page.artifacts / f"gantt-{vision}.png")
        )
        print(f"screenshot: {page.artifacts / f'gantt-{vision}.png'}")
    page.clean()


def test_each_status_has_its_own_symbol_besides_its_colour(
    site: str, browser_page: Watched
) -> None:
    page = browser_page
    page.open(site)
    symbols = page.page.eval_on_selector_all(
        "main > table .status",
        """spans => spans.map(s => [s.textContent,
            getComputedStyle(s, "::before").content, getComputedStyle(s).color])""",
    )
    assert len(symbols) == 7
    assert len({content for _, content, _ in symbols}) == 7, symbols
    assert len({color for _, _, color in symbols}) >= 6, symbols
    page.clean()
