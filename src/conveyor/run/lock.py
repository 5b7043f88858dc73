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

Resource groups (`resource_group:` on a job) are locked the same way, one file per group
in the user's lock directory (`group_lock_dir`), so the jobs of one group never run at
once across the runs of every workspace on the machine. The lock files stay (removing a
flock's file races with whoever opens it next); each holds only its holder's details.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

if TYPE_CHECKING:
    import threading

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


def group_lock_dir(environ: Mapping[str, str]) -> str:
    """Where resource groups are locked: the user's own, `$XDG_CACHE_HOME/conveyor/locks`
    (default `~/.cache/conveyor/locks`), whichever cache directory a run uses."""
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "conveyor", "locks")


def group_file(group: str) -> str:
    """The lock file of a group: its name made safe for a file name, and a digest of the
    name so that two groups never share one (`deploy prod` and `deploy_prod`)."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", group)[:64]
    return f"group-{safe}-{hashlib.sha256(group.encode()).hexdigest()[:12]}.lock"


def lock_group(
    group: str,
    lock_dir: str,
    *,
    job: str,
    stop: threading.Event,
    on_wait: OnWait | None = None,
    poll: float = 0.05,
) -> RunLock | None:
    """Take the lock of a resource group for a job, waiting while another run holds it
    (`on_wait` told once, first); None if `stop` is set while waiting (the run was
    cancelled). RunInProgress if the holder is a run this one was started by, which it
    would wait for forever."""
    try:
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        path = os.path.join(lock_dir, group_file(group))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot lock resource group '{group}' in {lock_dir}: {exc.strerror}",
            hint="Conveyor keeps the locks of resource groups there; make it writable",
        ) from None
    try:
        if not _try_lock(fd):
            holder = _holder(fd)
            if holder is not None:
                if holder.pid is not None and _is_ancestor(holder.pid):
                    raise RunInProgress(
                        f"resource group '{group}' is held by the run that started this one "
                        f"({holder.describe()}): waiting for it would wait forever",
                        holder,
                        hint="give the inner job another resource group, or none",
                    )
                if on_wait is not None:
                    on_wait(holder)
                while not _try_lock(fd):
                    if stop.wait(poll):
                        os.close(fd)
                        return None
        _write_holder(fd, f"job '{job}'")
    except BaseException:
        os.close(fd)
        raise
    return RunLock(fd, path)


def _write_holder(fd: int, what: str = "") -> None:
    args = shlex.join(sys.argv[1:])
    command = f"conveyor {args}".strip() + (f", {what}" if what else "")
    info = {"pid": os.getpid(), "command": command, "started": time.time()}
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
