"""`conveyor stats --job NAME` for a job without runs."""

from __future__ import annotations

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
