"""Old run directories go once the history has them."""

from __future__ import annotations

import json

from tests.conftest import Project
from tests.history.conftest import history


def test_old_run_directories_go_once_recorded(project: Project) -> None:
    project.pipeline(
        """
        name: kept
        history: {keep_runs: 3}
        jobs:
          build:
            run: echo building
            cache: false
        """
    )
    project.commit()
    counts = []
    for _ in range(6):
        assert project.run("run").code == 0
        counts.append(len(project.runs()))
    # Pruned to 3 when a fifth appeared (not at every run: a tenth over, at least one).
    assert counts == [1, 2, 3, 4, 3, 4]
    recorded = history(project)
    assert len(recorded) == 6, "the two removed were recorded first"
    oldest = recorded[-1]["id"]
    assert not (project.root / ".conveyor" / "runs" / oldest).exists()
    shown = json.loads(project.run("show", oldest, "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["build"]
