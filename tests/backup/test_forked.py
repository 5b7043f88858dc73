"""The history's copy runs in a child process: its value, its error, its death and its
cancelling reach the backup as they would from a thread."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conveyor.backup.backend import BackupError
from conveyor.backup.forked import Forked
from conveyor.errors import EnvironmentProblem


def test_the_value_comes_back_from_another_process(tmp_path: Path) -> None:
    def work() -> tuple[int, os.stat_result, bytes]:
        return os.getpid(), os.stat(tmp_path), b"\x00" * 100_000

    pid, st, data = Forked(work, str(tmp_path)).result()
    assert pid != os.getpid()
    assert st.st_ino == os.stat(tmp_path).st_ino
    assert data == b"\x00" * 100_000
    assert list(tmp_path.iterdir()) == []  # the result's file is gone


def test_an_error_keeps_its_type_message_and_hint(tmp_path: Path) -> None:
    def work() -> None:
        raise EnvironmentProblem("pg_dump failed: no such database", hint="create it first")

    with pytest.raises(EnvironmentProblem) as caught:
        Forked(work, str(tmp_path)).result()
    assert caught.value.message == "pg_dump failed: no such database"
    assert caught.value.hint == "create it first"


def test_an_error_that_cannot_travel_is_named(tmp_path: Path) -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a} and {b}")

    def work() -> None:
        raise Odd(1, 2)

    with pytest.raises(BackupError, match="Odd: 1 and 2"):
        Forked(work, str(tmp_path)).result()


def test_a_child_killed_is_an_error_not_a_hang(tmp_path: Path) -> None:
    def work() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(BackupError, match="killed by signal 9"):
        Forked(work, str(tmp_path)).result()


def test_cancel_kills_and_reaps_the_child(tmp_path: Path) -> None:
    def work() -> None:
        time.sleep(60)

    job = Forked(work, str(tmp_path))
    pid = job._pid
    began = time.monotonic()
    job.cancel()
    assert time.monotonic() - began < 10
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)
