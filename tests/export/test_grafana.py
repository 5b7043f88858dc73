"""The Grafana dashboard asks only for series `conveyor metrics` exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import Project
from tests.export.conftest import metric_families, sample_value
from tests.history.conftest import PIPELINE


def _selectors(node: Any) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names it is filtered or grouped by) in a parsed PromQL tree."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        yield node.name, {m.name for m in node.matchers.matchers}
        return
    children = {
        "BinaryExpr": ("lhs", "rhs"),
        "AggregateExpr": ("expr", "param"),
        "ParenExpr": ("expr",),
        "MatrixSelector": ("vector_selector",),
    }.get(kind, ())
    grouped = set(node.modifier.labels) if kind == "AggregateExpr" and node.modifier else set()
    parts = [getattr(node, c) for c in children] + (list(node.args) if kind == "Call" else [])
    for part in parts:
        for name, labels in _selectors(part):
            yield name, labels | grouped


def test_grafana_dashboard_asks_only_for_what_conveyor_exports(
    project: Project, tmp_path: Path
) -> None:
    import promql_parser

    project.pipeline(
        PIPELINE.replace("echo building", "sleep 0.3").replace("echo testing", "exit 3")
        + "gates:\n  time: {max: 10m}\n  commands: {fails: {run: 'exit 1'}}\n"
    )
    project.commit()
    assert project.run("run").code == 1
    samples: dict[str, set[str]] = {}
    for family in metric_families(project.run("metrics").out).values():
        for s in family.samples:
            samples.setdefault(s.name, set()).update(s.labels)
    board_file = tmp_path / "board.json"
    done = project.run("metrics", "--grafana-dashboard", str(board_file))
    assert done.code == 0, done.err
    assert done.out == "", "the dashboard written: the metrics are not printed too"
    board = json.loads(board_file.read_text())
    assert board["templating"]["list"][1]["query"] == "label_values(conveyor_runs_total, pipeline)"
    titles = [p["title"] for p in board["panels"]]
    for wanted in ("Success rate", "Build duration (p50, p95)", "Queue time (p95)"):
        assert wanted in titles
    seen = set()
    for panel in board["panels"]:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            tree = promql_parser.parse(target["expr"])  # raises on a syntax error
            for name, labels in _selectors(tree):
                assert name in samples, f"{panel['title']}: {name} is not exported"
                assert labels <= samples[name], f"{panel['title']}: {labels - samples[name]}"
                seen.add(name)
    assert {
        "conveyor_job_cpu_seconds_total",
        "conveyor_job_peak_memory_bytes_bucket",
        "conveyor_gates_total",
    } <= seen
    families = metric_families(project.run("metrics").out)
    assert (
        sample_value(
            families,
            "conveyor_job_peak_memory_bytes",
            "conveyor_job_peak_memory_bytes_count",
            job="build",
        )
        == 1
    ), "the 0.3 s job's peak memory, sampled"
    saved = sample_value(
        families, "conveyor_cache_saved_seconds", "conveyor_cache_saved_seconds_total"
    )
    assert saved == 0, "no hit yet: the series is there, at zero"
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]]
    assert len(set(boxes)) == len(boxes), "no two panels in the same place"
