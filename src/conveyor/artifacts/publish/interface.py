"""What a publish target is: the files it is given (`PublishFile`), what it hands back
(`PublishReceipt`: where each file went and the digest read back from there), and the
errors it raises (`PublishError`, retried by `publish_all` when `retry` is set;
`PublishRefused`, never retried: the target already holds other bytes under that name)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from conveyor.errors import EnvironmentProblem

CHUNK = 1024 * 1024
"""Bytes read at a time when copying or hashing."""


@dataclass(frozen=True)
class PublishFile:
    """One file of a version to publish: its path inside the artifact ('dist/app.whl',
    '/' separated), where its bytes are on this machine (the store's blob), their SHA-256
    (hex), size and media type."""

    name: str
    local_path: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


@dataclass(frozen=True)
class PublishedFile:
    """Where one file went and the SHA-256 read back from there."""

    name: str
    location: str
    sha256: str
    size: int


@dataclass(frozen=True)
class PublishReceipt:
    """A version published to one target and verified there."""

    target: str
    """The target as `describe()` shows it (no credentials)."""
    kind: str
    """'directory', 's3' or 'pypi'."""
    version_ref: str
    files: tuple[PublishedFile, ...]
    bytes: int
    """Bytes sent (0 when everything was already there)."""
    seconds: float
    """Wall time of the successful attempt, verification included."""
    verify_seconds: float
    """Of which reading back and comparing digests."""
    already: bool = False
    """The target already held this version with the same digests: nothing was sent."""
    attempts: int = 1

    def as_record(self, when: str) -> dict[str, Any]:
        """The mapping `ArtifactVersion.published` keeps (kind, location, when, digests
        verified)."""
        return {
            "kind": self.kind,
            "target": self.target,
            "when": when,
            "files": [
                {"name": f.name, "location": f.location, "sha256": f.sha256} for f in self.files
            ],
        }


@dataclass(frozen=True)
class PublishFailure:
    """A target that could not be published to: `error` is one line naming it."""

    target: str
    error: str
    attempts: int


class PublishError(EnvironmentProblem):
    """A publish did not complete (the target left as it was). `retry`: worth trying
    again (a connection refused, a 5xx, bytes that read back wrong)."""

    def __init__(self, message: str, *, retry: bool = True, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry = retry


class PublishRefused(PublishError):
    """The target holds other bytes under this version, or cannot be used as given
    (no credentials, a bad URL): trying again would not help."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, retry=False, hint=hint)


def refuse_other_files(
    version_ref: str, where: str, wanted: Mapping[str, str], there: Mapping[str, str]
) -> None:
    """PublishRefused when `where` already holds `version_ref` with other files than
    `wanted` (name -> SHA-256): a published version is never replaced."""
    if dict(there) == dict(wanted):
        return
    differ = sorted(n for n in wanted.keys() | there.keys() if there.get(n) != wanted.get(n))
    raise PublishRefused(
        f"{version_ref} is already published at {where} with other files "
        f"({', '.join(differ[:3])}{', …' if len(differ) > 3 else ''}): "
        "a published version is never replaced",
        hint="publish a new version",
    )


class Target(Protocol):
    """A place versions are published to."""

    kind: str

    def describe(self) -> str:
        """The target as shown to a user (a URL without credentials)."""
        ...

    def publish(self, version_ref: str, files: Sequence[PublishFile]) -> PublishReceipt:
        """Publish `files` as `name@version`, verify them by reading back, and return the
        receipt; on failure raise PublishError with the target left as it was."""
        ...


def split_ref(version_ref: str) -> tuple[str, str]:
    """'name@version' into its parts, each usable as one path component."""
    name, sep, version = version_ref.rpartition("@")
    for part in (name, version):
        if not sep or not part or part in (".", "..") or "/" in part or "\\" in part:
            raise PublishRefused(f"{version_ref!r} is not a version reference 'name@version'")
    return name, version


def check_names(files: Sequence[PublishFile]) -> None:
    """Refuse file names that could escape the version's directory or collide."""
    seen: set[str] = set()
    for f in files:
        parts = f.name.split("/")
        if (
            not f.name
            or f.name.startswith("/")
            or "\\" in f.name
            or any(p in ("", ".", "..") for p in parts)
            or parts[0].startswith(".conveyor")
        ):
            raise PublishRefused(f"{f.name!r} is not a relative file path inside the artifact")
        if f.name in seen:
            raise PublishRefused(f"{f.name!r} is given twice")
        seen.add(f.name)


def sha256_stream(fh: BinaryIO) -> tuple[str, int]:
    """The SHA-256 (hex) and length of what is left to read in `fh`."""
    digest = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: str) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)
