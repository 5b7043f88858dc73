"""A function run in a child process (fork) beside the caller's work, its result or its
error brought back.

Threads share one GIL: a thread that hashes and compresses releases it for each call,
then takes it back, thousands of times, and each time the other thread's next system
call waits for it. A child has a GIL of its own. In alternated runs of a second backup
(60,000 entries walked, the history copied and cut alongside), the whole backup took
1.44-1.71 s with the history in a child, 1.78-2.03 s with it in a thread; the walk is
still slower than alone, since the two cores of the machine slow each other down. The
child inherits the parent's memory as it was (the repository's key and index, read-only
here), so nothing is sent to it; its result comes back through a file in a scratch
folder the parent owns.

Where there is no fork (Windows), the function runs in a thread: slower, the same result.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from conveyor.backup.backend import BackupError

T = TypeVar("T")


class Forked(Generic[T]):
    """`work()` started in a child process (or a thread); `result()` waits for it."""

    def __init__(self, work: Callable[[], T], scratch: str) -> None:
        self._out = os.path.join(scratch, f"forked-{id(self)}.pickle")
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._box: list[tuple[bool, object]] = []
        if not hasattr(os, "fork"):
            self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
            self._thread.start()
            return
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 0
            try:
                payload: tuple[bool, object] = (True, work())
            except BaseException as exc:  # anything, even ^C: the parent re-raises it
                payload, code = (False, _portable(exc)), 1
            try:
                with open(self._out + ".tmp", "wb") as fh:
                    pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.rename(self._out + ".tmp", self._out)
            except BaseException:
                code = 3
            # No atexit handlers, no flushing of buffers the parent also holds.
            os._exit(code)
        self._pid = pid

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._box.append((True, work()))
        except BaseException as exc:
            self._box.append((False, exc))

    def result(self) -> T:
        """The function's value, or its exception raised here."""
        if self._thread is not None:
            self._thread.join()
            ok, value = self._box[0]
        else:
            ok, value = self._reap()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]

    def _reap(self) -> tuple[bool, object]:
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        try:
            with open(self._out, "rb") as fh:
                payload: tuple[bool, object] = pickle.load(fh)
        except FileNotFoundError:
            if os.WIFSIGNALED(status):
                why = f"was killed by signal {os.WTERMSIG(status)}"
            else:
                why = f"exited with status {os.waitstatus_to_exitcode(status)}"
            raise BackupError(f"the backup's child process {why}") from None
        finally:
            for name in (self._out, self._out + ".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
        return payload

    def cancel(self) -> None:
        """Stop the child (the caller failed): killed and reaped, no zombie left."""
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = 0
        elif self._thread is not None:
            self._thread.join()


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling with its type and message; else a
    BackupError that says what it was."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:
        pass
    return BackupError(f"{type(exc).__name__}: {exc}")
