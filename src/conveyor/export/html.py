"""A run as one self-contained HTML file (a build scan to attach to a CI run): summary,
a waterfall of the jobs, per-job timings and resources, cache hits, test results.
Inline CSS only, no script, no network: it opens anywhere, offline."""

from __future__ import annotations

import html
import time

from conveyor.fsutil import atomic_write, log_tail
from conveyor.history.record import GateRow, RunRecord
from conveyor.units import format_duration

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d1d1f}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .5em}
.meta{color:#555}.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#777}
table{border-collapse:collapse;width:100%}th,td{padding:3px 8px;text-align:left;
border-bottom:1px solid #eee;white-space:nowrap}td.num{text-align:right}
.lane{position:relative;height:14px;background:#f6f8fa;min-width:300px}
.bar{position:absolute;top:2px;height:10px;background:#0969da;border-radius:2px}
.bar.cached{background:#8c959f}.bar.failed{background:#cf222e}
pre{background:#f6f8fa;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}
td.msg{white-space:normal;overflow-wrap:anywhere;min-width:20em}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _d(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _gate_row(g: GateRow) -> str:
    verdict = "passed" if g.passed else ("FAILED" if g.level == "error" else "warning")
    css = "ok" if g.passed else ("bad" if g.level == "error" else "muted")
    return (
        f'<tr data-gate="{_e(g.scope)}:{_e(g.gate)}"><td>{_e(g.gate)}</td>'
        f"<td>{_e(g.scope)}</td><td>{_e(g.measured)}</td><td>{_e(g.threshold)}</td>"
        f'<td class="{css}">{verdict}</td><td class="msg">{_e(g.detail)}</td></tr>'
    )


def write(path: str, record: RunRecord) -> None:
    """The build scan of the run, written to `path` atomically."""
    atomic_write(path, render(record))


def render(record: RunRecord) -> str:
    """The build scan: one HTML page, inline CSS, nothing fetched."""
    run, jobs = record.run, record.jobs
    ok = run.status == "success"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at))
    cached = sum(1 for j in jobs if j.cached)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Conveyor run {_e(run.id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(run.pipeline)}: run {_e(run.id)}</h1>",
        f'<p class="meta"><span class="{"ok" if ok else "bad"}" id="status">'
        f"{_e(run.status)}</span> in {_d(run.wall_time)}, started {when} on "
        f"{_e(run.host or '?')}; branch {_e(run.branch or '-')}, commit "
        f"{_e((run.commit or '-')[:12])}, event {_e(run.event or '-')}; "
        f"{len(jobs)} jobs, {cached} from the cache</p>",
    ]
    if run.critical_path:
        parts.append(
            f'<p class="meta">critical path ({_d(run.critical_path_time)}): '
            f"{' &rarr; '.join(_e(n) for n in run.critical_path)}</p>"
        )
    parts += _jobs_section(record)
    if record.gates:
        passed = sum(1 for g in record.gates if g.passed)
        parts += [
            f'<h2>Gates <span class="muted">({passed} of {len(record.gates)} passed)</span></h2>',
            "<table><tr><th>gate</th><th>scope</th><th>measured</th><th>threshold</th>"
            "<th>result</th><th>detail</th></tr>",
            *(_gate_row(g) for g in record.gates),
            "</table>",
        ]
    parts += _tests_section(record)
    parts += _failures_section(record)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _jobs_section(record: RunRecord) -> list[str]:
    """The jobs' table, each with its bar on the run's timeline."""
    run = record.run
    start = run.started_at
    span = max(run.wall_time or 0.0, 1e-9)
    rows = []
    for job in record.jobs:
        bar = ""
        began, ended = job.started_at, job.finished_at
        if began is not None and ended is not None:
            left = max(0.0, (began - start) / span * 100)
            width = max(0.3, (ended - began) / span * 100)
            kind = "cached" if job.cached else ("" if job.status == "success" else "failed")
            bar = f'<div class="bar {kind}" style="left:{left:.2f}%;width:{width:.2f}%"></div>'
        status = "cached" if job.cached else job.status
        css = "ok" if job.status in ("success", "skipped") else "bad"
        rss = f"{job.peak_rss / 2**20:.0f} MiB" if job.peak_rss else "-"
        rows.append(
            f'<tr data-job="{_e(job.name)}"><td>{_e(job.name)}</td>'
            f'<td class="{css}">{_e(status)}</td><td class="num">{_d(job.duration)}</td>'
            f'<td class="num">{_d(job.queue_time)}</td>'
            f'<td class="num">{_d(job.cpu_time)}</td><td class="num">{rss}</td>'
            f'<td class="num">{_e(job.exit_code)}</td><td class="lane">{bar}</td></tr>'
        )
    return [
        "<h2>Jobs</h2><table><tr><th>job</th><th>status</th><th>duration</th><th>queued</th>"
        "<th>CPU</th><th>peak memory</th><th>exit</th><th>timeline</th></tr>",
        *rows,
        "</table>",
    ]


def _tests_section(record: RunRecord) -> list[str]:
    """The test cases, failures first, with a count by status (none: no section)."""
    tests = record.tests
    if not tests:
        return []
    counts: dict[str, int] = {}
    for case in tests:
        counts[case.status] = counts.get(case.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return [
        f'<h2>Tests <span class="muted">({summary})</span></h2>',
        "<table><tr><th>job</th><th>test</th><th>status</th><th>duration</th><th>message</th></tr>",
        *(
            f"<tr><td>{_e(c.job)}</td><td>{_e(c.name)}</td>"
            f'<td class="{"bad" if c.status in ("failed", "error") else "ok"}">{_e(c.status)}'
            f'</td><td class="num">{_d(c.duration)}</td>'
            f'<td class="msg">{_e(c.message[:300])}</td></tr>'
            for c in sorted(tests, key=lambda c: (c.status == "passed", c.job, c.name))
        ),
        "</table>",
    ]


def _failures_section(record: RunRecord) -> list[str]:
    """The last 40 lines of each failed job's log (none failed: no section)."""
    failed = [
        (j, j.log_path) for j in record.jobs if j.status in ("failed", "timed_out") and j.log_path
    ]
    parts = ["<h2>Failures</h2>"] if failed else []
    for job, log_path in failed:
        lines = log_tail(log_path, 40)
        parts += [
            f'<h3 class="bad" id="failure-{_e(job.name)}">{_e(job.name)}: {_e(job.reason)}</h3>',
            f'<p class="muted">log: {_e(log_path)}</p>',
            f"<pre>{_e(chr(10).join(lines) if lines is not None else '(the log is gone)')}</pre>",
        ]
    return parts
