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
    for wanted in (
        "Success rate ($window)",
        "Build duration p50, p95 (all recorded runs, ±9.1%)",
        "Queue time by job: mean ($window)",
    ):
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
        "conveyor_window_job_cpu_mean_seconds",
        "conveyor_job_peak_memory_bytes_bucket",
        "conveyor_window_job_peak_memory_p95_bytes",
        "conveyor_gates_total",
    } <= seen
    assert not any("job" in labels for labels in samples.values()), "`job` is the target's"
    families = metric_families(project.run("metrics").out)
    assert (
        sample_value(
            families,
            "conveyor_job_peak_memory_bytes",
            "conveyor_job_peak_memory_bytes_count",
            conveyor_job="build",
        )
        == 1
    ), "the 0.3 s job's peak memory, sampled"
    saved = sample_value(
        families, "conveyor_cache_saved_seconds", "conveyor_cache_saved_seconds_total"
    )
    assert saved == 0, "no hit yet: the series is there, at zero"
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]]
    assert len(set(boxes)) == len(boxes), "no two panels in the same place"


# -- every dashboard query against a real Prometheus, against `conveyor stats` ----------

WORK = """
import os, sys, time
job = sys.argv[1]
counter = os.path.join(os.environ["COUNTS"], job)
n = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(n + 1))
held = b"x" * ([4, 40, 12, 80, 20, 8][n % 6] << 20)  # written: resident, not just mapped
time.sleep([0.08, 0.35, 0.15, 0.6, 0.25, 0.1][n % 6])
sys.exit(1 if job == "test" and n % 4 == 3 else 0)
"""


def _expected(
    title: str, stats: dict[str, Any], runs: list[dict[str, Any]]
) -> tuple[list[dict[str, float]], float]:
    """What each panel's targets must show, by legend key, from `conveyor stats --json`
    and `conveyor history --json`; and the relative error allowed (0: exact)."""
    from conveyor.insights.definitions import (
        DURATION_BUCKETS,
        MEMORY_BUCKETS,
        percentile,
        relative_error,
    )

    p, jobs = stats["pipeline"], stats["jobs"]

    def per_job(field: str, scale: float = 1.0) -> dict[str, float]:
        return {j["job"]: j[field] * scale for j in jobs if j[field] is not None}

    exact: dict[str, list[dict[str, float]]] = {
        "Success rate": [{"board": 100 * p["success_rate"]}],
        "Runs (": [{"board": p["runs"]}],
        "Mean build time": [{"board": p["mean_wall_time"]}],
        "Time saved by the cache": [{"board": p["saved"]}],
        "Slowest jobs: p95 duration ($window)": [per_job("p95")],
        "Job duration p50 and p95": [
            {f"{k} {q}": v for k, v in per_job(q).items()} for q in ("p50", "p95")
        ],
        "Failures by job": [{j["job"]: j["failed"] for j in jobs if j["failed"]}],
        "Cache hit rate by job": [per_job("cache_hit_rate", 100)],
        "Queue time by job": [per_job("queue_time")],
        "CPU time by job": [per_job("cpu_time")],
        "Peak memory by job: p95 ($window)": [per_job("peak_memory")],
        "Where the jobs' time went": [p["phase_seconds"]],
        "Runs by outcome": [
            {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}}
        ],
        "Cache hit rate (all": [
            {
                "hits": 100
                * sum(j["cache_hit_rate"] * j["runs"] for j in jobs)
                / sum(j["runs"] for j in jobs)
            }
        ],
        "Failing gates": [{}],
        "Gate pass rate": [{"passed": 100.0}],
    }
    for prefix, want in exact.items():
        if title.startswith(prefix):
            return want, 0.0
    walls: list[float] = sorted(r["wall_time"] for r in runs)
    p50, p95 = percentile(walls, 0.5), percentile(walls, 0.95)
    assert p50 is not None
    assert p95 is not None
    bounded: dict[str, tuple[list[dict[str, float]], float]] = {
        "Build duration p50, p95": (
            [{"p50": p50}, {"p95": p95}],
            relative_error(DURATION_BUCKETS),
        ),
        "Slowest jobs: p95 duration (all": ([per_job("p95")], relative_error(DURATION_BUCKETS)),
        "Peak memory by job: p95 (all": ([per_job("peak_memory")], relative_error(MEMORY_BUCKETS)),
    }
    for prefix, (want, error) in bounded.items():
        if title.startswith(prefix):
            return want, error
    raise AssertionError(f"no expectation for the panel {title!r}")


def _legend(fmt: str, labels: dict[str, str]) -> str:
    out = fmt
    for name, value in labels.items():
        out = out.replace("{{" + name + "}}", value)
    return out


def test_every_dashboard_query_on_a_real_prometheus_agrees_with_stats(
    project: Project, tmp_path: Path
) -> None:
    import sys

    from conveyor.insights.definitions import DURATION_BUCKETS, MEMORY_BUCKETS
    from tests.export.servers import prometheus_scraping_textfiles, query, wait_for
    from tests.history.conftest import history

    counts = tmp_path / "counts"
    counts.mkdir()
    project.write("work.py", WORK)
    project.pipeline(
        f"""
        name: board
        env: {{COUNTS: {counts}}}
        jobs:
          build: {{run: {sys.executable} work.py build, cache: false}}
          test: {{needs: [build], run: {sys.executable} work.py test, cache: false}}
          lint: {{run: echo lint}}
        gates:
          time: {{max: 10m}}
        """
    )
    project.commit()
    codes = [project.run("run").code for _ in range(6)]
    assert codes == [0, 0, 0, 1, 0, 0], "the fourth run's test fails"
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    board_file = tmp_path / "board.json"
    done = project.run(
        "metrics",
        "--textfile",
        str(textfiles / "conveyor.prom"),
        "--grafana-dashboard",
        str(board_file),
    )
    assert done.code == 0, done.err
    stats = json.loads(project.run("stats", "--json").out)
    runs = history(project)
    assert len(runs) == 6
    board = json.loads(board_file.read_text())
    with prometheus_scraping_textfiles(tmp_path, textfiles) as url:
        assert wait_for(url, "conveyor_runs_total"), "the textfile was scraped"
        # The target's labels stay the target's, and each job keeps its own series.
        assert query(url, '{__name__=~"conveyor_.*", exported_job!=""}') == []
        assert {m["conveyor_job"] for m, _ in query(url, 'conveyor_jobs_total{job="node"}')} == {
            "build",
            "test",
            "lint",
        }
        for panel in board["panels"]:
            want, error = _expected(panel["title"], stats, runs)
            assert len(want) == len(panel["targets"]), panel["title"]
            for target, expected in zip(panel["targets"], want, strict=True):
                expr = target["expr"].replace("$pipeline", "board").replace("$window", "30d")
                got = {_legend(target["legendFormat"], m): v for m, v in query(url, expr)}
                assert got.keys() == expected.keys(), f"{panel['title']}: {expr}"
                for key, value in got.items():
                    # Below the first bucket the error is absolute: at most that bound.
                    floor = MEMORY_BUCKETS[0] if "memory" in panel["title"] else DURATION_BUCKETS[0]
                    allowed = max(error * expected[key], floor if error else 1e-9)
                    assert abs(value - expected[key]) <= allowed, (
                        f"{panel['title']} {key}: {value} against {expected[key]}"
                    )
