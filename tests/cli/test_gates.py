"""`conveyor gates [RUN]`: which run it judges, and what it prints and writes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import Project

PIPELINE = """
name: sized
jobs:
  build:
    run: mkdir -p dist && head -c {size} /dev/zero > dist/app.js
    outputs: [dist/]
    gates:
      sizes: {{total: 1KB}}
"""


def test_no_finished_run_yet(project: Project) -> None:
    project.pipeline(PIPELINE.format(size=10))
    result = project.run("gates")
    assert result.code == 2
    assert result.err == "error: no finished run here yet\n  hint: `conveyor run` makes one\n"


def test_a_run_is_named_by_a_prefix_of_its_id(project: Project, tmp_path: Path) -> None:
    project.pipeline(PIPELINE.format(size=2000))
    project.commit()
    assert project.run("run", "--plain").code == 1
    project.pipeline(PIPELINE.format(size=10))
    project.commit()
    assert project.run("run", "--plain").code == 0
    first, second = (path.name for path in project.runs())

    latest = project.run("gates")
    assert latest.code == 0
    assert latest.out.splitlines()[0] == f"run {second}, gates as conveyor.yml has them now:"

    junit = tmp_path / "gates.xml"
    older = project.run("gates", first[:-1], "--junit", str(junit))
    assert older.code == 1, older.out
    assert older.out.splitlines()[0] == f"run {first}, gates as conveyor.yml has them now:"
    assert [" ".join(line.split()) for line in older.out.splitlines()[1:]] == [
        "GATE SCOPE MEASURED THRESHOLD RESULT",
        "sizes.total build 2.0 kB in 1 files <= 1.0 kB FAILED",
    ]
    suite = ET.parse(junit).getroot()
    assert suite.attrib["tests"] == "1"
    assert suite.attrib["failures"] == "1"

    as_json = json.loads(project.run("gates", first, "--json").out)
    assert as_json["run_id"] == first
    assert [(g["gate"], g["passed"]) for g in as_json["gates"]] == [("sizes.total", False)]

    unknown = project.run("gates", "1999")
    assert unknown.code == 2
    assert f"no single run '1999' in {project.root}/.conveyor/runs" in unknown.err
    assert "hint: `conveyor history` lists the runs" in unknown.err
    common = first[: next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)]
    both = project.run("gates", common)
    assert both.code == 2
    assert f"hint: it matches 2 runs: {first}, {second}" in both.err


def test_a_run_without_gates_says_so(project: Project) -> None:
    project.pipeline(
        """
        name: plain
        jobs:
          hello:
            run: echo hello
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    result = project.run("gates")
    assert result.code == 0
    run = project.runs()[-1].name
    assert result.out == f"run {run}: no gates to evaluate (none declared, or nothing measured)\n"
