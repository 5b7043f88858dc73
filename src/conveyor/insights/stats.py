"""Aggregates over recorded runs: per job and for the pipeline (`conveyor stats`).

Counts and sums are computed by the database; percentiles (which SQLite lacks) from the
durations and peak memory of the executions, fetched once, sorted per job. What they are
of, and what a percentile is, is `insights.definitions`, shared with the exporters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Row, and_, case, func, select

from conveyor.history.queries import pipeline_totals, streamed
from conveyor.history.record import PHASES
from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore
from conveyor.insights.definitions import QUANTILES, TIMED_STATUS, percentile
from conveyor.units import format_duration


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFigures:
    """One job over the window. Rates are of the runs it took part in (not skipped)."""

    job: str
    runs: int
    success_rate: float | None
    failed: int
    """Runs it failed or timed out in (not cancelled by another job's failure)."""
    cache_hit_rate: float | None
    executed: int
    """Runs it executed in and succeeded (what the durations and memory are of)."""
    p50: float | None
    p95: float | None
    trend: float | None
    """The median of the later half of its executions over the earlier half's, less 1."""
    queue_time: float | None
    """Mean seconds it waited (for a slot, its group, the scheduler) once ready."""
    saved: float
    cpu_time: float | None
    peak_memory: int | None
    """The p95 of the peak resident memory (bytes) of its executions."""
    check_time: float | None = None
    """Mean seconds of each phase of its timeline, over the runs that had that phase:
    checking (key and cache lookup), restoring (a hit's outputs, dependency caches),
    running (its attempts), storing (result and caches)."""
    restore_time: float | None = None
    run_time: float | None = None
    store_time: float | None = None
    slot_bound: float | None = None
    """For a job that waits long: the share of its waiting during which every slot was
    busy (`insights.waiting`); the rest it waited with slots free (the scheduler serving
    a large cache hit, its resource group), which more `-j` would not shorten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineFigures:
    """The pipeline over the window."""

    name: str
    since: float
    first_run: float | None
    runs: int
    success_rate: float | None
    target: float
    mean_wall_time: float | None
    mean_cpus: float | None
    mean_parallelism: float | None
    saved: float
    """Time the cache saved, all jobs together."""
    cpu_utilisation: float | None = None
    """Of the CPU-seconds the machines had while runs went on, the share jobs used (None
    for one job's figures, or when no run's machine is known)."""
    phase_seconds: dict[str, float] | None = None
    """Where the jobs' time went, all jobs together: seconds queued, checking, restoring,
    running and storing (None when no run recorded its phases)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice:
    """One thing the figures say to do."""

    kind: str
    """reliability, duration, cache, trend, variance, capacity or queue."""
    job: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Figures:
    """`conveyor stats`: the pipeline, its jobs (slowest first), and advice."""

    pipeline: PipelineFigures
    jobs: tuple[JobFigures, ...]
    advice: tuple[Advice, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "pipeline": _fields(self.pipeline),
            "jobs": [_fields(j) for j in self.jobs],
            "advice": [_fields(a) for a in self.advice],
        }


def _fields(row: JobFigures | PipelineFigures | Advice) -> dict[str, object]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def compute(store: HistoryStore, pipeline: str, since: float, job: str | None = None) -> Figures:
    """The figures of runs started at or after `since` (of one job, or all)."""
    in_window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    joined = jobs.join(runs, jobs.c.run_id == runs.c.id)
    where = in_window if job is None else and_(in_window, jobs.c.name == job)
    one = case((jobs.c.status == "success", 1), else_=0)
    # Failed on its own account: a job cancelled by another's failure is not counted.
    broke = case((jobs.c.status.in_(("failed", "timed_out")), 1), else_=0)
    hit = case((jobs.c.cached, 1), else_=0)
    counted = case((jobs.c.status != "skipped", 1), else_=0)
    # Grouped by an expression, not the indexed column: SQLite would otherwise walk the
    # name index (random reads of every row: 0.9 s against 0.3 s for 500,000 job rows)
    # instead of finding the window's runs by time first.
    name = (jobs.c.name + "").label("job")
    per_job = (
        select(
            name,
            func.sum(counted).label("runs"),
            func.sum(one).label("succeeded"),
            func.sum(broke).label("failed"),
            func.sum(hit).label("hits"),
            func.sum(case((jobs.c.cached, jobs.c.saved), else_=0.0)).label("saved"),
            func.avg(jobs.c.queue_time).label("queue"),
            *(func.avg(jobs.c[p]).label(f"avg_{p}") for p in PHASE_COLUMNS),
            *(func.sum(jobs.c[p]).label(f"sum_{p}") for p in ("queue_time", *PHASE_COLUMNS)),
            func.avg(case((jobs.c.cached, None), else_=jobs.c.cpu_time)).label("cpu"),
            # CPU seconds of runs whose machine is known: over their CPU-seconds, below.
            func.sum(
                case(
                    (
                        and_(jobs.c.cached.is_(False), runs.c.cpus.is_not(None)),
                        func.coalesce(jobs.c.cpu_time, 0.0),
                    ),
                    else_=0.0,
                )
            ).label("cpu_total"),
        )
        .select_from(joined)
        .where(where)
        .group_by(name)
    )
    # The executions the durations and memory are of (definitions.timed).
    durations = (
        select(jobs.c.name, runs.c.started_at, jobs.c.duration, jobs.c.peak_rss)
        .select_from(joined)
        .where(and_(where, jobs.c.cached.is_(False), jobs.c.status == TIMED_STATUS))
    )  # unordered: sorting 200,000 rows in the database cost more than per job here
    with store.engine.connect() as conn:
        rows = list(conn.execute(per_job))
        timed: dict[str, list[tuple[float, float]]] = {}
        memory: dict[str, list[int]] = {}
        for job_name, started, duration, peak in streamed(conn, durations):
            if duration is not None:
                timed.setdefault(job_name, []).append((started, float(duration)))
            if peak is not None:
                memory.setdefault(job_name, []).append(int(peak))
    series = {k: [d for _, d in sorted(v)] for k, v in timed.items()}
    out = sorted(
        (
            _job_figures(row, series.get(row.job, []), sorted(memory.get(row.job, [])))
            for row in rows
        ),
        key=lambda j: (-(j.p95 or 0.0), j.job),
    )
    waited = [j.job for j in out if (j.queue_time or 0.0) >= LONG_QUEUE_SECONDS]
    if waited:
        from conveyor.insights.waiting import slot_bound

        bound = slot_bound(store, pipeline, since, waited)
        out = [replace(j, slot_bound=bound.get(j.job)) for j in out]
    totals = pipeline_totals(store, pipeline, since)
    capacity = totals.cpu_capacity
    used = sum(float(row.cpu_total or 0.0) for row in rows)
    figures = PipelineFigures(
        name=totals.name,
        since=totals.since,
        first_run=totals.first_run,
        runs=totals.runs,
        success_rate=totals.success_rate,
        target=totals.target,
        mean_wall_time=totals.mean_wall_time,
        mean_cpus=totals.mean_cpus,
        mean_parallelism=totals.mean_parallelism,
        saved=sum(j.saved for j in out),
        # Of the CPU-seconds the machines had while runs were going, the share jobs used.
        cpu_utilisation=used / capacity if job is None and capacity else None,
        phase_seconds=_phase_seconds(rows),
    )
    return Figures(figures, tuple(out), tuple(advise(figures, out)))


def _job_figures(row: Row[Any, *tuple[Any, ...]], ran: list[float], peaks: list[int]) -> JobFigures:
    """One job's figures from its aggregate row, the durations of its executed runs,
    oldest first (the trend compares the later half of the window with the earlier), and
    their peak memory, sorted."""
    ordered = sorted(ran)
    half = len(ran) // 2
    older, newer = sorted(ran[:half]), sorted(ran[half:])
    trend = None
    old_p50, new_p50 = percentile(older, 0.5), percentile(newer, 0.5)
    if half >= 2 and old_p50 and new_p50 is not None:
        trend = new_p50 / old_p50 - 1
    counted_runs = int(row.runs or 0)
    return JobFigures(
        job=row.job,
        runs=counted_runs,
        success_rate=(row.succeeded or 0) / counted_runs if counted_runs else None,
        failed=int(row.failed or 0),
        cache_hit_rate=(row.hits or 0) / counted_runs if counted_runs else None,
        executed=len(ran),
        p50=percentile(ordered, QUANTILES[0]),
        p95=percentile(ordered, QUANTILES[1]),
        trend=trend,
        queue_time=float(row.queue) if row.queue is not None else None,
        saved=float(row.saved or 0.0),
        cpu_time=float(row.cpu) if row.cpu is not None else None,
        peak_memory=percentile(peaks, QUANTILES[1]),
        **{p: _float(getattr(row, f"avg_{p}")) for p in PHASE_COLUMNS},
    )


PHASE_COLUMNS = tuple(column for _name, column in PHASES[1:])
"""The history's columns of a job's own phases (its queue time is the rest)."""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _phase_seconds(rows: Sequence[Row[Any, *tuple[Any, ...]]]) -> dict[str, float] | None:
    """Seconds in each phase over the jobs' rows; None if no row recorded its phases."""
    if all(row.sum_run_time is None and row.sum_restore_time is None for row in rows):
        return None
    return {name: sum(float(getattr(row, f"sum_{c}") or 0.0) for row in rows) for name, c in PHASES}


# When `conveyor stats` speaks up (see advise).
WALL_TIME_TARGET = 600.0
"""The seed's "average build time under 10 minutes"."""
MIN_EXECUTIONS = 3
SLOW_JOB_SHARE = 0.05
"""A job worth caching takes at least this share of the mean wall time..."""
SLOW_JOB_SECONDS = 1.0
"""...and at least this long."""
LOW_HIT_RATE = 0.5
SLOWER_TREND = 0.2
WIDE_SPREAD = 2.0
"""p95 over p50."""
LONG_QUEUE_SECONDS = 1.0
SLOT_BOUND = 0.5
"""A job waited for a slot when every slot was busy for at least this share of its waits."""
BUSY_CPUS = 0.85


def advise(pipe: PipelineFigures, jobs_: Sequence[JobFigures]) -> list[Advice]:
    """What the figures say to do, most pressing first.

    The seed's troubleshooting guide, applied to the recorded runs: failures by job when
    the success rate is under target; wall time over the 10-minute target; slow jobs the
    cache rarely serves; jobs getting slower; jobs whose duration varies widely; CPUs
    kept busy; jobs waiting for a free slot."""
    if not pipe.runs:
        return []
    found = [
        _reliability(pipe, jobs_),
        _wall_time(pipe),
        *_rarely_cached(pipe, jobs_),
        *_slower(jobs_),
        *_spread(jobs_),
        _capacity(pipe),
        *_queued(jobs_),
    ]
    return [a for a in found if a is not None]


def _reliability(pipe: PipelineFigures, jobs_: Sequence[JobFigures]) -> Advice | None:
    rate = pipe.success_rate
    if rate is None or rate >= pipe.target:
        return None
    failing = sorted((j for j in jobs_ if j.failed), key=lambda j: (-j.failed, j.job))
    named = ", ".join(f"{j.job} ({j.failed})" for j in failing[:5])
    return Advice(
        kind="reliability",
        job=None,
        message=f"{rate * 100:.1f}% of {pipe.runs} runs succeeded, under the "
        f"{pipe.target * 100:.0f}% target"
        + (f"; failures by job: {named}" if named else "")
        + "; `conveyor flaky` tells flaky jobs and tests from real breakage",
    )


def _wall_time(pipe: PipelineFigures) -> Advice | None:
    wall = pipe.mean_wall_time
    if wall is None or wall <= WALL_TIME_TARGET:
        return None
    return Advice(
        kind="duration",
        job=None,
        message=f"runs take {format_duration(wall)} on average, over the "
        f"{format_duration(WALL_TIME_TARGET)} target; `conveyor critical-path` names "
        "the chain of jobs that sets the wall time",
    )


def _rarely_cached(pipe: PipelineFigures, jobs_: Sequence[JobFigures]) -> list[Advice]:
    out = []
    threshold = max(SLOW_JOB_SECONDS, (pipe.mean_wall_time or 0.0) * SLOW_JOB_SHARE)
    for j in jobs_:
        p50, runs_ = j.p50, j.runs
        if (
            j.executed >= MIN_EXECUTIONS
            and (j.cache_hit_rate or 0.0) < LOW_HIT_RATE
            and p50 is not None
            and p50 >= threshold
        ):
            out.append(
                Advice(
                    kind="cache",
                    job=j.job,
                    message=f"{j.job} executed in {j.executed} of {runs_} runs "
                    f"(cache hit rate {(j.cache_hit_rate or 0.0) * 100:.0f}%), "
                    f"{format_duration(p50)} each: `conveyor why {j.job}` shows what "
                    "changes its key; `inputs:` can narrow it",
                )
            )
    return out


def _slower(jobs_: Sequence[JobFigures]) -> list[Advice]:
    return [
        Advice(
            kind="trend",
            job=j.job,
            message=f"{j.job} got {j.trend * 100:.0f}% slower (the median "
            "of the later half of the window against the earlier half)",
        )
        for j in jobs_
        if j.trend is not None
        and j.trend >= SLOWER_TREND
        and j.executed >= 2 * MIN_EXECUTIONS - 2
        and (j.p50 or 0.0) >= SLOW_JOB_SECONDS
    ]


def _spread(jobs_: Sequence[JobFigures]) -> list[Advice]:
    out = []
    for j in jobs_:
        p50, p95 = j.p50, j.p95
        if (
            j.executed >= MIN_EXECUTIONS + 2
            and p50
            and p95 is not None
            and p95 > WIDE_SPREAD * p50
            and p95 - p50 >= SLOW_JOB_SECONDS
        ):
            out.append(
                Advice(
                    kind="variance",
                    job=j.job,
                    message=f"{j.job} varies widely: p95 {format_duration(p95)} against "
                    f"p50 {format_duration(p50)}; look for contention, network waits or "
                    "tests that sleep",
                )
            )
    return out


def _capacity(pipe: PipelineFigures) -> Advice | None:
    used = pipe.cpu_utilisation
    if used is None or used < BUSY_CPUS:
        return None
    return Advice(
        kind="capacity",
        job=None,
        message=f"jobs kept the CPUs {used * 100:.0f}% busy while runs were going: "
        "more cores, more runners or remote execution would shorten runs",
    )


def _queued(jobs_: Sequence[JobFigures]) -> list[Advice]:
    """Jobs that wait long, told apart by what for: all slots busy (more `-j` helps), or
    slots free (older runs without phases count as slot-bound, as they were advised)."""
    waiting = sorted(
        (j for j in jobs_ if (j.queue_time or 0.0) >= LONG_QUEUE_SECONDS),
        key=lambda j: (-(j.queue_time or 0.0), j.job),
    )
    for_slot = [j for j in waiting if j.slot_bound is None or j.slot_bound >= SLOT_BOUND]
    not_slot = [j for j in waiting if j not in for_slot]

    def named(some: list[JobFigures]) -> str:
        return ", ".join(f"{j.job} ({format_duration(j.queue_time or 0.0)})" for j in some[:5])

    out = []
    if for_slot:
        out.append(
            Advice(
                kind="queue",
                job=None,
                message=f"jobs waited for a free slot after they were ready: "
                f"{named(for_slot)} on average; more parallelism (`-j`) or more runners "
                "would start them sooner",
            )
        )
    if not_slot:
        out.append(
            Advice(
                kind="queue",
                job=None,
                message=f"jobs waited with slots free after they were ready: "
                f"{named(not_slot)} on average; more `-j` would not help: a resource "
                "group held them, or the scheduler was busy (serving many cache hits)",
            )
        )
    return out
