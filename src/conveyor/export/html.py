"""A run as one self-contained HTML file (a build scan to attach to a CI run): summary,
a waterfall of the jobs, per-job timings and resources, what failed first, gates, and
every test case collapsed into counts per suite.

Inline CSS and one small inline script (a search box), nothing fetched: it opens
anywhere, offline, from file://. The fixed parts are in `html_assets`, the test cases
in `html_cases`."""

from __future__ import annotations

import time

from conveyor.export.html_assets import CSS, SCRIPT, d, e, job_label, label
from conveyor.export.html_cases import FAILING, failed_section, suites_section
from conveyor.fsutil import atomic_write, log_tail
from conveyor.history.record import GateRow, JobRow, RunRecord

_FAILED_JOB = ("failed", "timed_out")


def write(path: str, record: RunRecord) -> None:
    """The build scan of the run, written to `path` atomically."""
    atomic_write(path, render(record))


def render(record: RunRecord) -> str:
    """The build scan: one HTML page, inline CSS and script, nothing fetched."""
    run, jobs = record.run, record.jobs
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at))
    cached = sum(1 for j in jobs if j.cached)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Conveyor run {e(run.id)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(run.pipeline)}: run {e(run.id)}</h1>",
        f'<p class="meta"><span id="status" class="st big st-{e(run.status)}">'
        f"{e(run.status)}</span> in {d(run.wall_time)}, started {when} on "
        f"{e(run.host or '?')}; branch {e(run.branch or '-')}, commit "
        f"{e((run.commit or '-')[:12])}, event {e(run.event or '-')}; "
        f"{len(jobs)} jobs, {cached} from the cache</p>",
    ]
    if run.critical_path:
        parts.append(
            f'<p class="meta">critical path ({d(run.critical_path_time)}): '
            f"{' &rarr; '.join(e(n) for n in run.critical_path)}</p>"
        )
    parts += _what_failed(record)
    parts += _jobs_section(record)
    parts += failed_section(record.tests)
    parts += _logs_section(record)
    parts += _gates_section(record.gates)
    parts += suites_section(record.tests)
    if record.tests:
        parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _failed_jobs(record: RunRecord) -> list[tuple[int, JobRow]]:
    return [
        (i, j)
        for i, j in enumerate(record.jobs)
        if j.status in _FAILED_JOB and not j.allowed_failure
    ]


def _what_failed(record: RunRecord) -> list[str]:
    """One line of links to what failed, so that a failure is one click from the top."""
    links = [f'<a href="#failure-{i}">{e(j.name)}</a>' for i, j in _failed_jobs(record)]
    tests = sum(1 for c in record.tests if c.status in FAILING)
    gates = sum(1 for g in record.gates if not g.passed and g.level == "error")
    said = []
    if links:
        said.append(f"{len(links)} {'job' if len(links) == 1 else 'jobs'} ({', '.join(links)})")
    if tests:
        said.append(f'<a href="#failed-tests">{tests} {"test" if tests == 1 else "tests"}</a>')
    if gates:
        said.append(f'<a href="#gates">{gates} {"gate" if gates == 1 else "gates"}</a>')
    return [f'<p class="meta">Failed: {"; ".join(said)}</p>'] if said else []


def _jobs_section(record: RunRecord) -> list[str]:
    """The jobs' table, each with its status in words and its bar on the run's timeline."""
    run = record.run
    start = run.started_at
    span = max(run.wall_time or 0.0, 1e-9)
    rows = []
    for job in record.jobs:
        kind, words = job_label(job.status, cached=job.cached, allowed_failure=job.allowed_failure)
        bar = ""
        began, ended = job.started_at, job.finished_at
        if began is not None and ended is not None:
            left = max(0.0, (began - start) / span * 100)
            width = max(0.3, (ended - began) / span * 100)
            style = {"success": "", "timed_out": "failed"}.get(kind, kind)
            bar = f'<div class="bar {style}" style="left:{left:.2f}%;width:{width:.2f}%"></div>'
        rss = f"{job.peak_rss / 2**20:.0f} MiB" if job.peak_rss else "-"
        code = "-" if job.exit_code is None else job.exit_code
        rows.append(
            f'<tr data-job="{e(job.name)}"><td class="name">{e(job.name)}</td>'
            f"<td>{label(kind, words)}</td>"
            f'<td class="num" data-l="took">{d(job.duration)}</td>'
            f'<td class="num" data-l="queued">{d(job.queue_time)}</td>'
            f'<td class="num" data-l="CPU">{d(job.cpu_time)}</td>'
            f'<td class="num" data-l="memory">{rss}</td>'
            f'<td class="num" data-l="exit">{e(code)}</td><td class="lane">{bar}</td></tr>'
        )
    return [
        '<h2>Jobs</h2><table class="rows"><tr class="head"><th>job</th><th>status</th>'
        "<th>duration</th><th>queued</th><th>CPU</th><th>peak memory</th><th>exit</th>"
        "<th>timeline</th></tr>",
        *rows,
        "</table>",
    ]


def _logs_section(record: RunRecord) -> list[str]:
    """The last 40 lines of each failed job's log (none failed: no section)."""
    failed = _failed_jobs(record)
    parts = ["<h2>Failed jobs</h2>"] if failed else []
    for i, job in failed:
        parts.append(
            f'<h3 id="failure-{i}">{label(job.status)} {e(job.name)}: {e(job.reason)}</h3>'
        )
        if not job.log_path:  # a job that printed nothing keeps no log
            parts.append('<p class="muted">it printed nothing</p>')
            continue
        lines = log_tail(job.log_path, 40)
        parts += [
            f'<p class="muted">log: {e(job.log_path)}</p>',
            f"<pre>{e(chr(10).join(lines) if lines is not None else '(the log is gone)')}</pre>",
        ]
    return parts


def _gates_section(gates: tuple[GateRow, ...]) -> list[str]:
    if not gates:
        return []
    passed = sum(1 for g in gates if g.passed)
    return [
        f'<h2 id="gates">Gates <span class="muted">({passed} of {len(gates)} passed)</span></h2>',
        '<table class="rows"><tr class="head"><th>gate</th><th>scope</th><th>measured</th>'
        "<th>threshold</th><th>result</th><th>detail</th></tr>",
        *(_gate_row(g) for g in gates),
        "</table>",
    ]


def _gate_row(g: GateRow) -> str:
    if g.passed:
        verdict = label("passed")
    else:
        verdict = label("failed") if g.level == "error" else label("warning")
    return (
        f'<tr data-gate="{e(g.scope)}:{e(g.gate)}"><td class="name">{e(g.gate)}</td>'
        f'<td data-l="scope">{e(g.scope)}</td><td data-l="measured">{e(g.measured)}</td>'
        f'<td data-l="threshold">{e(g.threshold)}</td><td>{verdict}</td>'
        f"<td>{e(g.detail)}</td></tr>"
    )
