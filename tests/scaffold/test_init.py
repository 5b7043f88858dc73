"""`conveyor init` on real projects' manifests of nine ecosystems: what it finds, that the
pipeline it writes passes `conveyor validate`, that it never overwrites without --force,
and that its CI files load again through `conveyor import`."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

import conveyor
from tests.conftest import Project
from tests.scaffold import projects


def _write(project: Project, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = project.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


def _init(project: Project, files: dict[str, str], *args: str) -> dict[str, Any]:
    _write(project, files)
    result = project.run("init", *args)
    assert result.code == 0, result.err
    valid = project.run("validate")
    assert valid.code == 0, valid.err
    assert "valid:" in valid.out
    return _load(project.root / "conveyor.yml")


def _comments(path: Path) -> str:
    """The file's comments as one line (they are wrapped at 88 columns)."""
    lines = path.read_text().splitlines()
    return " ".join(line.strip()[2:] for line in lines if line.strip().startswith("# "))


def _parallel_checks(jobs: dict[str, Any], prefix: str = "") -> None:
    """Lint and test both wait for setup only (so they run side by side), build waits
    for both."""
    setup = f"{prefix}setup"
    assert jobs[setup]["needs"] == []
    assert jobs[f"{prefix}lint"]["needs"] == [setup]
    assert jobs[f"{prefix}test"]["needs"] == [setup]


def test_uv_workspace(project: Project) -> None:
    data = _init(project, projects.UV_WORKSPACE)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["setup"]["run"] == "uv sync --frozen --all-packages"
    assert "hashFiles('uv.lock')" in jobs["setup"]["caches"][0]["key"]
    assert jobs["typecheck"]["needs"] == ["setup"]
    test = jobs["test"]
    assert test["reports"] == {"junit": "reports/junit.xml", "coverage": "reports/coverage.xml"}
    # The project's own minimum (fail_under = 85) becomes the coverage gate.
    assert test["gates"] == {"tests": {"max_failures": 0}, "coverage": {"line": 85}}
    assert jobs["package"]["run"] == "uv build"
    assert jobs["package"]["needs"] == ["lint", "typecheck", "test"]
    # .python-version wins over requires-python; the uv workspace's member is named.
    assert data["requires"] == {"python3": ">=3.12,<3.13"}
    assert "workspace members (pyproject.toml): packages/core" in _comments(
        project.root / "conveyor.yml"
    )
    assert (
        'python3: ">=3.12,<3.13"  # .python-version' in (project.root / "conveyor.yml").read_text()
    )


def test_npm_package(project: Project) -> None:
    data = _init(project, projects.NPM)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["setup"]["run"] == "npm ci --no-audit --no-fund"
    assert jobs["setup"]["caches"][0]["paths"] == ["node_modules"]
    assert "package-lock.json" in jobs["setup"]["caches"][0]["key"]
    # The project's own lint script, and prettier beside it.
    assert jobs["lint"]["run"] == ["npm run lint", "npx --no-install prettier --check ."]
    assert jobs["test"]["env"] == {
        "JEST_JUNIT_OUTPUT_DIR": "reports",
        "JEST_JUNIT_OUTPUT_NAME": "junit.xml",
    }
    assert jobs["package"]["artifacts"]["paths"] == ["*.tgz"]
    assert data["requires"] == {"node": ">=20.11,<20.12"}  # .nvmrc over engines.node
    assert jobs["audit"]["allow_failure"] is True


def test_pnpm_workspace(project: Project) -> None:
    data = _init(project, projects.PNPM_WORKSPACE)
    jobs = data["jobs"]
    assert jobs["setup"]["run"] == "pnpm install --frozen-lockfile"
    assert jobs["setup"]["caches"][0]["paths"] == [
        "node_modules",
        "apps/web/node_modules",
        "packages/ui/node_modules",
    ]
    assert jobs["typecheck"]["run"] == "pnpm run typecheck"
    assert "--reporter=junit" in jobs["test"]["run"]
    assert jobs["build"]["needs"] == ["typecheck", "test"]
    assert "package" not in jobs  # a private workspace root publishes nothing
    assert data["requires"] == {"pnpm": ">=9.7.0"}


