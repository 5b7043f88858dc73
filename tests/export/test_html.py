"""The HTML build scan: self-contained, complete, and laid out as Chromium shows it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.export.browser import Browser, browser
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
            self.scripts: list[str | None] = []
            self.jobs: list[str] = []
            self.status = ""
            self._in_status = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            values = dict(attrs)
            self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
            if tag == "script":
                self.scripts.append(values.get("src"))
            if values.get("data-job"):
                self.jobs.append(values["data-job"] or "")
            self._in_status = values.get("id") == "status"

        def handle_data(self, data: str) -> None:
            if self._in_status:
                self.status += data
                self._in_status = False

    page = Collect()
    page.feed(text)
    assert page.tags.count("script") == 1, "only the search box's; the hostile message is text"
    assert page.scripts == [None], "inline: nothing fetched"
    assert all(url.startswith("#") for url in page.urls), "links only within the page"
    assert page.jobs == ["build", "test"]
    assert page.status == "failed"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "2 tests: 1 failed, 1 passed" in text
    assert "critical path" in text


_PROBE = """(() => {
const de = document.documentElement;
const topOf = sel => {
  const el = document.querySelector(sel);
  return el ? el.getBoundingClientRect().top + scrollY : null;
};
const out = {bars: {}, labels: {}, resources: performance.getEntriesByType('resource').length,
  width: de.scrollWidth, height: de.scrollHeight, vw: innerWidth, vh: innerHeight,
  scripts: document.scripts.length, images: document.images.length,
  failedTests: topOf('#failed-tests'), failedJobs: topOf('h3[id^="failure-"]'),
  tests: topOf('#tests'), firstSuite: topOf('details.suite'),
  searchShown: !!document.querySelector('.find:not([hidden])')};
for (const row of document.querySelectorAll('tr[data-job]')) {
  const label = row.querySelector('.st');
  out.labels[row.dataset.job] = [label.textContent, getComputedStyle(label).backgroundColor,
    getComputedStyle(label).borderStyle];
  const bar = row.querySelector('.bar');
  if (!bar) continue;
  const lane = row.querySelector('.lane').getBoundingClientRect();
  const r = bar.getBoundingClientRect();
  out.bars[row.dataset.job] = {left: r.left - lane.left, right: r.right - lane.left,
    lane: lane.width, height: r.height, color: getComputedStyle(bar).backgroundColor};
}
out.failures = [...document.querySelectorAll('h3[id^="failure-"]')].map(h => {
  const log = h.nextElementSibling.nextElementSibling;
  return [h.textContent, log && log.tagName === 'PRE' ? log.textContent : null];
});
out.hostile = [...document.querySelectorAll('.n')].map(n => n.textContent)
  .filter(t => t.includes('alert('));
const shown = () => [...document.querySelectorAll('details.suite li')]
  .filter(li => li.checkVisibility()).map(li => li.querySelector('.n').textContent);
const box = document.getElementById('find');
if (box) {
  out.listedAtFirst = shown().length;
  const search = q => {
    box.value = q;
    box.dispatchEvent(new Event('input'));
    return [shown(), document.getElementById('found').textContent];
  };
  out.search = {one: search('case_042'), module: search('pkg_07.test_module_with_a_rather_long'),
    none: search('no such test'), cleared: search('')};
}
return out;
})()"""


def _laid_out(
    chromium: Browser, page: Path, width: int = 1280, height: int = 900
) -> dict[str, Any]:
    """What Chromium measured of the page in a viewport this size (a phone's below 500
    pixels), after screenshots of its first screen and of up to 8,000 pixels of it
    (`<page>-<width>.png`, `<page>-<width>-full.png`) to look at when the page changes."""
    chromium.open(page, width, height, mobile=width < 500)
    chromium.screenshot(page.with_name(f"{page.stem}-{width}.png"))
    tall = chromium.evaluate("document.documentElement.scrollHeight")
    chromium.screenshot(
        page.with_name(f"{page.stem}-{width}-full.png"), full_height=min(tall, 8000)
    )
    data: dict[str, Any] = chromium.evaluate(_PROBE)
    return data


def test_html_report_as_chromium_lays_it_out(project: Project, tmp_path: Path) -> None:
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
    with browser(tmp_path) as chromium:
        for run in (first, second):
            out = tmp_path / f"{run}.html"
            assert project.run("report", run, "--html", str(out)).code == 0
            pages[run] = _laid_out(chromium, out)

    for page in pages.values():
        assert page["resources"] == 0, "the page loads nothing"
        assert page["width"] <= page["vw"], "nothing runs off the side of a 1280-pixel window"
        build, test = page["bars"]["build"], page["bars"]["test"]
        assert test["color"] == "rgb(207, 34, 46)", "a failed job is red"
        assert test["lane"] >= 300
        assert build["right"] - build["left"] >= 1, "even an instant job shows"
        assert build["right"] <= test["left"] + 1, "test starts after the build it needs"
        assert build["left"] >= 0
        assert test["right"] <= test["lane"] + 0.5
        [(heading, log)] = page["failures"]
        assert heading == "failed test: exit code 1"
        assert "x" * 600 in log, "the log tail, wrapped to fit"
        assert "word word" in log
    built, cached = pages[first]["bars"]["build"], pages[second]["bars"]["build"]
    assert built["color"] == "rgb(9, 105, 218)", "a job that ran is blue"
    assert cached["color"] == "rgb(140, 149, 159)", "a cached job is grey"
    assert built["right"] - built["left"] > built["lane"] / 3, "the 0.4 s build fills its share"
    assert cached["right"] - cached["left"] < cached["lane"] / 10, "a cache hit is a sliver"
    assert pages[first]["labels"]["build"][0] == "success"
    assert pages[second]["labels"]["build"][0] == "cached"


# A job's JUnit report as a real suite writes it: 3,000 cases in 31 modules, a hostile
# name, names and messages with no place to break a line, some skipped, and failures
# when mode.txt says so (the job then fails, as a test runner does).
_GENERATE = r"""
import sys
from xml.sax.saxutils import escape, quoteattr

