"""`conveyor validate`, `conveyor list` and `conveyor graph`: the pipeline looked at
without running it."""

from __future__ import annotations

import json
import os

from conveyor.cli import run_cli
from tests.conftest import Project


def test_list_shows_each_instance_with_its_stage_needs_and_condition(project: Project) -> None:
    project.pipeline(
        """
        stages: [build, ship]
        jobs:
          build:
            stage: build
            matrix: {py: ["3.11", "3.12"]}
            run: echo ${{ matrix.py }}
          publish-docs:
            needs: [build]
            run: echo docs
          ship:
            stage: ship
            if: branch == 'main'
            run: echo ship
        """
    )
    result = project.run("list")
    assert result.code == 0
    assert result.out.splitlines() == [
        "JOB              STAGE  NEEDS",
        "build (py=3.11)  build  -",
        "build (py=3.12)  build  -",
        "publish-docs     -      build (py=3.11), build (py=3.12)",
        "ship             ship   build (py=3.11), build (py=3.12)  if: branch == 'main'",
    ]


def test_graph_formats(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: make
          test:
            needs: [build]
            run: make test
          lint:
            run: ruff
        """
    )
    ascii_graph = project.run("graph").out
    assert ascii_graph.splitlines() == ["build", "└── test", "lint"]
    dot = project.run("graph", "--format", "dot").out
    assert '"build" -> "test";' in dot
    assert dot.startswith("digraph conveyor {")
    mermaid = project.run("graph", "--format", "mermaid").out.splitlines()
    assert mermaid[0] == "flowchart LR"
    assert "  j0 --> j1" in mermaid
    data = json.loads(project.run("graph", "--format", "json").out)
    assert data["edges"] == [{"from": "build", "to": "test"}]


def test_a_fixed_file_is_accepted_after_a_cached_good_version(project: Project) -> None:
    """The parsed-config cache is keyed by content: an edit is always seen."""
    project.pipeline("jobs:\n  a:\n    run: echo a\n")
    assert project.run("validate").code == 0
    project.pipeline("jobs:\n  a:\n    run: echo a\n    needs: [b]\n")
    assert project.run("validate").code == 2


def test_file_name_follows_how_it_was_named(project: Project) -> None:
    (project.root / "sub").mkdir()
    project.write("sub/conveyor.yml", "jobs:\n  a:\n    run: echo a\n")
    old = os.getcwd()
    os.chdir(project.root / "sub")
    try:
        assert run_cli(["validate"]) == 0
    finally:
        os.chdir(old)
    result = project.run("-f", "sub/conveyor.yml", "validate")
    assert result.out.startswith("sub/conveyor.yml: valid")
