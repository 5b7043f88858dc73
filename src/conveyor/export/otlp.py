"""A recorded run as OpenTelemetry spans, sent to a collector over OTLP/HTTP.

The spans follow OpenTelemetry's CI/CD semantic conventions: the run is a pipeline run
(`cicd.pipeline.*`, kind SERVER, named "RUN <pipeline>"), each job a task run under it
(`cicd.pipeline.task.*`), the commit and branch are `vcs.ref.head.*`, and what only
Conveyor knows (cache hit, action digest, attempts, ...) is under `conveyor.`.
https://opentelemetry.io/docs/specs/semconv/cicd/cicd-spans/

Where they go is configured as every OpenTelemetry exporter is, by the standard
`OTEL_EXPORTER_OTLP_*` variables, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
(https://opentelemetry.io/docs/specs/otel/protocol/exporter/); an explicit URL wins.
The request is the official `ExportTraceServiceRequest` of opentelemetry-proto, encoded
as protobuf (the spec's default) or as OTLP's JSON. opentelemetry-proto and protobuf
are imported only when spans are encoded, never on `conveyor --help`'s path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import EnvironmentProblem, UsageError
from conveyor.history.record import JobRow, RunRecord

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
"""Where the spec says an OTLP/HTTP exporter sends traces when nothing says otherwise."""
DEFAULT_TIMEOUT = 10.0
PROTOCOLS = ("http/protobuf", "http/json")

# Span kinds and status codes, as opentelemetry-proto numbers them.
KIND_INTERNAL = 1
KIND_SERVER = 2
STATUS_UNSET = 0
STATUS_ERROR = 2

# cicd.pipeline.task.run.result for each job status; every value is one of the
# convention's enum (success, failure, error, timeout, cancellation, skip).
TASK_RESULT = {
    "success": "success",
    "failed": "failure",
    "timed_out": "timeout",
    "cancelled": "cancellation",
    "skipped": "skip",
}
# cicd.pipeline.result for each run status. A run still 'running' in the history is
# one whose Conveyor died (or that goes on): the CI system's error, not the code's.
PIPELINE_RESULT = {
    "success": "success",
    "failed": "failure",
    "interrupted": "cancellation",
    "running": "error",
}
_FINE = ("success", "skip")


@dataclass(frozen=True)
class Settings:
    """Where and how to send: the traces URL, extra headers (auth), seconds to wait,
    the encoding, gzip or not, and the resource attributes the environment adds."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    protocol: str = "http/protobuf"
    gzip: bool = False
    resource: Mapping[str, str] = field(default_factory=dict)
    service_name: str | None = None


@dataclass(frozen=True)
class Sent:
    """What the collector took: the URL, the spans sent, and those it said it rejected
    (OTLP's partial success) with its message."""

    endpoint: str
    spans: int
    rejected: int = 0
    message: str = ""


# -- configuration from the environment ---------------------------------------------------


