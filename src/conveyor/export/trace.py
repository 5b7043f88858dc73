"""A recorded run as a Chrome trace: a span per job under a span for the run, in the
trace-event format that chrome://tracing and ui.perfetto.dev open. (The same run as
OpenTelemetry spans sent to a collector is `export.otlp`.)"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from conveyor.fsutil import atomic_write
from conveyor.history.record import JobRow, RunRecord


class _Timed(NamedTuple):
    """A job that ran (or was restored): its row, and when it started and finished."""

    job: JobRow
    started_at: float
    finished_at: float


def _timed(record: RunRecord) -> list[_Timed]:
    return sorted(
        (
            _Timed(j, j.started_at, j.finished_at)
            for j in record.jobs
            if j.started_at is not None and j.finished_at is not None
        ),
        key=lambda t: (t.started_at, t.job.name),
    )


def _lanes(jobs: list[_Timed]) -> dict[str, int]:
    """A row per concurrently running job (1, 2, ...): the first row free when it starts."""
    ends: list[float] = []
    lane_of: dict[str, int] = {}
    for timed in jobs:
        name = timed.job.name
        for i, end in enumerate(ends):
            if end <= timed.started_at:
                ends[i] = timed.finished_at
                lane_of[name] = i + 1
                break
        else:
            ends.append(timed.finished_at)
            lane_of[name] = len(ends)
    return lane_of


def _attributes(job: JobRow) -> dict[str, object]:
    facts: dict[str, object] = {
        "status": job.status,
        "cached": job.cached,
        "exit_code": job.exit_code,
        "attempts": job.attempts,
        "queue_time": job.queue_time,
        "cpu_time": job.cpu_time,
        "peak_rss": job.peak_rss,
    }
    out = {k: v for k, v in facts.items() if v is not None}
    if job.action_digest:
        out["action_digest"] = job.action_digest
    return out


def chrome(record: RunRecord) -> dict[str, Any]:
    """The Chrome trace-event document (a lane per job running at once)."""
    run = record.run
    start = run.started_at
    jobs = _timed(record)
    lanes = _lanes(jobs)
    us = 1_000_000
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": f"run {run.id}"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 0, "args": {"name": "run"}},
    ]
    for lane in sorted(set(lanes.values())):
        events.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": 1,
                "tid": lane,
                "args": {"name": f"slot {lane}"},
            }
        )
    end = run.finished_at if run.finished_at is not None else start
    events.append(
        {
            "name": run.pipeline,
            "cat": "run",
            "ph": "X",
            "pid": 1,
            "tid": 0,
            "ts": 0,
            "dur": round((end - start) * us),
            "args": {"status": run.status, "commit": run.commit, "branch": run.branch},
        }
    )
    for job, began, ended in jobs:
        events.append(
            {
                "name": job.name,
                "cat": "cached" if job.cached else "job",
                "ph": "X",
                "pid": 1,
                "tid": lanes[job.name],
                "ts": round((began - start) * us),
                "dur": round((ended - began) * us),
                "args": _attributes(job),
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome(path: str, record: RunRecord) -> None:
    """The Chrome trace of the run, written to `path` atomically."""
    atomic_write(path, json.dumps(chrome(record)))


def spans(record: RunRecord) -> int:
    """How many spans the run makes: one for the run, one per job."""
    return len(record.jobs) + 1
