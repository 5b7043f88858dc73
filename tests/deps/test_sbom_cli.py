"""`conveyor deps sbom`: where the workspace is, where the SBOM goes, the formats, and
what a lockfile that cannot be read does to the exit code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conveyor.cli import run_cli
from tests.conftest import Result
from tests.deps.sbom_tools import cyclonedx_errors, lay_out, spdx_messages, workspace


def conveyor(cwd: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    capsys.readouterr()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = run_cli(["deps", "sbom", *args])
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def git_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    return root


def refs(data: dict[str, object]) -> set[str]:
    return {c["bom-ref"] for c in data.get("components", [])}  # type: ignore[attr-defined]


def test_cyclonedx_to_stdout_from_below_the_git_top(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = git_repo(tmp_path / "shop")
    workspace(root)
    (root / "npm-app" / "src").mkdir()
    done = conveyor(root / "npm-app" / "src", capsys)
    assert done.code == 0, done.err
    assert done.err == ""
    assert cyclonedx_errors(done.out) is None
    data = json.loads(done.out)
    # no conveyor.yml: the workspace is the checkout, all four projects
    assert data["metadata"]["component"]["name"] == "shop"
    assert "pkg:npm/argparse@2.0.1" in refs(data)
    assert "pkg:pypi/tzdata@2026.6" in refs(data)


def test_spdx_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = git_repo(tmp_path / "svc")
    lay_out(root, "uv-svc")
    done = conveyor(root, capsys, "--format", "spdx-json", "-o", "out/sbom.spdx.json")
    assert done.code == 2  # out/ does not exist: said, not a traceback
    assert "cannot write out/sbom.spdx.json" in done.err
    (root / "out").mkdir()
    done = conveyor(root, capsys, "--format", "spdx-json", "-o", "out/sbom.spdx.json")
    assert (done.code, done.out, done.err) == (0, "", "")
    written = root / "out" / "sbom.spdx.json"
    assert spdx_messages(written) == []
    data = json.loads(written.read_text())
    assert data["name"] == "sbom-uv-svc-2.0.1"
    assert {p["name"] for p in data["packages"]} == {
        "sbom-uv-svc",
        "python-dateutil",
        "six",
        "tzdata",
        "iniconfig",
    }
    assert [p.name for p in (root / "out").iterdir()] == ["sbom.spdx.json"]  # no temp left


def test_the_workspace_is_where_conveyor_yml_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_repo(tmp_path / "repo")
    workspace(repo)
    (repo / "npm-web" / "conveyor.yml").write_text("jobs: {}\n")
    (repo / "npm-web" / "packages" / "ui" / "src").mkdir()
    done = conveyor(repo / "npm-web" / "packages" / "ui" / "src", capsys, "-o", "-")
    assert done.code == 0, done.err
    data = json.loads(done.out)
    top = data["metadata"]["component"]
    assert top["purl"] == "pkg:npm/sbom-npm-web@0.3.0"
    assert refs(data) == {
        "pkg:npm/%40types/ms@0.7.34",
        "pkg:npm/argparse@2.0.1",
        "pkg:npm/ms@2.1.3",
    }
    assert [c["name"] for c in top["components"]] == ["ui"]


def test_outside_any_checkout_the_workspace_is_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lay_out(tmp_path / "plain", "poetry-tool")
    done = conveyor(tmp_path / "plain", capsys, "-o", "bom.cdx.json")
    assert done.code == 0, done.err
    data = json.loads((tmp_path / "plain" / "bom.cdx.json").read_text())
    assert data["metadata"]["component"]["purl"] == "pkg:pypi/sbom-poetry-tool@0.9.0"
    assert len(refs(data)) == 4


def test_an_unknown_format_is_a_usage_error_naming_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = conveyor(tmp_path, capsys, "--format", "spdx-tag-value")
    assert done.code == 2
    assert "cyclonedx-json" in done.err
    assert "spdx-json" in done.err
    assert done.out == ""


def test_a_lockfile_that_cannot_be_read_is_said_the_rest_written_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = git_repo(tmp_path / "mono")
    workspace(root, "npm-app", "uv-svc")
    (root / "broken").mkdir()
    (root / "broken" / "package-lock.json").write_text('{"packages": {\n  "x": [}\n')
    done = conveyor(root, capsys, "-o", "bom.json")
    assert done.code == 2
    first, summary = done.err.splitlines()
    assert first.startswith("broken/package-lock.json:2:")
    assert summary == ("conveyor: 1 lockfile could not be read; the SBOM leaves out what it pins")
    data = json.loads((root / "bom.json").read_text())
    assert cyclonedx_errors((root / "bom.json").read_text()) is None
    assert "pkg:npm/debug@2.6.9" in refs(data)
    assert "pkg:pypi/six@1.17.0" in refs(data)


def test_no_dev_and_source_date_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = git_repo(tmp_path / "mono")
    workspace(root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1735689600")
    full = conveyor(root, capsys, "-o", "one.json")
    again = conveyor(root, capsys, "-o", "two.json")
    assert full.code == again.code == 0
    assert (root / "one.json").read_bytes() == (root / "two.json").read_bytes()
    assert json.loads((root / "one.json").read_text())["metadata"]["timestamp"] == (
        "2025-01-01T00:00:00+00:00"
    )
    lean = conveyor(root, capsys, "--no-dev")
    assert lean.code == 0
    # the dev packages go when the parsers say which they are; nothing else does
    assert refs(json.loads(lean.out)) <= refs(json.loads((root / "one.json").read_text()))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "tomorrow")
    bad = conveyor(root, capsys)
    assert bad.code == 2
    assert "SOURCE_DATE_EPOCH='tomorrow'" in bad.err


def test_no_lockfiles_is_the_project_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    done = conveyor(tmp_path / "empty", capsys)
    assert done.code == 0
    assert "no lockfiles under" in done.err
    assert refs(json.loads(done.out)) == set()


def test_deps_lists_sbom(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["deps", "--help"]) == 0
    assert "sbom" in capsys.readouterr().out
    assert run_cli(["deps", "sbom", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "cyclonedx-json|spdx-json" in help_text
    assert "exit code is 2" in help_text
