"""`conveyor run --otlp`: the run's spans reach a real OTLP/HTTP receiver as it goes,
the same spans `conveyor trace --otlp` sends afterwards; a collector that is down is a
warning, never the run's failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Project
from tests.export.conftest import Collector
from tests.export.test_otlp import attrs, conveyor
from tests.history.conftest import free_port

PIPELINE = """
name: live
jobs:
  first:
    run: echo first
  second:
    needs: [first]
    run: sleep 1
  never:
    run: 'true'
    if: "false"
"""


def spans(collector: Collector) -> list[Any]:
    return [
        span
        for got in collector.received
        for rs in got.request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def facts(span: Any) -> tuple[object, ...]:
    """What a user sees of a span: its ids, name, times and CI/CD result."""
    a = attrs(span.attributes)
    result = a.get("cicd.pipeline.task.run.result", a.get("cicd.pipeline.result"))
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        result,
    )


@pytest.mark.slow
def test_spans_are_sent_as_the_run_goes_and_match_the_recorded_trace(
    project: Project, collector: Collector
) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    done = conveyor(project, "run", "--otlp", env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url})
    assert done.code == 0, done.err
    assert "warning" not in done.err
    assert {r.path for r in collector.received} == {"/v1/traces"}
    live = {s.name: s for s in spans(collector)}
    assert set(live) == {
        "RUN live",
        *("first", "first: check", "first: restore", "first: run", "first: store"),
        *("second", "second: check", "second: restore", "second: run", "second: store"),
        "never",
    }
    # Live: the first job's span was at the collector before the second job ended.
    [first_request] = [r for r in collector.received if '"first"' in str(r.request)]
    assert first_request.at * 1e9 < live["second"].end_time_unix_nano
    # The run's span comes last, once the run is over.
    assert "RUN live" in str(collector.received[-1].request)
    assert attrs(live["never"].attributes)["cicd.pipeline.task.run.result"] == "skip"

    sent_live = sorted(facts(s) for s in live.values())
    collector.received.clear()
    again = conveyor(project, "trace", "--otlp", collector.url)
    assert again.code == 0, again.err
    assert sorted(facts(s) for s in spans(collector)) == sent_live


def test_a_collector_that_is_down_is_a_warning_not_a_failure(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    url = f"http://127.0.0.1:{free_port()}"
    done = project.run("run", "--otlp", url)
    assert done.code == 0
    assert f"warning: OtlpExport: spans not sent: cannot send the trace to {url}/v1/traces" in (
        done.err
    )
    assert "(the run is not affected)" in done.err


def test_a_job_after_the_option_is_not_taken_for_a_url(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    done = project.run("run", "--otlp", "first")
    assert done.code == 2
    assert "--otlp takes a collector's URL (http://...), not 'first'" in done.err
    assert "conveyor run first --otlp" in done.err
    assert not project.runs(), "nothing ran"
