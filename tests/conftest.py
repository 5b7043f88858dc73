"""Shared fixtures: a git project in tmp_path, the CLI run in-process, hermetic guards;
how many pytest-xdist workers a run starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.cli import run_cli

# -- parallel runs (pytest-xdist: `-n auto --dist worksteal` in pyproject's addopts) -----


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per core (xdist's own answer, or PYTEST_XDIST_AUTO_NUM_WORKERS),
    except when every argument names one test (`path::test`): starting workers, each of
    which imports and collects on its own, costs more than such a run saves (measured:
    one quick test took 1.3 s of CPU without workers, 3.9 s with two)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    if config.args and all("::" in arg for arg in config.args):
        return 0
    return None


@dataclass
class Result:
    code: int
    out: str
    err: str


class Project:
    """A git repository in tmp_path holding a conveyor.yml; runs `conveyor` in it."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "test@example.com")
        self.git("config", "user.name", "Test")

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=True
        )
        return proc.stdout.strip()

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def pipeline(self, text: str) -> Path:
        return self.write("conveyor.yml", text)

    def commit(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def run(self, *args: str) -> Result:
        """The CLI in-process, in the project directory."""
        self.capsys.readouterr()
        old = os.getcwd()
        os.chdir(self.root)
        try:
            code = run_cli(list(args))
        finally:
            os.chdir(old)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """The real `conveyor` command as a child process (for signals)."""
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor", *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def runs(self) -> list[Path]:
        base = self.root / ".conveyor" / "runs"
        return sorted(base.iterdir()) if base.exists() else []


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root, capsys)


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the real home directory or leaves os.environ changed, and the
    host CI's variables do not leak into the run context. (Not built on monkeypatch, so
    that a test's own monkeypatch is undone before the check.)"""
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for var in (
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "CI",
        "GITHUB_EVENT_NAME",
        "CI_PIPELINE_SOURCE",
        "CONVEYOR_DB_URL",
    ):
        os.environ.pop(var, None)
    os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", XDG_CACHE_HOME=str(home / ".cache"))
    before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    os.environ.clear()
    os.environ.update(saved)
    assert before == after, "the test changed os.environ"


@pytest.fixture(scope="session")
def execution_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A BuildGrid that executes (tests/reapi.py `execution_buildgrid`: its scheduler on a
    PostgreSQL of its own, about 9 s to start), shared by the session: the worker's tests
    and the remote execution client's. Skips when BuildGrid or PostgreSQL are missing
    (fails with CONVEYOR_TESTS_NEED_BUILDGRID=1). Start workers with tests.reapi.workers."""
    from tests.reapi import execution_buildgrid

    with execution_buildgrid(tmp_path_factory.mktemp("bgd-exec")) as server:
        yield server
