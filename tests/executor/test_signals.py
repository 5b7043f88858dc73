"""Signals and the run lock: however `conveyor run` ends, no job outlives it, and two
runs of one workspace take turns.

Every test here runs the real CLI as a child process and signals it."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import Project
from tests.executor.test_local import gone, pids, wait_for

# A job whose main process starts a subshell that starts `sleep 300`; each of the three
# writes its pid to tree.pids, so a test can check none of them survives.
TREE_JOB = """
jobs:
  hang:
    run: |
      echo $$ >> tree.pids
      sh -c 'sleep 300 & echo $! >> tree.pids; wait' &
      echo $! >> tree.pids
      wait
"""


def _default_hangup() -> None:
    """A hangup's default action in the child, whatever the suite inherited (a suite run
    under nohup ignores SIGHUP, and Conveyor rightly keeps that)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def spawn(project: Project, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """`conveyor ARGS` as a child process in the project, with extra Popen arguments."""
    popen.setdefault("preexec_fn", _default_hangup)
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for_tree(project: Project, count: int = 3) -> list[int]:
    """The pids of the job's tree, once all `count` are written."""
    path = project.root / "tree.pids"
    end = time.monotonic() + 20
    while not path.exists() or len(path.read_text().split()) < count:
        assert time.monotonic() < end, "the job never started its processes"
        time.sleep(0.02)
    return pids(path)


def wait_gone(every: list[int], timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while not all(gone(p) for p in every):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The process's output once it exits (within 30 s; killed after that)."""
    try:
        return proc.communicate(timeout=30)
    finally:
        kill(proc)


def kill(*procs: subprocess.Popen[str] | None) -> None:
    """Whatever a failed test left running."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()


def assert_interrupted(project: Project) -> None:
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    assert data["status"] == "interrupted"
    [job] = data["jobs"]
    assert job["status"] == "cancelled"
    assert job["reason"] == "cancelled: the run was interrupted"


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_hangup_and_terminate_stop_every_job_and_exit_130(
    project: Project, sig: signal.Signals
) -> None:
    project.pipeline(TREE_JOB)
    proc = spawn(project, "run", "--plain", "--kill-grace", "1s")
    try:
        tree = wait_for_tree(project)
        proc.send_signal(sig)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 130, err
    assert all(gone(p) for p in tree), "a job process outlived the stopped run"
    assert_interrupted(project)
    assert "Run interrupted" in out


def test_a_run_started_with_sigint_ignored_still_stops_on_it(project: Project) -> None:
    # What `conveyor run &` in a non-interactive shell (a script) gets: SIGINT ignored.
    project.pipeline(TREE_JOB)
    proc = spawn(
        project,
        "run",
        "--plain",
        "--kill-grace",
        "1s",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        tree = wait_for_tree(project)
        proc.send_signal(signal.SIGINT)
    finally:
        _, err = stop(proc)
    assert proc.returncode == 130, err
    assert all(gone(p) for p in tree)
    assert_interrupted(project)


def test_nohup_keeps_a_run_going_through_a_hangup(project: Project) -> None:
    # SIGHUP ignored on purpose (nohup) is respected: the job finishes its work.
    project.pipeline(
        """
        jobs:
          work:
            run: |
              echo $$ > work.pid
              while [ ! -e go ]; do sleep 0.05; done
              echo finished
        """
    )
    proc = spawn(project, "run", "--plain", preexec_fn=_ignore_hangup)
    try:
        wait_for(project.root / "work.pid")
        # Still ignored while the job runs (the run's handlers are in place by then).
        assert signal.SIGHUP in ignored_signals(proc.pid)
        proc.send_signal(signal.SIGHUP)
        (project.root / "go").touch()
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0, err
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    assert data["jobs"][0]["status"] == "success"


def ignored_signals(pid: int) -> set[int]:
    """The signals process `pid` ignores (its SigIgn mask, Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.M)
    assert found is not None
    mask = int(found.group(1), 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


def _ignore_hangup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


# Makes the pty on fd 0 the controlling terminal of the (new) session, then becomes
# conveyor: as a shell does for a command run in a terminal.
_ON_A_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'conveyor', *sys.argv[1:]])"
)


def test_closing_the_terminal_stops_the_run(project: Project) -> None:
    # The real hangup: the live view writes to a terminal that goes away (every write
    # then fails with EIO), and the kernel sends SIGHUP.
    project.pipeline(TREE_JOB)
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _ON_A_TERMINAL, "run", "--kill-grace", "1s"],
            cwd=project.root,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env=env,
            preexec_fn=_default_hangup,
        )
    finally:
        os.close(slave)
    shown = b""
    try:
        path = project.root / "tree.pids"
        end = time.monotonic() + 20
        while not path.exists() or len(path.read_text().split()) < 3:
            assert time.monotonic() < end, shown.decode(errors="replace")
            # Keep reading what the live view draws, so it never blocks on a full pty.
            if select.select([master], [], [], 0.05)[0]:
                shown += os.read(master, 65536)
        tree = pids(path)
    finally:
        os.close(master)  # the terminal goes away
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130
    assert all(gone(p) for p in tree)
    assert_interrupted(project)


