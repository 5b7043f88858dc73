"""What `conveyor init` writes runs green on small real projects, with the toolchains
this machine has: a Python package (pytest, ruff; pip installing offline from wheels of
the tools the tests themselves run with), a Node package (node --test) and a Rust crate
(clippy, cargo test)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.scaffold.wheels import wheelhouse


def _write(project: Project, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = project.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    project.commit()


def _summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def _jobs(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["name"]: j for j in summary["jobs"]}


def _green(project: Project) -> dict[str, Any]:
    assert project.run("init").code == 0
    assert project.run("validate").code == 0
    result = project.run("run", "--plain", "-j", "2")
    assert result.code == 0, result.out + result.err
    return _summary(project)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = ["pytest", "iniconfig", "packaging", "pluggy", "pygments", "ruff"]
    return wheelhouse(tmp_path_factory.mktemp("wheels"), names)


def test_python_package_with_pytest_and_ruff(
    project: Project, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip reads only these (not this machine's configuration) and no index.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    _write(
        project,
        {
            "pyproject.toml": (
                '[tool.ruff]\nline-length = 100\n\n[tool.ruff.lint]\nselect = ["E", "F", "I"]\n\n'
                '[tool.pytest.ini_options]\npythonpath = ["src"]\ntestpaths = ["tests"]\n'
            ),
            "requirements-dev.txt": "pytest>=8\nruff>=0.6\n",
            "src/calc/__init__.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
            "tests/test_calc.py": (
                "from calc import add\n\n\ndef test_add() -> None:\n    assert add(2, 3) == 5\n"
            ),
            ".gitignore": ".venv/\nreports/\n",
        },
    )
    summary = _green(project)
    jobs = _jobs(summary)
    assert {n: j["status"] for n, j in jobs.items()} == {
        "setup": "success",
        "lint": "success",
        "test": "success",
        "audit": "failed",  # no advisory database here: allowed to fail, and says so
    }
    assert jobs["audit"]["allowed_failure"] is True
    [gate] = jobs["test"]["gates"]
    assert (gate["gate"], gate["measured"], gate["passed"]) == ("tests", "0 failed of 1", True)
    assert (project.root / ".venv" / "bin" / "ruff").exists()
    assert "Note: the jobs write" not in (project.root / "conveyor.yml").read_text()


def test_node_package_with_node_test(project: Project) -> None:
    _write(
        project,
        {
            "package.json": json.dumps(
                {
                    "name": "slugify-lite",
                    "version": "1.0.0",
                    "main": "index.js",
                    "scripts": {"test": "node --test"},
                    "engines": {"node": ">=18"},
                },
                indent=2,
            ),
            "package-lock.json": json.dumps(
                {
                    "name": "slugify-lite",
                    "version": "1.0.0",
                    "lockfileVersion": 3,
                    "requires": True,
                    "packages": {"": {"name": "slugify-lite", "version": "1.0.0"}},
                },
                indent=2,
            ),
            "index.js": (
                "module.exports = (s) =>\n  s.toLowerCase().trim().replace(/[^a-z0-9]+/g, '-');\n"
            ),
            "test/slugify.test.js": (
                "const test = require('node:test');\nconst assert = require('node:assert');\n"
                "const slugify = require('..');\n\ntest('slugify', () => {\n"
                "  assert.strictEqual(slugify(' Hello World '), 'hello-world');\n});\n"
            ),
            ".gitignore": "node_modules/\nreports/\n*.tgz\n",
        },
    )
    jobs = _jobs(_green(project))
    assert jobs["test"]["gates"][0]["measured"] == "0 failed of 1"
    assert jobs["package"]["outputs"][0][0] == "slugify-lite-1.0.0.tgz"
    # Nothing changed: the second run is served from the cache.
    assert project.run("run", "--plain").code == 0
    again = _jobs(_summary(project))
    assert [n for n, j in again.items() if j["cached"]] == ["setup", "test", "package"]


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")
def test_rust_crate_with_clippy_and_tests(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rustup's toolchains are in the real home (the tests run with another HOME).
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("RUSTUP_HOME", os.environ.get("RUSTUP_HOME", str(home / ".rustup")))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "cargo"))
    _write(
        project,
        {
            "Cargo.toml": (
                '[package]\nname = "wordcount"\nversion = "0.1.0"\nedition = "2021"\n'
                'rust-version = "1.70"\n\n[dependencies]\n'
            ),
            "src/lib.rs": (
                "/// Words in a text.\npub fn count(text: &str) -> usize {\n"
                "    text.split_whitespace().count()\n}\n\n#[cfg(test)]\nmod tests {\n"
                '    #[test]\n    fn counts() {\n        assert_eq!(super::count("a b  c"), 3);\n'
                "    }\n}\n"
            ),
            ".gitignore": "/target\n",
        },
    )
    jobs = _jobs(_green(project))
    assert {n: j["status"] for n, j in jobs.items()} == dict.fromkeys(
        ["setup", "lint", "test", "build"], "success"
    )
    assert jobs["setup"]["outputs"][0][0] == "Cargo.lock"
