"""The scheduler as a run shows it: the critical path it reports, and a cache that fails
under it never failing the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project


def summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


@pytest.mark.parametrize(
    ("pipeline", "chain"),
    [
        # A diamond whose one branch is two slow jobs long, the other one quick job:
        # `d` waited for the long branch, so that is the path, not the branch named first.
        (
            """
            jobs:
              a: {run: "true"}
              c: {needs: [a], run: "true"}
              b1: {needs: [a], run: sleep 0.3}
              b2: {needs: [b1], run: sleep 0.3}
              d: {needs: [c, b2], run: "true"}
            """,
            ["a", "b1", "b2", "d"],
        ),
        # The need with more jobs behind it finished first: the path goes through the
        # one that finished last, whatever the length of the chain behind each.
        (
            """
            jobs:
              y1: {run: "true"}
              y2: {needs: [y1], run: "true"}
              x: {run: sleep 0.6}
              z: {needs: [y2, x], run: "true"}
            """,
            ["x", "z"],
        ),
    ],
)
def test_critical_path_follows_the_need_that_finished_last(
    project: Project, pipeline: str, chain: list[str]
) -> None:
    project.pipeline(pipeline)
    result = project.run("run", "--jobs", "2", "--plain")
    assert result.code == 0, result.out
    assert summary(project)["critical_path"] == chain
    assert f"critical path: {' -> '.join(chain)}" in result.out


def test_an_input_unreadable_after_the_lookup_runs_the_job_uncached(project: Project) -> None:
    """The action comes from the memo without reading any input, the lookup misses, and
    then an input cannot be read to describe the key: the job must still run, with a
    warning, instead of failing the run."""
    project.pipeline(
        """
        jobs:
          build:
            run: echo built >> ../runs.log
        """
    )
    project.write("data/blob.txt", "some input\n")
    project.commit()
    assert project.run("run").code == 0
    runs = project.root.parent / "runs.log"
    assert runs.read_text().split() == ["built"]

    # git is told the file is unchanged (a sparse checkout does this), while a directory
    # now stands where it was: only reading it fails, with IsADirectoryError.
    project.git("update-index", "--skip-worktree", "data/blob.txt")
    (project.root / "data/blob.txt").unlink()
    (project.root / "data/blob.txt").mkdir()
    # The result is gone from the cache and the workspace forgot the file's digest, so
    # the miss has to read it; the action memo is kept, so the lookup does not.
    assert project.run("cache", "clear").code == 0
    (project.root / ".conveyor" / "cache" / "files.state.oids").unlink()

    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    warning = [line for line in result.out.splitlines() if "cache unavailable" in line]
    assert len(warning) == 1, result.out
    assert "data/blob.txt" in warning[0]
    assert runs.read_text().split() == ["built", "built"], "the job ran"
    job = summary(project)["jobs"][0]
    assert (job["status"], job["cached"]) == ("success", False)

    # Nothing unreadable was stored: with the file back, the job is looked up normally.
    shutil.rmtree(project.root / "data/blob.txt")
    Path(project.root / "data/blob.txt").write_text("some input\n")
    project.git("update-index", "--no-skip-worktree", "data/blob.txt")
    assert project.run("run").code == 0
    assert runs.read_text().split() == ["built", "built", "built"]
    assert "✔ build cached" in project.run("run").out
