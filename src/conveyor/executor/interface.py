"""What an executor is given and what it returns, whatever runs the job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ExecRequest:
    name: str
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    timeout: float | None = None
    secrets: tuple[str, ...] = ()
    """Values to mask in every line of output."""


@dataclass
class Cancel:
    """Set `requested` to stop a running attempt (SIGTERM, then SIGKILL after the grace
    period); set `force` as well to skip the grace period (a second Ctrl-C)."""

    requested: threading.Event = field(default_factory=threading.Event)
    force: threading.Event = field(default_factory=threading.Event)
    reason: str = ""


@dataclass(frozen=True)
class ExecOutcome:
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

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.cancelled or self.error)


class Executor(Protocol):
    def execute(
        self, request: ExecRequest, on_line: Callable[[str], None], cancel: Cancel
    ) -> ExecOutcome: ...