def test_jobs_do_not_outlive_a_killed_conveyor(project: Project) -> None:
    # One process of the job ignores SIGTERM: only SIGKILL, after the grace, stops it.
    project.pipeline(
        """
        jobs:
          hang:
            run: |
              echo $$ >> tree.pids
              sh -c 'sleep 300 & echo $! >> tree.pids; wait' &
              echo $! >> tree.pids
              sh -c "trap '' TERM; sleep 300" &
              echo $! >> tree.pids
              wait
        """
    )
    proc = spawn(project, "run", "--plain", "--kill-grace", "1s")
    try:
        tree = wait_for_tree(project, 4)
        proc.kill()
    finally:
        stop(proc)
    assert proc.returncode == -signal.SIGKILL
    assert wait_gone(tree), "a job process outlived a conveyor killed with SIGKILL"


# --- the run lock -------------------------------------------------------------------

# Appends "start PID" and "end PID" around a wait for the file `go` (or 30 s).
LOCKED_JOB = """
jobs:
  write:
    run: |
      echo "start $$" >> log.txt
      n=0
      while [ ! -e go ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
      echo "end $$" >> log.txt
"""


def read_until(stream: IO[str], pattern: str, timeout: float = 30.0) -> str:
    """What `stream` (a child's pipe) says until a line matches `pattern`."""
    fd = stream.fileno()
    seen = b""
    end = time.monotonic() + timeout
    while not re.search(pattern, seen.decode(errors="replace")):
        left = end - time.monotonic()
        assert left > 0, f"never printed {pattern!r}; printed: {seen.decode(errors='replace')!r}"
        if select.select([fd], [], [], min(left, 0.1))[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"exited without printing {pattern!r}: {seen.decode()!r}"
            seen += chunk
    return seen.decode(errors="replace")


def started_writing(project: Project) -> None:
    wait_for(project.root / "log.txt", timeout=20)


def test_a_second_run_waits_for_the_first(project: Project) -> None:
    project.pipeline(LOCKED_JOB)
    first = spawn(project, "run", "--plain", "--no-cache")
    second: subprocess.Popen[str] | None = None
    try:
        started_writing(project)
        second = spawn(project, "run", "--plain", "--no-cache")
        assert second.stderr is not None
        said = read_until(second.stderr, r"to finish\n")
        # It waits: nothing of its own has started.
        assert len((project.root / "log.txt").read_text().splitlines()) == 1
        (project.root / "go").touch()
        _, first_err = stop(first)
        _, err = stop(second)
        err = said + err
    finally:
        (project.root / "go").touch()
        kill(first, second)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, err
    assert re.fullmatch(
        rf"conveyor: waiting for the run in this workspace \(pid {first.pid}, started "
        r"\d\d:\d\d:\d\d: conveyor run --plain --no-cache\) to finish\n",
        said,
    ), said
    assert err.count("waiting for the run") == 1
    lines = (project.root / "log.txt").read_text().split()
    assert lines[0::2] == ["start", "end", "start", "end"]
    a, b = lines[1], lines[5]
    assert lines[1::2] == [a, a, b, b], "the two runs' jobs interleaved"
    assert len(project.runs()) == 2


def test_no_wait_refuses_a_busy_workspace(project: Project) -> None:
    project.pipeline(LOCKED_JOB)
    first = spawn(project, "run", "--plain", "--no-cache")
    try:
        started_writing(project)
        result = project.run("run", "--no-wait")
        # A dry run takes no lock: it plans while the other run goes on.
        dry = project.run("run", "--dry-run", "--no-wait")
        (project.root / "go").touch()
        _, first_err = stop(first)
    finally:
        (project.root / "go").touch()
        kill(first)
    assert first.returncode == 0, first_err
    assert result.code == 2
    assert re.match(
        rf"error: another run is going on in this workspace \(pid {first.pid}, started "
        r"\d\d:\d\d:\d\d: conveyor run --plain --no-cache\)\n"
        r"  hint: wait for it to finish, or leave out --no-wait to wait for it\n$",
        result.err,
    ), result.err
    assert dry.code == 0, dry.err
    assert len(project.runs()) == 1, "the refused run created a run directory"
    assert len((project.root / "log.txt").read_text().splitlines()) == 2


def test_a_run_started_by_a_job_of_the_holder_fails_instead_of_waiting_forever(
    project: Project,
) -> None:
    project.pipeline(
        f"""
        jobs:
          inner:
            run: echo inner
          outer:
            timeout: 60s
            run: {sys.executable} -m conveyor run --plain inner
        """
    )
    result = project.run("run", "--plain", "outer")
    assert result.code == 1
    log = (project.runs()[-1] / "logs" / "outer.log").read_text()
    assert "error: this run was started by a job of the run holding this workspace" in log
    assert f"(pid {os.getpid()}, started " in log
    assert "would wait for it forever" in log


def test_the_lock_is_free_after_a_run_and_names_nobody(project: Project) -> None:
    project.pipeline("jobs:\n  one:\n    run: echo one\n")
    assert project.run("run", "--plain").code == 0
    assert project.run("run", "--plain", "--no-wait").code == 0
    assert (project.root / ".conveyor" / "run.lock").read_text() == ""
