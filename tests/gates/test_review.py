"""A past run's gates evaluated again (conveyor.gates.review), as `conveyor gates` and the
dashboard ask for them: with the thresholds as they are now, nothing run again."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from conveyor.config import load_pipeline
from conveyor.errors import UserError
from conveyor.gates.review import GateReview, WrittenBaseline, review
from conveyor.model import Finding, GateLevel, GateResult
from conveyor.reports.sarif import write_sarif
from conveyor.run.rundir import find_run_dir, read_summary
from tests.conftest import Project

# Two test cases, one failing: what a test runner's JUnit report says.
JUNIT = (
    '<testsuite name="calc" tests="2" failures="1">'
    '<testcase classname="calc" name="test_add"/>'
    '<testcase classname="calc" name="test_div"><failure message="boom"/></testcase>'
    "</testsuite>"
)


def _reviewed(project: Project, write_baseline: bool = False) -> tuple[str, GateReview]:
    """The latest run's gates, evaluated again against conveyor.yml as it is now."""
    pipeline = load_pipeline(str(project.root / "conveyor.yml"))
    run_dir = find_run_dir(pipeline.root, None)
    summary = read_summary(run_dir)
    found = review(
        pipeline,
        run_dir,
        wall_time=summary.wall_time,
        ran=summary.ran,
        environ=dict(os.environ),
        write_baseline=write_baseline,
    )
    return summary.run_id, found


def test_a_past_run_is_judged_by_the_thresholds_of_now_and_its_commands_not_rerun(
    project: Project,
) -> None:
    project.write("junit.xml", JUNIT)
    project.pipeline(
        """
        name: calc
        jobs:
          test:
            run: mkdir -p reports && cp junit.xml reports/junit.xml
            reports: {junit: reports/junit.xml}
            gates:
              tests: {max_failures: 1}
              commands:
                marked: {run: "echo once >> ../marks.txt"}
        """
    )
    project.commit()
    first = project.run("run", "--plain")
    assert first.code == 0, first.out
    marks = project.root.parent / "marks.txt"
    assert marks.read_text() == "once\n"

    project.pipeline(
        (project.root / "conveyor.yml").read_text().replace("max_failures: 1", "max_failures: 0")
    )
    run_id, found = _reviewed(project)
    assert run_id == project.runs()[-1].name
    assert found.results == (
        GateResult(
            gate="tests",
            scope="test",
            level=GateLevel.ERROR,
            passed=False,
            measured="1 failed of 2",
            threshold="<= 0 failures",
            detail="failed: calc.test_div",
        ),
    ), "the command gate ran against the workspace as it was: it is not judged again"
    assert found.blocking
    assert found.left_out == ()
    assert marks.read_text() == "once\n", "no command ran again"
    assert len(project.runs()) == 1, "no job ran again"


def test_written_baselines_are_reported_and_make_the_runs_findings_known(
    project: Project,
) -> None:
    write_sarif(
        [Finding(tool="scanner", rule="SEC1", severity="high", message="m", path="app.py", line=2)],
        "scanner",
        "1",
        str(project.root / "scan.sarif"),
    )
    project.pipeline(
        """
        name: scan
        jobs:
          lint:
            run: mkdir -p reports && cp scan.sarif reports/scan.sarif
            reports: {sarif: reports/scan.sarif}
            gates:
              findings: {max: {high: 0}, baseline: known.json}
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 1

    _run_id, before = _reviewed(project)
    assert [(g.gate, g.passed, g.measured) for g in before.results] == [
        ("findings.high", False, "1")
    ]
    assert before.baselines == ()
    assert not (project.root / "known.json").exists()

    _run_id, accepted = _reviewed(project, write_baseline=True)
    assert accepted.baselines == (WrittenBaseline(path="known.json", findings=1),)
    assert [(g.gate, g.passed, g.measured) for g in accepted.results] == [
        ("findings.high", True, "0 new")
    ]
    assert not accepted.blocking


def test_a_run_measured_by_an_older_conveyor_is_not_written_as_a_baseline(
    project: Project,
) -> None:
    write_sarif(
        [Finding(tool="scanner", rule="SEC1", severity="high", message="m", path="app.py", line=2)],
        "scanner",
        "1",
        str(project.root / "scan.sarif"),
    )
    project.pipeline(
        """
        name: scan
        jobs:
          lint:
            run: mkdir -p reports && cp scan.sarif reports/scan.sarif
            reports: {sarif: reports/scan.sarif}
            gates:
              findings: {max: {high: 0}, baseline: known.json}
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 1
    _reviewed(project, write_baseline=True)
    # What a Conveyor before issue 13 kept of that run: a fingerprint of its first scheme.
    kept = project.runs()[-1] / "reports.jsonl"
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    for m in lines:
        for f in m["findings"]:
            f["fingerprint"] = hashlib.sha256(b"scheme 1").hexdigest()
    kept.write_text("".join(json.dumps(m) + "\n" for m in lines))

    _run_id, judged = _reviewed(project)
    [gate] = judged.results
    assert (gate.measured, gate.passed) == ("1", False)
    assert "1 finding(s) of this run have fingerprints of an older Conveyor" in gate.detail
    with pytest.raises(UserError, match="fingerprints of an older Conveyor"):
        _reviewed(project, write_baseline=True)
    written = project.run("gates", "--write-baseline")
    assert written.code == 2
    assert "run the pipeline again, then `conveyor gates --write-baseline`" in written.err
    assert "Traceback" not in written.err
