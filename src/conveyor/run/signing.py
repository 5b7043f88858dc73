"""Signing what a run stores: each new version gets a `<file>.sig` per file and its
`<name>-<version>.intoto.jsonl` provenance (conveyor.artifacts.attest), signed with the
run's key (`attestations`: the documents, attached as the version is stored, or with
`artifacts.store.attach_all` to a version stored before). The key is loaded once, when
the run is composed, so a key that cannot be loaded (a wrong password, a missing file)
fails the run before any job starts rather than every job that stores something."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from conveyor.artifacts.record import ArtifactVersion

if TYPE_CHECKING:
    from conveyor.artifacts.provenance import Resource
    from conveyor.artifacts.signing import SigningKey
    from conveyor.artifacts.store import Document
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
    job: Job,
    result: JobResult,
    upstream: Iterable[ArtifactVersion],
    *,
    inputs: Iterable[tuple[str, str]] = (),
    source: Resource | None = None,
) -> list[Resource]:
    """The provenance's resolvedDependencies: the source repository at its commit; the
    job's inputs as its cache key digests them (the action digest, which covers them and
    the environment, then each input file by workspace-relative name: `inputs` are the
    key's manifest entries, (path, 'sha256/size' with an 'x' when executable)); then each
    file of the versions the jobs it needs stored in this run, by `name@version/path`
    and SHA-256, the digests `artifacts fetch` and their own provenance's subjects give."""
    from conveyor.artifacts.provenance import Resource

    out: list[Resource] = [] if source is None else [source]
    if result.action_digest:
        out.append(
            Resource({"sha256": result.action_digest}, uri=f"conveyor:job-inputs/{job.name}")
        )
    executable = {"executable": True}
    for path, named in inputs:
        sha, _, size = named.partition("/")
        out.append(
            Resource({"sha256": sha}, None, path, executable if size.endswith("x") else None)
        )
    for version in upstream:
        if version.job in job.needs:
            out.extend(
                Resource({"sha256": f.sha256}, uri=f"conveyor:artifact/{version.ref}/{f.path}")
                for f in version.files
            )
    return out


def attestations(
    version: ArtifactVersion,
    key: SigningKey,
    *,
    pipeline_file: str,
    job: Job,
    result: JobResult,
    upstream: Sequence[ArtifactVersion],
    inputs: Iterable[tuple[str, str]] = (),
    source: Resource | None = None,
) -> list[Document]:
    """The version's signatures and provenance, as documents to attach (`dependencies`
    says what `inputs` and `source` are)."""
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
        resolved_dependencies=dependencies(job, result, upstream, inputs=inputs, source=source),
    )
    return [(a.kind, a.name, data, a.subject) for a, data in made]
