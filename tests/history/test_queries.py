"""What the history is asked, through the CLI: recent runs (`conveyor history`), one run
(`conveyor show`), and a past run's gates."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.conftest import Project
from tests.export.conftest import metric_families, sample_value
from tests.history.conftest import PIPELINE, history


def test_every_run_is_recorded_newest_first(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run").code == 0  # all cached
    project.write("conveyor.yml", PIPELINE.replace("echo testing", "exit 4"))
    assert project.run("run").code == 1
    runs = history(project)
    assert [r["status"] for r in runs] == ["failed", "success", "success"]
    assert [r["jobs_cached"] for r in runs] == [0, 2, 0]
    assert all(r["jobs_total"] == 2 for r in runs)
    newest = runs[0]
    assert newest["pipeline"] == "hist"
    assert newest["branch"] == "main"
    assert newest["commit"] == project.git("rev-parse", "HEAD")
    assert newest["event"] == "push"
    assert newest["trigger"] == "local"
    assert newest["host"] == os.uname().nodename
    assert newest["critical_path"] == ["build", "test"]
    assert newest["wall_time"] > 0
    # Recorded once: asking again adds nothing.
    assert len(history(project)) == 3


def test_show_has_every_job_with_times_and_the_failure(project: Project) -> None:
    project.pipeline(PIPELINE.replace("echo testing", "echo 'assert 1 == 2' && exit 4"))
    project.commit()
    assert project.run("run").code == 1
    result = project.run("show", "--json")
    assert result.code == 0
    run = json.loads(result.out)
    jobs = {j["name"]: j for j in run["jobs"]}
    assert jobs["build"]["status"] == "success"
    assert jobs["test"]["status"] == "failed"
    assert jobs["test"]["exit_code"] == 4
    assert jobs["test"]["attempts"] == 1
    assert jobs["build"]["queue_time"] >= 0
    assert jobs["build"]["duration"] > 0
    assert jobs["build"]["action_digest"]
    text = project.run("show", run["id"][:17]).out
    assert "✘ test" in text
    assert "exit code 4" in text
    assert "│ assert 1 == 2" in text, "the failed job's log tail"
    # A bar is 40 columns between two |; where the job's time went may follow it (a queue
    # of 10 ms or more, as on a busy machine).
    bars = [line for line in text.splitlines() if re.search(r"\|[ █·]{40}\|", line)]
    assert len(bars) == 2, text
    # build ran before test: its bar starts further left.
    start = {line.split()[1]: line.index("█") for line in bars}
    assert start["build"] < start["test"]


def test_no_history_keeps_a_run_out(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run", "--no-history").code == 0
    assert len(history(project)) == 1


def test_unknown_or_ambiguous_runs_are_usage_errors(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("show").code == 2  # nothing recorded yet
    assert project.run("run").code == 0
    assert project.run("run").code == 0
    missing = project.run("show", "19990101")
    assert missing.code == 2
    assert "no single run '19990101'" in missing.err
    assert "Traceback" not in missing.err
    prefix = history(project)[0]["id"][:4]
    ambiguous = project.run("show", prefix)
    assert ambiguous.code == 2
    assert "matches 2 runs" in ambiguous.err


def test_gates_are_recorded_shown_reported_and_counted(project: Project, tmp_path: Path) -> None:
    project.pipeline(
        """
        name: gated
        gates:
          time: {max: 10m}
        jobs:
          build:
            run: mkdir -p dist && head -c 3000 /dev/zero > dist/app.js
            outputs: [dist/]
            gates:
              sizes: {files: {"*.js": 1KB}, level: warn}
              commands: {ok: {run: "true"}, broken: {run: "exit 4"}}
        """
    )
    project.commit()
    assert project.run("run").code == 1
    shown = json.loads(project.run("show", "--json").out)
    assert [(g["scope"], g["gate"], g["passed"], g["level"]) for g in shown["gates"]] == [
        ("build", "command:broken", False, "error"),
        ("build", "command:ok", True, "error"),
        ("build", "sizes[*.js]", False, "warn"),
        ("pipeline", "time", True, "error"),
    ]
    text = project.run("show").out
    assert "command:broken  build     exit 4" in text
    assert "FAILED" in text
    assert "failed (warn)" in text

    out = tmp_path / "scan.html"
    assert project.run("report", "--html", str(out)).code == 0
    page = out.read_text()
    assert '<tr data-gate="build:command:broken">' in page
    assert "(2 of 4 passed)" in page

    families = metric_families(project.run("metrics").out)
    assert sample_value(families, "conveyor_gates", "conveyor_gates_total", gate="time") == 1
    assert (
        sample_value(
            families, "conveyor_gates", "conveyor_gates_total", gate="sizes[*.js]", result="warned"
        )
        == 1
    )
    assert (
        sample_value(
            families,
            "conveyor_gates",
            "conveyor_gates_total",
            gate="command:broken",
            result="failed",
        )
        == 1
    )
