"""The one module that runs git: each command's answer, in real repositories."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conveyor.workspace import git
from tests.conftest import Project
from tests.workspace.conftest import GitLog


def test_the_index_lists_regular_files_with_blob_ids_and_executable_bits(
    project: Project,
) -> None:
    project.write("src/a.py", "a\n")
    (project.write("run.sh", "#!/bin/sh\n")).chmod(0o755)
    os.symlink("src/a.py", project.root / "link")
    project.commit()
    out = git.start_index(str(project.root)).output()
    assert out is not None
    assert git.parse_index(out) == {
        "src/a.py": (project.git("rev-parse", ":src/a.py"), False),
        "run.sh": (project.git("rev-parse", ":run.sh"), True),
    }  # the link is not a file whose bytes can be read: left out


def test_modified_untracked_and_content_changes(project: Project) -> None:
    project.write(".gitignore", "*.log\n")
    project.write("a/same.txt", "same\n")
    project.write("a/edited.txt", "one\n")
    project.write("b/other.txt", "other\n")
    project.commit()
    root = str(project.root)
    project.write("a/edited.txt", "two\n")
    project.write("a/new.txt", "new\n")
    project.write("b/new.txt", "new\n")
    project.write("a/debug.log", "ignored\n")
    assert git.start_modified(root).paths() == ["a/edited.txt"]
    # Written again with the same bytes: the index's stat differs, the content does not.
    project.write("a/same.txt", "same\n")
    assert sorted(git.start_untracked(root).paths() or []) == ["a/new.txt", "b/new.txt"]
    assert git.start_untracked(root, ["a/"]).paths() == ["a/new.txt"]
    assert git.start_content_changes(root).paths() == ["a/edited.txt"]
    assert git.start_content_changes(root, ["b/"]).paths() == []
    assert git.untracked(root) == git.start_untracked(root).paths()
    assert git.not_ignored(root, ["a/new.txt", "a/debug.log", "b/new.txt"]) == [
        "a/new.txt",
        "b/new.txt",
    ]
    assert git.not_ignored(root, []) == []


def test_a_directory_that_is_no_checkout_fails_every_command(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "f.txt").write_text("x\n")
    root = str(plain)
    assert git.start_index(root).output() is None
    assert git.start_untracked(root).paths() is None
    assert git.start_head(root).words() == []
    # check-ignore cannot tell: nothing is taken for ignored
    assert git.not_ignored(root, ["f.txt"]) == ["f.txt"]
    with pytest.raises(git.GitError, match="not a git repository"):
        git.toplevel(root)


def test_branch_commit_and_tags_of_head(project: Project) -> None:
    root = str(project.root)
    assert git.start_branch(root).words() == ["main"]  # unborn: the name, no commit yet
    assert git.start_head(root).words() == []
    project.write("a.txt", "a\n")
    project.commit()
    project.git("tag", "v1")
    project.git("tag", "v2")
    head = project.git("rev-parse", "HEAD")
    assert git.start_head(root).words() == [head]
    assert git.start_tags_at_head(root).words() == ["v1", "v2"]
    project.git("checkout", "-q", "--detach")
    assert git.start_branch(root).words() == []


def test_changes_since_a_ref(project: Project) -> None:
    project.write("pkg/a.py", "1\n2\n3\n")
    project.write("pkg/b.py", "b\n")
    project.commit()
    root = str(project.root)
    base = project.git("rev-parse", "HEAD")
    project.git("tag", "base")
    project.write("pkg/a.py", "1\ntwo\n3\n4\n")
    project.commit()
    project.write("pkg/new.py", "new\n")
    assert git.is_commit(root, "base")
    assert git.is_commit(root, base[:10])
    assert not git.is_commit(root, "no-such-ref")
    assert git.changed_since(root, "base") == ["pkg/a.py"]
    assert git.toplevel(str(project.root / "pkg")) == str(project.root)
    assert git.merge_base(root, "base") == base
    patch = git.diff_patch(str(project.root / "pkg"), base)
    assert "+++ b/pkg/a.py" in patch
    assert "@@ -2 +2 @@\n-2\n+two\n@@ -3,0 +4 @@\n+4\n" in patch  # no context lines
    with pytest.raises(git.GitError, match="Not a valid object name no-such-ref"):
        git.merge_base(root, "no-such-ref")
    with pytest.raises(git.GitError, match="revision"):  # its last line of stderr
        git.changed_since(root, "no-such-ref")


def test_an_unread_command_is_stopped_and_reaped(project: Project) -> None:
    project.write("a.txt", "a\n")
    project.commit()
    running = git.start_index(str(project.root))
    running.close()
    running.close()  # twice: nothing left to do


def test_without_git_every_command_raises_oserror(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    root = str(project.root)
    with pytest.raises(FileNotFoundError):
        git.start_index(root)
    with pytest.raises(FileNotFoundError):
        git.is_commit(root, "HEAD")
    assert git.not_ignored(root, ["a.txt"]) == ["a.txt"]


def test_the_workspace_scan_starts_its_commands_at_once(project: Project, git_log: GitLog) -> None:
    project.write("a.txt", "a\n")
    project.commit()
    git_log.clear()
    root = str(project.root)
    running = [git.start_index(root), git.start_modified(root), git.start_untracked(root)]
    # All three run before any answer is read (the wrapper logs as it starts).
    end = time.monotonic() + 10
    while len(git_log.calls()) < 3 and time.monotonic() < end:
        time.sleep(0.01)
    assert sorted(git_log.calls()) == [
        "diff-files --name-only -z",
        "ls-files -o --exclude-standard -z",
        "ls-files -s -z",
    ]
    assert [r.output() is not None for r in running] == [True, True, True]
