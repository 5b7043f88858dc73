"""Verifying a stored version: every blob it names (its files and its attachments) hashed
again and compared with the record (an attachment kept in the record: its text), so a
changed byte, a truncated or missing blob is found and named with the file and both
digests.

Signatures and provenance are verified by checks handed in (`VersionCheck`): the
signing and provenance modules give theirs (a public key, an expected builder) and the
CLI passes them, so this module knows nothing of keys. A check sees the store and the
version (its blobs already found intact) and returns its problems.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import ArtifactVersion
from conveyor.artifacts.store import file_sha256


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a version."""

    subject: str
    """The file or attachment ('dist/app.whl', 'attachment sbom.cdx.json'), or the check."""
    message: str
    expected: str | None = None
    """The SHA-256 the record states."""
    actual: str | None = None
    """The SHA-256 of the bytes as they are (None: gone)."""

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


class VersionCheck(Protocol):
    """A verification beyond the digests (a signature against a public key, a
    provenance statement against the version): the problems it finds."""

    name: str

    def __call__(self, store: Store, version: ArtifactVersion) -> Sequence[Problem]: ...


@dataclass(frozen=True)
class Verification:
    version: ArtifactVersion
    problems: tuple[Problem, ...]
    files: int
    """Digests checked: blobs hashed, and attachments kept in the record."""
    bytes: int
    checks: tuple[str, ...] = ()
    """The names of the checks beyond the digests that ran."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    store: Store,
    version: ArtifactVersion,
    *,
    checks: Sequence[VersionCheck] = (),
    threads: int | None = None,
) -> Verification:
    """Every digest of the version recomputed from its blobs, then the `checks` run
    (only when the bytes are intact: a signature over tampered bytes says nothing more)."""
    problems: list[Problem] = []
    inline = [a for a in version.attachments if a.content is not None]
    for a in inline:
        text_digest = hashlib.sha256((a.content or "").encode()).hexdigest()
        if text_digest != a.sha256:
            problems.append(
                Problem(
                    f"attachment {a.name}",
                    f"tampered or corrupt: its text in the record has sha256 {text_digest}, "
                    f"the record says sha256 {a.sha256}",
                    expected=a.sha256,
                    actual=text_digest,
                )
            )
    subjects = [(f.path, f.sha256, f.size) for f in version.files] + [
        (f"attachment {a.name}", a.sha256, a.size) for a in version.attachments if a.content is None
    ]
    paths = [store.blob_path(sha) for _subject, sha, _size in subjects]
    workers = threads or min(8, os.cpu_count() or 1, max(1, len(paths)))
    if workers > 1 and len(paths) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            actual = list(pool.map(file_sha256, paths))
    else:
        actual = [file_sha256(p) for p in paths]
    for (subject, expected, size), path, got in zip(subjects, paths, actual, strict=True):
        if got is None:
            problems.append(
                Problem(subject, f"its blob is missing ({path})", expected=expected, actual=None)
            )
        elif got != expected:
            try:
                now = os.path.getsize(path)
            except OSError:
                now = -1
            sized = f", {now} bytes where {size} were stored" if now != size else ""
            problems.append(
                Problem(
                    subject,
                    f"tampered or corrupt: its bytes have sha256 {got}, the record says "
                    f"sha256 {expected}{sized} (blob {path})",
                    expected=expected,
                    actual=got,
                )
            )
    ran: list[str] = []
    if not problems:
        for check in checks:
            ran.append(check.name)
            problems.extend(check(store, version))
    return Verification(
        version,
        tuple(problems),
        len(subjects) + len(inline),
        sum(size for _s, _sha, size in subjects) + sum(a.size for a in inline),
        tuple(ran),
    )
