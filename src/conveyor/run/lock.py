"""The run lock: one `conveyor run` at a time in a workspace, so two never interleave
their writes to `.conveyor/` (run directories, the job cache's state, pruning).

An exclusive `flock` on `.conveyor/run.lock`, held from before the run directory is
created until the run has written everything. The kernel drops the lock when its holder
dies, however it dies, so a stale lock cannot exist and there is nothing to clean up.
The holder writes its pid, command line and start time into the file, so whoever finds
the workspace busy can say who holds it. The descriptor is close-on-exec: a job, or a
process a job leaves behind, never holds the lock.

The core prints nothing: a caller that waits is told once through `on_wait`; with
`wait=False` a busy workspace raises `RunInProgress`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from conveyor.errors import EnvironmentProblem
from conveyor.fsutil import ensure_state_dir

LOCK_FILE = "run.lock"

# The holder writes its details just after taking the lock: someone who finds the lock
# taken may read the file a moment before that, so it re-reads for this long.
_READ_TRIES = 20
_READ_PAUSE = 0.01


class Holder(NamedTuple):
    """Who holds the run lock, as it wrote itself into the lock file. (A NamedTuple, not
    a dataclass: every run imports this module, and a dataclass costs a millisecond.)"""

    pid: int | None
    command: str
    started: float | None

    def describe(self) -> str:
        """`pid 1234, started 12:01:02: conveyor run build` (the date too if not today)."""
        parts = [f"pid {self.pid}" if self.pid is not None else "pid unknown"]
        if self.started is not None:
            when = time.localtime(self.started)
            same_day = time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d")
            parts.append(
                "started " + time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", when)
            )
        text = ", ".join(parts)
        return f"{text}: {self.command}" if self.command else text


OnWait: TypeAlias = Callable[[Holder], None]
"""Told, once, whom a run waits for before it waits."""


class RunInProgress(EnvironmentProblem):
    """Another run holds the workspace (and the caller would not, or could not, wait)."""

    def __init__(self, message: str, holder: Holder, *, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class RunLock:
    """A held run lock; `release()` (idempotent) gives it up. Dropped with the object
    too, so a lock is never kept by a run that ended in an exception."""

    def __init__(self, fd: int, path: str) -> None:
        self.path = path
        self._fd: int | None = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Emptied first: a stale holder is never shown to whoever takes it next.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            self._finalizer()  # closing the descriptor releases the flock


def lock_workspace(
    root: str,
    *,
    wait: bool = True,
    on_wait: OnWait | None = None,
) -> RunLock:
    """Take the run lock of the workspace at `root`. When another run holds it: wait
    for it (calling `on_wait` once, first), or with `wait=False` raise RunInProgress."""
    try:
        path = os.path.join(ensure_state_dir(root), LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        # The same words as for the run directory itself: to the user it is one thing.
        raise EnvironmentProblem(
            f"cannot create the run directory in {root}/.conveyor: {exc.strerror}",
            hint="Conveyor keeps each run's logs and summary there; make it writable",
        ) from None
    try:
        if not _try_lock(fd):
            holder = _holder(fd)
            if holder is not None:
                _refuse_or_wait(fd, holder, wait, on_wait)
        _write_holder(fd)
    except BaseException:
        os.close(fd)
        raise
    return RunLock(fd, path)


def _refuse_or_wait(fd: int, holder: Holder, wait: bool, on_wait: OnWait | None) -> None:
    if not wait:
        raise RunInProgress(
            f"another run is going on in this workspace ({holder.describe()})",
            holder,
            hint="wait for it to finish, or leave out --no-wait to wait for it",
        )
    if holder.pid is not None and _is_ancestor(holder.pid):
        # A job of that run started this one: waiting would wait for itself forever.
        raise RunInProgress(
            f"this run was started by a job of the run holding this workspace "
            f"({holder.describe()}) and would wait for it forever",
            holder,
            hint="run the inner pipeline from another directory, or make its jobs jobs of "
            "the outer pipeline",
        )
    if on_wait is not None:
        on_wait(holder)
    fcntl.flock(fd, fcntl.LOCK_EX)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> Holder | None:
    """The holder's details; None if the lock turns out to be free (then `fd` holds
    it, when `fd` is writable). A holder that has not written yet is 'unknown'."""
    for _ in range(_READ_TRIES):
        try:
            data = json.loads(os.pread(fd, 4096, 0))
            return Holder(int(data["pid"]), str(data["command"]), float(data["started"]))
        except (ValueError, KeyError, TypeError):
            pass
        # Not written yet, or being released: the lock may be free by now.
        if _try_lock(fd):
            return None
        time.sleep(_READ_PAUSE)
    return Holder(None, "", None)


def _write_holder(fd: int) -> None:
    args = shlex.join(sys.argv[1:])
    info = {"pid": os.getpid(), "command": f"conveyor {args}".strip(), "started": time.time()}
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _is_ancestor(pid: int) -> bool:
    """Whether `pid` is this process's parent, grandparent, ..."""
    import psutil

    try:
        return any(p.pid == pid for p in psutil.Process().parents())
    except psutil.Error:
        return False
