"""Flaky jobs and tests: the same inputs (a job's action digest; a test's commit) seen
both passing and failing. Counted as flips: how often the outcome changed, in time order.
`conveyor flaky --quarantine` writes the flaky tests to the quarantine list
(`gates.keeper.write_quarantine`) for the test gates, which report them without letting
them block."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

from sqlalchemy import and_, select

from conveyor.history.queries import streamed
from conveyor.history.schema import jobs, runs, tests
from conveyor.history.store import HistoryStore

FAILING = ("failed", "timed_out", "error")


@dataclass(frozen=True, slots=True)
class _Seen:
    """Outcomes of the same inputs over the window."""

    passed: int
    failed: int
    flips: int
    last_seen: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FlakyJob:
    """A job that passed and failed with the same action digest."""

    job: str
    action_digest: str
    passed: int
    failed: int
    flips: int
    """How often the outcome changed, in time order."""
    last_seen: float

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class FlakyTest:
    """A test case that passed and failed on the same commit."""

    job: str
    test: str
    commit: str
    passed: int
    failed: int
    flips: int
    last_seen: float

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Flaky:
    """What `conveyor flaky` finds, most flips first, then most recent."""

    jobs: tuple[FlakyJob, ...]
    tests: tuple[FlakyTest, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "jobs": [j.to_json() for j in self.jobs],
            "tests": [t.to_json() for t in self.tests],
        }


def find(store: HistoryStore, pipeline: str, since: float) -> Flaky:
    window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    job_rows = (
        select(jobs.c.name, jobs.c.action_digest, jobs.c.status, runs.c.started_at)
        .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
        .where(and_(window, jobs.c.cached.is_(False), jobs.c.action_digest.is_not(None)))
    )
    test_rows = (
        select(tests.c.job, tests.c.name, runs.c.commit, tests.c.status, runs.c.started_at)
        .select_from(tests.join(runs, tests.c.run_id == runs.c.id))
        .where(and_(window, runs.c.commit.is_not(None)))
    )
    with store.engine.connect() as conn:
        by_action: dict[tuple[str, str], list[tuple[float, str]]] = {}
        for name, digest, status, started in streamed(conn, job_rows):
            by_action.setdefault((name, digest), []).append((started, status))
        by_commit: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        for job, name, commit, status, started in streamed(conn, test_rows):
            by_commit.setdefault((job, name, commit), []).append((started, status))
    flaky_jobs = [
        FlakyJob(
            job=name,
            action_digest=digest,
            passed=seen.passed,
            failed=seen.failed,
            flips=seen.flips,
            last_seen=seen.last_seen,
        )
        for (name, digest), outcomes in by_action.items()
        if (seen := _flaky(outcomes, ok="success")) is not None
    ]
    flaky_tests = [
        FlakyTest(
            job=job,
            test=name,
            commit=commit,
            passed=seen.passed,
            failed=seen.failed,
            flips=seen.flips,
            last_seen=seen.last_seen,
        )
        for (job, name, commit), outcomes in by_commit.items()
        if (seen := _flaky(outcomes, ok="passed")) is not None
    ]
    return Flaky(
        tuple(sorted(flaky_jobs, key=lambda e: (-e.flips, -e.last_seen))),
        tuple(sorted(flaky_tests, key=lambda e: (-e.flips, -e.last_seen))),
    )


def _flaky(seen: list[tuple[float, str]], *, ok: str) -> _Seen | None:
    outcomes = [status == ok for _, status in sorted(seen) if status == ok or status in FAILING]
    if True not in outcomes or False not in outcomes:
        return None
    flips = sum(1 for a, b in itertools.pairwise(outcomes) if a != b)
    return _Seen(
        passed=outcomes.count(True),
        failed=outcomes.count(False),
        flips=flips,
        last_seen=max(t for t, _ in seen),
    )
