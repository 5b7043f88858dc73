"""Each job's timeline: queued, checking, restoring or running, storing. Work is never
booked as waiting: a cache hit's restore is its own time (so it is on the critical path),
and the checks before the build happen before any job is queued."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Project


def last_summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["name"]: j for j in summary["jobs"]}


# Enough files that restoring them is work a user can see (tens of milliseconds here),
# next to a queue of nothing: one job at a time and nothing else ready.
MANY = 1500
MAKE_MANY = f"mkdir -p out && for i in $(seq {MANY}); do echo $i > out/f$i.txt; done"


def phases_add_up(job: dict[str, Any]) -> None:
    """Ready to finished is exactly its queue time plus its phases."""
    own = sum(job[p] or 0.0 for p in ("check_time", "restore_time", "run_time", "store_time"))
    assert job["duration"] == pytest.approx(own, abs=1e-6)
    span = job["finished_at"] - job["queued_at"]
    assert span == pytest.approx(job["queue_time"] + own, abs=1e-6)


def test_a_hit_spends_its_time_restoring_not_queued(project: Project) -> None:
    project.pipeline(
        f"""
        jobs:
          build: {{run: "{MAKE_MANY}", outputs: ["out/**"]}}
          test: {{needs: [build], run: "ls out | wc -l > count.txt", outputs: [count.txt]}}
        """
    )
    project.commit()
    first = project.run("run", "--plain")
    assert first.code == 0, first.out
    ran = by_name(last_summary(project))["build"]
    # A job that ran: checked, run, stored; nothing restored from the cache.
    assert ran["check_time"] > 0
    assert ran["run_time"] > 0
    assert ran["store_time"] > 0
    phases_add_up(ran)

    (project.root / "out").rename(project.root / "gone")
    second = project.run("run", "--plain")
    assert second.code == 0, second.out
    summary = last_summary(project)
    hit = by_name(summary)["build"]
    assert hit["cached"] is True
    assert hit["run_time"] is None
    assert hit["store_time"] is None
    phases_add_up(hit)
    # Restoring 1,500 files is the job's work, not a wait for a slot.
    assert hit["restore_time"] > hit["queue_time"]
    assert len(list((project.root / "out").iterdir())) == MANY

    # The critical path is measured in the jobs' own time, restores included.
    history = project.run("history", "--json")
    assert history.code == 0, history.err
    run = json.loads(history.out)[0]
    path_jobs = [by_name(summary)[n] for n in run["critical_path"]]
    assert run["critical_path"] == ["build", "test"]
    assert run["critical_path_time"] == pytest.approx(sum(j["duration"] for j in path_jobs))
    assert run["critical_path_time"] >= hit["restore_time"]


def test_the_checks_before_the_build_are_not_the_first_jobs_queue_time(
    project: Project,
) -> None:
    # The secrets scan reads every file of the workspace: a check that takes a while.
    for i in range(40):
        project.write(f"src/m{i}.py", "x = 1\n" * 50)
    project.pipeline(
        """
        checks:
          secrets: true
        jobs:
          first: {run: "true"}
        """
    )
    project.commit()
    result = project.run("run", "--plain", "--no-cache")
    assert result.code == 0, result.out
    summary = last_summary(project)
    first = by_name(summary)["first"]
    assert summary["checks_time"] > 0
    # Queued once the checks were done, so their time is not its wait.
    assert first["queued_at"] >= summary["started_at"] + summary["checks_time"]
    assert first["queue_time"] < summary["checks_time"]
    phases_add_up(first)

    history = project.run("history", "--json")
    run = json.loads(history.out)[0]
    assert run["checks_time"] == pytest.approx(summary["checks_time"])


def test_a_hit_restoring_its_outputs_does_not_hold_up_other_ready_jobs(
    project: Project,
) -> None:
    project.pipeline(
        f"""
        jobs:
          build: {{run: "{MAKE_MANY}", outputs: ["out/**"]}}
          lint: {{run: "echo linted", cache: false}}
        """
    )
    project.commit()
    assert project.run("run", "--plain", "-j", "2").code == 0
    (project.root / "out").rename(project.root / "gone")
    again = project.run("run", "--plain", "-j", "2")
    assert again.code == 0, again.out
    jobs = by_name(last_summary(project))
    build, lint = jobs["build"], jobs["lint"]
    assert build["cached"] is True
    assert len(list((project.root / "out").iterdir())) == MANY
    # The restore took a slot of its own: lint ran meanwhile in the other, instead of
    # waiting for the scheduler to finish restoring 1,500 files.
    assert lint["started_at"] < build["finished_at"]
    assert lint["queue_time"] < build["restore_time"]
