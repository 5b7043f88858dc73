"""Flaky jobs and tests: the same inputs (a job's action digest; a test's commit) seen
both passing and failing. Counted as flips: how often the outcome changed, in time order."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import and_, select

from conveyor.history.schema import jobs, runs, tests
from conveyor.history.store import HistoryStore

FAILING = ("failed", "timed_out", "error")


def find(store: HistoryStore, pipeline: str, since: float) -> dict[str, list[dict[str, Any]]]:
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
        for name, digest, status, started in conn.execute(job_rows):
            by_action.setdefault((name, digest), []).append((started, status))
        by_commit: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
        for job, name, commit, status, started in conn.execute(test_rows):
            by_commit.setdefault((job, name, commit), []).append((started, status))
    flaky_jobs = []
    for (name, digest), seen in by_action.items():
        entry = _flaky(seen, ok="success")
        if entry:
            flaky_jobs.append({"job": name, "action_digest": digest, **entry})
    flaky_tests = []
    for (job, name, commit), seen in by_commit.items():
        entry = _flaky(seen, ok="passed")
        if entry:
            flaky_tests.append({"job": job, "test": name, "commit": commit, **entry})
    key = lambda e: (-e["flips"], -e["last_seen"])  # noqa: E731
    return {"jobs": sorted(flaky_jobs, key=key), "tests": sorted(flaky_tests, key=key)}


def _flaky(seen: list[tuple[float, str]], *, ok: str) -> dict[str, Any] | None:
    outcomes = [status == ok for _, status in sorted(seen) if status == ok or status in FAILING]
    if True not in outcomes or False not in outcomes:
        return None
    flips = sum(1 for a, b in itertools.pairwise(outcomes) if a != b)
    return {
        "passed": outcomes.count(True),
        "failed": outcomes.count(False),
        "flips": flips,
        "last_seen": max(t for t, _ in seen),
    }
