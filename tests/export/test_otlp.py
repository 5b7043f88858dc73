"""`conveyor trace --otlp`: a recorded run sent to a real OTLP/HTTP receiver, configured
by the standard OTEL_* variables, its spans following the CI/CD semantic conventions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from conveyor.errors import UsageError
from conveyor.export import otlp
from tests.conftest import Project, Result
from tests.export.conftest import Collector
from tests.history.conftest import free_port

PIPELINE = """
name: ci
jobs:
  build:
    run: echo building > out.txt
    outputs: [out.txt]
  lint:
    run: 'true'
    if: "false"
  unit:
    needs: [build]
    run: echo unit
    cache: false
  test:
    needs: [build]
    run: exit 3
  slow:
    run: sleep 5
    timeout: 300ms
  deploy:
    needs: [test]
    run: echo deploy
"""


def conveyor(project: Project, *args: str, env: Mapping[str, str] = {}) -> Result:
    """The real `conveyor` command in a child process, with `env` added to its
    environment (the OTEL_* variables are read from the process's own)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project.root,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def attrs(kvs: Any) -> dict[str, object]:
    """An OTLP attribute list as a dict of plain values."""
    out: dict[str, object] = {}
    for kv in kvs:
        out[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return out


@pytest.fixture
def recorded(project: Project) -> dict[str, Any]:
    """A run recorded with a cache hit, a success, a failure, a timeout and two skipped
    jobs (one by its `if:`, one after the job it needs failed): `conveyor show --json`."""
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run", "--keep-going").code == 1
    assert project.run("run", "--keep-going").code == 1  # build now from the cache
    shown = project.run("show", "--json")
    assert shown.code == 0
    record: dict[str, Any] = json.loads(shown.out)
    return record


def test_a_run_reaches_the_collector_as_protobuf_with_the_cicd_conventions(
    project: Project, recorded: dict[str, Any], collector: Collector
) -> None:
    done = conveyor(
        project,
        "trace",
        "--otlp",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url + "/otel/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cret,X-Team = ci ",
            "OTEL_SERVICE_NAME": "builds",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=ci,team=a%2Cb",
        },
    )
    assert done.code == 0, done.err
    [got] = collector.received
    sent = len(got.request.resource_spans[0].scope_spans[0].spans)
    assert (
        done.out.strip() == f"sent {sent} spans to {collector.url}/otel/v1/traces (http/protobuf)"
    )
    assert got.path == "/otel/v1/traces", "the generic endpoint gets /v1/traces appended"
    assert got.headers["content-type"] == "application/x-protobuf"
    assert got.headers["authorization"] == "Bearer s3cret", "headers are URL-decoded"
    assert got.headers["x-team"] == "ci"

    [resource_spans] = got.request.resource_spans
    resource = attrs(resource_spans.resource.attributes)
    assert resource["service.name"] == "builds", "OTEL_SERVICE_NAME wins"
    assert resource["deployment.environment"] == "ci"
    assert resource["team"] == "a,b"
    assert resource["cicd.pipeline.name"] == "ci"
    assert resource["cicd.pipeline.run.id"] == recorded["id"]
    assert resource["vcs.ref.head.revision"] == project.git("rev-parse", "HEAD")
    assert resource["vcs.ref.head.name"] == "main"
    assert resource["vcs.ref.type"] == "branch"

    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "conveyor"
    root, *rest = scope_spans.spans
    jobs = [s for s in rest if "conveyor.job.phase" not in attrs(s.attributes)]
    phases = [s for s in rest if "conveyor.job.phase" in attrs(s.attributes)]
    assert root.name == "RUN ci"
    assert root.kind == otlp.KIND_SERVER
    assert root.parent_span_id == b""
    assert len(root.trace_id) == 16
    assert len(root.span_id) == 8
    run_attrs = attrs(root.attributes)
    assert run_attrs["cicd.pipeline.result"] == "failure"
    assert run_attrs["cicd.pipeline.name"] == "ci"
    assert run_attrs["cicd.pipeline.run.id"] == recorded["id"]
    assert run_attrs["vcs.ref.head.revision"] == recorded["commit"]
    assert root.status.code == otlp.STATUS_ERROR
    assert root.start_time_unix_nano == round(recorded["started_at"] * 1e9)
    assert root.end_time_unix_nano == round(recorded["finished_at"] * 1e9)

    by_name = {s.name: s for s in jobs}
    assert set(by_name) == {"build", "lint", "unit", "test", "slow", "deploy"}
    for span in jobs:
        assert span.trace_id == root.trace_id
        assert span.parent_span_id == root.span_id
        assert span.kind == otlp.KIND_INTERNAL
    result = {
        name: attrs(s.attributes)["cicd.pipeline.task.run.result"] for name, s in by_name.items()
    }
    assert result == {
        "build": "success",
        "unit": "success",
        "test": "failure",
        "slow": "timeout",
        "lint": "skip",
        "deploy": "skip",
    }
    build, unit, test = (attrs(by_name[n].attributes) for n in ("build", "unit", "test"))
    assert build["conveyor.cache.hit"] is True
    assert unit["conveyor.cache.hit"] is False
    rows = {j["name"]: j for j in recorded["jobs"]}
    assert build["conveyor.action.digest"] == rows["build"]["action_digest"]
    assert test["conveyor.job.exit_code"] == 3
    assert test["cicd.pipeline.task.name"] == "test"
    assert test["cicd.pipeline.task.run.id"] == f"{recorded['id']}/test"
    assert test["error.type"] == "failure"
    assert by_name["test"].status.code == otlp.STATUS_ERROR
    assert by_name["test"].status.message == "exit code 3"
    assert by_name["unit"].status.code == otlp.STATUS_UNSET
    assert by_name["lint"].status.code == otlp.STATUS_UNSET
    for name in ("build", "unit", "test", "slow"):
        span, row = by_name[name], rows[name]
        assert span.start_time_unix_nano == round(row["started_at"] * 1e9), name
        assert span.end_time_unix_nano == round(row["finished_at"] * 1e9), name
    assert by_name["slow"].end_time_unix_nano - by_name["slow"].start_time_unix_nano >= 250e6
    # A job that never started is a zero-length span at the run's end.
    assert by_name["deploy"].start_time_unix_nano == root.end_time_unix_nano
    assert by_name["deploy"].end_time_unix_nano == root.end_time_unix_nano
    assert "failed" in str(attrs(by_name["deploy"].attributes)["conveyor.job.reason"])

    # Under each job, the phases of its timeline: a hit checked and restored, a job that
    # ran checked, run and stored; each inside its job's span, and adding up to its own
    # time (the rest of its span was waiting).
    steps: dict[str, list[str]] = {}
    for span in phases:
        job = attrs(span.attributes)["cicd.pipeline.task.name"]
        parent = by_name[str(job)]
        assert span.parent_span_id == parent.span_id
        assert parent.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= parent.end_time_unix_nano + 1000
        steps.setdefault(str(job), []).append(str(attrs(span.attributes)["conveyor.job.phase"]))
    assert steps["build"] == ["check", "restore"]
    assert steps["unit"] == ["check", "restore", "run", "store"]
    assert steps["test"][-1] == "run", "a failure is not stored"
    assert "lint" not in steps
    assert "deploy" not in steps
    unit_own = sum(
        s.end_time_unix_nano - s.start_time_unix_nano
        for s in phases
        if attrs(s.attributes)["cicd.pipeline.task.name"] == "unit"
    )
    assert unit_own / 1e9 == pytest.approx(rows["unit"]["duration"], abs=1e-5)


def test_json_to_the_traces_endpoint_as_is_gzipped(
    project: Project, recorded: dict[str, Any], collector: Collector
) -> None:
    done = conveyor(
        project,
        "trace",
        "--otlp",
        "--json",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.url + "/ingest",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        },
    )
    assert done.code == 0, done.err
    assert json.loads(done.out) == {
        "run_id": recorded["id"],
        "spans": json.loads(done.out)["spans"],
        "chrome": None,
        "otlp": collector.url + "/ingest",
        "otlp_protocol": "http/json",
        "otlp_rejected": 0,
    }
    [got] = collector.received
    assert got.path == "/ingest", "the traces endpoint is used as it is"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["content-encoding"] == "gzip"
    [resource_spans] = got.request.resource_spans
    assert attrs(resource_spans.resource.attributes)["service.name"] == "conveyor"
    root, *rest = resource_spans.scope_spans[0].spans
    jobs = [s for s in rest if "conveyor.job.phase" not in attrs(s.attributes)]
    assert len(root.trace_id) == 16, "hex ids decoded to the right bytes"
    assert {s.parent_span_id for s in jobs} == {root.span_id}
    assert {s.parent_span_id for s in rest if s not in jobs} <= {s.span_id for s in jobs}
    assert attrs(root.attributes)["cicd.pipeline.result"] == "failure"


