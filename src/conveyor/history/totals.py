"""The whole history of a pipeline added up by the database, for the metrics' counters
and histograms: a year of a busy pipeline is a million job rows, and reading each into
Python to add it up took 15 s, longer than Prometheus waits for a scrape (10 s). The
database groups them (by job, status, cache hit) and counts the histogram buckets
itself, so what crosses to Python is a few thousand rows.

- `run_totals`, `job_totals`, `gate_totals`: counts and sums by outcome.
- `bucket_counts`: a histogram of one column, exactly as `bisect_left` over the bounds
  would bucket each value (`le` is "less than or equal"), by a binary search written as
  nested CASE expressions, so each row costs about eight comparisons in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Float, Integer, and_, case, func, literal, select

from conveyor.history.record import PHASES
from conveyor.history.schema import gates, jobs, runs
from conveyor.history.store import HistoryStore


class RunTotal(NamedTuple):
    """A pipeline's finished runs with one status (`rows` of them)."""

    pipeline: str
    status: str
    rows: int


class JobTotal(NamedTuple):
    """A job's rows with one status and cache result, added up."""

    pipeline: str
    name: str
    status: str
    cached: bool
    rows: int
    saved: float
    """The sum of `saved` (a missing value counts as 0)."""
    cpu_time: float | None
    """The sum of `cpu_time`, each negative value (a clock that stepped) as 0; None when
    no row has one."""
    phases: tuple[float | None, ...]
    """Per phase of `PHASES`, the sum of its column likewise; None when no row has one."""


class GateTotal(NamedTuple):
    """A gate's results of one kind in a pipeline's runs."""

    pipeline: str
    scope: str
    gate: str
    passed: bool
    level: str
    rows: int


class Buckets(NamedTuple):
    """A histogram of one group: the count per bucket (the last one +Inf) and the sum."""

    counts: list[int]
    total: float


def _finished(pipeline: str) -> ColumnElement[bool]:
    return and_(runs.c.pipeline == pipeline, runs.c.status != "running")


def _nonnegative_sum(column: Any) -> Any:
    """SUM of the column with negatives as 0; NULL when every value is NULL."""
    return func.sum(case((column.is_(None), None), (column > 0, column), else_=0.0))


def run_totals(store: HistoryStore, pipeline: str) -> list[RunTotal]:
    """The pipeline's finished runs, counted by status."""
    query = (
        select(runs.c.pipeline, runs.c.status, func.count())
        .where(_finished(pipeline))
        .group_by(runs.c.pipeline, runs.c.status)
    )
    with store.engine.connect() as conn:
        return [RunTotal(p, s, int(n)) for p, s, n in conn.execute(query)]


class JobHistograms(NamedTuple):
    """A pipeline's jobs added up: the totals, and the histograms of the timed rows'
    durations and peak memory (by job) and of every row's queue time (by pipeline)."""

    totals: list[JobTotal]
    durations: dict[tuple[str, ...], Buckets]
    memory: dict[tuple[str, ...], Buckets]
    queue: dict[tuple[str, ...], Buckets]


def _timed(timed_status: str, column: Any) -> ColumnElement[bool]:
    return and_(jobs.c.status == timed_status, jobs.c.cached.is_(False), column.is_not(None))


def _of_finished_runs(pipeline: str) -> ColumnElement[bool]:
    # IN (the runs' ids) rather than a join: SQLite then reads the jobs of each run by
    # its key, and never looks a run up per job row.
    return jobs.c.run_id.in_(select(runs.c.id).where(_finished(pipeline)))


def _totals_query(pipeline: str) -> Any:
    """Counts and sums by (name, status, cached)."""
    phase_columns = [_nonnegative_sum(jobs.c[column]) for _, column in PHASES]
    keys = (jobs.c.name, jobs.c.status, jobs.c.cached)
    return (
        select(
            *keys,
            func.count(),
            func.sum(func.coalesce(jobs.c.saved, 0.0)),
            _nonnegative_sum(jobs.c.cpu_time),
            *phase_columns,
        )
        .where(_of_finished_runs(pipeline))
        .group_by(*keys)
    )


def _timed_query(column: str, pipeline: str, bounds: Sequence[float], timed_status: str) -> Any:
    """The histogram of the timed rows' values of `column`, by job."""
    value = jobs.c[column]
    bucket = _bucket_of(value, bounds).label("bucket")
    return (
        select(jobs.c.name, bucket, func.count(), func.sum(value))
        .where(and_(_of_finished_runs(pipeline), _timed(timed_status, value)))
        .group_by(jobs.c.name, bucket)
    )


