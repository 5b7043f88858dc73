"""A job's `artifacts:` files stored as a version: matched as the job's outputs are
(a directory covers what is under it, others are globs; relative to the job's `dir`),
hashed while they are copied into the store, described (SHA-256, size, media type),
versioned (`versioning`) and named in the index once all their bytes are in place.

A symlink among them is stored as the file it points to when that is inside the
workspace, else left out (and said); a pattern that matches nothing is said too.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conveyor.artifacts.backend import Store
from conveyor.artifacts.media import media_type
from conveyor.artifacts.record import ArtifactFile, ArtifactVersion, Attachment
from conveyor.artifacts.store import (
    ArtifactError,
    Document,
    check_name,
    make_attachments,
    now_iso,
    with_attachments,
)
from conveyor.artifacts.versioning import Facts, make_version, safe
from conveyor.model import ArtifactSpec, Job

SBOM_NAME = "sbom.cdx.json"
"""The name the SBOM is attached under (CycloneDX JSON)."""

SbomSource = Callable[[], bytes | None]
"""Gives the workspace's SBOM (None: the workspace has no lockfiles)."""

Attester = Callable[[ArtifactVersion], Sequence[Document]]
"""Gives the documents to attach to a version about to be stored (its signatures and
provenance); none when it is not to be signed."""


@dataclass(frozen=True)
class Collected:
    """What storing one job's artifacts did."""

    version: ArtifactVersion | None
    """The stored version (None: no file matched, nothing was stored)."""
    new: bool
    """False: the same name, version and bytes were stored already (nothing changed)."""
    missing: tuple[str, ...] = ()
    """Patterns that matched no file."""
    left_out: tuple[str, ...] = ()
    """Symlinks that point outside the workspace, or at no file (workspace-relative)."""
    seconds: float = 0.0


def artifact_name(job: Job) -> str:
    """The artifact's name: `artifacts.name`, else the job's (a matrix instance's values
    appended: `build-linux-3.12`)."""
    spec = job.artifacts
    if spec is not None and spec.name:
        return spec.name
    name = "-".join([job.base, *(v for _k, v in job.matrix)])
    return safe(name).strip("._+-")[:128] or "artifact"


def matched_files(
    root: str, job_dir: str, spec: ArtifactSpec
) -> tuple[list[tuple[str, str]], tuple[str, ...], tuple[str, ...]]:
    """([(path in the artifact, file to read)], patterns matching nothing, links left
    out). Paths are relative to the job's directory (to the workspace for a file
    outside it)."""
    from conveyor.cache.outputs import collect

    base = os.path.normpath(os.path.join(root, job_dir))
    found = collect(root, base, spec.paths)
    files: dict[str, str] = {}
    left_out = list(found.refused)
    for rel, path in found.files:
        files[_member(root, base, rel, path)] = path
    top = os.path.realpath(root)
    for rel, _target in found.links:
        path = os.path.join(base, rel)
        real = os.path.realpath(path)
        if (real.startswith(top + os.sep)) and os.path.isfile(real):
            files[_member(root, base, rel, path)] = real
        else:
            left_out.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(files.items()), found.missing, tuple(left_out)


def _member(root: str, base: str, rel: str, path: str) -> str:
    if rel.startswith("../") or rel == "..":
        return os.path.relpath(path, root).replace(os.sep, "/")
    return rel


def collect_job(
    store: Store,
    job: Job,
    root: str,
    facts: Facts,
    *,
    sbom: SbomSource | None = None,
    attest: Attester | None = None,
) -> Collected:
    """The job's artifact files stored as a version of `artifact_name(job)` (signed by
    `attest` in the same write, when given: see `store_files`). Raises
    ArtifactError (VersionConflict: the version is stored with other bytes; VersionError:
    no version could be made)."""
    spec = job.artifacts
    assert spec is not None
    started = time.perf_counter()
    files, missing, left_out = matched_files(root, job.dir, spec)
    if not files:
        return Collected(None, False, missing, left_out)
    name = check_name(artifact_name(job))
    base = os.path.normpath(os.path.join(root, job.dir))
    version, source = make_version(spec, facts, base)
    created = now_iso(facts.when or None)
    record = ArtifactVersion(
        name=name,
        version=version,
        files=(),
        type=spec.type,
        pipeline=facts.pipeline,
        job=facts.job,
        run_id=facts.run_id,
        build_number=facts.build_number,
        commit=facts.commit,
        branch=facts.branch,
        tag=facts.tag,
        created=created,
        expires=(
            now_iso((facts.when or time.time()) + spec.expire_in)
            if spec.expire_in is not None
            else None
        ),
        metadata={"version_source": source},
        keep_last=spec.keep_last,
        keep_per=spec.keep_per,
        keep_latest=spec.keep_latest,
    )
    stored, new = store_files(store, files, record, sbom=sbom, attest=attest)
    return Collected(stored, new, missing, left_out, time.perf_counter() - started)


def store_files(
    store: Store,
    files: Sequence[tuple[str, str]],
    record: ArtifactVersion,
    *,
    sbom: SbomSource | None = None,
    attest: Attester | None = None,
) -> tuple[ArtifactVersion, bool]:
    """`files` ((path in the artifact, file to read)) stored as the version `record`
    describes (its own files left out), with the SBOM attached when `sbom` gives one,
    and what `attest` makes of the version (its signatures and provenance) in the same
    record: a version is never seen unsigned, and its record is written once. (The
    version as stored, whether it is new.) ArtifactError (VersionConflict) when the
    version is stored with other bytes."""
    with store.writing():
        digests = store.put_files([path for _member_path, path in files])
        described = []
        for (member, path), (sha, size) in zip(files, digests, strict=True):
            try:
                executable = bool(os.stat(path).st_mode & stat.S_IXUSR)
            except OSError:
                executable = False
            described.append(ArtifactFile(member, sha, size, media_type(member), executable))
        attachments: tuple[Attachment, ...] = ()
        document = sbom() if sbom is not None else None
        if document is not None:
            sha, size = store.put_bytes(document)
            attachments = (
                Attachment(
                    kind="sbom",
                    name=SBOM_NAME,
                    sha256=sha,
                    size=size,
                    media_type="application/vnd.cyclonedx+json",
                    created=record.created,
                ),
            )
        full = dataclasses.replace(record, files=tuple(described), attachments=attachments)
        if attest is not None:
            documents = attest(full)
            if documents:
                full = with_attachments(full, make_attachments(store, documents, record.created))
        return store.store(full)


__all__ = [
    "SBOM_NAME",
    "ArtifactError",
    "Collected",
    "artifact_name",
    "collect_job",
    "matched_files",
    "store_files",
]
