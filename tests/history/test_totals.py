"""The metrics' totals added up by the database (`history.totals`) are what adding up
each row in Python gives: the same bucket for a value exactly on a bound, just above
it, below the first and above the last, in SQLite and in PostgreSQL."""

from __future__ import annotations

import bisect
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore
from conveyor.history.totals import job_histograms, run_durations
from conveyor.insights.definitions import DURATION_BUCKETS, MEMORY_BUCKETS

BOUNDS = DURATION_BUCKETS


def _values(rng: random.Random) -> list[float]:
    """Values on every bound, a hair above and below some, outside the range, random."""
    edges = [
        *BOUNDS,
        *(b * (1 + 1e-12) for b in BOUNDS[::7]),
        *(b * (1 - 1e-12) for b in BOUNDS[::5]),
    ]
    return [*edges, 0.0, 1e-9, BOUNDS[-1] * 3, *(rng.lognormvariate(1, 2) for _ in range(300))]


def _fill(store: HistoryStore, rng: random.Random) -> tuple[list[dict[str, Any]], list[float]]:
    values = _values(rng)
    run_rows, job_rows = [], []
    for i, value in enumerate(values):
        run_id = f"r{i:05d}"
        run_rows.append(
            {
                "id": run_id,
                "pipeline": "p",
                "workspace": "/w",
                "trigger": "manual",
                "host": "h",
                "conveyor_version": "0",
                "started_at": float(i),
                "status": "success",
                "wall_time": value,
                "critical_path": "[]",
                "jobs_total": 2,
                "jobs_cached": 1,
            }
        )
        for name, cached in (("build", False), ("lint", True)):
            job_rows.append(
                {
                    "run_id": run_id,
                    "name": name,
                    "status": rng.choice(["success", "success", "failed", "skipped"]),
                    "reason": "",
                    "cached": cached,
                    "attempts": 1,
                    "duration": value,
                    "queue_time": None if i % 11 == 0 else values[-1 - i],
                    "peak_rss": int(value * 2**24),
                    "cpu_time": -0.5 if i % 13 == 0 else value / 2,
                    "saved": value if cached else None,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(runs), run_rows)
        conn.execute(insert(jobs), job_rows)
    return job_rows, values


def _expected(values: list[float], bounds: tuple[float, ...]) -> list[int]:
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    return counts


def _check(url: str) -> None:
    store = HistoryStore(url)
    try:
        rows, values = _fill(store, random.Random(3))
        assert run_durations(store, "p", BOUNDS)[("p",)].counts == _expected(values, BOUNDS)
        added = job_histograms(
            store,
            "p",
            duration_bounds=BOUNDS,
            memory_bounds=MEMORY_BUCKETS,
            queue_bounds=BOUNDS,
            timed_status="success",
        )
        timed = [r for r in rows if r["status"] == "success" and not r["cached"]]
        durations = added.durations[("p", "build")]
        assert durations.counts == _expected([float(r["duration"]) for r in timed], BOUNDS)
        assert durations.total == pytest.approx(sum(float(r["duration"]) for r in timed))
        assert ("p", "lint") not in added.durations  # served from the cache: not timed
        memory = [float(r["peak_rss"]) for r in timed]
        assert added.memory[("p", "build")].counts == _expected(memory, MEMORY_BUCKETS)
        waited = [
            float(r["queue_time"])
            for r in rows
            if r["status"] != "skipped" and r["queue_time"] is not None
        ]
        assert added.queue[("p",)].counts == _expected(waited, BOUNDS)
        by_key = {(t.name, t.status, t.cached): t for t in added.totals}
        for (name, status, cached), total in by_key.items():
            mine = [
                r for r in rows if (r["name"], r["status"], r["cached"]) == (name, status, cached)
            ]
            assert total.rows == len(mine)
            assert total.cpu_time == pytest.approx(
                sum(max(0.0, float(r["cpu_time"])) for r in mine)
            )
            assert total.saved == pytest.approx(sum(float(r["saved"] or 0.0) for r in mine))
            queued = [max(0.0, float(r["queue_time"])) for r in mine if r["queue_time"] is not None]
            assert total.phases[0] == (pytest.approx(sum(queued)) if queued else None)
            assert total.phases[1:] == (None,) * 4  # no row has the other phases' times
        assert sum(t.rows for t in added.totals) == len(rows)
    finally:
        store.close()


def test_sqlite_buckets_and_sums_as_python_would(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'h.db'}")


def test_postgresql_buckets_and_sums_as_python_would(postgres: str) -> None:
    _check(postgres)
