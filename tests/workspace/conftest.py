"""Fixtures of the workspace tests: git's own invocations, recorded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


class GitLog:
    """The git commands run since the last `clear`, as their argument lines."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitLog:
    """A `git` first on PATH that writes its arguments to a log, then runs the real git:
    which commands Conveyor starts is seen from outside, as a user would see them."""
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "git-bin"
    bin_dir.mkdir()
    log = tmp_path / "git-calls.log"
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return GitLog(log)
