"""The build scan's fixed parts: its stylesheet, its one small script, and the status
labels, with the escaping every part of the page goes through (names, messages and
logs are user data).

The page is one file that must open from file:// with nothing fetched, so both the CSS
and the script are inline; the script only adds a search box, and without it every test
is still reachable through <details> (issue 13)."""

from __future__ import annotations

import html

from conveyor.units import format_duration

CSS = """
*{box-sizing:border-box}[hidden]{display:none!important}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1.2em 1.5em;max-width:1280px;
color:#1d1d1f;overflow-wrap:anywhere}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em}
h3{font-size:1em;margin:1.2em 0 .3em}
.meta{color:#555;margin:.3em 0}.muted{color:#6e7781;font-weight:normal}
a{color:#0969da}code,pre,.n{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
font-size:12.5px}
pre{background:#f6f8fa;padding:.5em;margin:.3em 0;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{white-space:nowrap;overflow-wrap:normal}td.num{text-align:right;white-space:nowrap}
.lane{position:relative;height:14px;background:#f6f8fa;min-width:300px;padding:0}
.bar{position:absolute;top:2px;height:10px;background:#0969da;border-radius:2px}
.bar.cached{background:#8c959f}.bar.failed{background:#cf222e}
.bar.allowed{background:repeating-linear-gradient(135deg,#bc4c00 0 4px,#ffd8b5 4px 7px)}
.bar.cancelled{background:#8250df}
.st{display:inline-block;padding:0 .45em;border:1px solid;border-radius:3px;font-size:12px;
font-weight:600;white-space:nowrap;line-height:1.5}
.st-success,.st-passed{color:#116329;background:#dafbe1;border-color:#4ac26b}
.st-cached{color:#424a53;background:#eaeef2;border-color:#8c959f}
.st-failed,.st-error,.st-timed_out,.st-running{color:#fff;background:#cf222e;border-color:#cf222e}
.st-allowed{color:#953800;background:#fff1e5;border:1px dashed #bc4c00}
.st-skipped{color:#57606a;background:#fff;border-color:#d0d7de;font-style:italic}
.st-cancelled,.st-interrupted{color:#fff;background:#8250df;border-color:#8250df}
.st-warning{color:#7d4e00;background:#fff8c5;border-color:#d4a72c}
.big{font-size:14px}
.n,.w{word-break:break-all}
ol.failed{list-style:none;padding:0;margin:0}
ol.failed>li{border-left:3px solid #cf222e;padding:.2em 0 .2em .6em;margin:.6em 0}
details{margin:.15em 0}summary{cursor:pointer;padding:2px 0}
details.job>summary{font-weight:600}details.job>div{margin-left:1.2em}
ul.cases{list-style:none;margin:.2em 0 .6em 1.2em;padding:0}
ul.cases>li{padding:1px 0;display:flex;gap:.4em;align-items:baseline}
.find{margin:.5em 0}.find input{font:inherit;padding:3px 6px;width:min(28em,100%)}
@media (max-width:700px){
body{padding:.8em}
table.rows,table.rows tbody,table.rows tr{display:block}
table.rows tr.head{display:none}
table.rows tr{border-bottom:1px solid #d0d7de;padding:.35em 0}
table.rows td{display:inline-block;border:0;padding:0 .8em 0 0;text-align:left}
table.rows td.name{display:block;font-weight:600}
table.rows td[data-l]::before{content:attr(data-l) " ";color:#6e7781}
table.rows td.lane{display:block;min-width:0;width:100%;margin-top:3px}
}
"""

SCRIPT = """(() => {
  // Filters the test lists by name; without it the page is whole, only unsearchable.
  const box = document.getElementById('find');
  if (!box) return;
  box.closest('.find').hidden = false;
  const found = document.getElementById('found');
  const suites = [...document.querySelectorAll('details.suite')];
  const jobs = [...document.querySelectorAll('details.job')];
  const opened = new Map([...jobs, ...suites].map(d => [d, d.open]));
  const cases = suites.flatMap(d => [...d.querySelectorAll('li')].map(li =>
    [li, (d.dataset.prefix + li.querySelector('.n').textContent).toLowerCase()]));
  box.addEventListener('input', () => {
    const q = box.value.trim().toLowerCase();
    let n = 0;
    for (const [li, key] of cases) {
      const hit = key.includes(q);
      li.hidden = !hit;
      n += hit;
    }
    for (const d of [...suites, ...jobs]) {
      const any = !q || d.querySelector('li:not([hidden])') !== null;
      d.hidden = !any;
      d.open = q ? any : opened.get(d);
    }
    found.textContent = q ? `${n} of ${cases.length} tests` : '';
  });
})();"""


def e(value: object) -> str:
    """Text or an attribute's value, escaped (quotes too)."""
    return html.escape("" if value is None else str(value))


def d(seconds: float | None) -> str:
    """A duration, or '-' when not known."""
    return "-" if seconds is None else format_duration(seconds)


def label(kind: str, text: str | None = None) -> str:
    """A status as a word in a styled box: the word says it, the colour only helps."""
    return f'<span class="st st-{e(kind)}">{e(text or kind.replace("_", " "))}</span>'


def job_label(status: str, *, cached: bool, allowed_failure: bool) -> tuple[str, str]:
    """(style, words) of a job's status: cached, 'failed (allowed)', 'timed out'..."""
    if cached:
        return "cached", "cached"
    words = status.replace("_", " ")
    if allowed_failure and status in ("failed", "timed_out"):
        return "allowed", f"{words} (allowed)"
    return status, words