failing = open("mode.txt").read().strip() == "fail"
cases = ['<testcase classname="tests.hostile" name="test_&lt;script&gt;alert(1)&lt;/script&gt;"'
         ' time="0.1">'
         + ('<failure message="&lt;img src=x onerror=alert(2)&gt;"/>' if failing else "")
         + "</testcase>"]
for n in range(1, 3000):
    module = f"tests.pkg_{n // 100:02d}.test_module_with_a_rather_long_name_{n // 100:02d}"
    name = f"test_case_{n % 100:03d}"
    if n % 100 == 7:
        name += "[" + "parameter-" * 30 + "]"
    body = ""
    if failing and n % 97 == 5:
        why = "AssertionError: " + "x" * 300 + " != 2"
        body = f"<failure message={quoteattr(why)}>{escape('Traceback: ' + 'y' * 1200)}</failure>"
    elif n % 50 == 3:
        body = '<skipped message="needs a GPU this machine does not have"/>'
    cases.append(f"<testcase classname={quoteattr(module)} name={quoteattr(name)}"
                 f' time="0.01">{body}</testcase>')
with open("junit.xml", "w") as out:
    out.write('<?xml version="1.0"?><testsuites><testsuite name="pytest">'
              + "".join(cases) + "</testsuite></testsuites>")
print(f"{len(cases)} tests", "failed" if failing else "passed")
sys.exit(1 if failing else 0)
"""

_SCALE = f"""
name: scale
jobs:
  build:
    run: echo built
  test_the_whole_product_against_every_supported_configuration_at_once:
    needs: [build]
    run: {sys.executable} gen.py
    reports: {{junit: junit.xml}}
