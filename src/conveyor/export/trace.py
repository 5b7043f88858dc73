"""A recorded run as a trace: a span per job under a span for the run. Two forms: the
Chrome trace-event format (a file chrome://tracing and ui.perfetto.dev open) and
OpenTelemetry's OTLP/HTTP JSON encoding (POSTed to a collector's /v1/traces)."""

from __future__ import annotations

import hashlib
from typing import Any

from conveyor.history.record import RunRecord


def _timed(record: RunRecord) -> list[dict[str, Any]]:
    return sorted(
        (j for j in record.jobs if j["started_at"] is not None and j["finished_at"] is not None),
        key=lambda j: (j["started_at"], j["name"]),
    )


def _lanes(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """A row per concurrently running job (1, 2, ...): the first row free when it starts."""
    ends: list[float] = []
    lane_of: dict[str, int] = {}
    for job in jobs:
        for i, end in enumerate(ends):
            if end <= job["started_at"]:
                ends[i] = job["finished_at"]
                lane_of[job["name"]] = i + 1
                break
        else:
            ends.append(job["finished_at"])
            lane_of[job["name"]] = len(ends)
    return lane_of


def _attributes(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "cached", "exit_code", "attempts", "queue_time", "cpu_time", "peak_rss")
    out = {k: job[k] for k in keys if job.get(k) is not None}
    if job.get("action_digest"):
        out["action_digest"] = job["action_digest"]
    return out


def chrome(record: RunRecord) -> dict[str, Any]:
    run = record.run
    start = run["started_at"]
    jobs = _timed(record)
    lanes = _lanes(jobs)
    us = 1_000_000
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": f"run {run['id']}"}},
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
    end = run["finished_at"] if run["finished_at"] is not None else start
    events.append(
        {
            "name": run["pipeline"],
            "cat": "run",
            "ph": "X",
            "pid": 1,
            "tid": 0,
            "ts": 0,
            "dur": round((end - start) * us),
            "args": {"status": run["status"], "commit": run["commit"], "branch": run["branch"]},
        }
    )
    for job in jobs:
        events.append(
            {
                "name": job["name"],
                "cat": "cached" if job["cached"] else "job",
                "ph": "X",
                "pid": 1,
                "tid": lanes[job["name"]],
                "ts": round((job["started_at"] - start) * us),
                "dur": round((job["finished_at"] - job["started_at"]) * us),
                "args": _attributes(job),
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def otlp(record: RunRecord) -> dict[str, Any]:
    """ExportTraceServiceRequest in OTLP's JSON encoding (ids in hex, times in ns)."""
    run = record.run
    trace_id = hashlib.sha256(run["id"].encode()).hexdigest()[:32]

    def span_id(name: str) -> str:
        return hashlib.sha256(f"{run['id']}\0{name}".encode()).hexdigest()[:16]

    def ns(t: float) -> str:
        return str(round(t * 1e9))

    end = run["finished_at"] if run["finished_at"] is not None else run["started_at"]
    root = span_id("")
    spans = [
        {
            "traceId": trace_id,
            "spanId": root,
            "name": f"run {run['pipeline']}",
            "kind": 1,
            "startTimeUnixNano": ns(run["started_at"]),
            "endTimeUnixNano": ns(end),
            "attributes": _attrs(
                {
                    "conveyor.run_id": run["id"],
                    "conveyor.status": run["status"],
                    "vcs.commit": run["commit"],
                    "vcs.branch": run["branch"],
                    "conveyor.event": run["event"],
                }
            ),
            "status": {"code": 1 if run["status"] == "success" else 2},
        }
    ]
    for job in _timed(record):
        ok = job["status"] in ("success", "skipped")
        spans.append(
            {
                "traceId": trace_id,
                "spanId": span_id(job["name"]),
                "parentSpanId": root,
                "name": job["name"],
                "kind": 1,
                "startTimeUnixNano": ns(job["started_at"]),
                "endTimeUnixNano": ns(job["finished_at"]),
                "attributes": _attrs({f"conveyor.{k}": v for k, v in _attributes(job).items()}),
                "status": {"code": 1 if ok else 2},
            }
        )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attrs(
                        {"service.name": "conveyor", "host.name": run["host"] or None}
                    )
                },
                "scopeSpans": [{"scope": {"name": "conveyor"}, "spans": spans}],
            }
        ]
    }
