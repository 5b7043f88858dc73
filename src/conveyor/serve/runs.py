"""The runs list: recorded runs, newest first, filtered and paged, with their gates
counted and their wall times for a sparkline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from conveyor.history.schema import gates, runs
from conveyor.history.store import HistoryStore

STATUSES = ("success", "failed", "interrupted", "running")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """What the list shows: runs matching every filter given, one page of them."""

    pipeline: str | None = None
    branch: str | None = None
    status: str | None = None
    since: float | None = None
    """Started at or after (unix seconds)."""
    until: float | None = None
    """Started at or before."""
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class RunItem:
    """One run in the list."""

    id: str
    pipeline: str
    status: str
    branch: str | None
    tag: str | None
    event: str | None
    commit: str | None
    started_at: float
    wall_time: float | None
    jobs_total: int
    jobs_cached: int
    jobs_run: int
    """Jobs executed (not served from the cache)."""
    gates_passed: int
    gates_failed: int
    """Gates at level error that failed (they fail the run)."""
    gates_warned: int
    """Gates at level warn that failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunList:
    """A page of runs, and what the filters can choose from."""

    runs: tuple[RunItem, ...]
    page: int
    per_page: int
    total: int
    """Runs matching the filters, on every page."""
    pages: int
    durations: tuple[float | None, ...]
    """The wall times of this page's runs, oldest first (the sparkline)."""
    pipelines: tuple[str, ...]
    branches: tuple[str, ...]
    statuses: tuple[str, ...] = STATUSES


def list_runs(store: HistoryStore, flt: RunFilter) -> RunList:
    """The page of runs `flt` asks for."""
    where = []
    if flt.pipeline is not None:
        where.append(runs.c.pipeline == flt.pipeline)
    if flt.branch is not None:
        where.append(runs.c.branch == flt.branch)
    if flt.status is not None:
        where.append(runs.c.status == flt.status)
    if flt.since is not None:
        where.append(runs.c.started_at >= flt.since)
    if flt.until is not None:
        where.append(runs.c.started_at <= flt.until)
    cond = and_(True, *where)
    page_query = (
        select(
            runs.c.id,
            runs.c.pipeline,
            runs.c.status,
            runs.c.branch,
            runs.c.tag,
            runs.c.event,
            runs.c.commit,
            runs.c.started_at,
            runs.c.wall_time,
            runs.c.jobs_total,
            runs.c.jobs_cached,
        )
        .where(cond)
        .order_by(runs.c.started_at.desc())  # the index's order: no sort of every run
        .limit(flt.per_page)
        .offset((flt.page - 1) * flt.per_page)
    )
    with store.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(runs).where(cond)).scalar_one())
        rows = list(conn.execute(page_query))
        ids = [r.id for r in rows]
        counted: dict[str, tuple[int, int, int]] = {}
        if ids:
            failed_error = case(
                (and_(gates.c.passed.is_(False), gates.c.level == "error"), 1), else_=0
            )
            failed_warn = case(
                (and_(gates.c.passed.is_(False), gates.c.level != "error"), 1), else_=0
            )
            gate_query = (
                select(
                    gates.c.run_id,
                    func.sum(case((gates.c.passed, 1), else_=0)),
                    func.sum(failed_error),
                    func.sum(failed_warn),
                )
                .where(gates.c.run_id.in_(ids))
                .group_by(gates.c.run_id)
            )
            counted = {
                run_id: (int(p or 0), int(f or 0), int(w or 0))
                for run_id, p, f, w in conn.execute(gate_query)
            }
        pipelines = tuple(
            sorted(str(p) for (p,) in conn.execute(select(runs.c.pipeline).distinct()))
        )
        branch_query = select(runs.c.branch).distinct().where(runs.c.branch.is_not(None))
        if flt.pipeline is not None:
            branch_query = branch_query.where(runs.c.pipeline == flt.pipeline)
        branches = tuple(sorted(str(b) for (b,) in conn.execute(branch_query)))
    items = tuple(
        RunItem(
            id=r.id,
            pipeline=r.pipeline,
            status=r.status,
            branch=r.branch,
            tag=r.tag,
            event=r.event,
            commit=r.commit,
            started_at=r.started_at,
            wall_time=r.wall_time,
            jobs_total=r.jobs_total,
            jobs_cached=r.jobs_cached,
            jobs_run=r.jobs_total - r.jobs_cached,
            gates_passed=counted.get(r.id, (0, 0, 0))[0],
            gates_failed=counted.get(r.id, (0, 0, 0))[1],
            gates_warned=counted.get(r.id, (0, 0, 0))[2],
        )
        for r in rows
    )
    return RunList(
        runs=items,
        page=flt.page,
        per_page=flt.per_page,
        total=total,
        pages=max(1, -(-total // flt.per_page)),
        durations=tuple(item.wall_time for item in reversed(items)),
        pipelines=pipelines,
        branches=branches,
    )
