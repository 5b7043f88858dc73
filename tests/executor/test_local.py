"""Timeouts, Ctrl-C and processes left behind: no job outlives its run; and the short
commands the executor probes (a tool's version) cannot outlive their timeout either."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from conveyor.executor.local import LocalExecutor
from tests.conftest import Project


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(path: Path, timeout: float = 10.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def test_timeout_kills_the_whole_process_tree(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          hang:
            timeout: 1s
            run: |
              sh -c 'sleep 300 & echo $! >> tree.pids; wait' &
              echo $! >> tree.pids
              sleep 300
        """
    )
    start = time.monotonic()
    result = project.run("run", "--kill-grace", "1s")
    took = time.monotonic() - start
    assert result.code == 1
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    job = data["jobs"][0]
    assert job["status"] == "timed_out"
    assert job["reason"] == "timed out after 1.0s"
    assert took < 20
    tree = pids(project.root / "tree.pids")
    assert len(tree) == 2
    assert all(gone(p) for p in tree), "a grandchild survived the timeout"


def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          stubborn:
            timeout: 500ms
            run: |
              trap '' TERM
              sh -c "trap '' TERM; sleep 300" &
              echo $! > child.pid
              wait
        """
    )
    result = project.run("run", "--kill-grace", "500ms")
    assert result.code == 1
    assert gone(pids(project.root / "child.pid")[0])


def test_processes_left_behind_are_terminated(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          daemon:
            run: |
              sleep 300 > /dev/null 2>&1 &
              echo $! > bg.pid
              echo started
        """
    )
    result = project.run("run", "--kill-grace", "1s")
    assert result.code == 0
    assert gone(pids(project.root / "bg.pid")[0])
    log = (project.runs()[-1] / "logs" / "daemon.log").read_text()
    assert "conveyor: terminated processes the job left running" in log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_every_job_and_exits_130(project: Project, sig: signal.Signals) -> None:
    project.pipeline(
        """
        jobs:
          one:
            run: |
              sh -c 'sleep 300 & echo $! >> one.pids; wait' &
              echo $! >> one.pids
              wait
          two:
            run: |
              echo $$ > two.pids
              sleep 300
          later:
            needs: [one]
            run: touch never
        """
    )
    proc = project.spawn("run", "--plain", "--jobs", "2", "--kill-grace", "1s")
    try:
        wait_for(project.root / "two.pids")
        end = time.monotonic() + 10
        while (
            len(pids(project.root / "one.pids") if (project.root / "one.pids").exists() else []) < 2
        ):
            assert time.monotonic() < end
            time.sleep(0.02)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    every = pids(project.root / "one.pids") + pids(project.root / "two.pids")
    assert all(gone(p) for p in every), "a job process outlived the interrupted run"
    assert not (project.root / "never").exists()
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    assert data["status"] == "interrupted"
    status = {j["name"]: j["status"] for j in data["jobs"]}
    assert status == {"one": "cancelled", "two": "cancelled", "later": "skipped"}
    assert "Run interrupted" in out


def test_a_detached_process_holding_the_output_does_not_hang_the_run(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          detach:
            run: |
              setsid sleep 3 &
              echo $! > detached.pid
              echo done
        """
    )
    start = time.monotonic()
    result = project.run("run", "--kill-grace", "200ms")
    assert result.code == 0
    assert time.monotonic() - start < 2.5
    log = (project.runs()[-1] / "logs" / "detach.log").read_text()
    assert "done" in log
    assert "detached process" in log


def test_a_probe_captures_stdout_and_stderr_apart(tmp_path: Path) -> None:
    done = LocalExecutor().probe(
        ["sh", "-c", "echo out; echo err >&2; pwd; echo $GREETING; exit 3"],
        env={"PATH": os.environ["PATH"], "GREETING": "hello"},
        timeout=10,
        cwd=str(tmp_path),
    )
    assert done.returncode == 3
    assert done.stdout.decode().splitlines() == ["out", str(tmp_path), "hello"]
    assert done.stderr == b"err\n"
    assert not done.timed_out
    assert done.error is None


def test_a_probe_that_cannot_start_says_why(tmp_path: Path) -> None:
    missing = LocalExecutor().probe([str(tmp_path / "no-such-tool")], env={}, timeout=10)
    assert missing.returncode is None
    assert isinstance(missing.error, FileNotFoundError)
    nowhere = LocalExecutor().probe(
        [sys.executable, "-V"], env={}, timeout=10, cwd=str(tmp_path / "gone")
    )
    assert isinstance(nowhere.error, FileNotFoundError)


def test_a_probe_past_its_timeout_is_killed_with_its_whole_group(tmp_path: Path) -> None:
    # A wrapper whose child keeps the pipes open: killing the wrapper alone would leave
    # the probe waiting for the child's 300 s.
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; echo started; wait"
    start = time.monotonic()
    done = LocalExecutor().probe(
        ["sh", "-c", script], env={"PATH": os.environ["PATH"]}, timeout=0.5
    )
    took = time.monotonic() - start
    assert done.timed_out
    assert done.returncode is None
    assert done.stdout == b"started\n"  # what it printed before is kept
    assert took < 10
    child = pids(pid_file)[0]
    end = time.monotonic() + 5
    while not gone(child) and time.monotonic() < end:
        time.sleep(0.02)
    assert gone(child), "the probe's child survived its timeout"
