"""Fixtures of the dependency tests: a cache directory of the test's own, a git workspace
holding the lockfiles written by uv and npm (tests/deps/data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.deps.osvdata import LOCKFILES


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(path))
    return path


@pytest.fixture
def workspace(project: Project, cache: Path) -> Project:
    """uv.lock at the root, package-lock.json in web/, committed."""
    for name in ("uv.lock", "pyproject.toml"):
        shutil.copy(LOCKFILES / "uv" / name, project.root / name)
    (project.root / "web").mkdir()
    for name in ("package-lock.json", "package.json"):
        shutil.copy(LOCKFILES / "npm" / name, project.root / "web" / name)
    project.commit()
    return project
