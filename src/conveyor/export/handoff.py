"""The seed's `build_output` hand-off: what a run produced, for whoever deploys it.

`conveyor show RUN --format build-output` prints it: the pipeline file, every file the
jobs produced (typed by the job's `artifacts:` declaration, else `output`) with its
digest, size and version metadata, the deployment manifests and documentation among
them, the artifact versions the run stored (digests, signature, provenance and SBOM
paths, where each was published), and the build's metrics (its time, and the pipeline's
success rate over the window that ends with this run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.history.queries import PipelineTotals, pipeline_totals
from conveyor.history.record import RunRecord, RunRow
from conveyor.history.store import HistoryStore
from conveyor.units import format_duration

if TYPE_CHECKING:
    from conveyor.artifacts.backend import Store
    from conveyor.artifacts.record import ArtifactVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """A file the run's jobs produced, with its version metadata."""

    type: str
    """The job's `artifacts:` type for it, else `output`."""
    job: str
    location: str
    """Relative to the workspace."""
    absolute_location: str
    sha256: str
    size_bytes: int
    version: str | None
    """The run's tag: a run on a tag is a release; others have only the commit."""
    commit_hash: str | None
    build_number: int
    run_id: str
    artifact_version: str | None = None
    """The stored version ('shop@1.4.0') that holds this file, if the run stored one."""

    def to_json(self) -> dict[str, object]:
        metadata: dict[str, object] = {  # a new mapping each: no YAML anchors
            "version": self.version,
            "commit_hash": self.commit_hash,
            "build_number": self.build_number,
            "run_id": self.run_id,
        }
        if self.artifact_version is not None:
            metadata["artifact_version"] = self.artifact_version
        return {
            "type": self.type,
            "job": self.job,
            "location": self.location,
            "absolute_location": self.absolute_location,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "metadata": metadata,
        }