def test_an_explicit_url_wins_over_the_environment(
    project: Project,
    recorded: dict[str, Any],
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", dead)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead)
    done = project.run("trace", recorded["id"], "--otlp", collector.url)
    assert done.code == 0, done.err
    assert [r.path for r in collector.received] == ["/v1/traces"]


def test_the_collectors_refusal_is_shown_with_its_status_and_message(
    project: Project, recorded: dict[str, Any], collector: Collector
) -> None:
    # What an OTLP/HTTP collector answers: a google.rpc.Status in protobuf, whose
    # field 2 is the message (written here by hand: code 16, message "bad token").
    message = b"invalid API key"
    collector.status = 401
    collector.body = b"\x08\x10\x12" + bytes([len(message)]) + message
    done = project.run("trace", "--otlp", collector.url)
    assert done.code == 2
    assert done.err.startswith(
        f"error: the collector at {collector.url}/v1/traces answered 401 Unauthorized:"
        " invalid API key\n"
    )
    assert "OTEL_EXPORTER_OTLP_HEADERS" in done.err
    assert "Traceback" not in done.err

    collector.status, collector.content_type = 400, "application/json"
    collector.body = b'{"code": 3, "message": "span name too long"}'
    done = project.run("trace", "--otlp", collector.url)
    assert done.code == 2
    assert "answered 400 Bad Request" in done.err
    assert "span name too long" in done.err


def test_an_unreachable_collector_is_an_environment_problem(
    project: Project, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    done = project.run("trace", "--otlp")
    assert done.code == 2
    assert done.err.startswith(f"error: cannot send the trace to {url}/v1/traces: ")
    assert "is an OpenTelemetry collector listening there" in done.err
    assert "Traceback" not in done.err


def test_a_partial_success_is_a_warning(
    project: Project, recorded: dict[str, Any], collector: Collector
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 2
    answer.partial_success.error_message = "spans too old"
    collector.body = answer.SerializeToString()
    done = project.run("trace", "--otlp", collector.url)
    assert done.code == 0, done.err
    assert "warning: the collector rejected 2 of " in done.err
    assert " spans: spans too old" in done.err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "team=ci,oops"},
            "error: OTEL_RESOURCE_ATTRIBUTES: 'oops' is not key=value",
        ),
        (
            {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization: Bearer s3cret"},
            "error: OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "error: OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
            "error: OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' is not a number of milliseconds",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "error: OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not an http:// or"
            " https:// URL",
        ),
    ],
)
def test_a_bad_variable_is_named_and_exits_2(
    project: Project, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    done = project.run("trace", "--otlp")
    assert done.code == 2
    assert done.err.startswith(message + "\n")
    assert "s3cret" not in done.err, "a header's value is never shown"


def test_a_run_id_after_the_option_is_not_taken_for_a_url(project: Project) -> None:
    done = project.run("trace", "--otlp", "20260101-000000.000-abcd")
    assert done.code == 2
    assert "--otlp takes a collector's URL" in done.err
    assert "conveyor trace 20260101-000000.000-abcd --otlp" in done.err


@pytest.mark.parametrize(
    ("url", "env", "endpoint"),
    [
        (None, {}, "http://localhost:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318"}, "https://c:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/base/"}, "http://c/base/v1/traces"),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/exact",
            },
            "http://c/exact",
        ),
        (
            "http://c:4318",
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"},
            "http://c:4318/v1/traces",
        ),
        ("http://c:4318/v1/traces", {}, "http://c:4318/v1/traces"),
    ],
)
def test_where_the_spans_go(url: str | None, env: dict[str, str], endpoint: str) -> None:
    assert otlp.settings(url, env).endpoint == endpoint


def test_the_traces_specific_variables_win_over_the_generic_ones() -> None:
    config = otlp.settings(
        None,
        {
            "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=2",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1500",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        },
    )
    assert dict(config.headers) == {"a": "1", "b": "3"}
    assert config.timeout == 1.5
    assert config.protocol == "http/protobuf"
    with pytest.raises(UsageError, match="'0' is not a number of milliseconds"):
        otlp.settings(None, {"OTEL_EXPORTER_OTLP_TIMEOUT": "0"})
