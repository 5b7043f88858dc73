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
    """The run began: its plan is made, its directory exists, no job has started."""

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
    """A job became ready: everything it needs finished well."""

    name: str
    time: float


class JobStarted(NamedTuple):
    """An attempt of a job began (or a hit's log is about to be replayed)."""

    name: str
    attempt: int
    time: float
    log_path: str
    cached: bool = False
    """A cache hit: nothing executes, the log is replayed and the job finishes at once."""


class JobOutput(NamedTuple):
    """A line a job printed, or a line Conveyor says about it (`conveyor: ...`)."""

    name: str
    line: str
    """One line of combined stdout/stderr, secrets already masked, no newline."""
    time: float


class JobRetrying(NamedTuple):
    """An attempt failed and another follows after `delay` seconds."""

    name: str
    attempt: int
    """The attempt that failed."""
    reason: str
    delay: float
    time: float


class JobWaiting(NamedTuple):
    """A job is ready, but its resource group is held by another run on this machine:
    it waits for it (it starts with a JobStarted once it holds the group)."""

    name: str
    group: str
    holder: str
    """Who holds it: the other run's pid, start time and command line."""
    time: float


class JobFinished(NamedTuple):
    """A job is done: ran, served from the cache, failed, skipped or cancelled."""

    result: JobResult
    time: float


class ChecksFinished(NamedTuple):
    """The checks of one phase were evaluated."""

    phase: str
    """'before' (the first job) or 'after' (the last)."""
    results: tuple[CheckResult, ...]
    time: float


class RunFinished(NamedTuple):
    """The run is over: every job's result, the gates and checks, the critical path
    (`insights.critical_path`). The last event; sinks are closed after it."""

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
    checks_time: float | None = None
    """Seconds the checks before the build took (no job is queued until they are done)."""

    @property
    def all_gates(self) -> tuple[GateResult, ...]:
        """Every gate of the run: each job's, then the pipeline's."""
        return (*(g for r in self.results for g in r.gates), *self.gates)

    @property
    def wall_time(self) -> float:
        """Seconds from the run's start to its end."""
        return self.finished_at - self.started_at


Event = (
    RunStarted
    | JobQueued
    | JobStarted
    | JobOutput
    | JobRetrying
    | JobWaiting
    | JobFinished
    | ChecksFinished
    | RunFinished
)


class Sink(Protocol):
    """Whatever watches a run: the terminal view, the run directory's files, the gate
    keeper's measurements; later the dashboard. It may name the event types it wants in
    an `events` attribute."""

    def handle(self, event: Event) -> None:
        """Take one event, on the emitting thread, under the bus's lock: be quick."""
        ...

    def close(self) -> None:
        """The run is over (or failed): flush and release what the sink holds."""
        ...


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
        """Add a sink; it gets the events emitted from now on."""
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
        """Hand `event` to every sink that wants it; a sink that raises is dropped, its
        error kept in `errors`."""
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
        """Close every sink (each one's failure kept in `errors`)."""
        with self._lock:
            for sink in self._sinks:
                try:
                    sink.close()
                except Exception as exc:
                    self.errors.append(f"{type(sink).__name__}: {exc}")
