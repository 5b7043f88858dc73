"""A Grafana dashboard for the metrics `conveyor metrics` exports: the seed's
"Performance Dashboard Configuration" (duration trend, success rate, queue time,
resource use, slowest jobs), written against Conveyor's own metric names so that it
works as imported.

Two kinds of panels, as there are two kinds of series (see `export.prometheus`):

- "($window)": the figures of `conveyor stats --since WINDOW`, read from the
  `conveyor_window_*` gauges; exact, and as a time series the trend of that rolling
  window;
- "(all recorded runs)": totals of the counters, and quantiles of the histograms by
  `histogram_quantile`, within the bucket error stated in the title (9.1%).

The queries select a job by the `conveyor_job` label: `job` is the scrape target's.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import EnvironmentProblem
from conveyor.export.prometheus import JOB_LABEL
from conveyor.fsutil import atomic_write
from conveyor.insights.definitions import DURATION_BUCKETS, MEMORY_BUCKETS, relative_error

PIPELINE = 'pipeline=~"$pipeline"'
WINDOW = f'{PIPELINE},window="$window"'
JOB = "{{" + JOB_LABEL + "}}"
# Grafana's `bytes` is its binary unit (KiB, MiB, GiB), as `conveyor stats` prints MiB.
BYTES = "bytes"
ERR_S = f"±{relative_error(DURATION_BUCKETS) * 100:.1f}%"
ERR_B = f"±{relative_error(MEMORY_BUCKETS) * 100:.1f}%"


def _quantile(q: float, metric: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}) ({metric}_bucket{{{PIPELINE}}}))"


# (title, panel type, unit, [(PromQL, legend)], width)
PANELS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], int], ...] = (
    (
        "Success rate ($window)",
        "stat",
        "percent",
        ((f"100 * conveyor_window_success_ratio{{{WINDOW}}}", "{{pipeline}}"),),
        6,
    ),
    (
        "Runs ($window)",
        "stat",
        "short",
        ((f"conveyor_window_runs{{{WINDOW}}}", "{{pipeline}}"),),
        6,
    ),
    (
        "Mean build time ($window)",
        "stat",
        "s",
        ((f"conveyor_window_run_duration_mean_seconds{{{WINDOW}}}", "{{pipeline}}"),),
        6,
    ),
    (
        "Time saved by the cache ($window)",
        "stat",
        "s",
        ((f"conveyor_window_cache_saved_seconds{{{WINDOW}}}", "{{pipeline}}"),),
        6,
    ),
    (
        "Slowest jobs: p95 duration ($window)",
        "table",
        "s",
        ((f"topk(10, conveyor_window_job_duration_p95_seconds{{{WINDOW}}})", JOB),),
        12,
    ),
    (
        "Job duration p50 and p95 ($window)",
        "timeseries",
        "s",
        (
            (f"conveyor_window_job_duration_p50_seconds{{{WINDOW}}}", f"{JOB} p50"),
            (f"conveyor_window_job_duration_p95_seconds{{{WINDOW}}}", f"{JOB} p95"),
        ),
        12,
    ),
    (
        "Failures by job ($window)",
        "table",
        "short",
        ((f"topk(10, conveyor_window_job_failures{{{WINDOW}}} > 0)", JOB),),
        12,
    ),
    (
        "Cache hit rate by job ($window)",
        "table",
        "percent",
        ((f"100 * conveyor_window_job_cache_hit_ratio{{{WINDOW}}}", JOB),),
        12,
    ),
    (
        "Queue time by job: mean ($window)",
        "timeseries",
        "s",
        ((f"topk(10, conveyor_window_job_queue_mean_seconds{{{WINDOW}}})", JOB),),
        12,
    ),
    (
        "CPU time by job: mean per execution ($window)",
        "timeseries",
        "s",
        ((f"topk(10, conveyor_window_job_cpu_mean_seconds{{{WINDOW}}})", JOB),),
        12,
    ),
    (
        "Peak memory by job: p95 ($window)",
        "table",
        BYTES,
        ((f"topk(10, conveyor_window_job_peak_memory_p95_bytes{{{WINDOW}}})", JOB),),
        12,
    ),
    (
        "Where the jobs' time went (all recorded runs)",
        "bargauge",
        "s",
        ((f"sum by (phase) (conveyor_job_phase_seconds_total{{{PIPELINE}}})", "{{phase}}"),),
        12,
    ),
    (
        "Runs by outcome (all recorded runs)",
        "stat",
        "short",
        ((f"sum by (status) (conveyor_runs_total{{{PIPELINE}}})", "{{status}}"),),
        12,
    ),
    (
        f"Build duration p50, p95 (all recorded runs, {ERR_S})",
        "stat",
        "s",
        tuple(
            (_quantile(q, "conveyor_run_duration_seconds", "pipeline, le"), f"p{round(q * 100)}")
            for q in (0.5, 0.95)
        ),
        12,
    ),
    (
        f"Slowest jobs: p95 duration (all recorded runs, {ERR_S})",
        "table",
        "s",
        (
            (
                "topk(10, "
                + _quantile(0.95, "conveyor_job_duration_seconds", f"pipeline, {JOB_LABEL}, le")
                + ")",
                JOB,
            ),
        ),
        12,
    ),
    (
        f"Peak memory by job: p95 (all recorded runs, {ERR_B})",
        "table",
        BYTES,
        (
            (
                "topk(10, "
                + _quantile(0.95, "conveyor_job_peak_memory_bytes", f"pipeline, {JOB_LABEL}, le")
                + ")",
                JOB,
            ),
        ),
        12,
    ),
    (
        "Cache hit rate (all recorded runs)",
        "stat",
        "percent",
        (
            (
                f'100 * sum(conveyor_cache_requests_total{{{PIPELINE},result="hit"}})'
                f" / sum(conveyor_cache_requests_total{{{PIPELINE}}})",
                "hits",
            ),
        ),
        12,
    ),
    (
        "Failing gates (all recorded runs)",
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
        "Gate pass rate (all recorded runs)",
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
        if title.startswith("Success rate"):  # the seed's reliability target, as the threshold
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
                {
                    # The `--since` of `conveyor metrics` (one window per export).
                    "name": "window",
                    "label": "Window",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(conveyor_window_runs, window)",
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
