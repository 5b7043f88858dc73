"""What an executor is given and what it returns, whatever runs the job.

Every process Conveyor starts for a pipeline reaches the machine through an `Executor`:
the scheduler's job attempts and the command gates (`execute`: a whole job, its output
streamed, masked, timed out and stopped with its process group), and the short commands
asked for a tool's version (`probe`: run to completion, output captured). Callers are
given the one executor of the run (`run.compose` builds it); none starts a process
itself, so a remote executor can take over all of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from conveyor.model import Digest


@dataclass(frozen=True)
class ExecRequest:
    """One attempt at a job (or a command gate): what runs, where, with what."""

    name: str
    """What the attempt is called in messages (the job's instance name, `gate NAME`)."""
    argv: tuple[str, ...]
    """The shell and its script, e.g. ("sh", "-ec", "make test")."""
    cwd: str
    """Absolute working directory; it must exist."""
    env: Mapping[str, str]
    """The whole environment of the process (nothing else is inherited)."""
    timeout: float | None = None
    """Seconds before the process group is stopped; None: no limit."""
    secrets: tuple[str, ...] = ()
    """Values to mask in every line of output."""
    remote: RemoteSpec | None = None
    """Set when the attempt runs on a remote worker (REAPI Execute), not here."""


@dataclass(frozen=True)
class RemoteSpec:
    """What a remote execution needs beyond the request: the Action to execute and what
    to upload for it. The outputs come back into `ExecRequest.cwd`."""

    root: str
    """The workspace root: no output is written outside it, whatever the server says."""
    action: Digest
    """The digest of the REAPI Action (its Command, input root, timeout, platform)."""
    blobs: Mapping[Digest, bytes]
    """The Action, the Command and the input root's Directory messages, by digest."""
    files: Mapping[Digest, str]
    """The input files by digest: absolute paths to upload from when the CAS lacks them."""
    values_file: str | None = None
    """Where the job's values ($CONVEYOR_OUTPUT) are written when the worker returns
    some, in the file's own format, as if the job had written them here."""


@dataclass
class Cancel:
    """Set `requested` to stop a running attempt (SIGTERM, then SIGKILL after the grace
    period); set `force` as well to skip the grace period (a second Ctrl-C)."""

    requested: threading.Event = field(default_factory=threading.Event)
    force: threading.Event = field(default_factory=threading.Event)
    reason: str = ""


@dataclass(frozen=True)
class ExecOutcome:
    """How an attempt ended, and what it cost."""

    exit_code: int | None
    """Exit status; 128+N when killed by signal N; None if it never started."""
    started_at: float
    finished_at: float
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None
    """Why the process could not be started (shell not found, bad directory...)."""
    cpu_time: float | None = None
    peak_rss: int | None = None
    leftover_killed: int = 0
    """Processes still in the job's group after it exited, which were terminated."""
    worker: str | None = None
    """The remote worker that ran the attempt (None: this machine)."""

    @property
    def ok(self) -> bool:
        """Exited 0, in time, uncancelled."""
        return self.exit_code == 0 and not (self.timed_out or self.cancelled or self.error)


@dataclass(frozen=True)
class ProbeResult:
    """What a short command (a tool's `--version`) printed, and how it ended."""

    returncode: int | None
    """As subprocess reports it (-N when killed by signal N); None when it did not
    start or did not finish within its timeout."""
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    """It was still running at its timeout, and was killed with its process group."""
    error: OSError | None = None
    """Why it could not be started (program or directory missing, not executable)."""


class Executor(Protocol):
    """Runs processes for a pipeline: job attempts and command gates (`execute`), and
    short commands whose output Conveyor reads (`probe`)."""

    def execute(
        self, request: ExecRequest, on_line: Callable[[str], None], cancel: Cancel
    ) -> ExecOutcome:
        """Run one attempt to its end: every line of its output (masked) to `on_line`,
        stopped with its whole process group on timeout or `cancel`."""
        ...

    def probe(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        timeout: float,
        cwd: str | None = None,
    ) -> ProbeResult:
        """Run a short command to completion in its own process group and capture its
        stdout and stderr; at `timeout` seconds the whole group is killed."""
        ...


class Cas(Protocol):
    """The content-addressable storage a remote executor uploads inputs to and reads
    outputs from (conveyor.cache.remote.RemoteStore is one: the executor may not import
    the cache, so it names only what it uses)."""

    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of `digests` the CAS lacks."""
        ...

    def put_many(self, blobs: Sequence[bytes]) -> list[Digest]:
        """Store blobs (batched); their digests."""
        ...

    def put_file(self, path: str) -> Digest:
        """Store a file's bytes; its digest."""
        ...

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """Read blobs (batched, verified); an error names any that is missing."""
        ...

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Read a blob into `dest` (verified, then renamed into place)."""
        ...
