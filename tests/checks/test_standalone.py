"""`conveyor check`: the checks on their own, outside a run."""

from __future__ import annotations

import json

from conveyor.checks.standalone import check_workspace
from conveyor.config import load_pipeline
from tests.conftest import Project

PIPELINE = """
checks:
  after:
    required: [dist/app.js]
    forbidden: ["dist/*.map"]
    report: dist/build-report.json
jobs:
  build: {run: "true"}
"""


def test_after_judges_the_workspace_as_it_is_and_leaves_the_build_report_to_a_run(
    project: Project,
) -> None:
    project.pipeline(PIPELINE)
    project.write("dist/app.js.map", "{}")
    project.commit()
    result = project.run("check", "--after", "--json")
    assert result.code == 1, result.out
    found = {c["check"]: c["ok"] for c in json.loads(result.out)}
    assert found["required dist/app.js"] is False
    assert found["forbidden dist/*.map"] is False
    assert "build report" not in found, "judged only at the end of a run"

    project.write("dist/app.js", "x")
    (project.root / "dist" / "app.js.map").unlink()
    checked = check_workspace(load_pipeline(str(project.root / "conveyor.yml")), {}, after=True)
    assert checked.failed == ()
    assert [c.check for c in checked.after] == ["required dist/app.js", "forbidden dist/*.map"]
    assert project.run("check", "--after").code == 0


def test_without_after_only_the_checks_before_the_build(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    checked = check_workspace(load_pipeline(str(project.root / "conveyor.yml")), {}, after=False)
    assert checked.after == ()
    assert project.run("check").code == 0
