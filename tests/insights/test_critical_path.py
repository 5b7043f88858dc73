"""The one critical path: the chain whose own durations add up to the most."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.history.record import JobRow
from conveyor.insights.critical_path import critical_path, longest_chain, recorded_durations
from tests.conftest import Project


def test_the_longest_chain_by_own_time_and_what_each_job_could_save() -> None:
    durations = {"a": 1.0, "b1": 3.0, "b2": 3.0, "c": 4.0, "d": 1.0}
    needs = {"b1": ["a"], "b2": ["b1"], "c": ["a"], "d": ["b2", "c"]}
    path = critical_path(durations, needs)
    assert path.chain == ("a", "b1", "b2", "d")
    assert path.length == 8.0
    saves = {s.job: s.could_save for s in path.steps}
    # Without b1 the chain through c (6 s) bounds the run: b1 saves 2 s, not its 3.
    assert saves == {"a": 1.0, "b1": 2.0, "b2": 2.0, "d": 1.0}


def test_a_run_served_from_the_cache_still_shows_its_deepest_chain() -> None:
    durations = {"lint": 0.0, "build": 0.0, "test": 0.0, "deploy": 0.0}
    needs = {"test": ["build"], "deploy": ["test"]}
    assert longest_chain(durations, needs) == (0.0, ("build", "test", "deploy"))


def test_a_chain_thousands_deep_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    durations = {f"j{i}": 1.0 for i in range(n)}
    needs = {f"j{i}": [f"j{i - 1}"] for i in range(1, n)}
    length, chain = longest_chain(durations, needs)
    assert length == n
    assert chain == tuple(f"j{i}" for i in range(n))


def test_skipped_and_untimed_jobs_are_on_no_path() -> None:
    rows = [
        JobRow(name="a", duration=2.0, status="success", reason="", cached=False, attempts=1),
        JobRow(name="b", duration=9.0, status="skipped", reason="", cached=False, attempts=0),
        JobRow(name="c", duration=None, status="failed", reason="", cached=False, attempts=1),
    ]
    assert recorded_durations(rows) == {"a": 2.0}


def test_the_run_reports_the_same_path_whatever_its_parallelism(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          a: {run: "true"}
          c: {needs: [a], run: "true"}
          b1: {needs: [a], run: sleep 0.3}
          b2: {needs: [b1], run: sleep 0.3}
          d: {needs: [c, b2], run: "true"}
        """
    )
    for jobs in ("1", "2"):
        result = project.run("run", "--jobs", jobs, "--plain", "--no-cache")
        assert result.code == 0, result.out
        summary = json.loads((project.runs()[-1] / "summary.json").read_text())
        assert summary["critical_path"] == ["a", "b1", "b2", "d"], jobs


def test_critical_path_and_what_each_job_could_save(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.history.record import RunRecord, RunRow
    from conveyor.history.store import HistoryStore

    project.pipeline(
        """
        name: cp
        jobs:
          a: {run: 'true'}
          b: {run: 'true', needs: [a]}
          c: {run: 'true', needs: [a]}
          d: {run: 'true', needs: [b, c]}
        """
    )
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    store = HistoryStore(url)
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    store.record(
        RunRecord(
            RunRow(
                id="cp-1",
                pipeline="cp",
                workspace="/w",
                trigger="local",
                host="h",
                conveyor_version="0.1.0",
                started_at=100.0,
                finished_at=108.0,
                status="success",
                wall_time=8.0,
                critical_path=(),
                jobs_total=4,
                jobs_cached=0,
            ),
            tuple(
                JobRow(name=n, status="success", reason="", cached=False, attempts=1, duration=d)
                for n, d in durations.items()
            ),
        )
    )
    store.close()
    result = json.loads(project.run("critical-path", "cp-1", "--json").out)
    assert result["length"] == pytest.approx(7.0)
    assert [(s["job"], s["could_save"]) for s in result["chain"]] == [
        ("a", pytest.approx(1.0)),
        ("b", pytest.approx(3.0)),  # without b, a -> c -> d (4 s) is the longest
        ("d", pytest.approx(1.0)),
    ]
    text = project.run("critical-path").out
    assert "the longest chain of jobs through their needs takes 7.0s" in text
    assert project.run("critical-path", "nope").code == 2
