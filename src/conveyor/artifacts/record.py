"""What the artifact store knows of one version: the `ArtifactVersion` record and its
files. Plain data: the store writes it as JSON (`as_dict`/`from_dict`), the CLI and the
build-output hand-off read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArtifactFile:
    """One file of a version: its path inside the artifact ('dist/app-1.2.0.whl', '/'
    separated, never absolute, never with '..'), its content's SHA-256 (hex, also its
    blob's address in the store), size in bytes and media type."""

    path: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Attachment:
    """A document stored beside a version's files (a file's signature, the provenance
    envelope, the SBOM): its kind ('signature', 'provenance', 'sbom'), the name it is
    fetched under ('app-1.2.0.whl.sig', 'app-1.2.0.intoto.jsonl', 'sbom.cdx.json'),
    the file of the version it is about (for a signature), and its blob's SHA-256."""

    kind: str
    name: str
    sha256: str
    size: int
    subject: str | None = None


@dataclass(frozen=True)
class ArtifactVersion:
    """One stored version of a named artifact. Immutable: the same name and version with
    other bytes is refused."""

    name: str
    version: str
    files: tuple[ArtifactFile, ...]
    type: str = "application"
    """application, library, package, container, deployment-manifest, documentation,
    report or other (the job's `artifacts.type`)."""
    pipeline: str = ""
    job: str = ""
    run_id: str = ""
    build_number: int | None = None
    """The pipeline's run number when this version was made."""
    commit: str | None = None
    branch: str | None = None
    created: str = ""
    """When it was stored, ISO 8601 UTC."""
    channel: str = "dev"
    """Where it stands: dev, then (promoted) staging, prod or any channel named."""
    expires: str | None = None
    """ISO 8601 UTC after which retention may remove it (None: kept by the `keep:`
    rules only); a version in a protected channel never expires."""
    attachments: tuple[Attachment, ...] = ()
    published: tuple[Mapping[str, Any], ...] = ()
    """Where it was published: one mapping per target (kind, location, when, digests
    verified)."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Anything else said about it (the version's source: 'git describe',
    'pyproject.toml', a template)."""

    @property
    def ref(self) -> str:
        """'name@version'."""
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """The record as the store's index keeps it (JSON)."""
        from dataclasses import asdict

        data = asdict(self)
        data["metadata"] = dict(self.metadata)
        data["published"] = [dict(p) for p in self.published]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactVersion:
        """The record from `as_dict`'s JSON (ValueError when it is not one)."""
        try:
            return cls(
                **{
                    **data,
                    "files": tuple(ArtifactFile(**f) for f in data["files"]),
                    "attachments": tuple(Attachment(**a) for a in data.get("attachments", ())),
                    "published": tuple(dict(p) for p in data.get("published", ())),
                    "metadata": dict(data.get("metadata", {})),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an artifact record: {exc}") from None
