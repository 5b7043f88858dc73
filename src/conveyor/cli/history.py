"""`conveyor history` (recent runs) and `conveyor show RUN` (one run, job by job)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from conveyor.cli import load, pipeline_file_option
from conveyor.fsutil import log_tail
from conveyor.units import format_duration

if TYPE_CHECKING:
    from conveyor.history.record import JobRow, RunRecord, RunRow
    from conveyor.history.store import HistoryStore
    from conveyor.model import Pipeline

MARK = {
    "success": "✔",
    "failed": "✘",
    "timed_out": "⏱",
    "cancelled": "⊘",
    "skipped": "○",
    "interrupted": "⊘",
    "running": "…",
}


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


@contextmanager
def _history(ctx: click.Context) -> Iterator[tuple[Pipeline, HistoryStore]]:
    """(pipeline, its history with this workspace's runs recorded), closed after."""
    from conveyor.history.queries import open_history

    pipeline = load(ctx)
    with open_history(pipeline.root, pipeline.history_url, os.environ) as store:
        yield pipeline, store


def _pick(ctx: click.Context, run_id: str | None) -> tuple[Pipeline, RunRecord]:
    """(pipeline, the recorded run RUN names, or its latest)."""
    from conveyor.history.queries import find_run

    with _history(ctx) as (pipeline, store):
        return pipeline, find_run(store, pipeline.label, run_id)


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell (the first row is the header)."""
    from conveyor.cli.view import table_lines

    for line in table_lines(rows[0], rows[1:]):
        click.echo(line)


def _window(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from conveyor.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


since_option = click.option(
    "--since",
    "window",
    default="30d",
    show_default=True,
    callback=_window,
    help="How far back to look (a duration: 7d, 12h, ...).",
)


@click.command("history")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs to list.",
)
@click.option("--all-pipelines", is_flag=True, help="Runs of every pipeline in the database.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pipeline_file_option
@click.pass_context
def history_command(ctx: click.Context, limit: int, all_pipelines: bool, as_json: bool) -> int:
    """Recent runs, newest first."""
    with _history(ctx) as (pipeline, store):
        rows = store.recent(limit, None if all_pipelines else pipeline.label)
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    if not rows:
        click.echo("no runs recorded yet (`conveyor run` records each run)")
        return 0
    # Runs of several pipelines are told apart by theirs.
    several = all_pipelines
    head = ("RUN", "STATUS", "WALL", "JOBS", "CACHED", "BRANCH", "COMMIT", "STARTED")
    table = [("PIPELINE", *head) if several else head]
    for r in rows:
        table.append(
            (
                *((r.pipeline,) if several else ()),
                r.id,
                f"{MARK.get(r.status, '?')} {r.status}",
                _dur(r.wall_time),
                str(r.jobs_total),
                str(r.jobs_cached),
                r.branch or r.tag or "-",
                (r.commit or "-")[:10],
                _when(r.started_at),
            )
        )
    _print_table(table)
    return 0


@click.command("show")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "build-output"]),
    default="text",
    help="build-output: the hand-off for deployment (pipeline file, artifacts with "
    "digests and version metadata, build time, success rate), as YAML.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON (with build-output: that, as JSON).")
@since_option
@pipeline_file_option
@click.pass_context
def show_command(
    ctx: click.Context, run_id: str | None, fmt: str, as_json: bool, window: float
) -> int:
    """One run (default: the latest): its jobs on a timeline, cache hits, failures."""
    if fmt == "build-output":
        return _build_output(ctx, run_id, window, as_json)
    _pipeline, record = _pick(ctx, run_id)
    if as_json or fmt == "json":
        click.echo(json.dumps(record.to_json(), indent=2))
        return 0
    run, jobs = record.run, record.jobs
    where = ", ".join(
        x
        for x in (
            f"branch {run.branch}" if run.branch else "",
            f"tag {run.tag}" if run.tag else "",
            f"commit {run.commit[:10]}" if run.commit else "",
            f"event {run.event}" if run.event else "",
        )
        if x
    )
    host = f" on {run.host}" if run.host else ""
    click.echo(f"run {run.id} of {run.pipeline} ({where}){host}")
    click.echo(
        f"{MARK.get(run.status, '?')} {run.status} in {_dur(run.wall_time)}, "
        f"started {_when(run.started_at)}; {run.jobs_total} jobs, "
        f"{run.jobs_cached} from the cache"
    )
    if run.checks_time is not None and run.checks_time >= 0.01:
        click.echo(f"checks before the build: {_dur(run.checks_time)}")
    if run.critical_path:
        click.echo(
            f"critical path ({_dur(run.critical_path_time)}): " + " -> ".join(run.critical_path)
        )
    click.echo("")
    for line in waterfall(run, jobs):
        click.echo(line)
    if record.values:
        click.echo("\nvalues ($CONVEYOR_OUTPUT):")
        for row in record.values:
            lines = row.value.split("\n")
            more = f"  ({len(lines)} lines)" if len(lines) > 1 else ""
            click.echo(f"  {row.job}: {row.name}={lines[0][:100]}{more}")
    if record.tests:
        counts: dict[str, int] = {}
        for case in record.tests:
            counts[case.status] = counts.get(case.status, 0) + 1
        order = ("passed", "failed", "error", "skipped")
        click.echo(
            "\ntests: "
            + ", ".join(f"{counts[s]} {s}" for s in order if s in counts)
            + f" ({len(record.tests)} in all)"
        )
        for case in record.tests:
            if case.status in ("failed", "error"):
                first = (case.message.splitlines() or [""])[0][:120]
                click.echo(f"  ✘ {case.job}: {case.name}: {first}")
    if record.gates:
        from conveyor.cli.view import gate_table
        from conveyor.model import GateLevel, GateResult

        click.echo("")
        recorded = [
            GateResult(
                gate=g.gate,
                scope=g.scope,
                level=GateLevel(g.level),
                passed=g.passed,
                measured=g.measured,
                threshold=g.threshold,
                detail=g.detail,
            )
            for g in record.gates
        ]
        for line in gate_table(recorded):
            click.echo(line)
    for job in jobs:
        if job.status in ("failed", "timed_out") and job.log_path:
            click.echo(f"\n✘ {job.name}: {job.reason} (log: {job.log_path})")
            for line in log_tail(job.log_path) or ["(the log is gone)"]:
                click.echo(f"  │ {line}")
    return 0


def _build_output(ctx: click.Context, run_id: str | None, window: float, as_json: bool) -> int:
    from conveyor.artifacts.s3store import open_store
    from conveyor.export.handoff import for_run
    from conveyor.history.queries import find_run

    with _history(ctx) as (pipeline, store):
        artifacts = open_store(pipeline.artifacts.dir, pipeline.root)
        record = find_run(store, pipeline.label, run_id)
        document = for_run(store, record, window, artifacts).to_json()
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return 0
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # digests and paths on one line each
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.dump(document, sys.stdout)
    return 0


def waterfall(run: RunRow, jobs: Sequence[JobRow], width: int = 40) -> list[str]:
    """One line per job: name, status, duration, and a bar of when it ran in the run."""
    start = run.started_at
    span = max(run.wall_time or 0.0, 1e-9)
    name_w = min(32, max((len(j.name) for j in jobs), default=3))
    status_w = max((len(j.status_text) for j in jobs), default=7)
    lines = []
    for job in jobs:
        bar = [" "] * width
        if job.started_at is not None and job.finished_at is not None:
            first = int((job.started_at - start) / span * width)
            last = int((job.finished_at - start) / span * width)
            first = min(max(first, 0), width - 1)
            last = min(max(last, first), width - 1)
            fill = "·" if job.cached else "█"
            for i in range(first, last + 1):
                bar[i] = fill
        lines.append(
            f"{MARK.get(job.status, '?')} {job.name[:name_w]:<{name_w}}  "
            f"{job.status_text:<{status_w}} {_dur(job.duration):>8}  |{''.join(bar)}|"
            + _phases(job)
            + (f"  on {job.worker}" if job.worker else "")
        )
    return lines


def _phases(job: JobRow) -> str:
    """Where a job's time went, when it was more than running: `  restore 6.9s,
    queued 0.2s` (phases of 10 ms or more; none for a run of an older version)."""
    parts = [
        (label, seconds)
        for label, seconds in job.phase_times()
        if seconds is not None and seconds >= 0.01
    ]
    if not parts or [label for label, _ in parts] == ["run"]:
        return ""
    return "  " + ", ".join(f"{label} {_dur(seconds)}" for label, seconds in parts)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


@click.command("stats")
@since_option
@click.option("--job", "job", default=None, help="Only this job.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pipeline_file_option
@click.pass_context
def stats_command(ctx: click.Context, window: float, job: str | None, as_json: bool) -> int:
    """Per job: duration (p50, p95, trend), success and cache-hit rates, queue time, time
    the cache saved; for the pipeline: its success rate against the 99% target."""
    from conveyor.insights.definitions import format_mib
    from conveyor.insights.stats import compute

    with _history(ctx) as (pipeline, store):
        name = pipeline.label
        figures = compute(store, name, time.time() - window, job)
        if job is not None and not figures.jobs:
            _no_runs_of(store, name, job, window)
    if as_json:
        click.echo(json.dumps(figures.to_json(), indent=2))
        return 0
    p = figures.pipeline
    rate = p.success_rate
    if not p.runs or rate is None:
        click.echo(f"no runs of {name} recorded in that window")
        return 0
    if job is not None and not figures.jobs:
        click.echo(f"no runs of job '{job}' in that window ({p.runs} runs of {name} in it)")
        return 0
    verdict = "meets" if rate >= p.target else "below"
    click.echo(
        f"{name}: {p.runs} runs since {_when(p.first_run)}; success rate {_pct(rate)} "
        f"({verdict} the {p.target * 100:.0f}% target); mean wall time "
        f"{_dur(p.mean_wall_time)}; the cache saved {_dur(p.saved)}"
    )
    if p.phase_seconds:
        total = sum(p.phase_seconds.values())
        if total > 0:
            shares = sorted(p.phase_seconds.items(), key=lambda kv: -kv[1])
            click.echo(
                "where the jobs' time went: "
                + ", ".join(
                    f"{name} {_dur(seconds)} ({seconds / total * 100:.0f}%)"
                    for name, seconds in shares
                    if seconds > 0
                )
            )
    if p.cpu_utilisation is not None:
        click.echo(
            f"jobs used {p.cpu_utilisation * 100:.0f}% of the CPU time of "
            f"{p.mean_cpus:g} CPUs while runs were going"
        )
    table = [
        ("JOB", "RUNS", "SUCCESS", "CACHED", "P50", "P95", "TREND", "QUEUE", "SAVED", "MEM P95")
    ]
    for j in figures.jobs:
        trend = "-" if j.trend is None else f"{j.trend * 100:+.0f}%"
        table.append(
            (
                j.job,
                str(j.runs),
                _pct(j.success_rate),
                _pct(j.cache_hit_rate),
                _dur(j.p50),
                _dur(j.p95),
                trend,
                _dur(j.queue_time),
                _dur(j.saved),
                format_mib(j.peak_memory) if j.peak_memory else "-",
            )
        )
    click.echo("")
    _print_table(table)
    if figures.advice:
        click.echo("\nwhat to look at:")
        for item in figures.advice:
            click.echo(f"  - {item.message}")
    return 0


def _no_runs_of(store: HistoryStore, pipeline: str, job: str, window: float) -> None:
    """`stats --job NAME` found nothing: a name the history never saw is a usage error
    (with the closest it knows); one with no runs in the window is said so."""
    import difflib

    from conveyor.errors import UsageError
    from conveyor.history.queries import job_names

    known = job_names(store, pipeline)
    if job in known:
        return  # it ran, only not in this window: the figures say so
    close = difflib.get_close_matches(job, known, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif known:
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        hint = f"the jobs it has runs of: {shown}"
    else:
        hint = "`conveyor run` records each run"
    raise UsageError(f"no runs of job '{job}' in the history of {pipeline}", hint=hint)


@click.command("critical-path")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the chain as JSON.")
@pipeline_file_option
@click.pass_context
def critical_path_command(ctx: click.Context, run_id: str | None, as_json: bool) -> int:
    """The chain of jobs that set a run's wall time (default: the latest run), and how
    much each could shrink the run."""
    from conveyor.graph import plan as graph
    from conveyor.insights.critical_path import critical_path, recorded_durations

    pipeline, record = _pick(ctx, run_id)
    # The needs of the pipeline as it is now (the history keeps results, not the graph).
    result = critical_path(recorded_durations(record.jobs), graph.adjacency(pipeline))
    if as_json:
        click.echo(json.dumps({"run": record.run.id, **result.to_json()}, indent=2))
        return 0
    click.echo(
        f"run {record.run.id}: wall time {_dur(record.run.wall_time)}; the longest "
        f"chain of jobs through their needs takes {_dur(result.length)}"
    )
    width = max((len(step.job) for step in result.steps), default=3)
    for step in result.steps:
        click.echo(
            f"  {step.job:<{width}}  {_dur(step.duration):>8}  "
            f"at most {_dur(step.could_save)} shorter if it took no time"
        )
    return 0


@click.command("metrics")
@since_option
@click.option("--all-pipelines", is_flag=True, help="Every pipeline in the database.")
@click.option(
    "--push",
    "push_url",
    metavar="URL",
    help="Push to this Prometheus Pushgateway (group job=conveyor, pipeline=NAME).",
)
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False),
    help="Write a file for node_exporter's textfile collector (atomically).",
)
@click.option(
    "--grafana-dashboard",
    "dashboard_file",
    type=click.Path(dir_okay=False),
    help="Also write a Grafana dashboard of these metrics (JSON, to import or provision).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metric families as JSON.")
@pipeline_file_option
@click.pass_context
def metrics_command(
    ctx: click.Context,
    window: float,
    all_pipelines: bool,
    push_url: str | None,
    textfile: str | None,
    dashboard_file: str | None,
    as_json: bool,
) -> int:
    """The history as Prometheus metrics: counters and histograms over the whole history
    (runs, jobs, durations, cache hits, memory, gates), and the figures of `conveyor
    stats --since` as gauges. Printed, or pushed, or written for node_exporter."""
    from conveyor.export import prometheus
    from conveyor.history.queries import pipeline_names

    with _history(ctx) as (pipeline, store):
        names = pipeline_names(store) if all_pipelines else [pipeline.label]
        now = time.time()
        registry = prometheus.registry_for(store, names, window, now)
        # One Pushgateway group per pipeline: a push replaces only its own pipeline's.
        pushed = (
            [(name, prometheus.registry_for(store, [name], window, now)) for name in names]
            if push_url and all_pipelines
            else [(pipeline.label, registry)]
        )
    if textfile:
        prometheus.write_textfile(textfile, registry)
    if push_url:
        for name, one in pushed:
            prometheus.push(push_url, one, name)
    if dashboard_file:
        from conveyor.export.grafana import write_dashboard

        write_dashboard(dashboard_file)
    if as_json:
        families = [family.to_json() for family in prometheus.families(registry)]
        click.echo(json.dumps(families, indent=2))
    elif not textfile and not push_url and not dashboard_file:
        click.echo(prometheus.exposition(registry), nl=False)
    return 0


@click.command("flaky")
@since_option
@click.option(
    "--quarantine",
    is_flag=True,
    help="Write the flaky tests to the quarantine list (gates.quarantine, default "
    "conveyor.quarantine.json; the test gates report them, not counted).",
)
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@pipeline_file_option
@click.pass_context
def flaky_command(ctx: click.Context, window: float, quarantine: bool, as_json: bool) -> int:
    """Jobs that passed and failed with the same inputs (action digest), and tests that
    passed and failed on the same commit."""
    from conveyor.insights import flaky

    with _history(ctx) as (pipeline, store):
        found = flaky.find(store, pipeline.label, time.time() - window)
    if quarantine:
        from conveyor.gates.keeper import write_quarantine

        listing = sorted({(t.job, t.test) for t in found.tests})
        path, note = write_quarantine(pipeline, listing)
        click.echo(f"{len(listing)} flaky test(s) written to {path}", err=as_json)
        if note:
            click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
        return 0
    if not found.jobs and not found.tests:
        click.echo("nothing flaky: no job or test both passed and failed on the same inputs")
        return 0
    if found.jobs:
        click.echo("flaky jobs (same action digest, different outcomes)")
        for j in found.jobs:
            click.echo(
                f"  {j.job}  {j.flips} flip(s), {j.passed} passed, "
                f"{j.failed} failed, last seen {_when(j.last_seen)}"
            )
    if found.tests:
        click.echo("flaky tests (same commit, different outcomes)")
        for t in found.tests:
            click.echo(
                f"  {t.job}: {t.test}  {t.flips} flip(s), {t.passed} passed, "
                f"{t.failed} failed, last seen {_when(t.last_seen)}"
            )
    return 0


@click.command("trace")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "--chrome",
    "chrome_file",
    type=click.Path(dir_okay=False),
    help="Write a Chrome trace (chrome://tracing, ui.perfetto.dev).",
)
@click.option(
    "--otlp",
    "otlp_url",
    metavar="[URL]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Send the spans to an OpenTelemetry collector over OTLP/HTTP: to URL (its base;"
    " /v1/traces is appended), else where OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or"
    " OTEL_EXPORTER_OTLP_ENDPOINT say, else localhost:4318. The other OTEL_EXPORTER_OTLP_*"
    " variables, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply.",
)
@click.option("--json", "as_json", is_flag=True, help="Say what was done as JSON.")
@pipeline_file_option
@click.pass_context
def trace_command(
    ctx: click.Context,
    run_id: str | None,
    chrome_file: str | None,
    otlp_url: str | None,
    as_json: bool,
) -> int:
    """A run (default: the latest) as a trace: a span per job, under one for the run."""
    from conveyor.errors import UsageError
    from conveyor.export import trace

    if not chrome_file and otlp_url is None:
        raise UsageError("say where the trace goes", hint="--chrome FILE and/or --otlp [URL]")
    config = None
    if otlp_url is not None:
        from conveyor.export import otlp

        # Read the environment before the history, so that a bad variable says so at once.
        config = otlp.option(otlp_url, os.environ, before=f"conveyor trace {otlp_url} --otlp")
    _pipeline, record = _pick(ctx, run_id)
    sent = None
    if chrome_file:
        trace.write_chrome(chrome_file, record)
        if not as_json:
            click.echo(f"wrote {chrome_file} ({len(record.jobs)} jobs)")
    if config is not None:
        sent = otlp.send(record, config)
        if sent.rejected or sent.message:
            click.echo(
                f"warning: the collector rejected {sent.rejected} of {sent.spans} spans"
                + (f": {sent.message}" if sent.message else ""),
                err=True,
            )
        if not as_json:
            click.echo(f"sent {sent.spans} spans to {sent.endpoint} ({config.protocol})")
    if as_json:
        done: dict[str, object] = {
            "run_id": record.run.id,
            "spans": trace.spans(record),
            "chrome": chrome_file,
            "otlp": sent.endpoint if sent else None,
        }
        if sent and config:
            done.update(otlp_protocol=config.protocol, otlp_rejected=sent.rejected)
        click.echo(json.dumps(done))
    return 0


@click.command("report")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False), required=True, help="Write it here."
)
@click.option("--json", "as_json", is_flag=True, help="Say what was written as JSON.")
@pipeline_file_option
@click.pass_context
def report_command(ctx: click.Context, run_id: str | None, html_file: str, as_json: bool) -> int:
    """A run (default: the latest) as one self-contained HTML file: a build scan."""
    from conveyor.export import html

    _pipeline, record = _pick(ctx, run_id)
    html.write(html_file, record)
    if as_json:
        size = os.path.getsize(html_file)
        click.echo(json.dumps({"run_id": record.run.id, "html": html_file, "bytes": size}))
    else:
        click.echo(f"wrote {html_file}")
    return 0
