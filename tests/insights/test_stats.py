"""`conveyor stats`: per-job and pipeline figures over recorded runs, and the advice."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.history.conftest import PIPELINE


def _generate(url: str, pipeline: str, n: int) -> None:
    """n recorded runs of three jobs: `build` taking 1..n s (slower over time), `test`
    2 s and served from the cache every other run, `lint` failing in the last run."""
    from conveyor.history.record import JobRow, RunRecord, RunRow
    from conveyor.history.store import HistoryStore

    store = HistoryStore(url)
    now = time.time()
    for i in range(n):
        start = now - (n - i) * 60
        last = i == n - 1
        jobs = [
            ("build", "success", False, float(i + 1)),
            ("test", "success", i % 2 == 1, 2.0),
            ("lint", "failed" if last else "success", False, 0.5),
        ]
        store.record(
            RunRecord(
                RunRow(
                    id=f"{pipeline}-{i:05d}",
                    pipeline=pipeline,
                    workspace="/w",
                    trigger="local",
                    host="h",
                    conveyor_version="0.1.0",
                    started_at=start,
                    finished_at=start + 30,
                    status="failed" if last else "success",
                    wall_time=30.0,
                    jobs_total=3,
                    jobs_cached=1 if i % 2 == 1 else 0,
                ),
                tuple(
                    JobRow(
                        name=name,
                        status=status,
                        cached=cached,
                        duration=duration,
                        reason="",
                        attempts=1,
                        queued_at=start,
                        started_at=start + 1,
                        finished_at=start + 1 + duration,
                        queue_time=1.0,
                        saved=2.0 if cached else None,
                    )
                    for name, status, cached, duration in jobs
                ),
            )
        )
    store.close()


def test_stats_per_job_and_for_the_pipeline(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'gen.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(PIPELINE)  # name: hist
    _generate(url, "hist", 20)
    _generate(url, "other", 5)  # another pipeline in the same database: not counted
    result = project.run("stats", "--json")
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    pipe = figures["pipeline"]
    assert pipe["runs"] == 20
    assert pipe["success_rate"] == pytest.approx(0.95)
    assert pipe["saved"] == pytest.approx(20.0)  # 10 hits of 2 s
    jobs = {j["job"]: j for j in figures["jobs"]}
    assert figures["jobs"][0]["job"] == "build", "slowest first"
    build = jobs["build"]
    # Nearest rank (insights.definitions): the 10th and the 19th of 1..20.
    assert build["p50"] == pytest.approx(10)
    assert build["p95"] == pytest.approx(19)
    assert build["trend"] == pytest.approx(15 / 5 - 1)  # later half vs earlier half
    assert jobs["test"]["cache_hit_rate"] == pytest.approx(0.5)
    assert jobs["test"]["executed"] == 10
    assert jobs["lint"]["success_rate"] == pytest.approx(0.95)
    assert jobs["lint"]["queue_time"] == pytest.approx(1.0)
    assert [(a["kind"], a["job"]) for a in figures["advice"]] == [
        ("reliability", None),
        ("cache", "build"),  # never cached, 10 s median: worth a look
        ("trend", "build"),
        ("queue", None),
    ]
    advice = [a["message"] for a in figures["advice"]]
    assert advice[0].startswith(
        "95.0% of 20 runs succeeded, under the 99% target; failures by job: lint (1);"
    )
    assert advice[1].startswith("build executed in 20 of 20 runs (cache hit rate 0%), 10.0s each")
    assert advice[2].startswith("build got 200% slower")
    assert "build (1.0s), lint (1.0s), test (1.0s) on average" in advice[3]
    text = project.run("stats").out
    assert "success rate 95.0% (below the 99% target)" in text
    assert "what to look at:\n  - 95.0% of 20 runs succeeded" in text
    only = json.loads(project.run("stats", "--job", "test", "--json").out)
    assert [j["job"] for j in only["jobs"]] == ["test"]
    recent = json.loads(project.run("stats", "--since", "5m", "--json").out)
    assert recent["pipeline"]["runs"] == 4  # started 60, 120, 180, 240 s ago


def test_stats_capacity_from_real_runs(project: Project) -> None:
    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    project.write("burn.py", burn)
    project.pipeline(
        f"""
        name: cap
        jobs:
          burn:
            run: {sys.executable} burn.py
            cache: false
        """
    )
    project.commit()
    assert project.run("run", "--jobs", "1").code == 0
    run = json.loads(project.run("show", "--json").out)
    assert run["cpus"] == os.cpu_count()
    assert run["memory_bytes"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert run["parallelism"] == 1
    assert run["platform"].startswith("Linux-")
    figures = json.loads(project.run("stats", "--json").out)
    [burner] = figures["jobs"]
    assert burner["cpu_time"] >= 0.6
    assert burner["peak_memory"] > 1 << 20, "a Python process: more than a MiB"
    cpus = os.cpu_count() or 1
    used = figures["pipeline"]["cpu_utilisation"]
    wall = figures["pipeline"]["mean_wall_time"]
    assert used == pytest.approx(burner["cpu_time"] / (wall * cpus))
    assert 0.6 / (wall * cpus) <= used <= 1.0 / cpus + 0.05, "one busy job: one CPU's worth"
    text = project.run("stats").out
    assert f"of the CPU time of {cpus} CPUs while runs were going" in text


def test_stats_advice_on_long_runs_and_jobs_that_vary() -> None:
    from dataclasses import replace

    from conveyor.insights.stats import JobFigures, PipelineFigures, advise

    def job(name: str, p50: float, p95: float, hits: float) -> JobFigures:
        return JobFigures(
            job=name,
            runs=10,
            success_rate=1.0,
            executed=round(10 * (1 - hits)),
            failed=0,
            cache_hit_rate=hits,
            p50=p50,
            p95=p95,
            trend=0.0,
            queue_time=0.0,
            saved=0.0,
            cpu_time=None,
            peak_memory=None,
        )

    pipeline = PipelineFigures(
        name="p",
        since=0.0,
        first_run=0.0,
        runs=10,
        success_rate=1.0,
        target=0.99,
        mean_wall_time=720.0,
        mean_cpus=None,
        mean_parallelism=None,
        saved=0.0,
    )
    jobs = [
        job("e2e", 300.0, 650.0, 0.0),  # slow, uncached, and all over the place
        job("unit", 20.0, 25.0, 0.0),  # under 5% of the wall time: left alone
        job("build", 200.0, 210.0, 0.9),  # mostly cached
    ]
    assert [(a.kind, a.job) for a in advise(pipeline, jobs)] == [
        ("duration", None),
        ("cache", "e2e"),
        ("variance", "e2e"),
    ]
    assert advise(pipeline, jobs)[0].message.startswith("runs take 12m00s on average, over the")
    pipeline = replace(pipeline, mean_wall_time=300.0)  # now unit's 20 s is over 5% of a run
    assert [(a.kind, a.job) for a in advise(pipeline, jobs)] == [
        ("cache", "e2e"),
        ("cache", "unit"),
        ("variance", "e2e"),
    ]
    busy = replace(pipeline, cpu_utilisation=0.9)
    assert [a.kind for a in advise(busy, [])] == ["capacity"]
    assert advise(busy, [])[0].message.startswith("jobs kept the CPUs 90% busy")
    assert advise(replace(pipeline, runs=0), []) == []
