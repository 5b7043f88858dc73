"""Workspace file digests: SHA-256 always, computed as rarely as git and the stat cache allow."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.model import Digest
from conveyor.workspace import files as digest
from conveyor.workspace.files import WorkspaceFiles, digest_bytes
from conveyor.workspace.globs import glob_regex
from tests.cache.test_jobs import check_damaged_state_is_harmless
from tests.conftest import Project
from tests.workspace.conftest import GitLog


def sha(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file actually read to compute a digest."""
    calls: list[str] = []
    real = digest.digest_file

    def spy(path: str) -> Digest:
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(digest, "digest_file", spy)
    return calls


def files(project: Project) -> WorkspaceFiles:
    return WorkspaceFiles(str(project.root), str(project.root / ".conveyor" / "files.state"))


def test_clean_tracked_files_are_read_once_ever(project: Project, counted: list[str]) -> None:
    project.write("src/a.txt", "alpha\n")
    project.commit()
    first = files(project)
    assert first.info("src/a.txt").digest == sha(b"alpha\n")
    first.save()
    assert counted == ["a.txt"]
    # A new run (new instance): the blob id is known, the file is not read again, even
    # though it was written within the racy window. (No touch here: git compares
    # whole-second stat, so a touch that crosses a second makes the file stat-dirty and
    # rightly read again; the test would then depend on the clock.)
    again = files(project)
    assert again.info("src/a.txt").digest == sha(b"alpha\n")
    assert counted == ["a.txt"]


def test_a_modified_tracked_file_gets_its_new_digest(project: Project) -> None:
    project.write("a.txt", "one\n")
    project.commit()
    ws = files(project)
    assert ws.info("a.txt").digest == sha(b"one\n")
    ws.save()
    project.write("a.txt", "two\n")
    assert files(project).info("a.txt").digest == sha(b"two\n")


def test_stat_cache_skips_unchanged_files(project: Project, counted: list[str]) -> None:
    project.write("gen/out.bin", "x" * 100)
    state = str(project.root / ".conveyor" / "files.state")
    time.sleep(0.1)  # out of the (here 50 ms) racy window
    ws = WorkspaceFiles(str(project.root), state, racy_ns=50_000_000)
    assert ws.info("gen/out.bin").digest == sha(b"x" * 100)
    ws.save()
    again = WorkspaceFiles(str(project.root), state, racy_ns=50_000_000)
    assert again.info("gen/out.bin").digest == sha(b"x" * 100)
    assert counted == ["out.bin"]


def test_racy_files_are_hashed_again(project: Project, counted: list[str]) -> None:
    project.write("fresh.txt", "new")
    ws = files(project)
    ws.info("fresh.txt")
    ws.save()
    files(project).info("fresh.txt")
    # Written just now: its stat could not be trusted, so it was read both times.
    assert counted == ["fresh.txt", "fresh.txt"]


def test_same_size_same_mtime_rewrite_is_still_seen(project: Project) -> None:
    """The classic racy case: content changes, size and mtime are put back."""
    path = project.write("data.txt", "aaaa")
    old = time.time() - 3600
    os.utime(path, (old, old))
    state = str(project.root / ".conveyor" / "files.state")
    time.sleep(0.1)
    ws = WorkspaceFiles(str(project.root), state, racy_ns=50_000_000)
    assert ws.info("data.txt").digest == sha(b"aaaa")
    ws.save()
    path.write_text("bbbb")
    os.utime(path, (old, old))
    again = WorkspaceFiles(str(project.root), state, racy_ns=50_000_000)
    assert again.info("data.txt").digest == sha(b"bbbb")


def test_the_parsed_git_index_is_reused_only_while_the_index_is_unchanged(
    project: Project, monkeypatch: pytest.MonkeyPatch, git_log: GitLog
) -> None:
    monkeypatch.setattr(digest, "RACY_NS", 0)  # this index was written just now
    project.write("a.txt", "one\n")
    project.commit()
    cache = str(project.root / ".conveyor" / "git-index")
    (project.root / ".conveyor").mkdir(exist_ok=True)
    first = digest.GitScan(str(project.root), untracked=False, index_cache=cache).result()
    assert first is not None
    oid = first[0]["a.txt"][0]
    # Unchanged index: its parse is reused; `git ls-files` is not even run.
    git_log.clear()
    again = digest.GitScan(str(project.root), untracked=False, index_cache=cache).result()
    assert again is not None
    assert again[0]["a.txt"][0] == oid
    assert git_log.calls() == ["diff-files --name-only -z"]
    # A new index (git add) is a new file: read again, never the stale parse.
    project.write("a.txt", "two\n")
    project.git("add", "a.txt")
    git_log.clear()
    fresh = digest.GitScan(str(project.root), untracked=False, index_cache=cache).result()
    assert fresh is not None
    assert fresh[0]["a.txt"][0] != oid
    assert fresh[0]["a.txt"][0] == project.git("rev-parse", ":a.txt").strip()
    assert "ls-files -s -z" in git_log.calls()


