"""The history commands as a user reads them: `stats --job` without runs, `history
--all-pipelines` naming each run's pipeline, `show` telling allowed failures apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project


def test_stats_for_a_job_without_runs_says_so(project: Project) -> None:
    project.pipeline("jobs:\n  build:\n    run: 'true'\n  test:\n    run: 'true'\n")
    assert project.run("run", "-q").code == 0
    result = project.run("stats", "--job", "biuld")
    assert result.code == 2
    assert "no runs of job 'biuld'" in result.err
    assert "did you mean 'build'?" in result.err
    assert "Traceback" not in result.err
    result = project.run("stats", "--job", "zzz")
    assert result.code == 2
    assert "the jobs it has runs of: build, test" in result.err
    # Known, but not in the window: said, not an error.
    result = project.run("stats", "--job", "build", "--since", "1ms")
    assert result.code == 0, result.err
    assert "no runs" in result.out
    result = project.run("stats", "--job", "build")
    assert result.code == 0
    assert "build" in result.out


def test_history_of_every_pipeline_names_each_runs_pipeline(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workspaces sharing one database, as a team's shared history does.
    monkeypatch.setenv("CONVEYOR_DB_URL", f"sqlite:///{tmp_path / 'shared.db'}")
    project.pipeline("name: web\njobs:\n  build: {run: 'true'}\n")
    assert project.run("run", "-q").code == 0
    project.pipeline("name: api\njobs:\n  build: {run: 'true'}\n")
    assert project.run("run", "-q").code == 0

    both = project.run("history", "--all-pipelines")
    assert both.code == 0, both.err
    header, *rows = both.out.splitlines()
    assert header.split()[:2] == ["PIPELINE", "RUN"]
    assert [row.split()[0] for row in rows] == ["api", "web"]
    # One pipeline's history needs no column saying which.
    one = project.run("history")
    assert one.out.splitlines()[0].split()[0] == "RUN"
    assert len(one.out.splitlines()) == 2


def test_show_says_a_failure_was_allowed_as_the_run_did(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          lint: {run: "exit 3", allow_failure: true}
          test: {run: "exit 4"}
          build: {run: "true"}
        """
    )
    ran = project.run("run", "--plain", "--keep-going")
    assert ran.code == 1
    assert "failed (allowed)" in ran.out
    shown = project.run("show")
    assert shown.code == 0, shown.err
    lines = {
        line.split()[1]: line for line in shown.out.splitlines() if line[:1] and line[:1] in "✔✘"
    }
    assert "failed (allowed)" in lines["lint"]
    assert "(allowed)" not in lines["test"]
    assert "failed" in lines["test"]
    assert "success" in lines["build"]
    recorded = json.loads(project.run("show", "--json").out)
    allowed = {j["name"]: j["allowed_failure"] for j in recorded["jobs"]}
    assert allowed == {"lint": True, "test": False, "build": False}
