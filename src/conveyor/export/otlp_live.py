"""A run's spans sent to an OTLP/HTTP collector as the run goes (`conveyor run --otlp`).

A sink on the run's event bus: each job's span is sent when the job ends, the run's own
span (and the spans of jobs that never started) when the run ends, all of them the same
spans `conveyor trace --otlp` sends for the recorded run, with the same ids. Sending is
on a thread of its own, since a sink's `handle` runs under the bus's lock and a
collector can be slow. A collector that is down never fails the run: the first
failure stops the sending and becomes one warning when the run ends.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import replace

from conveyor import __version__
from conveyor.errors import EnvironmentProblem
from conveyor.events import Event, JobFinished, RunFinished, RunStarted
from conveyor.export import otlp
from conveyor.history.record import JobRow, RunRecord, RunRow
from conveyor.model import JobResult

_Batch = tuple[RunRecord, tuple[JobRow, ...], bool]
"""What to send: the run as known so far, some of its jobs, and the run's span or not."""


def job_row(result: JobResult) -> JobRow:
    """A job's result as the history would record it."""
    return JobRow.from_result(result)


class OtlpExport:
    """The sink. `wait` bounds how long the run's end waits for the last spans."""

    events = (RunStarted, JobFinished, RunFinished)

    def __init__(self, config: otlp.Settings, *, wait: float | None = None) -> None:
        self.config = config
        self.wait = config.timeout + 1 if wait is None else wait
        self.run: RunRow | None = None
        self.sent: set[str] = set()
        self.spans = 0
        self.problem: str | None = None
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        # Started with the run: a run that fails before it starts leaves no thread.
        self._thread = threading.Thread(target=self._send_all, name="otlp", daemon=True)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            ctx = event.context
            self.run = RunRow(
                id=event.run_id,
                pipeline=event.pipeline,
                workspace=event.workspace,
                commit=ctx.commit,
                branch=ctx.branch,
                tag=ctx.tag,
                event=ctx.event,
                trigger=ctx.ci or "local",
                host=os.uname().nodename,
                conveyor_version=__version__,
                started_at=event.time,
                status="running",
                jobs_total=len(event.jobs) + len(event.skipped),
                jobs_cached=0,
                parallelism=event.parallelism,
            )
            self._thread.start()
        elif self.run is None:
            return
        elif isinstance(event, JobFinished):
            # A job that never started has no time yet: it is sent with the run's end.
            if event.result.started_at is not None:
                self._enqueue([event.result], with_run=False)
        elif isinstance(event, RunFinished):
            self.run = replace(
                self.run,
                started_at=event.started_at,
                finished_at=event.finished_at,
                status=event.status,
                jobs_total=len(event.results),
                jobs_cached=sum(1 for r in event.results if r.cached),
            )
            self._enqueue([r for r in event.results if r.name not in self.sent], with_run=True)

    def _enqueue(self, results: Sequence[JobResult], *, with_run: bool) -> None:
        assert self.run is not None
        self.sent.update(r.name for r in results)
        rows = tuple(job_row(r) for r in results)
        self._queue.put((RunRecord(self.run), rows, with_run))

    def _send_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            # Whatever else is waiting goes in the same request (a burst of cache hits
            # is one POST, not one each).
            batches = [item]
            done = False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                batches.append(more)
            if self.problem is None:
                self._send(batches)
            if done:
                return

    def _send(self, batches: list[_Batch]) -> None:
        record = batches[-1][0]  # the latest facts of the run
        jobs = tuple(j for _, rows, _ in batches for j in rows)
        with_run = any(w for _, _, w in batches)
        try:
            message = otlp.request(record, self.config, jobs=jobs, with_run=with_run)
            otlp.post(message, self.config)
            self.spans += len(jobs) + with_run
        except EnvironmentProblem as exc:
            self.problem = exc.message

    def close(self) -> None:
        """Wait (a bounded time) for the last spans; a failure is one warning."""
        if not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(self.wait)
        if self._thread.is_alive():
            raise EnvironmentProblem(
                f"spans still not sent to {self.config.endpoint} after {self.wait:g}s;"
                " gave up (the run is not affected)"
            )
        if self.problem is not None:
            raise EnvironmentProblem(f"spans not sent: {self.problem} (the run is not affected)")