def version_json(version: ArtifactVersion, blob_path: Callable[[str], str]) -> dict[str, object]:
    """A stored artifact version as the hand-off lists it: its digests, where its
    signatures, provenance and SBOM are, and where it was published."""

    def paths(kind: str) -> list[dict[str, object]]:
        # A signature is kept in the record (no blob, no path): its text is given instead,
        # and `conveyor artifacts fetch --attachments` writes it as `<file>.sig`.
        return [
            {
                "name": a.name,
                "subject": a.subject,
                "sha256": a.sha256,
                "path": blob_path(a.sha256) if a.content is None else None,
                **({"content": a.content} if a.content is not None else {}),
            }
            for a in version.attachments_of(kind)
        ]

    sbom = paths("sbom")
    return {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "digest": version.digest,
        "type": version.type,
        "job": version.job,
        "channel": version.channel,
        "build_number": version.build_number,
        "commit_hash": version.commit,
        "branch": version.branch,
        "created": version.created,
        "expires": version.expires,
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "size_bytes": f.size,
                "media_type": f.media_type,
                "blob": blob_path(f.sha256),
            }
            for f in version.files
        ],
        "signatures": paths("signature"),
        "provenance": paths("provenance"),
        "sbom": sbom[0]["path"] if sbom else None,
        "published": [dict(p) for p in version.published],
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildMetrics:
    """The build's figures, as people read them (rates as percentages)."""

    build_time: str | None
    build_time_seconds: float | None
    success_rate: str | None
    """Over the runs of the window that ends with this one."""
    success_rate_target: str
    success_rate_runs: int
    success_rate_window: str
    critical_path_seconds: float | None
    jobs: int
    jobs_cached: int
    cache_hit_rate: str | None
    tests: Mapping[str, int]
    """Test cases by status."""
    output_bytes: int

    def to_json(self) -> dict[str, object]:
        return {
            "build_time": self.build_time,
            "build_time_seconds": self.build_time_seconds,
            "success_rate": self.success_rate,
            "success_rate_target": self.success_rate_target,
            "success_rate_runs": self.success_rate_runs,
            "success_rate_window": self.success_rate_window,
            "critical_path_seconds": self.critical_path_seconds,
            "jobs": self.jobs,
            "jobs_cached": self.jobs_cached,
            "cache_hit_rate": self.cache_hit_rate,
            "tests": dict(self.tests),
            "output_bytes": self.output_bytes,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOutput:
    """The hand-off of one run."""

    pipeline: str
    pipeline_config: str | None
    """The pipeline file, relative to the workspace (None: not recorded)."""
    run: RunRow
    artifacts: tuple[Artifact, ...]
    metrics: BuildMetrics
    versions: tuple[dict[str, object], ...] = ()
    """The artifact versions the run stored (`version_json`)."""

    def of_type(self, kind: str) -> list[str]:
        return [a.location for a in self.artifacts if a.type == kind]

    def to_json(self) -> dict[str, object]:
        """The document `conveyor show --format build-output` prints (as YAML or JSON)."""
        run = self.run
        return {
            "build_output": {
                "pipeline": self.pipeline,
                "pipeline_config": self.pipeline_config,
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
                "artifacts": [a.to_json() for a in self.artifacts],
                "artifact_versions": [dict(v) for v in self.versions],
                "deployment_manifests": self.of_type("deployment-manifest"),
                "documentation": self.of_type("documentation"),
                "metrics": self.metrics.to_json(),
            }
        }


def for_run(
    store: HistoryStore,
    record: RunRecord,
    window: float,
    artifacts: Store | None = None,
) -> BuildOutput:
    """The hand-off of a recorded run: its build number among the pipeline's runs, and
    the success rate over the `window` seconds that end with it (not runs after it);
    the versions it stored in `artifacts`, the pipeline's artifact store."""
    run = record.run
    return build_output(
        record,
        build_number=store.build_number(run.pipeline, run.started_at),
        totals=pipeline_totals(store, run.pipeline, run.started_at - window, run.started_at),
        window=f"{window / 86400:g}d" if window >= 86400 else format_duration(window),
        versions=artifacts.versions(run_id=run.id) if artifacts is not None else (),
        blob_path=artifacts.blob_location if artifacts is not None else None,
    )


def build_output(
    record: RunRecord,
    *,
    build_number: int,
    totals: PipelineTotals,
    window: str,
    versions: Sequence[ArtifactVersion] = (),
    blob_path: Callable[[str], str] | None = None,
) -> BuildOutput:
    """The hand-off, given the run's build number and the pipeline's totals over
    `window` (named as people read it: 30d), and the artifact versions it stored."""
    run = record.run
    workspace = run.workspace or ""
    holding: dict[tuple[str, str], str] = {}
    for v in versions:
        for f in v.files:
            holding.setdefault((v.job, f.sha256), v.ref)
    artifacts = tuple(
        Artifact(
            type=out.artifact or "output",
            job=out.job,
            location=out.path,
            absolute_location=os.path.join(workspace, out.path),
            sha256=out.sha256,
            size_bytes=out.size,
            version=run.tag,
            commit_hash=run.commit,
            build_number=build_number,
            run_id=run.id,
            artifact_version=holding.get((out.job, out.sha256)) if out.artifact else None,
        )
        for out in record.outputs
    )
    rate = totals.success_rate
    jobs = record.jobs
    cached = sum(1 for j in jobs if j.cached)
    tests: dict[str, int] = {}
    for case in record.tests:
        tests[case.status] = tests.get(case.status, 0) + 1
    return BuildOutput(
        pipeline=run.pipeline,
        pipeline_config=_relative(run.pipeline_file, workspace),
        run=run,
        artifacts=artifacts,
        versions=tuple(version_json(v, blob_path or (lambda sha: sha)) for v in versions),
        metrics=BuildMetrics(
            build_time=_human(run.wall_time),
            build_time_seconds=_round(run.wall_time),
            success_rate=None if rate is None else f"{rate * 100:.1f}%",
            success_rate_target=f"{totals.target * 100:.0f}%",
            success_rate_runs=totals.runs,
            success_rate_window=window,
            critical_path_seconds=_round(run.critical_path_time),
            jobs=len(jobs),
            jobs_cached=cached,
            cache_hit_rate=f"{cached / len(jobs) * 100:.1f}%" if jobs else None,
            tests=tests,
            output_bytes=sum(a.size_bytes for a in artifacts),
        ),
    )


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
