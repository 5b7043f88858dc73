"""The one critical path: the chain whose own durations add up to the most."""

from __future__ import annotations

import json

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
        {"name": "a", "duration": 2.0, "status": "success"},
        {"name": "b", "duration": 9.0, "status": "skipped"},
        {"name": "c", "duration": None, "status": "failed"},
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
