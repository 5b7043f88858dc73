"""A Grafana dashboard for the metrics `conveyor metrics` exports: the seed's
"Performance Dashboard Configuration" (duration trend, success rate, queue time,
resource use, slowest jobs), written against Conveyor's own metric names so that it
works as imported.

The counters and histograms cover the `--since` window `conveyor metrics` was run with,
so the panels show totals and quantiles of those series rather than rate() over them.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import EnvironmentProblem
from conveyor.fsutil import atomic_write

PIPELINE = 'pipeline=~"$pipeline"'

# (title, panel type, unit, [(PromQL, legend)], width)
PANELS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], int], ...] = (
    (
        "Success rate",
        "stat",
        "percent",
        (
            (
                f'100 * sum(conveyor_runs_total{{{PIPELINE},status="success"}})'
                f" / sum(conveyor_runs_total{{{PIPELINE}}})",
                "success rate",
            ),
        ),
        6,
    ),
    (
        "Cache hit rate",
        "stat",
        "percent",
        (
            (
                f'100 * sum(conveyor_cache_requests_total{{{PIPELINE},result="hit"}})'
                f" / sum(conveyor_cache_requests_total{{{PIPELINE}}})",
                "hits",
            ),
        ),
        6,
    ),
    (
        "Time saved by the cache",
        "stat",
        "s",
        ((f"sum(conveyor_cache_saved_seconds_total{{{PIPELINE}}})", "saved"),),
        6,
    ),
    (
        "Runs by outcome",
        "stat",
        "short",
        ((f"sum by (status) (conveyor_runs_total{{{PIPELINE}}})", "{{status}}"),),
        6,
    ),
    (
        "Build duration (p50, p95)",
        "timeseries",
        "s",
        tuple(
            (
                f"histogram_quantile({q}, sum by (le) "
                f"(conveyor_run_duration_seconds_bucket{{{PIPELINE}}}))",
                f"p{round(q * 100)}",
            )
            for q in (0.5, 0.95)
        ),
        12,
    ),
    (
        "Queue time (p95)",
        "timeseries",
        "s",
        (
            (
                "histogram_quantile(0.95, sum by (le) "
                f"(conveyor_job_queue_seconds_bucket{{{PIPELINE}}}))",
                "p95",
            ),
        ),
        12,
    ),
    (
        "Slowest jobs (p95)",
        "table",
        "s",
        (
            (
                "topk(10, histogram_quantile(0.95, sum by (job, le) "
                f"(conveyor_job_duration_seconds_bucket{{{PIPELINE}}})))",
                "{{job}}",
            ),
        ),
        12,
    ),
    (
        "Failures by job",
        "table",
        "short",
        (
            (
                "topk(10, sum by (job) "
                f'(conveyor_jobs_total{{{PIPELINE},status=~"failed|timed_out"}}))',
                "{{job}}",
            ),
        ),
        12,
    ),
    (
        "Failing gates",
        "table",
        "short",
        (
            (
                "topk(10, sum by (gate, scope) "
                f'(conveyor_gates_total{{{PIPELINE},result="failed"}}))',
                "{{scope}}: {{gate}}",
            ),
        ),
        12,
    ),
    (
        "Gate pass rate",
        "stat",
        "percent",
        (
            (
                f'100 * sum(conveyor_gates_total{{{PIPELINE},result="passed"}})'
                f" / sum(conveyor_gates_total{{{PIPELINE}}})",
                "passed",
            ),
        ),
        12,
    ),
    (
        "CPU time by job",
        "timeseries",
        "s",
        (
            (
                f"topk(10, sum by (job) (conveyor_job_cpu_seconds_total{{{PIPELINE}}}))",
                "{{job}}",
            ),
        ),
        12,
    ),
    (
        "Peak memory by job (p95)",
        "timeseries",
        "bytes",
        (
            (
                "topk(10, histogram_quantile(0.95, sum by (job, le) "
                f"(conveyor_job_peak_memory_bytes_bucket{{{PIPELINE}}})))",
                "{{job}}",
            ),
        ),
        12,
    ),
)


def dashboard(datasource_uid: str = "${datasource}") -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (import it, or provision it from a file)."""
    source = {"type": "prometheus", "uid": datasource_uid}
    panels: list[dict[str, Any]] = []
    x = y = 0
    row_height = 0
    for number, (title, kind, unit, targets, width) in enumerate(PANELS, start=1):
        height = 4 if kind == "stat" else 8
        if x + width > 24:
            x, y = 0, y + row_height
            row_height = 0
        panel: dict[str, Any] = {
            "id": number,
            "title": title,
            "type": kind,
            "datasource": source,
            "gridPos": {"x": x, "y": y, "w": width, "h": height},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": source,
                    "expr": expr,
                    "legendFormat": legend,
                    "instant": kind != "timeseries",
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if title == "Success rate":  # the seed's reliability target, as the threshold
            panel["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 99}],
            }
        panels.append(panel)
        x += width
        row_height = max(row_height, height)
    return {
        "title": "Conveyor builds",
        "uid": "conveyor-builds",
        "tags": ["conveyor", "ci"],
        "schemaVersion": 39,
        "time": {"from": "now-30d", "to": "now"},
        "refresh": "5m",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "pipeline",
                    "label": "Pipeline",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(conveyor_runs_total, pipeline)",
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }


def write_dashboard(path: str) -> None:
    """The dashboard, written to `path` atomically (to import, or for provisioning)."""
    try:
        atomic_write(path, json.dumps(dashboard(), indent=2))
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}") from None
