"""The artifacts page: the versions in the artifact store (`conveyor artifacts list`),
newest first, with their files and digests, channel, run and commit."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import ArtifactVersion

LIMIT = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactFileView:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactView:
    name: str
    version: str
    type: str
    channel: str
    created: str
    run_id: str
    job: str
    commit: str | None
    branch: str | None
    files: tuple[ArtifactFileView, ...]
    signed: bool
    published: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactsPage:
    where: str
    exists: bool
    names: tuple[str, ...]
    versions: tuple[ArtifactView, ...]
    total: int


def _view(v: ArtifactVersion) -> ArtifactView:
    return ArtifactView(
        name=v.name,
        version=v.version,
        type=v.type,
        channel=v.channel,
        created=v.created,
        run_id=v.run_id,
        job=v.job,
        commit=v.commit,
        branch=v.branch,
        files=tuple(ArtifactFileView(path=f.path, sha256=f.sha256, size=f.size) for f in v.files),
        signed=any(a.kind == "signature" for a in v.attachments),
        published=len(v.published),
    )


def artifacts_page(store: Store, where: str, name: str | None) -> ArtifactsPage:
    """The store's versions (of one name, or all), newest first."""
    if not store.exists():
        return ArtifactsPage(where=where, exists=False, names=(), versions=(), total=0)
    versions = store.versions(name)
    versions.sort(key=lambda v: v.created, reverse=True)
    return ArtifactsPage(
        where=where,
        exists=True,
        names=tuple(store.names()),
        versions=tuple(_view(v) for v in versions[:LIMIT]),
        total=len(versions),
    )