def test_go_module(project: Project) -> None:
    data = _init(project, projects.GO)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["setup"]["caches"][0]["paths"] == ["~/go/pkg/mod"]
    assert "go.sum" in jobs["setup"]["caches"][0]["key"]
    assert "golangci-lint run" in jobs["lint"]["run"]
    assert jobs["test"]["run"] == "go test ./..."
    assert data["requires"] == {"go": ">=1.22"}


def test_cargo_workspace(project: Project) -> None:
    data = _init(project, projects.CARGO_WORKSPACE)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["test"]["run"] == "cargo test --workspace --locked"
    assert "cargo clippy --workspace --all-targets --locked -- -D warnings" in jobs["lint"]["run"]
    # rust-toolchain.toml's pinned channel wins over the workspace's rust-version.
    assert data["requires"] == {"rustc": ">=1.79,<1.80"}
    assert "workspace members (Cargo.toml [workspace]): crates/cli, crates/core" in _comments(
        project.root / "conveyor.yml"
    )


def test_maven_modules(project: Project) -> None:
    data = _init(project, projects.MAVEN)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["lint"]["run"] == "mvn -B checkstyle:check"
    assert jobs["test"]["reports"]["junit"] == [
        "target/surefire-reports/TEST-*.xml",
        "billing-api/target/surefire-reports/TEST-*.xml",
        "billing-core/target/surefire-reports/TEST-*.xml",
    ]
    assert jobs["setup"]["caches"][0]["paths"] == ["~/.m2/repository"]
    assert data["requires"] == {"java": ">=17"}


def test_gradle_multi_project(project: Project) -> None:
    data = _init(project, projects.GRADLE)
    jobs = data["jobs"]
    assert jobs["lint"]["run"] == "./gradlew --no-daemon spotlessCheck"
    assert jobs["build"]["outputs"] == [
        "build/libs/*.jar",
        "app/build/libs/*.jar",
        "lib/build/libs/*.jar",
    ]
    assert data["requires"] == {"java": ">=21"}


def test_bundler(project: Project) -> None:
    data = _init(project, projects.BUNDLER)
    jobs = data["jobs"]
    _parallel_checks(jobs)
    assert jobs["lint"]["run"] == "bundle exec rubocop"
    assert jobs["test"]["reports"] == {"junit": "reports/junit.xml"}
    assert jobs["setup"]["caches"][0]["paths"] == ["vendor/bundle"]
    assert data["requires"] == {"ruby": ">=3.3,<3.4"}


def test_composer_and_dotnet_side_by_side(project: Project) -> None:
    """Two ecosystems in one workspace: each project's jobs carry its prefix."""
    files = {**projects.COMPOSER, **{f"api/{k}": v for k, v in projects.DOTNET.items()}}
    data = _init(project, files)
    jobs = data["jobs"]
    _parallel_checks(jobs, "php:")
    assert jobs["php:test"]["run"] == "vendor/bin/phpunit --log-junit reports/junit.xml"
    assert jobs["api:setup"]["dir"] == "api"
    assert jobs["api:test"]["needs"] == ["api:setup"]
    assert "junit;LogFilePath" in jobs["api:test"]["run"]
    # A union of ranges is required as its floor.
    assert data["requires"] == {"php": ">=7.4", "dotnet": ">=8.0.400"}


def test_never_overwrites_without_force(project: Project) -> None:
    _write(project, projects.GO)
    assert project.run("init").code == 0
    mine = "jobs:\n  mine:\n    run: echo mine\n"
    (project.root / "conveyor.yml").write_text(mine)
    refused = project.run("init", "--ci", "gitlab")
    assert refused.code == 2
    assert "error: conveyor.yml already exists: not overwritten" in refused.err
    assert "--force replaces it" in refused.err
    assert (project.root / "conveyor.yml").read_text() == mine
    assert not (project.root / ".gitlab-ci.yml").exists()  # nothing half written
    assert project.run("init", "--force").code == 0
    assert "go mod download" in (project.root / "conveyor.yml").read_text()


def test_dry_run_writes_nothing(project: Project) -> None:
    _write(project, projects.GO)
    result = project.run("init", "--dry-run", "--ci", "github")
    assert result.code == 0
    assert "go test ./..." in result.out
    assert "# ---- .github/workflows/conveyor.yml ----" in result.out
    assert not (project.root / "conveyor.yml").exists()


