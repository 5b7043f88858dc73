"""Run one job attempt as a local process group: the only module that spawns jobs (and
the short commands asked for a tool's version, `LocalExecutor.probe`).

The job gets its own session (so its own process group): a timeout or a cancel
sends SIGTERM to the whole group, then SIGKILL after a grace period; processes a
job leaves behind after its main process exits are terminated the same way, so no
job outlives its run. stdout and stderr share one pipe (the log keeps their order)
which is drained without blocking while the process is watched, so a chatty job can
never deadlock on a full pipe. CPU time comes from wait4's rusage of the process
tree; peak memory from sampling the tree with psutil (from 50 ms on, every 250 ms: a
job shorter than that has no memory figure).

Jobs must not outlive Conveyor even when it is killed outright (SIGKILL, the OOM
killer), which it cannot react to. Each job leads its own session, so nothing else would
stop it: a small watchdog process (`watchdog.py`), started with the first job, is told
each job's process group through a pipe and stops the groups still listed when the pipe
closes, which is when Conveyor has died. The usual tool, PR_SET_PDEATHSIG set in the
child, was rejected: it fires when the *thread* that forked the child exits (jobs are
spawned from worker threads), it signals only the job's main process and not the rest of
its group, and it needs a preexec_fn, which makes every spawn a slow fork instead of
vfork. The watchdog costs one process per run, started beside the first job, and two
small writes to a pipe per job.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.executor.interface import Cancel, ExecOutcome, ExecRequest, ProbeResult

if TYPE_CHECKING:
    from conveyor.executor.masking import Masker

_MAX_LINE = 64 * 1024
_WATCHDOG_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watchdog.py")
_POLL = 0.05

# Like make, a job whose whole script is one simple command is exec'd directly,
# saving a shell's start-up per job. Only for the stock shells, only when no shell
# syntax is involved and the program is a real file on PATH (a shell builtin keeps the
# shell, so `cd`, `export` or `echo -e` behave as written).
_STOCK_SHELLS = {
    ("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"),
    ("sh", "-ec"),
}
_SHELL_SYNTAX = set("|&;<>()$`\\\"'*?[]#~=%{}!\n")
_BUILTINS = {
    ".",
    ":",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "fc",
    "fg",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "time",
    "times",
    "trap",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
}


class LocalExecutor:
    """The Executor that runs processes on this machine. `grace`: seconds between SIGTERM
    and SIGKILL when a job's group is stopped; `sample_every`: seconds between two
    samples of a running job's memory."""

    def __init__(self, *, grace: float = 5.0, sample_every: float = 0.25) -> None:
        self.grace = grace
        self.sample_every = sample_every

    def execute(
        self, request: ExecRequest, on_line: Callable[[str], None], cancel: Cancel
    ) -> ExecOutcome:
        """Run one attempt as its own process group (see the module's docstring)."""
        _become_subreaper()  # at the first job, not before: a no-op run needs no ctypes
        # Imported with the first job: base64, json and urllib cost a run served wholly
        # from the cache 20 ms of start-up.
        from conveyor.executor.masking import Masker

        masker = Masker(request.secrets)
        started = time.time()
        if not os.path.isdir(request.cwd):
            return ExecOutcome(
                None, started, time.time(), error=f"working directory does not exist: {request.cwd}"
            )
        argv = _without_shell(request.argv, request.env) or list(request.argv)
        if "/" not in argv[0]:
            # Found once per program: Popen would otherwise build (and encode) a candidate
            # path for every PATH entry at every spawn.
            # (A relative PATH entry would resolve against the job's directory: left alone.)
            found = _which(argv[0], request.env.get("PATH"))
            if found is not None and os.path.isabs(found):
                argv[0] = found
        env = dict(request.env)
        env["PWD"] = request.cwd  # a shell would set it; a directly exec'd command not
        try:
            proc = subprocess.Popen(
                argv,
                cwd=request.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError:
            return ExecOutcome(
                None, started, time.time(), error=f"shell not found: {request.argv[0]}"
            )
        except OSError as exc:
            return ExecOutcome(
                None, started, time.time(), error=f"cannot start {request.argv[0]}: {exc.strerror}"
            )
        _WATCHDOG.watch(proc.pid, self.grace)
        try:
            return _Watch(self, proc, request, masker, on_line, cancel, started).run()
        finally:
            # The group is gone: its id may be reused, and must not be stopped then.
            _WATCHDOG.forget(proc.pid)

    def probe(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        timeout: float,
        cwd: str | None = None,
    ) -> ProbeResult:
        """Run a short command to completion, its stdout and stderr captured apart."""
        try:
            # A session of its own, so that on timeout the whole process group can be
            # killed: killing only a wrapper script would leave its child holding our
            # pipes open, and the read below would wait for it.
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            return ProbeResult(None, error=exc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            out, err = proc.communicate()
            return ProbeResult(None, out, err, timed_out=True)
        return ProbeResult(proc.returncode, out, err)


class _Watch:
    """The state of one running process group, polled until it is gone."""

    def __init__(
        self,
        executor: LocalExecutor,
        proc: subprocess.Popen[bytes],
        request: ExecRequest,
        masker: Masker,
        on_line: Callable[[str], None],
        cancel: Cancel,
        started: float,
    ) -> None:
        self.ex = executor
        self.proc = proc
        self.pgid = proc.pid
        self.request = request
        self.masker = masker
        self.on_line = on_line
        self.cancel = cancel
        self.started = started
        self.t0 = time.monotonic()
        self.buf = b""
        self.peak_rss = 0
        self.next_sample = self.t0 + 0.05

    def emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if "\r" in text:  # progress bars redraw with \r: keep what was last shown
            text = next((p for p in reversed(text.split("\r")) if p), "")
        self.on_line(self.masker.mask(text) if self.masker else text)

    def read(self, fd: int, wait: float, pidfd: int | None) -> bool:
        """Read what is available; False at end of file. Also wakes when the process
        exits (its pidfd becomes readable), so nothing waits for a polling interval."""
        watch = [fd] if pidfd is None else [fd, pidfd]
        ready, _, _ = select.select(watch, [], [], wait)
        if fd not in ready:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            if self.buf:
                self.emit(self.buf)
                self.buf = b""
            return False
        self.buf += chunk
        if b"\n" in self.buf:
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                self.emit(line)
        if len(self.buf) > _MAX_LINE:
            self.emit(self.buf)
            self.buf = b""
        return True

    def signal_group(self, sig: int) -> bool:
        try:
            os.killpg(self.pgid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def group_alive(self) -> bool:
        """Whether any process of the job's group still lives. Orphans of the group are
        our children (we are a subreaper), so their zombies are reaped here first: a dead
        process must not count as one left behind."""
        while True:
            try:
                pid, _ = os.waitpid(-self.pgid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        return self.signal_group(0)

    def sample(self, now: float) -> None:
        if now < self.next_sample:
            return
        self.next_sample = now + self.ex.sample_every
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)

    def run(self) -> ExecOutcome:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)
        pidfd = _pidfd(self.proc.pid)
        deadline = self.t0 + self.request.timeout if self.request.timeout else None
        status: int | None = None
        rusage = None
        eof = False
        timed_out = cancelled = False
        term_at: float | None = None
        killed = False
        leftovers = False
        exited_at = 0.0
        idle = 0.001
        try:
            while True:
                if not eof:
                    eof = not self.read(fd, _POLL, pidfd if status is None else None)
                if status is None:
                    pid, st, ru = os.wait4(self.proc.pid, os.WNOHANG)
                    if pid:
                        status, rusage = st, ru
                        exited_at = time.monotonic()
                now = time.monotonic()
                if status is not None and eof:
                    break
                if status is None:
                    if term_at is None:
                        if deadline is not None and now >= deadline:
                            timed_out = True
                        elif self.cancel.requested.is_set():
                            cancelled = True
                        if timed_out or cancelled:
                            self.signal_group(signal.SIGTERM)
                            term_at = now
                    self.sample(now)
                elif now - exited_at > self.ex.grace + 0.2 and not self.group_alive():
                    # Only a process that left the job's group (setsid) holds the output
                    # open; it cannot be told apart from an unrelated daemon: stop reading.
                    self.on_line("conveyor: stopped reading output held open by a detached process")
                    break
                elif term_at is None and now - exited_at > 0.2 and self.group_alive():
                    # The main process is gone (and what it wrote has been read) but
                    # something in its group keeps the output open: a process left
                    # behind. Terminate it like a timeout.
                    leftovers = True
                    self.signal_group(signal.SIGTERM)
                    term_at = now
                if (
                    term_at is not None
                    and not killed
                    and (now - term_at >= self.ex.grace or self.cancel.force.is_set())
                ):
                    self.signal_group(signal.SIGKILL)
                    killed = True
                if eof and status is None:
                    # Output closed, process still there: wait for its exit (or a check).
                    if pidfd is not None:
                        select.select([pidfd], [], [], _POLL)
                    else:
                        time.sleep(idle)
                        idle = min(idle * 2, _POLL)
        finally:
            if pidfd is not None:
                os.close(pidfd)
            if status is None:  # only on an exception in this thread: never leave the group
                self.signal_group(signal.SIGKILL)
                _, status, rusage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.proc.stdout.close()
        # Processes that closed their output and live on are still part of the job.
        if self.end_group():
            leftovers = leftovers or not (timed_out or cancelled)
        if leftovers:
            self.on_line("conveyor: terminated processes the job left running")
        code = self.proc.returncode
        return ExecOutcome(
            exit_code=128 - code if code < 0 else code,
            started_at=self.started,
            finished_at=time.time(),
            timed_out=timed_out,
            cancelled=cancelled and not timed_out,
            cpu_time=rusage.ru_utime + rusage.ru_stime if rusage is not None else None,
            # Sampled only: wait4's ru_maxrss would include this process's own memory,
            # which a job started by (v)fork inherits until it execs.
            peak_rss=self.peak_rss or None,
            leftover_killed=1 if leftovers else 0,
        )

    def end_group(self) -> bool:
        """Stop what is left of the job's process group after its main process exited:
        SIGTERM, the grace period (none once a second ^C forced it), then SIGKILL.
        Whether anything was left."""
        if not self.group_alive():
            return False
        self.signal_group(signal.SIGTERM)
        end = time.monotonic() + (0 if self.cancel.force.is_set() else self.ex.grace)
        while self.group_alive() and time.monotonic() < end:
            time.sleep(0.02)
        self.signal_group(signal.SIGKILL)
        self.group_alive()
        return True


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _without_shell(argv: tuple[str, ...], env: object) -> list[str] | None:
    """The direct argv for a one-simple-command script, or None to use the shell."""
    if argv[:-1] not in _STOCK_SHELLS:
        return None
    script = argv[-1].strip()
    if not script or any(ch in _SHELL_SYNTAX for ch in script):
        return None
    words = script.split()
    if words[0] in _BUILTINS or "/" in words[0]:
        return None
    path = env.get("PATH") if isinstance(env, dict) else None
    program = _which(words[0], path)
    if program is None:
        return None  # let the shell report 'command not found' as it would
    return [program, *words[1:]]


class _Watchdog:
    """This process's one watchdog (see `watchdog.py`): started with the first job,
    told each job's process group, left to exit by itself when this process does."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._tried = False
        self._lock = threading.Lock()

    def watch(self, pgid: int, grace: float) -> None:
        if not self._tried:
            self._start()
        self._send(f"+{pgid} {grace}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def _start(self) -> None:
        with self._lock:  # two workers start their first jobs at once: one watchdog
            if self._tried:
                return
            self._tried = True
            if not sys.executable:
                return
            # Both ends are close-on-exec: no job inherits the write end (the watchdog
            # would then wait for the jobs it is there to stop), and only the watchdog
            # gets the read end, as its standard input.
            read, write = os.pipe()
            try:
                # posix_spawn: no fork of this multi-threaded process. Its own session, so
                # a signal to Conveyor's process group or terminal does not reach it.
                os.posix_spawn(
                    sys.executable,
                    [sys.executable, "-I", "-S", _WATCHDOG_SCRIPT],
                    {},
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, read, 0),
                        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                        (os.POSIX_SPAWN_DUP2, 1, 2),
                    ],
                    setsid=True,
                )
            except (OSError, NotImplementedError):
                # Without it, jobs are still stopped on every exit Conveyor can react to.
                os.close(write)
                return
            finally:
                os.close(read)
            self._fd = write

    def _send(self, line: str) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            os.write(fd, line.encode())  # under PIPE_BUF: atomic among the workers
        except OSError:  # the watchdog itself is gone
            self._fd = None


_WATCHDOG = _Watchdog()

_SUBREAPER_TRIED = False
_SUBREAPER_LOCK = threading.Lock()


def _become_subreaper() -> None:
    """Make this process adopt the orphans of its jobs (Linux's PR_SET_CHILD_SUBREAPER),
    so a job's exited grandchildren can be reaped at once rather than by whatever init
    the machine has, and none is mistaken for a process left running."""
    global _SUBREAPER_TRIED
    if _SUBREAPER_TRIED or not sys.platform.startswith("linux"):
        return
    # Under a lock: two workers start their first jobs at once, and neither job may be
    # spawned before this process is a subreaper.
    with _SUBREAPER_LOCK:
        if _SUBREAPER_TRIED:
            return
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(36, 1, 0, 0, 0)  # 36: PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass
        _SUBREAPER_TRIED = True


@functools.lru_cache(maxsize=1024)
def _which(program: str, path: str | None) -> str | None:
    """shutil.which, remembered: large graphs run the same few programs many times."""
    import shutil

    return shutil.which(program, path=path)