def _signal(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The traces-specific variable OTEL_EXPORTER_OTLP_TRACES_<name>, else the generic
    OTEL_EXPORTER_OTLP_<name>: (variable, value), or None when neither is set."""
    for var in (f"OTEL_EXPORTER_OTLP_TRACES_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = environ.get(var, "").strip()
        if value:
            return var, value
    return None


def _pairs(var: str, text: str, *, secret: bool = False) -> dict[str, str]:
    """`k=v,k2=v2` with percent-encoded values (the spec's format for headers and
    resource attributes). A malformed entry is the user's mistake: the spec lets an SDK
    drop the variable quietly, but a header dropped quietly is a 401 to puzzle over."""
    out: dict[str, str] = {}
    for i, entry in enumerate(text.split(","), 1):
        if not entry.strip():
            continue
        key, eq, value = entry.partition("=")
        if not eq or not key.strip():
            shown = f"entry {i}" if secret else repr(entry.strip())
            raise UsageError(
                f"{var}: {shown} is not key=value",
                hint=f"{var} is comma-separated key=value pairs, values percent-encoded"
                " (Authorization=Bearer%20TOKEN)",
            )
        out[key.strip()] = urllib.parse.unquote(value.strip())
    return out


def _url(var: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{var}: {url!r} is not an http:// or https:// URL",
            hint="an OTLP/HTTP collector's address, e.g. http://localhost:4318",
        )
    return url


def traces_url(url: str) -> str:
    """A base URL -> its traces URL: `/v1/traces` appended (once) to its path."""
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else f"{url}/v1/traces"


def endpoint(url: str | None, environ: Mapping[str, str]) -> str:
    """The traces URL: an explicit one (a collector's base, or the full path) first;
    then OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as-is; then OTEL_EXPORTER_OTLP_ENDPOINT
    with /v1/traces appended; then the spec's default, localhost:4318."""
    if url:
        return traces_url(_url("--otlp", url))
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return _url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific)
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return _url("OTEL_EXPORTER_OTLP_ENDPOINT", base).rstrip("/") + "/v1/traces"
    return DEFAULT_ENDPOINT


def settings(url: str | None, environ: Mapping[str, str]) -> Settings:
    """The exporter's settings from an explicit URL (or None) and the environment."""
    headers: dict[str, str] = {}
    # The generic headers, then the traces-specific ones over them (key by key).
    for var in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        if environ.get(var, "").strip():
            headers.update(_pairs(var, environ[var], secret=True))
    timeout = DEFAULT_TIMEOUT
    if found := _signal(environ, "TIMEOUT"):
        var, text = found
        try:
            timeout = float(text) / 1000  # the spec's unit is milliseconds
        except ValueError:
            timeout = -1
        if timeout <= 0:
            raise UsageError(
                f"{var}: {text!r} is not a number of milliseconds",
                hint=f"e.g. {var}=10000 (10 seconds)",
            )
    protocol = "http/protobuf"
    if found := _signal(environ, "PROTOCOL"):
        var, protocol = found
        if protocol not in PROTOCOLS:
            raise UsageError(
                f"{var}: {protocol!r} is not supported",
                hint="Conveyor speaks OTLP over HTTP: http/protobuf (the default) or"
                " http/json; a collector's OTLP/HTTP port is usually 4318",
            )
    gzip = False
    if found := _signal(environ, "COMPRESSION"):
        var, compression = found
        if compression not in ("gzip", "none"):
            raise UsageError(f"{var}: {compression!r} is not supported", hint="gzip or none")
        gzip = compression == "gzip"
    resource = {}
    if environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip():
        resource = _pairs("OTEL_RESOURCE_ATTRIBUTES", environ["OTEL_RESOURCE_ATTRIBUTES"])
    return Settings(
        endpoint=endpoint(url, environ),
        headers=headers,
        timeout=timeout,
        protocol=protocol,
        gzip=gzip,
        resource=resource,
        service_name=environ.get("OTEL_SERVICE_NAME", "").strip() or None,
    )


def option(value: str, environ: Mapping[str, str], *, before: str) -> Settings:
    """The settings for `--otlp [URL]` ('' when given no URL). Its URL is optional, so
    a word after it that is not one (a run id, a job) is taken for the user's slip;
    `before` is the command line that says it (`conveyor trace RUN --otlp`)."""
    if value and "://" not in value:
        raise UsageError(
            f"--otlp takes a collector's URL (http://...), not {value!r}",
            hint=f"to name {value!r}, put it before the option: {before}",
        )
    return settings(value or None, environ)


# -- the spans -------------------------------------------------------------------------------


def _ns(t: float) -> int:
    return round(t * 1e9)


def trace_id(run_id: str) -> bytes:
    """The run's trace id: derived from its id, so sending a run twice sends the same
    spans (a collector or backend deduplicates them) rather than a second trace."""
    return hashlib.sha256(run_id.encode()).digest()[:16]


def span_id(run_id: str, name: str) -> bytes:
    """A span's id, from the run's id and the span's place in it ('' for the run)."""
    return hashlib.sha256(f"{run_id}\0{name}".encode()).digest()[:8]


def _set(span: Span, attributes: Mapping[str, object]) -> None:
    for key, value in attributes.items():
        if value is None:
            continue
        kv = span.attributes.add(key=key)
        _fill(kv.value, value)


def _fill(target: Any, value: object) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    else:
        target.string_value = str(value)


def _run_facts(record: RunRecord) -> dict[str, object]:
    """The pipeline run and its commit, as the CI/CD and VCS conventions name them."""
    run = record.run
    ref = run.branch or run.tag
    return {
        "cicd.pipeline.name": run.pipeline,
        "cicd.pipeline.run.id": run.id,
        "vcs.ref.head.revision": run.commit,
        "vcs.ref.head.name": ref,
        "vcs.ref.type": ("branch" if run.branch else "tag") if ref else None,
    }


def resource_attributes(record: RunRecord, config: Settings) -> dict[str, object]:
    """The resource: Conveyor's defaults, under OTEL_RESOURCE_ATTRIBUTES, under
    OTEL_SERVICE_NAME (the spec's order); the run's own facts are not overridden."""
    run = record.run
    attrs: dict[str, object] = {
        "service.name": "conveyor",
        "service.version": run.conveyor_version,
        "host.name": run.host or None,
    }
    attrs.update(config.resource)
    if config.service_name:
        attrs["service.name"] = config.service_name
    attrs.update(_run_facts(record))
    return attrs


def _job_span(record: RunRecord, job: JobRow, parent: bytes, add: Any) -> Span:
    """A job's span under the run's; jobs that never started (skipped) are a
    zero-length span at the run's end, so that every job has its result."""
    run = record.run
    end_of_run = run.finished_at if run.finished_at is not None else run.started_at
    began = job.started_at if job.started_at is not None else end_of_run
    ended = job.finished_at if job.finished_at is not None else began
    result = TASK_RESULT.get(job.status, "error")
    span: Span = add()
    span.trace_id = trace_id(run.id)
    span.span_id = span_id(run.id, job.name)
    span.parent_span_id = parent
    span.name = job.name
    span.kind = KIND_INTERNAL  # type: ignore[assignment]
    span.start_time_unix_nano = _ns(began)
    span.end_time_unix_nano = _ns(ended)
    _set(
        span,
        {
            "cicd.pipeline.task.name": job.name,
            "cicd.pipeline.task.run.id": f"{run.id}/{job.name}",
            "cicd.pipeline.task.run.result": result,
            "error.type": None if result in _FINE else result,
            "conveyor.job.status": job.status,
            "conveyor.job.reason": job.reason or None,
            "conveyor.cache.hit": job.cached,
            "conveyor.action.digest": job.action_digest,
            "conveyor.job.exit_code": job.exit_code,
            "conveyor.job.attempts": job.attempts,
            "conveyor.job.queue_time": job.queue_time,
            "conveyor.job.cpu_time": job.cpu_time,
            "conveyor.job.peak_rss": job.peak_rss,
            "conveyor.cache.saved": job.saved,
        },
    )
    if result not in _FINE:
        span.status.code = STATUS_ERROR  # type: ignore[assignment]
        span.status.message = job.reason or result
    return span


def _job_spans(record: RunRecord, job: JobRow, parent: bytes, add: Any) -> None:
    """The spans of one job: its own span, and under it the phases of its timeline
    (check, restore, run, store: `JobRow.phases`), so a backend shows where its time
    went; the gaps between them are its queue time."""
    own = _job_span(record, job, parent, add)
    run_id = record.run.id
    for phase, began, ended in job.phases():
        span: Span = add()
        span.trace_id = own.trace_id
        span.span_id = span_id(run_id, f"{job.name}\0{phase}")
        span.parent_span_id = own.span_id
        span.name = f"{job.name}: {phase}"
        span.kind = KIND_INTERNAL  # type: ignore[assignment]
        span.start_time_unix_nano = _ns(began)
        span.end_time_unix_nano = _ns(max(began, ended))
        _set(span, {"conveyor.job.phase": phase, "cicd.pipeline.task.name": job.name})


def request(
    record: RunRecord,
    config: Settings,
    *,
    jobs: Sequence[JobRow] | None = None,
    with_run: bool = True,
) -> ExportTraceServiceRequest:
    """The run as OTLP's ExportTraceServiceRequest: one resource, one scope, a span for
    the run and one per job under it. `jobs` (default: all the record's) and `with_run`
    send part of a run: a run exported live sends each job as it ends, the run last."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    run = record.run
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    for key, value in resource_attributes(record, config).items():
        if value is not None:
            _fill(resource_spans.resource.attributes.add(key=key).value, value)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "conveyor"
    scope_spans.scope.version = run.conveyor_version
    add = scope_spans.spans.add
    if with_run:
        _run_span(record, add)
    ordered = sorted(
        record.jobs if jobs is None else jobs,
        key=lambda j: (j.started_at is None, j.started_at or 0.0, j.name),
    )
    for job in ordered:
        _job_spans(record, job, span_id(run.id, ""), add)
    return message


def _run_span(record: RunRecord, add: Any) -> Span:
    """The pipeline run's span, the root of the trace."""
    run = record.run
    root: Span = add()
    result = PIPELINE_RESULT.get(run.status, "error")
    end = run.finished_at if run.finished_at is not None else run.started_at
    root.trace_id = trace_id(run.id)
    root.span_id = span_id(run.id, "")
    root.name = f"RUN {run.pipeline}"
    root.kind = KIND_SERVER  # type: ignore[assignment]
    root.start_time_unix_nano = _ns(run.started_at)
    root.end_time_unix_nano = _ns(end)
    _set(
        root,
        {
            "cicd.pipeline.action.name": "RUN",
            "cicd.pipeline.result": result,
            "error.type": None if result in _FINE else result,
            **_run_facts(record),
            "conveyor.run.status": run.status,
            "conveyor.run.event": run.event,
            "conveyor.run.trigger": run.trigger,
            "conveyor.run.parallelism": run.parallelism,
            "conveyor.run.jobs_total": run.jobs_total,
            "conveyor.run.jobs_cached": run.jobs_cached,
        },
    )
    if result not in _FINE:
        root.status.code = STATUS_ERROR  # type: ignore[assignment]
        root.status.message = f"the run {run.status}"
    return root


def to_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP's JSON encoding of a request: protobuf's JSON mapping, except that trace
    and span ids are hex rather than base64 and enums are numbers (the OTLP spec)."""
    from google.protobuf import json_format

    doc: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return doc


def span_count(record: RunRecord) -> int:
    """How many spans the run makes: one for the run, one per job and per phase of it."""
    return 1 + sum(1 + len(job.phases()) for job in record.jobs)


# -- sending ---------------------------------------------------------------------------------


def _status_message(body: bytes) -> str:
    """The message of a google.rpc.Status in protobuf (what an OTLP/HTTP collector
    answers an error with): field 2, read off the wire so that no more protos are
    needed for one string. Empty when the body is not one."""
    i = 0
    try:
        while i < len(body):
            key, i = _varint(body, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(body, i)
            elif wire == 2:
                size, i = _varint(body, i)
                if number == 2:
                    return body[i : i + size].decode()
                i += size
            else:
                return ""
    except (IndexError, UnicodeDecodeError):
        return ""
    return ""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _body_text(body: bytes, content_type: str) -> str:
    """A collector's answer, readable: a Status's message, JSON or text as it came."""
    text = ""
    if "protobuf" in content_type:
        text = _status_message(body)
    if not text:
        text = body.decode("utf-8", "replace").strip()
    return text[:500] + ("..." if len(text) > 500 else "")


_HINTS = {
    401: "check the credentials in OTEL_EXPORTER_OTLP_HEADERS (e.g. Authorization=...)",
    403: "check the credentials in OTEL_EXPORTER_OTLP_HEADERS (e.g. Authorization=...)",
    404: "is that the traces path? --otlp URL and OTEL_EXPORTER_OTLP_ENDPOINT get"
    " /v1/traces appended; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is",
    415: "this collector may not take this encoding: set OTEL_EXPORTER_OTLP_PROTOCOL to"
    " http/json or http/protobuf",
}


def encode(message: ExportTraceServiceRequest, config: Settings) -> tuple[bytes, str]:
    """The request body and its content type, in the configured encoding."""
    if config.protocol == "http/json":
        return json.dumps(to_json(message)).encode(), "application/json"
    return message.SerializeToString(), "application/x-protobuf"


def send(record: RunRecord, config: Settings) -> Sent:
    """POST the run's spans to the collector; a refusal or no answer is an
    EnvironmentProblem carrying the status and what the collector said."""
    rejected, message = post(request(record, config), config)
    return Sent(config.endpoint, span_count(record), rejected, message)


def post(message: ExportTraceServiceRequest, config: Settings) -> tuple[int, str]:
    """POST one request; returns what the collector rejected (count, message)."""
    import gzip
    import urllib.error
    import urllib.request

    body, content_type = encode(message, config)
    headers = {**config.headers, "Content-Type": content_type}
    if config.gzip:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    url = config.endpoint
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=config.timeout) as response:
            answer = response.read()
            answer_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        said = _body_text(exc.read(), exc.headers.get("Content-Type", ""))
        raise EnvironmentProblem(
            f"the collector at {url} answered {exc.code} {exc.reason}"
            + (f": {said}" if said else ""),
            hint=_HINTS.get(exc.code),
        ) from None
    except TimeoutError:
        raise EnvironmentProblem(
            f"no answer from {url} within {config.timeout:g}s",
            hint="is the collector up? OTEL_EXPORTER_OTLP_TIMEOUT sets the wait (ms)",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnvironmentProblem(
            f"cannot send the trace to {url}: {reason}",
            hint="is an OpenTelemetry collector listening there (OTLP/HTTP)?",
        ) from None
    return _partial_success(answer, answer_type)


def _partial_success(body: bytes, content_type: str) -> tuple[int, str]:
    """What a 2xx answer says was rejected (OTLP's partial success): the count and the
    message. An answer that cannot be read is taken as full success, as the spec allows."""
    if not body:
        return 0, ""
    if "json" in content_type:
        try:
            doc = json.loads(body)
            partial = doc.get("partialSuccess") or {}
            return int(partial.get("rejectedSpans", 0)), str(partial.get("errorMessage", ""))
        except (ValueError, AttributeError, TypeError):
            return 0, ""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    try:
        answer = ExportTraceServiceResponse.FromString(body)
    except DecodeError:
        return 0, ""
    return answer.partial_success.rejected_spans, answer.partial_success.error_message
