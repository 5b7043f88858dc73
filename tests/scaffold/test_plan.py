"""`conveyor plan`: the build orchestrator's requirements hand-off mapped onto the
workspace's pipeline, what could not be mapped reported with where it was asked and why,
and a hand-off that is not one refused at its line and column."""

from __future__ import annotations

from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import Project

PYPROJECT = """\
[project]
name = "shop"
version = "1.2.0"
requires-python = ">=3.11"
dependencies = ["django>=5"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-cov>=5"]

[tool.pytest.ini_options]
addopts = "-q"
"""

REQUIREMENTS = """\
# From the tech lead, for the build orchestrator.
build_requirements:
  project_type: web_app
  tech_stack:
    languages: [python, elixir]
    frameworks: [django]
  performance_targets:
    build_time: "<10 minutes"
    test_time: "<5 minutes"
    deploy_time: "<2 minutes"
  quality_gates:
    test_coverage: ">90%"
    security_scan: "no high or critical vulnerabilities"
    accessibility: "WCAG 2.1 AA"
  targets: [linux/arm64]
  environments: [dev, staging, production]
"""


def _load(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((project.root / "conveyor.yml").read_text())
    return data


def test_requirements_mapped_onto_the_workspace(project: Project) -> None:
    project.write("pyproject.toml", PYPROJECT)
    project.write("requirements.txt", "django==5.1\n")
    project.write("requirements.yml", REQUIREMENTS)
    result = project.run("plan", "requirements.yml")
    assert result.code == 0, result.err
    assert project.run("validate").code == 0
    data = _load(project)
    assert data["gates"] == {
        "time": {"max": "10m"},
        "vulnerabilities": {"max": {"critical": 0, "high": 0}},
    }
    test = data["jobs"]["test"]
    assert test["gates"] == {
        "tests": {"max_failures": 0},
        "coverage": {"line": 90},
        "time": {"max": "5m"},
    }
    # Each environment promotes the package's artifact, the last only when asked.
    deploys = {k: v for k, v in data["jobs"].items() if k.startswith("deploy:")}
    assert list(deploys) == ["deploy:dev", "deploy:staging", "deploy:production"]
    assert deploys["deploy:dev"]["needs"] == ["package"]
    assert deploys["deploy:production"]["needs"] == ["deploy:staging"]
    assert deploys["deploy:production"]["when"] == "manual"
    assert deploys["deploy:production"]["run"] == (
        "conveyor artifacts promote shop@${{ run.number }} --to prod"
    )
    assert "mapped: requirements.yml:12:20: test_coverage >90% -> coverage gate" in result.out
    unmapped = [line for line in result.out.splitlines() if line.startswith("not mapped:")]
    assert [line.split(": ")[1] for line in unmapped] == [
        "requirements.yml:5:25",  # elixir
        "requirements.yml:10:18",  # deploy_time
        "requirements.yml:14:20",  # accessibility
        "requirements.yml:15:13",  # linux/arm64
    ]
    assert unmapped[0].startswith("not mapped: requirements.yml:5:25: elixir: no recipe knows it")
    assert result.out.rstrip().endswith("10 mapped, 4 not mapped")
    # The written file says what was left out, too.
    assert (
        "requirement not mapped: requirements.yml:14:20: accessibility"
        in (project.root / "conveyor.yml").read_text()
    )


def test_a_language_the_workspace_lacks_gets_its_usual_jobs(project: Project) -> None:
    project.write(
        "req.yml",
        """\
        build_requirements:
          project_type: api
          languages: [go]
          quality_gates:
            test_coverage: 80
        """,
    )
    result = project.run("plan", "req.yml", "--ci", "gitlab")
    assert result.code == 0, result.err
    assert project.run("validate").code == 0
    jobs = _load(project)["jobs"]
    assert jobs["test"]["run"] == "go test ./..."
    # No coverage tool is configured: the pipeline's gate is written, and said to fail.
    assert _load(project)["gates"] == {"coverage": {"line": 80}}
    assert "not mapped: req.yml:5:20: test_coverage 80: no coverage tool" in result.out
    assert (project.root / ".gitlab-ci.yml").exists()
    assert project.run("import", ".gitlab-ci.yml").code == 0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "build_requirements:\n  quality_gates:\n    test_coverage: ninety percent\n",
            "req.yml:3:20: build_requirements.quality_gates.test_coverage: expected a "
            "percentage such as '>90%', got the string 'ninety percent'",
        ),
        (
            "build_requirements:\n  project_type: api\n  quality_gate: {}\n",
            "req.yml:3:3: build_requirements.quality_gate: unknown key 'quality_gate' "
            "(did you mean 'quality_gates'?)",
        ),
        (
            "build_requirements:\n  project_type: webapp\n",
            "req.yml:2:17: build_requirements.project_type: unknown project type 'webapp' "
            "(did you mean 'web_app'?)",
        ),
        (
            "build_requirements:\n  performance_targets:\n    build_time: soon\n",
            "req.yml:3:17: build_requirements.performance_targets.build_time: expected a time "
            "limit such as '<10 minutes' or '90s', got the string 'soon'",
        ),
        (
            "project_type: api\n",
            "req.yml:1:1: expected a mapping with a top-level 'build_requirements' key",
        ),
        ("build_requirements:\n  environments: [dev\n", "req.yml:3:1: invalid YAML"),
    ],
)
def test_bad_requirements_are_located(project: Project, text: str, error: str) -> None:
    project.write("req.yml", text)
    result = project.run("plan", "req.yml")
    assert result.code == 2
    assert result.err.startswith(error), result.err
    assert "Traceback" not in result.err
    assert not (project.root / "conveyor.yml").exists()


def test_plan_never_overwrites_without_force(project: Project) -> None:
    project.write("go.mod", "module example.com/x\n\ngo 1.22\n")
    project.write("req.yml", "build_requirements:\n  languages: [go]\n")
    project.write("conveyor.yml", "jobs:\n  mine:\n    run: echo mine\n")
    result = project.run("plan", "req.yml")
    assert result.code == 2
    assert "conveyor.yml already exists: not overwritten" in result.err
    assert project.run("plan", "req.yml", "--force").code == 0
    assert "go mod download" in (project.root / "conveyor.yml").read_text()


def test_a_missing_hand_off_says_what_to_give(project: Project) -> None:
    result = project.run("plan", "nope.yml")
    assert result.code == 2
    assert result.err.startswith("nope.yml: file not found\n  hint: give the requirements hand-off")
