"""One run: its jobs (status, cache hit and where from, timings, CPU, memory), the
Gantt chart with the critical path marked, failed tests, gates, output files and
artifacts with their digests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.history.record import CaseRow, GateRow, OutputRow, RunRecord, RunRow
from conveyor.history.store import HistoryStore

_FROM = re.compile(r"^from (?:run )?(\S+)")
GANTT_STATUS = {
    "success": "success",
    "failed": "failed",
    "timed_out": "failed",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "running": "running",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobView:
    """One job of the run, as the run page shows it."""

    name: str
    status: str
    status_text: str
    reason: str
    cached: bool
    cache_tier: str | None
    """local or remote, for a hit."""
    cached_from: str | None
    """The run the hit's result was made by (its id, or id and host), as recorded."""
    cached_from_run: str | None
    """That run's id when it is in this history (to link to)."""
    started: float | None
    """Seconds from the run's start."""
    duration: float | None
    queue_time: float | None
    cpu_time: float | None
    peak_rss: int | None
    attempts: int
    exit_code: int | None
    critical: bool
    has_log: bool
    worker: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GanttBar:
    """A job on the timeline (the contract of `_charts.html`'s gantt macro)."""

    name: str
    start: float
    end: float
    status: str
    critical: bool
    href: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """The run page."""

    run: RunRow
    jobs: tuple[JobView, ...]
    gantt: tuple[GanttBar, ...]
    failed_tests: tuple[CaseRow, ...]
    tests_total: int
    tests_by_status: dict[str, int]
    gates: tuple[GateRow, ...]
    outputs: tuple[OutputRow, ...]
    artifacts: tuple[OutputRow, ...]
    """The outputs declared among the jobs' `artifacts:`."""


def job_href(run_id: str, job: str) -> str:
    """The page of a job's log."""
    from urllib.parse import quote

    return f"/runs/{quote(run_id, safe='')}/jobs/{quote(job, safe='')}/log"


def find(store: HistoryStore, run_id: str) -> RunRecord | None:
    """The run with exactly this id (not a prefix: a page's address names one run)."""
    record = store.run(run_id)
    return record if record is not None and record.run.id == run_id else None


def view(store: HistoryStore, record: RunRecord) -> RunView:
    """The run page's data from the recorded run."""
    run = record.run
    critical = set(run.critical_path)
    origins = {
        job.name: m.group(1)
        for job in record.jobs
        if job.cached and (m := _FROM.match(job.reason)) is not None
    }
    known = set(store.statuses_of(sorted(set(origins.values())))) if origins else set()
    views = []
    bars = []
    for job in record.jobs:
        started = None if job.started_at is None else job.started_at - run.started_at
        origin = origins.get(job.name)
        views.append(
            JobView(
                name=job.name,
                status=job.status,
                status_text=job.status_text,
                reason=job.reason,
                cached=job.cached,
                cache_tier=(job.cache_tier or "local") if job.cached else None,
                cached_from=job.reason.removeprefix("from ") if origin else None,
                cached_from_run=origin if origin in known else None,
                started=started,
                duration=job.duration,
                queue_time=job.queue_time,
                cpu_time=job.cpu_time,
                peak_rss=job.peak_rss,
                attempts=job.attempts,
                exit_code=job.exit_code,
                critical=job.name in critical,
                has_log=bool(job.log_path),
                worker=job.worker,
            )
        )
        if job.started_at is not None and job.finished_at is not None:
            bars.append(
                GanttBar(
                    name=job.name,
                    start=max(0.0, job.started_at - run.started_at),
                    end=max(0.0, job.finished_at - run.started_at),
                    status="cached" if job.cached else GANTT_STATUS.get(job.status, "failed"),
                    critical=job.name in critical,
                    href=job_href(run.id, job.name) if job.log_path else None,
                )
            )
    counts: dict[str, int] = {}
    for case in record.tests:
        counts[case.status] = counts.get(case.status, 0) + 1
    return RunView(
        run=run,
        jobs=tuple(views),
        gantt=tuple(bars),
        failed_tests=tuple(t for t in record.tests if t.status in ("failed", "error")),
        tests_total=len(record.tests),
        tests_by_status=counts,
        gates=record.gates,
        outputs=record.outputs,
        artifacts=tuple(o for o in record.outputs if o.artifact),
    )