def test_no_project_is_a_clear_error(project: Project) -> None:
    (project.root / "notes.txt").write_text("hello\n")
    result = project.run("init")
    assert result.code == 2
    assert result.err.startswith("error: found no project to build in ")
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("ci", "path"), [("github", ".github/workflows/conveyor.yml"), ("gitlab", ".gitlab-ci.yml")]
)
def test_ci_file_loads_back(project: Project, ci: str, path: str) -> None:
    """The CI file is `conveyor export`'s, and `conveyor import` reads it back into the
    same jobs; with --ci each job after setup restores the dependency cache itself."""
    data = _init(project, projects.NPM, "--ci", ci)
    assert data["jobs"]["test"]["caches"] == data["jobs"]["setup"]["caches"]
    assert (project.root / path).read_text().startswith(f"# Written by `conveyor export {ci}`")
    back = project.run("import", path)
    assert back.code == 0, back.err
    imported = YAML(typ="safe").load(back.out)
    assert {"setup", "lint", "test", "package", "audit"} <= set(imported["jobs"])
    again = project.run("init", "--ci", ci)
    assert again.code == 2
    assert f"{path} already exist" in again.err


def test_what_the_install_writes_and_what_is_only_a_hook(project: Project) -> None:
    """Without a lockfile the install writes one (declared, so the setup job stays
    cached); prettier only in devDependencies (a pre-commit hook's) is not a check."""
    package = (
        '{"name": "ms", "version": "2.1.3", "scripts": {"lint": "eslint lib/*", '
        '"test": "mocha tests.js"}, "devDependencies": {"eslint": "4.18.2", '
        '"mocha": "4.0.1", "prettier": "2.0.5"}}\n'
    )
    jobs = _init(project, {"package.json": package})["jobs"]
    assert jobs["setup"]["run"] == "npm install --no-audit --no-fund"
    assert jobs["setup"]["outputs"] == ["package-lock.json"]
    assert jobs["lint"]["run"] == "npm run lint"
    assert "audit" not in jobs  # no lockfile: nothing pinned to audit
    assert "Note: the jobs write node_modules, *.tgz, which .gitignore does not list" in (
        _comments(project.root / "conveyor.yml")
    )


def test_tools_configured_but_not_declared_are_installed(project: Project) -> None:
    """setup.cfg configures flake8 and pytest, pyproject.toml ruff (its formatter); none is a
    dependency, so the setup job installs them (once each); setuptools' egg-info is
    declared, and test data under tests/ is not a project of its own."""
    files = {
        "setup.py": "from setuptools import setup\nsetup(name='six', py_modules=['six'])\n",
        "setup.cfg": "[flake8]\nmax-line-length = 100\n\n[tool:pytest]\nminversion = 2.2.0\n",
        "pyproject.toml": "[tool.ruff.format]\nquote-style = 'single'\n",
        "six.py": "",
        "tests/data/package.json": '{"name": "fixture"}\n',
    }
    jobs = _init(project, files)["jobs"]
    assert jobs["setup"]["run"][-1] == (
        "python3 -m pip --python .venv/bin/python install flake8 pytest ruff"
    )
    assert jobs["setup"]["outputs"] == ["*.egg-info/"]
    assert jobs["lint"]["run"] == [
        ".venv/bin/python -m ruff check .",
        ".venv/bin/python -m flake8 --extend-exclude .venv",
        ".venv/bin/python -m ruff format --check .",
    ]
    assert not any(name.startswith("node") or ":" in name for name in jobs)