def _queue_query(pipeline: str, bounds: Sequence[float]) -> Any:
    """The histogram of the queue times of the rows not skipped."""
    bucket = _bucket_of(jobs.c.queue_time, bounds).label("bucket")
    where = and_(
        _of_finished_runs(pipeline), jobs.c.status != "skipped", jobs.c.queue_time.is_not(None)
    )
    return select(bucket, func.count(), func.sum(jobs.c.queue_time)).where(where).group_by(bucket)


def _add(
    out: dict[tuple[str, ...], Buckets],
    key: tuple[str, ...],
    size: int,
    index: int,
    count: int,
    total: float,
) -> None:
    group = out.get(key)
    if group is None:
        group = Buckets([0] * (size + 1), 0.0)
    group.counts[index] += count
    out[key] = group._replace(total=group.total + total)


def job_histograms(
    store: HistoryStore,
    pipeline: str,
    *,
    duration_bounds: Sequence[float],
    memory_bounds: Sequence[float],
    queue_bounds: Sequence[float],
    timed_status: str,
) -> JobHistograms:
    """The jobs of the pipeline's finished runs added up (see `JobHistograms`): three
    scans of the jobs, two at a time (each on its own connection: SQLite leaves the GIL while
    it works), since each takes a second or more on a million rows."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(query: Any) -> list[Any]:
        with store.engine.connect() as conn:
            return list(conn.execute(query))

    with ThreadPoolExecutor(max_workers=2) as pool:
        by_job = pool.submit(fetch, _totals_query(pipeline))
        by_duration = pool.submit(
            fetch, _timed_query("duration", pipeline, duration_bounds, timed_status)
        )
        by_memory = pool.submit(
            fetch, _timed_query("peak_rss", pipeline, memory_bounds, timed_status)
        )
        by_queue = pool.submit(fetch, _queue_query(pipeline, queue_bounds))
        totals = [
            JobTotal(
                pipeline=pipeline,
                name=name,
                status=status,
                cached=bool(cached),
                rows=int(count),
                saved=float(saved or 0.0),
                cpu_time=None if cpu is None else float(cpu),
                phases=tuple(None if v is None else float(v) for v in phases),
            )
            for name, status, cached, count, saved, cpu, *phases in by_job.result()
        ]
        histograms: list[dict[tuple[str, ...], Buckets]] = []
        for future, bounds in ((by_duration, duration_bounds), (by_memory, memory_bounds)):
            by_name: dict[tuple[str, ...], Buckets] = {}
            for name, bucket, count, total in future.result():
                _add(by_name, (pipeline, name), len(bounds), bucket, count, float(total))
            histograms.append(by_name)
        queue: dict[tuple[str, ...], Buckets] = {}
        for bucket, count, waited in by_queue.result():
            _add(queue, (pipeline,), len(queue_bounds), bucket, count, float(waited))
    return JobHistograms(totals, histograms[0], histograms[1], queue)


def gate_totals(store: HistoryStore, pipeline: str) -> list[GateTotal]:
    """The gates of the pipeline's finished runs, counted by scope, name and result."""
    query = (
        select(
            runs.c.pipeline,
            gates.c.scope,
            gates.c.gate,
            gates.c.passed,
            gates.c.level,
            func.count(),
        )
        .select_from(gates.join(runs, gates.c.run_id == runs.c.id))
        .where(_finished(pipeline))
        .group_by(runs.c.pipeline, gates.c.scope, gates.c.gate, gates.c.passed, gates.c.level)
    )
    with store.engine.connect() as conn:
        return [
            GateTotal(p, scope, gate, bool(passed), level, int(n))
            for p, scope, gate, passed, level, n in conn.execute(query)
        ]


def _bucket_of(value: Any, bounds: Sequence[float], low: int = 0, high: int | None = None) -> Any:
    """The index `bisect_left(bounds, value)` would give, for an index known to lie in
    [low, high]: a binary search as nested CASEs (each bound a bound parameter, so the
    database compares the very doubles Python would)."""
    if high is None:
        high = len(bounds)
    if low == high:
        return literal(low, Integer)
    middle = (low + high) // 2
    return case(
        (value <= literal(bounds[middle], Float), _bucket_of(value, bounds, low, middle)),
        else_=_bucket_of(value, bounds, middle + 1, high),
    )


def run_durations(
    store: HistoryStore, pipeline: str, bounds: Sequence[float]
) -> dict[tuple[str, ...], Buckets]:
    """The histogram of the wall times of the pipeline's finished runs, keyed (pipeline,)."""
    bucket = _bucket_of(runs.c.wall_time, bounds).label("bucket")
    query = (
        select(bucket, func.count(), func.sum(runs.c.wall_time))
        .where(and_(_finished(pipeline), runs.c.wall_time.is_not(None)))
        .group_by(bucket)
    )
    out: dict[tuple[str, ...], Buckets] = {}
    with store.engine.connect() as conn:
        for index, count, total in conn.execute(query):
            _add(out, (pipeline,), len(bounds), index, count, float(total))
    return out
