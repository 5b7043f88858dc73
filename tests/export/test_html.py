"""The HTML build scan: self-contained, complete, and laid out as Chromium shows it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.history.conftest import history


def test_html_report_is_self_contained_and_complete(project: Project, tmp_path: Path) -> None:
    from html.parser import HTMLParser

    project.write(
        "tests/test_x.py",
        """
        def test_fine():
            pass

        def test_hostile_message():
            assert False, "<script>alert(1)</script>"
        """,
    )
    project.pipeline(
        f"""
        name: rep
        jobs:
          build:
            run: echo built
          test:
            needs: [build]
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=j.xml
            reports: {{junit: j.xml}}
        """
    )
    project.commit()
    assert project.run("run").code == 1
    out = tmp_path / "scan.html"
    said = project.run("report", "--html", str(out), "--json")
    assert said.code == 0
    assert json.loads(said.out) == {
        "run_id": history(project)[0]["id"],
        "html": str(out),
        "bytes": out.stat().st_size,
    }
    text = out.read_text()

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.urls: list[str] = []
            self.jobs: list[str] = []
            self.status = ""
            self._in_status = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            values = dict(attrs)
            self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
            if values.get("data-job"):
                self.jobs.append(values["data-job"] or "")
            self._in_status = values.get("id") == "status"

        def handle_data(self, data: str) -> None:
            if self._in_status:
                self.status += data
                self._in_status = False

    page = Collect()
    page.feed(text)
    assert "script" not in page.tags, "no script, and the hostile message is escaped"
    assert page.urls == [], "nothing fetched from anywhere"
    assert page.jobs == ["build", "test"]
    assert page.status == "failed"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "1 failed, 1 passed" in text
    assert "critical path" in text


_PROBE = """<script>
const out = {bars: {}, resources: performance.getEntriesByType('resource').length,
  overflow: document.documentElement.scrollWidth > innerWidth};
for (const row of document.querySelectorAll('tr[data-job]')) {
  const lane = row.querySelector('.lane').getBoundingClientRect();
  const bar = row.querySelector('.bar');
  const r = bar.getBoundingClientRect();
  out.bars[row.dataset.job] = {left: r.left - lane.left, right: r.right - lane.left,
    lane: lane.width, height: r.height, color: getComputedStyle(bar).backgroundColor};
}
out.failures = [...document.querySelectorAll('h3[id^="failure-"]')].map(
  h => [h.textContent, h.nextElementSibling.nextElementSibling.textContent]);
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(out);
document.body.append(pre);
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CONVEYOR_TESTS_NEED_BROWSER"):
        pytest.fail("CI installs Chromium; it is not on PATH")
    pytest.skip("Chromium is not installed (.ci/run installs it)")


def _laid_out(page: Path, tmp_path: Path) -> dict[str, Any]:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1280,900",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    start = done.stdout.find('<pre id="probe">')
    assert start >= 0, f"Chromium did not render the page: {done.stderr[-2000:]}"
    import html

    body = done.stdout[start + len('<pre id="probe">') : done.stdout.index("</pre>", start)]
    data: dict[str, Any] = json.loads(html.unescape(body))
    return data


def test_html_report_as_chromium_lays_it_out(project: Project, tmp_path: Path) -> None:
    _chromium()
    project.pipeline(
        f"""
        name: rep
        jobs:
          build:
            run: sleep 0.4
          test:
            needs: [build]
            run: sleep 0.3; echo '{"word " * 150}' >&2; echo {"x" * 600}; exit 1
        """
    )
    project.commit()
    assert project.run("run").code == 1
    assert project.run("run").code == 1, "the second run takes build from the cache"
    first, second = (r["id"] for r in reversed(history(project)))
    pages = {}
    for run in (first, second):
        out = tmp_path / f"{run}.html"
        assert project.run("report", run, "--html", str(out)).code == 0
        pages[run] = _laid_out(out, tmp_path)

    for page in pages.values():
        assert page["resources"] == 0, "the page loads nothing"
        assert not page["overflow"], "nothing runs off the side of a 1280-pixel window"
        build, test = page["bars"]["build"], page["bars"]["test"]
        assert test["color"] == "rgb(207, 34, 46)", "a failed job is red"
        assert test["lane"] >= 300
        assert build["right"] - build["left"] >= 1, "even an instant job shows"
        assert build["right"] <= test["left"] + 1, "test starts after the build it needs"
        assert build["left"] >= 0
        assert test["right"] <= test["lane"] + 0.5
        [(heading, log)] = page["failures"]
        assert heading == "test: exit code 1"
        assert "x" * 600 in log, "the log tail, wrapped to fit"
        assert "word word" in log
    built, cached = pages[first]["bars"]["build"], pages[second]["bars"]["build"]
    assert built["color"] == "rgb(9, 105, 218)", "a job that ran is blue"
    assert cached["color"] == "rgb(140, 149, 159)", "a cached job is grey"
    assert built["right"] - built["left"] > built["lane"] / 3, "the 0.4 s build fills its share"
    assert cached["right"] - cached["left"] < cached["lane"] / 10, "a cache hit is a sliver"
