"""What the backup tests share: a workspace with real runs and a signed artifact, the
CLI run in-process in any directory, and a repository's files as data."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import run_cli
from tests.artifacts.keytools import keygen
from tests.conftest import Project, Result

PIPELINE = """
    name: shop
    jobs:
      build:
        run:
          - mkdir -p dist && head -c 300000 /dev/urandom > dist/shop-1.0-py3-none-any.whl
        outputs: [dist/]
        artifacts:
          paths: [dist/]
          name: shop
          version: "1.0.{{ run_number }}"
      test:
        needs: [build]
        run:
          - echo testing
          - echo "<testsuite name='t' tests='1'><testcase name='ok'/></testsuite>" > junit.xml
        reports:
          junit: junit.xml
"""


@dataclass
class Workspace:
    project: Project
    public_key: Path

    @property
    def root(self) -> Path:
        return self.project.root


def conveyor_in(where: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """`conveyor ARGS` in-process, run in `where`."""
    capsys.readouterr()
    old = os.getcwd()
    os.chdir(where)
    try:
        code = run_cli(list(args))
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def make_workspace(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    keys: Path,
    runs: int = 2,
) -> Workspace:
    """A git workspace with `runs` real runs that stored and signed artifacts."""
    private, public = keygen(capsys, monkeypatch, keys / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(private))
    project.pipeline(PIPELINE)
    project.commit()
    for n in range(runs):
        project.write("src/app.py", f"VERSION = {n}\n")
        project.commit(f"change {n}")
        ran = project.run("run", "--plain")
        assert ran.code == 0, ran.out + ran.err
    return Workspace(project, public)


def backup_json(
    where: Path, capsys: pytest.CaptureFixture[str], repo: Path | str
) -> dict[str, Any]:
    made = conveyor_in(where, capsys, "backup", "create", "--repo", str(repo), "--json")
    assert made.code == 0, made.out + made.err
    data: dict[str, Any] = json.loads(made.out)
    return data


def snapshots(where: Path, capsys: pytest.CaptureFixture[str], repo: Path | str) -> list[str]:
    listed = conveyor_in(where, capsys, "backup", "list", "--repo", str(repo), "--json")
    assert listed.code == 0, listed.err
    return [s["id"] for s in json.loads(listed.out)]
