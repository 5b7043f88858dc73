"""What a run wrote in the workspace: the walk and git agree (conveyor.run.undeclared)."""

from __future__ import annotations

import time

import pytest

from conveyor.run import undeclared
from conveyor.workspace.files import WorkspaceFiles
from tests.conftest import Project


@pytest.mark.parametrize("how", ["walk", "git"])
def test_written_since_finds_new_changed_and_deleted_files_only(
    project: Project, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "git":
        monkeypatch.setattr(undeclared, "_WALK_MAX", 0)
    for name in ("src/keep.txt", "src/same.txt", "src/edit.txt", "src/gone.txt", "lib/x.txt"):
        project.write(name, f"{name}\n")
    project.write(".gitignore", "ignored/\n*.log\n")
    project.write("scratch/old.txt", "untracked before the run\n")
    project.commit()
    files = WorkspaceFiles(str(project.root), str(project.root / ".conveyor/files.state"))
    tracked = files.tracked()
    assert tracked is not None
    time.sleep(0.05)
    since = time.time_ns()
    time.sleep(0.05)
    # What "jobs" do during the run.
    project.write("src/same.txt", "src/same.txt\n")  # written again, same bytes
    (project.root / "lib/x.txt").chmod(0o755)  # same bytes, now executable: a change
    project.write("src/edit.txt", "changed\n")
    (project.root / "src/gone.txt").unlink()
    project.write("src/new.txt", "new\n")
    project.write("src/build.log", "ignored by pattern\n")
    project.write("ignored/deep/file.txt", "ignored directory\n")
    project.write("scratch/new.txt", "new in an untracked directory\n")
    project.write("dist/out.txt", "a declared output\n")

    found = undeclared.written_since(
        str(project.root),
        since,
        tracked,
        frozenset(),
        ["."],
        lambda rel: rel == "dist" or rel.startswith("dist/"),
    )
    assert sorted(found) == [
        "lib/x.txt",
        "scratch/new.txt",
        "src/edit.txt",
        "src/gone.txt",
        "src/new.txt",
    ]
    assert found["src/gone.txt"] is None
    new = found["src/new.txt"]
    assert new is not None
    assert new >= since / 1e9

    only_src = undeclared.written_since(str(project.root), since, tracked, frozenset(), ["src"])
    assert sorted(only_src) == ["src/edit.txt", "src/gone.txt", "src/new.txt"]
