"""A real PostgreSQL (started for these tests) shared by two workspaces at once."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.history.conftest import PIPELINE, conveyor_argv, history


def test_postgresql_history_shared_by_two_workspaces(
    postgres: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_DB_URL", postgres)
    first = tmp_path / "runner1"
    second = tmp_path / "runner2"
    projects = []
    for root in (first, second):
        root.mkdir()
        p = Project(root, capsys)
        p.pipeline(PIPELINE)
        p.commit()
        projects.append(p)
    # Two CI runners at once, each recording into the one database.
    threads = [
        threading.Thread(
            target=subprocess.run,
            args=([*conveyor_argv(), "run", "--plain", "-q"],),
            kwargs={"cwd": p.root, "check": True, "stdout": subprocess.DEVNULL},
        )
        for p in projects
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = history(projects[0])
    assert len(runs) == 2
    assert {r["workspace"] for r in runs} == {str(first), str(second)}
    shown = json.loads(projects[1].run("show", runs[0]["id"], "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["build", "test"]
    assert all(j["status"] == "success" for j in shown["jobs"])