def test_on_a_terminal_it_asks_first(project: Project) -> None:
    """With a terminal and without --yes, `init` shows what it found and asks; 'n'
    writes nothing (exit 1)."""
    _write(project, projects.GO)
    # This checkout's conveyor, wherever the child starts.
    here = os.path.dirname(os.path.dirname(os.path.abspath(conveyor.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "init"],
        cwd=project.root,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while b"[Y/n]" not in seen:
        seen += os.read(leader, 4096)
    os.write(leader, b"n\n")
    assert proc.wait(timeout=30) == 1
    try:
        while chunk := os.read(leader, 4096):
            seen += chunk
    except OSError:  # the terminal closed with the process
        pass
    os.close(leader)
    text = seen.decode()
    assert "found: go at the top: go (go.mod)" in text
    assert "write conveyor.yml (5 jobs)?" in text
    assert "nothing written" in text
    assert not (project.root / "conveyor.yml").exists()


def test_a_virtualenv_of_any_name_is_not_looked_into(project: Project) -> None:
    files = {
        **projects.GO,
        "env/pyvenv.cfg": "home = /usr/bin\n",
        "env/lib/python3.12/site-packages/widget/labextension/package.json": '{"name": "w"}\n',
    }
    jobs = _init(project, files)["jobs"]
    assert set(jobs) == {"setup", "lint", "test", "build", "audit"}


def test_a_module_without_dependencies_has_no_go_sum(project: Project) -> None:
    files = {k: v for k, v in projects.GO.items() if k != "go.sum"}
    files["go.mod"] = "module github.com/acme/uuid\n\ngo 1.21\n"
    _write(project, files)
    assert project.run("init").code == 0
    valid = project.run("validate")
    assert valid.code == 0
    assert "warning" not in valid.err  # no input that matches nothing
    assert "hashFiles('go.mod')" in (project.root / "conveyor.yml").read_text()


def test_the_projects_own_check_scripts_are_used(project: Project) -> None:
    """Scripts named as projects name them (commander.js's `check:*`) do the checks; a
    test script that chains commands runs as it is."""
    package = (
        '{"name": "commander", "version": "14.0.0", "engines": {"node": ">=20"},\n'
        ' "scripts": {"check:format": "prettier --check .", "check:lint": "eslint .",\n'
        '  "check:type": "tsc -p tsconfig.js.json",\n'
        '  "test": "node --test && npm run check:type:ts"},\n'
        ' "devDependencies": {"eslint": "^9", "prettier": "^3", "typescript": "^5"}}\n'
    )
    files = {
        "package.json": package,
        "package-lock.json": '{"lockfileVersion": 3, "packages": {}}\n',
        "tsconfig.json": "{}\n",
    }
    jobs = _init(project, files)["jobs"]
    assert jobs["lint"]["run"] == ["npm run check:lint", "npm run check:format"]
    assert jobs["typecheck"]["run"] == "npm run check:type"
    assert jobs["test"]["run"] == "npm run test"
    assert "reports" not in jobs["test"]
    assert "It chains commands, so it runs as it is" in _comments(project.root / "conveyor.yml")


def test_coverage_py_without_the_pytest_plugin(project: Project) -> None:
    """click's layout: coverage.py configured in pyproject.toml and a dependency, no
    pytest-cov: the tests run under `coverage run`, the XML report feeds the gate."""
    pyproject = (
        '[project]\nname = "click"\nversion = "8.3.0"\n\n'
        '[dependency-groups]\ntests = ["pytest"]\ncoverage = ["coverage"]\n\n'
        '[tool.coverage.run]\nbranch = true\nsource = ["click", "tests"]\n\n'
        "[tool.coverage.report]\nfail_under = 95\n"
    )
    jobs = _init(project, {"pyproject.toml": pyproject, "uv.lock": "version = 1\n"})["jobs"]
    # One command: the report is written when a test fails too, pytest's status kept.
    assert jobs["test"]["run"] == (
        "status=0; .venv/bin/python -m coverage run -m pytest --junitxml=reports/junit.xml"
        " || status=$?; "
        ".venv/bin/python -m coverage combine 2>/dev/null || true; "
        ".venv/bin/python -m coverage xml -o reports/coverage.xml; exit $status"
    )
    assert jobs["test"]["gates"]["coverage"] == {"line": 95}


def test_the_extra_that_declares_a_configured_tool_is_installed(project: Project) -> None:
    """attrs' layout: coverage configured, declared only in its `cov` extra (which refers
    to its own `tests` extra); `pip install -e .[tests,dev]` alone would leave coverage
    out and the tests job fail on `coverage run`."""
    pyproject = (
        '[project]\nname = "attrs"\nversion = "23.2.0"\n\n'
        "[project.optional-dependencies]\n"
        'tests = ["pytest", "hypothesis"]\n'
        'dev = ["attrs[tests]", "pre-commit"]\n'
        'cov = ["attrs[tests]", "coverage[toml]>=5.3"]\n'
        'docs = ["sphinx"]\n\n'
        '[tool.pytest.ini_options]\naddopts = "-ra"\n\n'
        "[tool.coverage.run]\nbranch = true\n"
    )
    jobs = _init(project, {"pyproject.toml": pyproject})["jobs"]
    assert "install -e '.[tests,dev,cov]'" in " ".join(jobs["setup"]["run"])
    assert "coverage run -m pytest" in jobs["test"]["run"]
    assert "coverage" in jobs["test"]["gates"]
