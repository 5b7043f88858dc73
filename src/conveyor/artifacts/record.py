"""What the artifact store knows of one version: the `ArtifactVersion` record and its
files. Plain data: the store writes it as JSON (`as_dict`/`from_dict`), the CLI and the
build-output hand-off read it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
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
    executable: bool = False
    """Fetched with its executable bits set (a binary, a script)."""


@dataclass(frozen=True)
class Attachment:
    """A document stored beside a version's files (a file's signature, the provenance
    envelope, the SBOM): its kind ('signature', 'provenance', 'sbom'), the name it is
    fetched under ('app-1.2.0.whl.sig', 'app-1.2.0.intoto.jsonl', 'sbom.cdx.json'),
    the file of the version it is about (for a signature), and its bytes' SHA-256 (the
    address of its blob, unless it is kept in the record: `content`)."""

    kind: str
    name: str
    sha256: str
    size: int
    subject: str | None = None
    media_type: str = "application/octet-stream"
    created: str = ""
    """When it was attached, ISO 8601 UTC."""
    content: str | None = None
    """The document itself, when it is a small text kept in the record rather than as a
    blob (a file's signature: about 100 bytes of base64). A version of 10,000 files has
    10,000 signatures, and a file each took longer to create than signing took; `fetch`
    and `publish` still write each one as `<file>.sig` beside its file."""


ATTACHMENT_KINDS = ("signature", "provenance", "sbom", "other")
"""What an attachment may be: a signature of one file (or of the version), a
provenance statement, the SBOM of the workspace the version was built from."""


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
    tag: str | None = None
    """The git tag the commit had, if any."""
    keep_last: int | None = None
    """The job's `keep: {last: N}` when the version was stored: the newest N versions of
    the name (per branch, with `keep_per`) are kept when the store is pruned."""
    keep_per: str | None = None
    keep_latest: bool = False
    """The job's `keep: {latest: true}` when the version was stored: while it is the
    newest version of the name on its branch, its `expires` does not remove it."""
    promotions: tuple[Mapping[str, str], ...] = ()
    """Each move between channels: {from, to, when}."""

    @property
    def ref(self) -> str:
        """'name@version'."""
        return f"{self.name}@{self.version}"

    @property
    def size(self) -> int:
        """Bytes of its files, added up."""
        return sum(f.size for f in self.files)

    @property
    def digest(self) -> str:
        """'sha256:<hex>': one digest of the version's content, its files' paths, sizes
        and digests (what two versions of one name and version are compared by)."""
        return files_digest(self.files)

    def attachments_of(self, kind: str) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        """The record as the store's index keeps it (JSON)."""
        # Built field by field: dataclasses.asdict deep-copies every value, which for a
        # version of 10,000 files (and as many signatures) cost more than hashing them.
        data = {name: getattr(self, name) for name in _VERSION_FIELDS}
        data["files"] = tuple(dict(f.__dict__) for f in self.files)
        data["attachments"] = tuple(dict(a.__dict__) for a in self.attachments)
        data["metadata"] = dict(self.metadata)
        data["published"] = [_plain(p) for p in self.published]
        data["promotions"] = [dict(p) for p in self.promotions]
        data["digest"] = self.digest
        return data

    def to_json(self) -> str:
        """The record's text in the index: `as_dict` as JSON, keys sorted, on one line
        (json's C encoder writes that; an indented record took several times as long
        to write as the files it describes took to hash)."""
        return json.dumps(self.as_dict(), sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactVersion:
        """The record from `as_dict`'s JSON (ValueError when it is not one)."""
        try:
            # Fields a newer Conveyor added are left out, not refused.
            return cls(
                **{
                    **{k: v for k, v in data.items() if k in _VERSION_FIELDS},
                    "files": tuple(_known(ArtifactFile, _FILE_FIELDS, f) for f in data["files"]),
                    "attachments": tuple(
                        _known(Attachment, _ATTACHMENT_FIELDS, a)
                        for a in data.get("attachments", ())
                    ),
                    "published": tuple(dict(p) for p in data.get("published", ())),
                    "promotions": tuple(dict(p) for p in data.get("promotions", ())),
                    "metadata": dict(data.get("metadata", {})),
                }
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an artifact record: {exc}") from None


_VERSION_FIELDS = frozenset(f.name for f in fields(ArtifactVersion))
_FILE_FIELDS = frozenset(f.name for f in fields(ArtifactFile))
_ATTACHMENT_FIELDS = frozenset(f.name for f in fields(Attachment))


def _plain(value: Any) -> Any:
    """A copy of a JSON-like value with mappings as dicts and sequences as lists (what
    asdict made of a publication's entry)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _known(cls: type[Any], names: frozenset[str], data: Mapping[str, Any]) -> Any:
    if names.issuperset(data):
        return cls(**data)
    return cls(**{k: v for k, v in data.items() if k in names})


def files_digest(files: Iterable[ArtifactFile]) -> str:
    """'sha256:<hex>' of the files' paths, sizes and digests, in path order."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.size}\0{f.sha256}\n".encode())
    return "sha256:" + h.hexdigest()
