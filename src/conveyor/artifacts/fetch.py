"""A version's files out of the store: into a directory (their paths as stored) or as
one archive. Verified first: nothing is written when a digest does not match; the
bytes are hashed again while they are copied, so a blob changed in between is caught
too. A file is never written through a symlink out of the directory, nor over an
existing file unless `force`."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence

from conveyor.artifacts.archive import Entry, write_archive
from conveyor.artifacts.backend import Store
from conveyor.artifacts.inline import local_paths
from conveyor.artifacts.record import ArtifactVersion
from conveyor.artifacts.store import CHUNK, ArtifactError, check_member, parse_iso
from conveyor.artifacts.verify import Verification, VersionCheck, verify
from conveyor.fsutil import atomic_file


def _entries(
    store: Store, version: ArtifactVersion, attachments: Mapping[str, str] | None
) -> list[tuple[str, str, str, bool]]:
    """(path, local file, sha256, executable) of what a fetch writes; `attachments`: a
    local file for each attachment by name (`inline.local_paths`), when they are wanted."""
    out = [(f.path, store.blob_path(f.sha256), f.sha256, f.executable) for f in version.files]
    if attachments is not None:
        taken = {f.path for f in version.files}
        for a in version.attachments:
            if a.name in taken:
                raise ArtifactError(f"{version.ref}: the attachment {a.name!r} has a file's name")
            out.append((a.name, attachments[a.name], a.sha256, False))
            taken.add(a.name)
    return out


@contextlib.contextmanager
def _attachments(
    store: Store, version: ArtifactVersion, wanted: bool
) -> Iterator[Mapping[str, str] | None]:
    if not wanted:
        yield None
        return
    with local_paths(store, version.attachments) as paths:
        yield paths


def fetch_to(
    store: Store,
    version: ArtifactVersion,
    dest: str,
    *,
    force: bool = False,
    checks: Sequence[VersionCheck] = (),
    attachments: bool = False,
) -> tuple[Verification, list[str]]:
    """The version's files (and attachments) copied under `dest`: (the verification,
    the paths written). Nothing is written when the verification fails."""
    result = verify(store, version, checks=checks)
    if not result.ok:
        return result, []
    with _attachments(store, version, attachments) as local:
        return result, _write_entries(_entries(store, version, local), version, dest, force)


def _write_entries(
    entries: list[tuple[str, str, str, bool]], version: ArtifactVersion, dest: str, force: bool
) -> list[str]:
    os.makedirs(dest, exist_ok=True)
    top = os.path.realpath(dest)
    there = []
    for path, _blob, _sha, _x in entries:
        check_member(path)
        target = os.path.join(top, *path.split("/"))
        if not _inside(top, os.path.dirname(target)) or os.path.islink(target):
            raise ArtifactError(f"{path}: {dest} holds a symlink on its way: not written through")
        if os.path.lexists(target):
            there.append(path)
    if there and not force:
        shown = ", ".join(there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise ArtifactError(
            f"{len(there)} file(s) of {version.ref} exist in {dest} ({shown}): not overwritten",
            hint="fetch into another directory, or pass --force",
        )
    written = []
    for path, blob, sha, executable in entries:
        target = os.path.join(top, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not _inside(top, os.path.dirname(target)):
            raise ArtifactError(f"{path}: {dest} holds a symlink on its way: not written through")
        _copy_verified(blob, target, sha, 0o755 if executable else 0o644)
        written.append(path)
    return written


def fetch_archive(
    store: Store,
    version: ArtifactVersion,
    out: str,
    *,
    force: bool = False,
    checks: Sequence[VersionCheck] = (),
    attachments: bool = False,
) -> tuple[Verification, list[str]]:
    """The version's files as one archive at `out` (its format from its name)."""
    from conveyor.artifacts.archive import archive_format

    archive_format(out)
    result = verify(store, version, checks=checks)
    if not result.ok:
        return result, []
    if os.path.lexists(out) and not force:
        raise ArtifactError(f"{out} exists: not overwritten", hint="pass --force")
    try:
        mtime = parse_iso(version.created) if version.created else 0.0
    except ValueError:
        mtime = 0.0
    with _attachments(store, version, attachments) as local:
        entries = _entries(store, version, local)
        for path, *_rest in entries:
            check_member(path)
        write_archive(
            out,
            [Entry(path, blob, executable) for path, blob, _sha, executable in entries],
            mtime=mtime,
        )
    return result, [path for path, *_rest in entries]


def _inside(top: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == top or real.startswith(top + os.sep)


def _copy_verified(blob: str, target: str, sha256: str, mode: int) -> None:
    """The blob copied to `target` in one rename, hashed on the way: a blob that no
    longer matches its digest is not put in place."""
    h = hashlib.sha256()
    with open(blob, "rb") as src, atomic_file(target, perms=mode) as out:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := src.readinto(buf):
            h.update(view[:n])
            out.write(view[:n])
        if h.hexdigest() != sha256:
            raise ArtifactError(
                f"{target}: the blob changed while it was copied (sha256 {h.hexdigest()}, "
                f"the record says {sha256}): not written"
            )
