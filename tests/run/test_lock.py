"""Resource groups: the jobs of one group never run at the same time, in a run and
across concurrent runs of other workspaces (the run lock of one workspace is tested in
tests/executor/test_signals.py)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Project

# Each job of the group writes when it starts and ends, into one file shared by the runs.
STAMP = (
    "echo {job} start $(date +%s.%N) >> {times}; sleep {sleep}; "
    "echo {job} end $(date +%s.%N) >> {times}"
)


def grouped(times: Path, *names: str, sleep: float = 0.4, group: str = "deploy") -> str:
    jobs = "".join(
        f"  {name}:\n    resource_group: {group}\n    cache: false\n"
        f"    run: {STAMP.format(job=name, times=times, sleep=sleep)}\n"
        for name in names
    )
    return f"jobs:\n{jobs}"


def intervals(times: Path) -> list[tuple[float, float, str]]:
    """(start, end, who) of each job, by start."""
    starts: dict[str, float] = {}
    spans = []
    for line in times.read_text().splitlines():
        who, what, when = line.split()
        if what == "start":
            starts[who] = float(when)
        else:
            spans.append((starts.pop(who), float(when), who))
    assert not starts, f"jobs that never ended: {starts}"
    return sorted(spans)


def assert_no_overlap(spans: list[tuple[float, float, str]]) -> None:
    for (_s1, e1, a), (s2, _e2, b) in itertools.pairwise(spans):
        assert e1 <= s2, f"{a} and {b} of one resource group ran at the same time: {spans}"


def test_jobs_of_a_group_take_turns_within_a_run(project: Project, tmp_path: Path) -> None:
    times = tmp_path / "times"
    text = grouped(times, "one", "two", "three")
    text += "  free:\n    cache: false\n    run: sleep 0.4; date +%s.%N > free.end\n"
    project.pipeline(text)
    started = time.time()
    result = project.run("run", "--jobs", "4")
    assert result.code == 0, result.out + result.err
    spans = intervals(times)
    assert sorted(who for *_, who in spans) == ["one", "three", "two"]
    assert_no_overlap(spans)
    # A job outside the group is not held back: it ran beside the first of them.
    assert float((project.root / "free.end").read_text()) < spans[1][0] + 0.3
    assert time.time() - started < 10


def test_needs_inside_a_group_do_not_deadlock(project: Project, tmp_path: Path) -> None:
    times = tmp_path / "times"
    text = grouped(times, "build", "deploy", sleep=0.1).replace(
        "  deploy:\n", "  deploy:\n    needs: [build]\n"
    )
    text += grouped(times, "other", sleep=0.3).removeprefix("jobs:\n")
    project.pipeline(text)
    result = project.run("run", "--jobs", "3")
    assert result.code == 0, result.out + result.err
    spans = intervals(times)
    assert len(spans) == 3
    assert_no_overlap(spans)


def test_fail_fast_skips_a_job_waiting_for_its_group(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          broken:
            resource_group: g
            run: sleep 0.3; exit 1
          waiting:
            resource_group: g
            run: touch ran
        """
    )
    result = project.run("run", "--jobs", "2")
    assert result.code == 1
    assert not (project.root / "ran").exists()
    jobs = {
        j["name"]: j for j in json.loads((project.runs()[-1] / "summary.json").read_text())["jobs"]
    }
    assert jobs["waiting"]["status"] == "skipped"
    assert "not started" in jobs["waiting"]["reason"]
    # --keep-going: the group passes on after the failure.
    result = project.run("run", "--jobs", "2", "--keep-going")
    assert result.code == 1
    assert (project.root / "ran").exists()


@pytest.fixture
def other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "other"
    root.mkdir()
    return Project(root, capsys)


def test_concurrent_runs_of_two_workspaces_take_turns(
    project: Project, other: Project, tmp_path: Path
) -> None:
    times, go = tmp_path / "times", tmp_path / "go"
    # a1 holds the group until the other run has said it waits for it: the runs meet in
    # the group however long either process takes to start (not by a race of sleeps).
    hold = f"until [ -e {go} ]; do sleep 0.05; done"
    project.pipeline(grouped(times, "a1", "a2").replace("sleep 0.4", hold, 1))
    other.pipeline(grouped(times, "b1", "b2"))
    first = project.spawn("run", "--plain", "--jobs", "2")
    try:
        _wait_for_log(project, "a1")
        second = other.spawn("run", "--plain", "--jobs", "2")
        # The run that waited for the other said so, in the terminal and in its log.
        line = _read_until(second, "waits for resource group 'deploy'")
        assert "held by another run (pid " in line
    finally:
        go.touch()
    out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    spans = intervals(times)
    assert len(spans) == 4
    assert_no_overlap(spans)
    logs = [
        p.read_text()
        for root in (project.root, other.root)
        for p in (root / ".conveyor" / "runs").glob("*/logs/*")
    ]
    assert any("conveyor: waited " in log and "resource group 'deploy'" in log for log in logs)


def test_a_run_waiting_for_another_runs_group_stops_on_ctrl_c(
    project: Project, other: Project, tmp_path: Path
) -> None:
    project.pipeline("jobs:\n  hold:\n    resource_group: g\n    cache: false\n    run: sleep 30\n")
    other.pipeline("jobs:\n  wait:\n    resource_group: g\n    cache: false\n    run: touch ran\n")
    holder = project.spawn("run", "--plain")
    try:
        _wait_for_log(project, "hold")
        waiter = other.spawn("run", "--plain")
        line = _read_until(waiter, "waits for resource group 'g'")
        assert "held by another run" in line
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 130, out + err
        assert not (other.root / "ran").exists()
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=20)


def _wait_for_log(project: Project, job: str) -> None:
    """Until the run has started the job (its lock is then taken)."""
    deadline = time.time() + 20
    while time.time() < deadline:
        for events in (project.root / ".conveyor" / "runs").glob("*/events.jsonl"):
            if f'"job_started","name":"{job}"' in events.read_text().replace(" ", ""):
                return
        time.sleep(0.05)
    raise AssertionError(f"{job} never started")


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never printed {text!r}")
