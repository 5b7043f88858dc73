"""Trends: per day or week, the duration (p50, p95), success rate, queue time, cache hit
rate and time saved of a pipeline or of one of its jobs; its slowest jobs and the jobs
getting slower. The per-job figures are `conveyor stats`' own (`insights.stats`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, func, select

from conveyor.history.queries import streamed
from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore
from conveyor.insights.definitions import QUANTILES, TIMED_STATUS, percentile
from conveyor.insights.stats import SLOWER_TREND, Figures, JobFigures, compute

DAY = 86400.0
BUCKETS = {"day": DAY, "week": 7 * DAY}
MONDAY = 4 * DAY
"""The epoch was a Thursday: weeks start on the Monday after it, less 7 days."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One line of a chart (the contract of `_charts.html`'s timeseries macro)."""

    label: str
    unit: str
    """s, % or count."""
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    x: tuple[float, ...]
    """Each bucket's start, unix seconds."""
    series: tuple[Series, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Trends:
    """The trends page."""

    pipeline: str | None
    job: str | None
    since: float
    bucket: str
    duration: Chart
    """p50 and p95 of the runs' wall time (or the job's executions)."""
    success: Chart
    """Success rate, %."""
    queue: Chart
    """Mean queue time of the jobs."""
    cache: Chart
    """Cache hit rate (%), and the time the cache saved."""
    figures: Figures | None
    """`conveyor stats` over the same window (None: no pipeline)."""
    slowest: tuple[JobFigures, ...]
    slower: tuple[JobFigures, ...]
    """Jobs whose median got at least SLOWER_TREND slower over the window."""
    jobs: tuple[str, ...]
    """The jobs that can be chosen."""


def _bucket(store: HistoryStore, origin: float, size: float) -> ColumnElement[int]:
    """The bucket of a run's start, counted from `origin` (floor, on either database)."""
    offset = (runs.c.started_at - origin) / size
    if store.engine.dialect.name == "postgresql":
        return cast(func.floor(offset), Integer)
    return cast(offset, Integer)  # SQLite truncates, and offset >= 0


def trends(
    store: HistoryStore, pipeline: str | None, job: str | None, since: float, bucket: str
) -> Trends:
    """The trends of `pipeline` (or of its job `job`) since `since`, per `bucket`."""
    size = BUCKETS[bucket]
    shift = MONDAY if bucket == "week" else 0.0
    origin = ((since - shift) // size) * size + shift
    if pipeline is None:
        empty = Chart(x=(), series=())
        return Trends(
            pipeline=None,
            job=job,
            since=since,
            bucket=bucket,
            duration=empty,
            success=empty,
            queue=empty,
            cache=empty,
            figures=None,
            slowest=(),
            slower=(),
            jobs=(),
        )
    from concurrent.futures import ThreadPoolExecutor

    # `conveyor stats`' figures in another thread while the buckets are read: each is a
    # pass over the window's job rows (seconds for a year of a large history), and
    # SQLite leaves the GIL while it works.
    with ThreadPoolExecutor(1, thread_name_prefix="trends") as pool:
        stats = pool.submit(compute, store, pipeline, since)
        return _trends(store, pipeline, job, since, bucket, origin, size, stats.result)


def _trends(
    store: HistoryStore,
    pipeline: str,
    job: str | None,
    since: float,
    bucket: str,
    origin: float,
    size: float,
    stats: Callable[[], Figures],
) -> Trends:
    window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    index = _bucket(store, origin, size).label("bucket")
    durations: dict[int, list[float]] = {}
    outcomes: dict[int, list[int]] = {}
    with store.engine.connect() as conn:
        if job is None:
            for b, status, wall in streamed(
                conn, select(index, runs.c.status, runs.c.wall_time).where(window)
            ):
                outcomes.setdefault(b, [0, 0])[0] += 1
                outcomes[b][1] += status == "success"
                if wall is not None:
                    durations.setdefault(b, []).append(float(wall))
        else:
            timed = and_(window, jobs.c.name == job, jobs.c.cached.is_(False))
            for b, duration in streamed(
                conn,
                select(index, jobs.c.duration)
                .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
                .where(timed, jobs.c.status == TIMED_STATUS, jobs.c.duration.is_not(None)),
            ):
                durations.setdefault(b, []).append(float(duration))
        counted = case((jobs.c.status != "skipped", 1), else_=0)
        where = window if job is None else and_(window, jobs.c.name == job)
        per_bucket = list(
            conn.execute(
                select(
                    index,
                    func.sum(counted),
                    func.sum(case((jobs.c.status == "success", 1), else_=0)),
                    func.sum(case((jobs.c.cached, 1), else_=0)),
                    func.sum(case((jobs.c.cached, jobs.c.saved), else_=0.0)),
                    func.avg(cast(jobs.c.queue_time, Float)),
                )
                .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
                .where(where)
                .group_by(index)
            )
        )
    by_bucket = {row[0]: row for row in per_bucket}
    last = max([*durations, *outcomes, *by_bucket, 0])
    numbers = range(0, last + 1) if (durations or outcomes or by_bucket) else range(0)
    x = tuple(origin + n * size for n in numbers)

    def quantile(n: int, q: float) -> float | None:
        return percentile(sorted(durations.get(n, [])), q)

    def rate(n: int) -> float | None:
        if job is None:
            seen = outcomes.get(n)
            return seen[1] / seen[0] * 100 if seen and seen[0] else None
        row = by_bucket.get(n)
        return (row[2] or 0) / row[1] * 100 if row is not None and row[1] else None

    def hits(n: int) -> float | None:
        row = by_bucket.get(n)
        return (row[3] or 0) / row[1] * 100 if row is not None and row[1] else None

    def column(n: int, i: int) -> float | None:
        row = by_bucket.get(n)
        return None if row is None or row[i] is None else float(row[i])

    what = "wall time" if job is None else "duration"
    figures = stats()
    names = tuple(sorted(j.job for j in figures.jobs))
    slower = tuple(
        sorted(
            (j for j in figures.jobs if j.trend is not None and j.trend >= SLOWER_TREND),
            key=lambda j: -(j.trend or 0.0),
        )
    )
    if job is not None:
        figures = compute(store, pipeline, since, job)
    return Trends(
        pipeline=pipeline,
        job=job,
        since=since,
        bucket=bucket,
        duration=Chart(
            x=x,
            series=(
                Series(
                    label=f"{what} p50",
                    unit="s",
                    values=tuple(quantile(n, QUANTILES[0]) for n in numbers),
                ),
                Series(
                    label=f"{what} p95",
                    unit="s",
                    values=tuple(quantile(n, QUANTILES[1]) for n in numbers),
                ),
            ),
        ),
        success=Chart(
            x=x,
            series=(
                Series(label="success rate", unit="%", values=tuple(rate(n) for n in numbers)),
            ),
        ),
        queue=Chart(
            x=x,
            series=(
                Series(
                    label="mean queue time", unit="s", values=tuple(column(n, 5) for n in numbers)
                ),
            ),
        ),
        cache=Chart(
            x=x,
            series=(
                Series(label="cache hit rate", unit="%", values=tuple(hits(n) for n in numbers)),
                Series(label="time saved", unit="s", values=tuple(column(n, 4) for n in numbers)),
            ),
        ),
        figures=figures,
        slowest=figures.jobs[:10] if job is None else (),
        slower=slower,
        jobs=names,
    )