def test_an_index_written_within_the_racy_window_is_not_kept(project: Project) -> None:
    project.write("a.txt", "one\n")
    project.commit()
    cache = project.root / ".conveyor" / "git-index"
    (project.root / ".conveyor").mkdir(exist_ok=True)
    assert (
        digest.GitScan(str(project.root), untracked=False, index_cache=str(cache)).result()
        is not None
    )
    assert not cache.exists(), "an index changed less than 2 s ago could change unseen"


def test_executable_bit(project: Project) -> None:
    path = project.write("run.sh", "#!/bin/sh\n")
    path.chmod(0o755)
    project.write("plain.txt", "x")
    project.commit()
    ws = files(project)
    assert ws.info("run.sh").executable is True
    assert ws.info("plain.txt").executable is False


def test_default_inputs_are_the_tracked_files_under_the_directory(project: Project) -> None:
    project.write("pkg/a/src/main.py", "1")
    project.write("pkg/a/README.md", "2")
    project.write("pkg/b/src/main.py", "3")
    project.write(".gitignore", "dist/\n")
    project.commit()
    project.write("pkg/a/untracked.txt", "4")
    project.write("pkg/a/dist/out.txt", "5")
    (project.root / "pkg/a/README.md").unlink()
    ws = files(project)
    assert ws.select("pkg/a", []) == ["pkg/a/src/main.py"]
    assert ws.select(".", []) == [".gitignore", "pkg/a/src/main.py", "pkg/b/src/main.py"]


def test_globs_excludes_and_paths_outside_the_directory(project: Project) -> None:
    project.write("pkg/a/src/main.py", "1")
    project.write("pkg/a/src/test_main.py", "2")
    project.write("pkg/a/src/deep/util.py", "3")
    project.write("pkg/a/notes.md", "4")
    project.write("pkg/lib/include/x.h", "5")
    project.write(".gitignore", "*.log\n")
    project.commit()
    project.write("pkg/a/src/new.py", "6")  # untracked, not ignored: an input
    project.write("pkg/a/src/debug.log", "7")  # ignored: never an input
    ws = files(project)
    assert ws.select("pkg/a", ["src/**/*.py", "!src/test_*.py"]) == [
        "pkg/a/src/deep/util.py",
        "pkg/a/src/main.py",
        "pkg/a/src/new.py",
    ]
    assert ws.select("pkg/a", ["src"]) == [
        "pkg/a/src/deep/util.py",
        "pkg/a/src/main.py",
        "pkg/a/src/new.py",
        "pkg/a/src/test_main.py",
    ]
    assert ws.select("pkg/a", ["../lib/include/*.h", "*.md"]) == [
        "pkg/a/notes.md",
        "pkg/lib/include/x.h",
    ]


def test_a_workspace_without_git(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / ".conveyor").mkdir()
    (tmp_path / ".conveyor" / "state").write_text("not an input")
    ws = WorkspaceFiles(str(tmp_path), str(tmp_path / ".conveyor" / "files.state"))
    assert ws.select(".", []) == ["src/a.txt"]
    assert ws.info("src/a.txt").digest == sha(b"a")


def test_a_corrupt_state_file_only_costs_rehashing(project: Project) -> None:
    project.write("a.txt", "a")
    project.commit()
    state = project.root / ".conveyor" / "files.state"
    state.parent.mkdir()
    state.write_bytes(b"\x80garbage")
    assert files(project).info("a.txt").digest == sha(b"a")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("src/*.py", "src/x/a.py", False),
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),
        ("**/*.md", "docs/README.md", True),
        ("dist", "dist/app.js", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("file.txt", "file_txt", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4096))
def test_digest_is_sha256_of_the_bytes(data: bytes) -> None:
    assert digest_bytes(data) == sha(data)


def test_digests_agree_across_processes(project: Project) -> None:
    project.write("a.txt", "stable\n")
    project.commit()
    here = files(project).info("a.txt").digest
    code = (
        "import sys; from conveyor.workspace.files import WorkspaceFiles; "
        "w = WorkspaceFiles(sys.argv[1], sys.argv[1] + '/.conveyor/other.state'); "
        "print(w.info('a.txt').digest)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(project.root)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == str(here)


@pytest.mark.parametrize("how", ["empty", "garbage"])
@pytest.mark.parametrize("name", ["files.state", "files.state.oids"])
def test_a_damaged_file_state_is_only_a_slower_run(project: Project, name: str, how: str) -> None:
    """The stat cache and the blob-id map are rebuilt, never trusted when unreadable."""
    check_damaged_state_is_harmless(project, name, how)


@pytest.mark.parametrize("size", [0, 1, 2500, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 3 << 16])
def test_digest_file_is_sha256_of_every_byte_at_any_size(tmp_path: Path, size: int) -> None:
    # Read in chunks of 64 KiB: the sizes at and around a chunk's end are the cases.
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert digest.digest_file(str(path)) == sha(data)
