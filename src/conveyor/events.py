"""Typed events of a run, and the bus that hands them to sinks.

The scheduler only emits; the terminal view, the event log, the run summary (and,
later, history, metrics and gates) are sinks. A sink's failure is not the run's
failure: it is reported once on the bus's `errors` list and the sink is dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from conveyor.model import JobResult, RunContext


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    pipeline: str
    workspace: str
    run_dir: str
    context: RunContext
    jobs: tuple[str, ...]
    """Instance names that will run, in plan order."""
    skipped: tuple[tuple[str, str], ...]
    """(name, reason) of planned jobs that will not run."""
    parallelism: int
    time: float


@dataclass(frozen=True)
class JobQueued:
    name: str
    time: float


@dataclass(frozen=True)
class JobStarted:
    name: str
    attempt: int
    time: float
    log_path: str
    cached: bool = False
    """A cache hit: nothing executes, the log is replayed and the job finishes at once."""


@dataclass(frozen=True)
class JobOutput:
    name: str
    line: str
    """One line of combined stdout/stderr, secrets already masked, no newline."""
    time: float


@dataclass(frozen=True)
class JobRetrying:
    name: str
    attempt: int
    """The attempt that failed."""
    reason: str
    delay: float
    time: float


@dataclass(frozen=True)
class JobFinished:
    result: JobResult
    time: float


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str
    """'success', 'failed' or 'interrupted'."""
    results: tuple[JobResult, ...]
    started_at: float
    finished_at: float
    critical_path: tuple[str, ...] = field(default=())

    @property
    def wall_time(self) -> float:
        return self.finished_at - self.started_at


Event = RunStarted | JobQueued | JobStarted | JobOutput | JobRetrying | JobFinished | RunFinished


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class EventBus:
    """Delivers each event to every sink, one event at a time, in emission order."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self._sinks: list[Sink] = list(sinks or [])
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def emit(self, event: Event) -> None:
        with self._lock:
            for sink in list(self._sinks):
                try:
                    sink.handle(event)
                except Exception as exc:  # a broken sink must not break the build
                    self.errors.append(f"{type(sink).__name__}: {exc}")
                    self._sinks.remove(sink)

    def close(self) -> None:
        with self._lock:
            for sink in self._sinks:
                try:
                    sink.close()
                except Exception as exc:
                    self.errors.append(f"{type(sink).__name__}: {exc}")
