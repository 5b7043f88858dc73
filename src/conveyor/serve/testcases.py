"""The tests page: flaky tests (`insights.flaky`: flips on the same commit, the last
one, quarantined or not), the slowest tests and the failures by test."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from sqlalchemy import Float, and_, case, cast, func, select

from conveyor.history.schema import runs, tests
from conveyor.history.store import HistoryStore
from conveyor.insights.flaky import FAILING, FlakyTest, find

LIMIT = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class FlakyRow:
    job: str
    test: str
    commit: str
    passed: int
    failed: int
    flips: int
    flip_rate: float
    """Flips over the changes the outcome could have made (runs less one)."""
    last_seen: float
    quarantined: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowTest:
    job: str
    suite: str
    test: str
    runs: int
    mean: float
    max: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FailingTest:
    job: str
    test: str
    failures: int
    runs: int
    last_failed: float
    last_run: str
    """The run it last failed in."""
    message: str
    """Its message then."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestsPage:
    pipeline: str | None
    since: float
    flaky: tuple[FlakyRow, ...]
    quarantined: tuple[tuple[str, str], ...]
    """(job, test) on the quarantine list."""
    slowest: tuple[SlowTest, ...]
    failing: tuple[FailingTest, ...]


def _flaky_row(t: FlakyTest, quarantine: Set[tuple[str, str]]) -> FlakyRow:
    changes = max(1, t.passed + t.failed - 1)
    return FlakyRow(
        job=t.job,
        test=t.test,
        commit=t.commit,
        passed=t.passed,
        failed=t.failed,
        flips=t.flips,
        flip_rate=t.flips / changes,
        last_seen=t.last_seen,
        quarantined=(t.job, t.test) in quarantine,
    )


def tests_page(
    store: HistoryStore,
    pipeline: str | None,
    since: float,
    quarantine: Set[tuple[str, str]],
) -> TestsPage:
    """The tests of `pipeline`'s runs since `since`."""
    if pipeline is None:
        return TestsPage(
            pipeline=None, since=since, flaky=(), quarantined=(), slowest=(), failing=()
        )
    found = find(store, pipeline, since)
    window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    joined = tests.join(runs, tests.c.run_id == runs.c.id)
    slow_query = (
        select(
            tests.c.job,
            tests.c.suite,
            tests.c.name,
            func.count(),
            func.avg(cast(tests.c.duration, Float)),
            func.max(tests.c.duration),
        )
        .select_from(joined)
        .where(window, tests.c.duration.is_not(None), tests.c.status == "passed")
        .group_by(tests.c.job, tests.c.suite, tests.c.name)
        .order_by(func.avg(cast(tests.c.duration, Float)).desc())
        .limit(LIMIT)
    )
    broke = case((tests.c.status.in_(FAILING), 1), else_=0)
    failing_query = (
        select(
            tests.c.job,
            tests.c.name,
            func.sum(broke).label("failures"),
            func.count().label("runs"),
            func.max(case((tests.c.status.in_(FAILING), tests.c.id), else_=None)).label("last"),
        )
        .select_from(joined)
        .where(window)
        .group_by(tests.c.job, tests.c.name)
        .having(func.sum(broke) > 0)
        .order_by(func.sum(broke).desc(), tests.c.job, tests.c.name)
        .limit(LIMIT)
    )
    with store.engine.connect() as conn:
        slowest = tuple(
            SlowTest(job=j, suite=s, test=n, runs=int(c), mean=float(m), max=float(x))
            for j, s, n, c, m, x in conn.execute(slow_query)
        )
        rows = list(conn.execute(failing_query))
        last = {
            row.id: row
            for row in conn.execute(
                select(tests.c.id, tests.c.run_id, tests.c.message, runs.c.started_at)
                .select_from(joined)
                .where(tests.c.id.in_([r.last for r in rows]))
            )
        }
    failing = tuple(
        FailingTest(
            job=r.job,
            test=r.name,
            failures=int(r.failures),
            runs=int(r.runs),
            last_failed=last[r.last].started_at,
            last_run=last[r.last].run_id,
            message=last[r.last].message,
        )
        for r in rows
        if r.last in last
    )
    return TestsPage(
        pipeline=pipeline,
        since=since,
        flaky=tuple(_flaky_row(t, quarantine) for t in found.tests),
        quarantined=tuple(sorted(quarantine)),
        slowest=slowest,
        failing=failing,
    )
