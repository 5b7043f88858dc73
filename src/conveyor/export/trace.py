"""A recorded run as a trace: a span per job under a span for the run. Two forms: the
Chrome trace-event format (a file chrome://tracing and ui.perfetto.dev open) and
OpenTelemetry's OTLP/HTTP JSON encoding (POSTed to a collector's /v1/traces)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from conveyor.errors import EnvironmentProblem
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


def _value(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attrs(values: Mapping[str, object]) -> list[dict[str, object]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def otlp(record: RunRecord) -> dict[str, Any]:
    """ExportTraceServiceRequest in OTLP's JSON encoding (ids in hex, times in ns)."""
    run = record.run
    trace_id = hashlib.sha256(run.id.encode()).hexdigest()[:32]

    def span_id(name: str) -> str:
        return hashlib.sha256(f"{run.id}\0{name}".encode()).hexdigest()[:16]

    def ns(t: float) -> str:
        return str(round(t * 1e9))

    end = run.finished_at if run.finished_at is not None else run.started_at
    root = span_id("")
    spans = [
        {
            "traceId": trace_id,
            "spanId": root,
            "name": f"run {run.pipeline}",
            "kind": 1,
            "startTimeUnixNano": ns(run.started_at),
            "endTimeUnixNano": ns(end),
            "attributes": _attrs(
                {
                    "conveyor.run_id": run.id,
                    "conveyor.status": run.status,
                    "vcs.commit": run.commit,
                    "vcs.branch": run.branch,
                    "conveyor.event": run.event,
                }
            ),
            "status": {"code": 1 if run.status == "success" else 2},
        }
    ]
    for job, began, ended in _timed(record):
        ok = job.status in ("success", "skipped")
        spans.append(
            {
                "traceId": trace_id,
                "spanId": span_id(job.name),
                "parentSpanId": root,
                "name": job.name,
                "kind": 1,
                "startTimeUnixNano": ns(began),
                "endTimeUnixNano": ns(ended),
                "attributes": _attrs({f"conveyor.{k}": v for k, v in _attributes(job).items()}),
                "status": {"code": 1 if ok else 2},
            }
        )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attrs(
                        {"service.name": "conveyor", "host.name": run.host or None}
                    )
                },
                "scopeSpans": [{"scope": {"name": "conveyor"}, "spans": spans}],
            }
        ]
    }


def write_chrome(path: str, record: RunRecord) -> None:
    """The Chrome trace of the run, written to `path` atomically."""
    atomic_write(path, json.dumps(chrome(record)))


def otlp_endpoint(url: str) -> str:
    """A collector's address as given (its base, or the full path) -> its traces URL."""
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else f"{url}/v1/traces"


def send_otlp(record: RunRecord, url: str) -> str:
    """POST the run's spans to an OTLP/HTTP collector; returns the URL it went to."""
    import urllib.error
    import urllib.request

    endpoint = otlp_endpoint(url)
    body = json.dumps(otlp(record)).encode()
    request = urllib.request.Request(
        endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise EnvironmentProblem(
            f"cannot send the trace to {endpoint}: {exc}",
            hint="is an OpenTelemetry collector listening there (OTLP/HTTP)?",
        ) from None
    return endpoint


def spans(record: RunRecord) -> int:
    """How many spans the run makes: one for the run, one per job."""
    return len(record.jobs) + 1
