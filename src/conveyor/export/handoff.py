"""The seed's `build_output` hand-off: what a run produced, for whoever deploys it.

`conveyor show RUN --format build-output` prints it: the pipeline file, every file the
jobs produced (typed by the job's `artifacts:` declaration, else `output`) with its
digest, size and version metadata, the deployment manifests and documentation among
them, and the build's metrics (its time, and the pipeline's success rate over the window
that ends with this run).
"""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor.history.queries import PipelineTotals, pipeline_totals
from conveyor.history.record import RunRecord
from conveyor.history.store import HistoryStore
from conveyor.units import format_duration


def for_run(store: HistoryStore, record: RunRecord, window: float) -> dict[str, Any]:
    """The hand-off of a recorded run: its build number among the pipeline's runs, and
    the success rate over the `window` seconds that end with it (not runs after it)."""
    run = record.run
    return build_output(
        record,
        build_number=store.build_number(run.pipeline, run.started_at),
        totals=pipeline_totals(store, run.pipeline, run.started_at - window, run.started_at),
        window=f"{window / 86400:g}d" if window >= 86400 else format_duration(window),
    )


def build_output(
    record: RunRecord, *, build_number: int, totals: PipelineTotals, window: str
) -> dict[str, Any]:
    """The hand-off document (plain data: dumped as YAML or JSON)."""
    run = record.run
    workspace = run.workspace or ""
    metadata = {
        "version": run.tag,  # a run on a tag is a release; others have only the commit
        "commit_hash": run.commit,
        "build_number": build_number,
        "run_id": run.id,
    }
    artifacts = [
        {
            "type": out.artifact or "output",
            "job": out.job,
            "location": out.path,
            "absolute_location": os.path.join(workspace, out.path),
            "sha256": out.sha256,
            "size_bytes": out.size,
            "metadata": dict(metadata),  # a copy each: no YAML anchors
        }
        for out in record.outputs
    ]
    rate = totals.success_rate
    jobs = record.jobs
    cached = sum(1 for j in jobs if j.cached)
    tests: dict[str, int] = {}
    for case in record.tests:
        tests[case.status] = tests.get(case.status, 0) + 1
    return {
        "build_output": {
            "pipeline": run.pipeline,
            "pipeline_config": _relative(run.pipeline_file, workspace),
            "run": {
                "id": run.id,
                "status": run.status,
                "commit": run.commit,
                "branch": run.branch,
                "tag": run.tag,
                "event": run.event,
                "trigger": run.trigger,
                "host": run.host,
                "conveyor_version": run.conveyor_version,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
            },
            "artifacts": artifacts,
            "deployment_manifests": [
                a["location"] for a in artifacts if a["type"] == "deployment-manifest"
            ],
            "documentation": [a["location"] for a in artifacts if a["type"] == "documentation"],
            "metrics": {
                "build_time": _human(run.wall_time),
                "build_time_seconds": _round(run.wall_time),
                "success_rate": None if rate is None else f"{rate * 100:.1f}%",
                "success_rate_target": f"{totals.target * 100:.0f}%",
                "success_rate_runs": totals.runs,
                "success_rate_window": window,
                "critical_path_seconds": _round(run.critical_path_time),
                "jobs": len(jobs),
                "jobs_cached": cached,
                "cache_hit_rate": f"{cached / len(jobs) * 100:.1f}%" if jobs else None,
                "tests": tests,
                "output_bytes": sum(a["size_bytes"] for a in artifacts),
            },
        }
    }


def _relative(path: str | None, workspace: str) -> str | None:
    if not path:
        return None
    if workspace and os.path.isabs(path):
        rel = os.path.relpath(path, workspace)
        if not rel.startswith(".."):
            return rel
    return path


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _human(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