"""

_SIZES = ((1280, 900), (390, 844))


@pytest.mark.slow
def test_html_report_of_3000_tests_fits_the_screen_failures_first(
    project: Project, tmp_path: Path
) -> None:
    project.write("gen.py", _GENERATE)
    project.write("mode.txt", "fail\n")
    project.pipeline(_SCALE)
    project.commit()
    assert project.run("run").code == 1
    project.write("mode.txt", "pass\n")
    project.commit()
    assert project.run("run").code == 0
    failed, passed = (r["id"] for r in reversed(history(project)))
    with browser(tmp_path) as chromium:
        for run, name in ((failed, "failed"), (passed, "passed")):
            out = tmp_path / f"{name}.html"
            assert project.run("report", run, "--html", str(out)).code == 0
            for width, height in _SIZES:
                page = _laid_out(chromium, out, width, height)
                where = f"the {name} run at {width} px"
                assert page["width"] <= width, f"{where}: nothing runs off the side"
                assert page["resources"] == 0
                assert page["scripts"] == 1, "the search box's, no other"
                assert page["images"] == 0
                hostile = {n.removeprefix("tests.hostile.") for n in page["hostile"]}
                assert hostile == {"test_<script>alert(1)</script>"}, "a name is text"
                assert page["searchShown"], "the script runs: the search box is there"
                assert page["listedAtFirst"] == 0, "every suite starts as its counts"
                assert page["search"]["one"][1] == "30 of 3000 tests"
                assert len(page["search"]["one"][0]) == 30, "the matches are opened and shown"
                assert all("case_042" in n for n in page["search"]["one"][0])
                assert len(page["search"]["module"][0]) == 100, "a module path matches too"
                assert page["search"]["none"] == [[], "0 of 3000 tests"]
                assert page["search"]["cleared"] == [[], ""], "closed again"
                if name == "passed":
                    assert page["failedTests"] is None
                    assert page["failedJobs"] is None
                    assert page["height"] <= 4 * height, f"{where}: {page['height']} px tall"
                else:
                    assert page["failedTests"] < page["firstSuite"], "failures before the suites"
                    assert page["failedJobs"] < page["firstSuite"]
    text = (tmp_path / "failed.html").read_text()
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "32 of 3000" in text, "every failure listed"


def test_html_report_labels_each_job_status_distinctly(project: Project, tmp_path: Path) -> None:
    from html.parser import HTMLParser

    project.pipeline(
        """
        name: statuses
        jobs:
          build:
            run: echo built
          flaky:
            run: exit 3
            allow_failure: true
          lint:
            run: sleep 1; exit 1
          slow:
            run: sleep 30
          deploy:
            needs: [lint]
            run: echo never
        """
    )
    project.commit()
    assert project.run("run", "--jobs", "4").code == 1
    assert project.run("run", "--jobs", "4").code == 1
    out = tmp_path / "scan.html"
    assert project.run("report", "--html", str(out)).code == 0

    class Labels(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.labels: dict[str, tuple[str, str]] = {}
            self._job = ""
            self._css = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            if tag == "tr":
                self._job = values.get("data-job") or ""
            elif tag == "span" and self._job and "st" in (values.get("class") or "").split():
                self._css = values.get("class") or ""

        def handle_data(self, data: str) -> None:
            if self._css:
                self.labels[self._job] = (data, self._css)
                self._css = self._job = ""

    page = Labels()
    page.feed(out.read_text())
    assert page.labels == {
        "build": ("cached", "st st-cached"),
        "flaky": ("failed (allowed)", "st st-allowed"),
        "lint": ("failed", "st st-failed"),
        "slow": ("cancelled", "st st-cancelled"),
        "deploy": ("skipped", "st st-skipped"),
    }
    with browser(tmp_path) as chromium:
        drawn = _laid_out(chromium, out)["labels"]
    looks = {job: (background, border) for job, (_, background, border) in drawn.items()}
    assert len(set(looks.values())) == 5, f"each status looks different: {looks}"
    assert drawn["deploy"][1] != "rgb(218, 251, 225)", "a skipped job is not green"
