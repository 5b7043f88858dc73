"""Typed events of a run, and the bus that hands them to sinks.

Events are NamedTuples (immutable, typed, and about ten times cheaper to define than
dataclasses, which every run's start-up pays for).

The scheduler only emits; the terminal view, the event log, the run summary (and,
later, history, metrics and gates) are sinks. A sink's failure is not the run's
failure: it is reported once on the bus's `errors` list and the sink is dropped.
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Protocol

from conveyor.model import CheckResult, GateResult, JobResult, RunContext


class RunStarted(NamedTuple):
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


class JobQueued(NamedTuple):
    name: str
    time: float


class JobStarted(NamedTuple):
    name: str
    attempt: int
    time: float
    log_path: str
    cached: bool = False
    """A cache hit: nothing executes, the log is replayed and the job finishes at once."""


class JobOutput(NamedTuple):
    name: str
    line: str
    """One line of combined stdout/stderr, secrets already masked, no newline."""
    time: float


class JobRetrying(NamedTuple):
    name: str
    attempt: int
    """The attempt that failed."""
    reason: str
    delay: float
    time: float


class JobFinished(NamedTuple):
    result: JobResult
    time: float


class ChecksFinished(NamedTuple):
    phase: str
    """'before' (the first job) or 'after' (the last)."""
    results: tuple[CheckResult, ...]
    time: float


class RunFinished(NamedTuple):
    run_id: str
    status: str
    """'success', 'failed' or 'interrupted'."""
    results: tuple[JobResult, ...]
    started_at: float
    finished_at: float
    critical_path: tuple[str, ...] = ()
    gates: tuple[GateResult, ...] = ()
    """The pipeline's own gates (each job's are on its result)."""
    checks: tuple[CheckResult, ...] = ()
    """The checks before and after the jobs."""

    @property
    def all_gates(self) -> tuple[GateResult, ...]:
        """Every gate of the run: each job's, then the pipeline's."""
        return (*(g for r in self.results for g in r.gates), *self.gates)

    @property
    def wall_time(self) -> float:
        return self.finished_at - self.started_at


Event = (
    RunStarted
    | JobQueued
    | JobStarted
    | JobOutput
    | JobRetrying
    | JobFinished
    | ChecksFinished
    | RunFinished
)


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class EventBus:
    """Delivers each event to every sink, one event at a time, in emission order.

    A sink may have an `events` attribute, the event types it wants: it is then given
    only those (a 1,000-job no-op run emits thousands of events, most sinks want few)."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self._sinks: list[Sink] = list(sinks or [])
        self._lock = threading.Lock()
        self._routes: dict[type, list[Sink]] = {}
        self.errors: list[str] = []

    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)
            self._routes.clear()

    def _route(self, kind: type) -> list[Sink]:
        route = self._routes.get(kind)
        if route is None:
            route = [s for s in self._sinks if kind in getattr(s, "events", (kind,))]
            self._routes[kind] = route
        return route

    def emit(self, event: Event) -> None:
        with self._lock:
            route = self._route(type(event))
            for sink in route:
                try:
                    sink.handle(event)
                except Exception as exc:  # a broken sink must not break the build
                    self.errors.append(f"{type(sink).__name__}: {exc}")
                    self._sinks.remove(sink)
                    self._routes.clear()  # `route` itself stays whole for this event

    def close(self) -> None:
        with self._lock:
            for sink in self._sinks:
                try:
                    sink.close()
                except Exception as exc:
                    self.errors.append(f"{type(sink).__name__}: {exc}")
