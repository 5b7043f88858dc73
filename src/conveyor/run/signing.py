"""Signing what a run stores: each new version gets a `<file>.sig` per file and its
`<name>-<version>.intoto.jsonl` provenance (conveyor.artifacts.attest), signed with the
run's key. The key is loaded once, when the run is composed, so a key that cannot be
loaded (a wrong password, a missing file) fails the run before any job starts rather
than every job that stores something."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import ArtifactVersion

if TYPE_CHECKING:
    from conveyor.artifacts.signing import SigningKey
    from conveyor.model import Job, JobResult, Pipeline

BUILDER_ID = "urn:conveyor:builder:local"


def run_key(pipeline: Pipeline, environ: Mapping[str, str]) -> SigningKey | None:
    """The key the run signs with (CONVEYOR_SIGNING_KEY, else `artifacts.signing_key`),
    None when neither names one; a SigningError (exit 2, one line) when it cannot be
    loaded. `cryptography` is only imported when a key is named."""
    from conveyor.artifacts.signing import KEY_VARIABLE

    if not environ.get(KEY_VARIABLE) and not pipeline.artifacts.signing_key:
        return None
    from conveyor.artifacts.signing import signing_key

    return signing_key(pipeline.artifacts.signing_key, environ=environ)


def dependencies(
    job: Job, result: JobResult, upstream: Iterable[ArtifactVersion]
) -> list[tuple[str, Mapping[str, str]]]:
    """The provenance's resolvedDependencies: the job's inputs as its cache key digests
    them (the action digest covers every input file's digest and the environment), then
    each file of the versions the jobs it needs stored in this run."""
    out: list[tuple[str, Mapping[str, str]]] = []
    if result.action_digest:
        out.append((f"conveyor:job-inputs/{job.name}", {"sha256": result.action_digest}))
    for version in upstream:
        if version.job in job.needs:
            out.extend(
                (f"conveyor:artifact/{version.ref}/{f.path}", {"sha256": f.sha256})
                for f in version.files
            )
    return out


def sign_version(
    store: Store,
    version: ArtifactVersion,
    key: SigningKey,
    *,
    pipeline_file: str,
    job: Job,
    result: JobResult,
    upstream: Sequence[ArtifactVersion],
) -> ArtifactVersion:
    """The version with its signatures and provenance attached."""
    from conveyor.artifacts.attest import attest

    def stamp(at: float | None) -> datetime | None:
        return None if at is None else datetime.fromtimestamp(at, UTC)

    made = attest(
        version,
        key,
        builder_id=BUILDER_ID,
        pipeline_file=pipeline_file,
        started_on=stamp(result.started_at),
        finished_on=stamp(result.finished_at),
        resolved_dependencies=dependencies(job, result, upstream),
    )
    from conveyor.artifacts.store import attach_all

    return attach_all(store, version.ref, [(a.kind, a.name, data, a.subject) for a, data in made])
