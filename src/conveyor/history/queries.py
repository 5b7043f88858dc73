"""What the history is asked, as functions returning typed rows: the CLI and the
dashboard show these and compute nothing of their own.

- `open_history`: the workspace's history, its runs recorded (which database, and
  reading the run directories in).
- `find_run`: the run a command means (an id, a unique prefix, or the latest).
- `pipeline_totals`: a pipeline's runs in a window (count, success rate, wall time).
- `pipeline_names`: the pipelines the history has runs of.
- `streamed`: a query's rows a batch at a time, whichever the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, Select, and_, case, cast, func, select

from conveyor.errors import UsageError
from conveyor.history.location import database_url
from conveyor.history.record import RunRecord
from conveyor.history.rundirs import ingest
from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore

RELIABILITY_TARGET = 0.99
"""The seed's target for a pipeline's success rate."""


def open_history(root: str, configured: str | None, environ: Mapping[str, str]) -> HistoryStore:
    """The history of the workspace at `root` ($CONVEYOR_DB_URL, else `history.url`,
    else its own SQLite database), with every run its directories hold recorded. The
    caller closes it (`with open_history(...) as store`)."""
    store = HistoryStore(database_url(root, configured, environ))
    try:
        ingest(store, root)
    except BaseException:
        store.close()
        raise
    return store


def job_names(store: HistoryStore, pipeline: str) -> list[str]:
    """Every job name the history holds for `pipeline`, in any run, sorted."""
    from sqlalchemy import select

    query = (
        select(jobs.c.name)
        .distinct()
        .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
        .where(runs.c.pipeline == pipeline)
    )
    with store.engine.connect() as conn:
        return sorted(str(name) for (name,) in conn.execute(query))


def pipeline_names(store: HistoryStore) -> list[str]:
    """Every pipeline the history has a finished run of, sorted."""
    query = select(runs.c.pipeline).distinct().where(runs.c.status != "running")
    with store.engine.connect() as conn:
        return sorted(str(name) for (name,) in conn.execute(query))


def find_run(store: HistoryStore, pipeline: str, run_id: str | None) -> RunRecord:
    """`run_id` (an id or a unique prefix of one), else the latest run of `pipeline`; a
    usage error naming the candidates otherwise."""
    if run_id is None:
        latest = store.recent(1, pipeline)
        if not latest:
            raise UsageError("no runs recorded yet", hint="`conveyor run` records each run")
        run_id = latest[0].id
    record = store.run(run_id)
    if record is None:
        close = store.runs_with_prefix(run_id)
        hint = (
            f"it matches {len(close)} runs: {', '.join(close)}"
            if close
            else "`conveyor history` lists the recorded runs"
        )
        raise UsageError(f"no single run '{run_id}' in the history", hint=hint)
    return record


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineTotals:
    """A pipeline's finished runs in a window."""

    name: str
    since: float
    first_run: float | None
    """When the first of them started (None: no run)."""
    runs: int
    success_rate: float | None
    target: float
    """The success rate to meet (RELIABILITY_TARGET)."""
    mean_wall_time: float | None
    mean_cpus: float | None
    mean_parallelism: float | None
    cpu_capacity: float
    """CPU-seconds the machines had while the runs whose machine is known went on."""


def pipeline_totals(
    store: HistoryStore, pipeline: str, since: float, until: float | None = None
) -> PipelineTotals:
    """The pipeline's finished runs started in [since, until]: how many, the share that
    succeeded (against the seed's target), their mean wall time."""
    window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    if until is not None:
        window = and_(window, runs.c.started_at <= until)
    ok = case((runs.c.status == "success", 1), else_=0)
    query = select(
        func.count().label("runs"),
        func.sum(ok).label("succeeded"),
        func.avg(cast(runs.c.wall_time, Float)).label("wall"),
        func.min(runs.c.started_at).label("first"),
        func.avg(runs.c.cpus).label("cpus"),
        func.avg(runs.c.parallelism).label("parallelism"),
        func.sum(case((runs.c.cpus.is_not(None), runs.c.wall_time * runs.c.cpus), else_=0.0)).label(
            "capacity"
        ),
    ).where(window)
    with store.engine.connect() as conn:
        total = conn.execute(query).one()
    count = int(total.runs or 0)
    return PipelineTotals(
        name=pipeline,
        since=since,
        first_run=total.first,
        runs=count,
        success_rate=(total.succeeded or 0) / count if count else None,
        target=RELIABILITY_TARGET,
        mean_wall_time=float(total.wall) if total.wall is not None else None,
        mean_cpus=float(total.cpus) if total.cpus is not None else None,
        mean_parallelism=float(total.parallelism) if total.parallelism is not None else None,
        cpu_capacity=float(total.capacity or 0.0),
    )


def streamed(conn: Connection, query: Select[Any]) -> Iterator[Any]:
    """The rows of `query` a batch at a time: PostgreSQL's driver otherwise holds the
    whole result in memory (400 MB for a million job rows, read by the metrics). For
    queries that may return a large window's job rows."""
    yield from conn.execution_options(stream_results=True, max_row_buffer=STREAM_ROWS).execute(
        query
    )


STREAM_ROWS = 10_000
