"""A snapshot written back: the workspace's files into a directory, the cache's index
into the cache, the PostgreSQL history into a database.

Nothing is overwritten unless asked: a file already there with other content is a
conflict, and conflicts stop the restore before it writes anything (BackupError, exit 2)
unless `force`. A file already there with the same content is left as it is; the
cache's entries are named by their digests, so they are merged, never replaced. Each
file is written to a temporary and renamed, its mode and mtime as backed up.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conveyor.backup import sources
from conveyor.backup.backend import BackupError
from conveyor.backup.create import Chunker, read_file
from conveyor.backup.repository import CorruptChunk, Repository, Snapshot
from conveyor.backup.sources import sqlite_page_size
from conveyor.fsutil import atomic_file


@dataclass(frozen=True)
class Restored:
    snapshot: Snapshot
    to: str
    files: int
    bytes: int
    unchanged: int
    cache_files: int
    history: str


def _target(entry: Mapping[str, Any], to: str, cache_dir: str | None, snap: Snapshot) -> str | None:
    path = str(entry["path"])
    if ".." in path.split("/") or path.startswith("/"):
        raise BackupError(f"snapshot {snap.short_id}: unsafe path {path!r} in its manifest")
    source = entry["source"]
    if source == "workspace":
        return os.path.join(to, *path.split("/"))
    if source == "cache":
        return os.path.join(cache_dir, *path.split("/")) if cache_dir else None
    if source == "artifacts":
        return os.path.join(str(snap.history["artifacts_dir"]), *path.split("/"))
    if source == "history" and path == "history.db":
        return str(snap.history["path"])
    return None  # the PostgreSQL dump: restored with pg_restore


def _same(path: str, entry: Mapping[str, Any], chunker: Chunker) -> bool:
    try:
        if os.path.getsize(path) != entry["size"]:
            return False
        want = list(entry["chunks"])
        # Cut as it was: where its content says, or, a SQLite history, at fixed offsets
        # (its pages, or 64 KiB in backups made before Conveyor cut it by pages).
        page = sqlite_page_size(path)
        for fixed in (0, page, 64 << 10) if page else (0,):
            ids, _ = read_file(path, functools.partial(chunker.ids, fixed=fixed))
            if ids == want:
                return True
    except OSError:
        return False
    return False


def restore(
    repo: Repository,
    snap: Snapshot,
    *,
    to: str,
    cache_dir: str | None,
    db_url: str | None,
    force: bool,
    environ: Mapping[str, str],
) -> Restored:
    """Write the snapshot back (see the module's docstring)."""
    to = os.path.abspath(to)
    everything = repo.entries(snap)
    entries = [e for e in everything if "chunks" in e]
    chunker = Chunker(repo)
    plan: list[tuple[dict[str, Any], str]] = []
    conflicts: list[str] = []
    unchanged = 0
    dump: dict[str, Any] | None = None
    # Folders (empty ones too) are made, and given their mode and mtime once their
    # files are written; a folder already there is left as it is.
    folders: list[tuple[dict[str, Any], str]] = []
    for entry in everything:
        if "chunks" in entry:
            continue
        target = _target(entry, to, cache_dir, snap)
        if target is None:
            continue
        target = os.path.normpath(target)  # a folder's path ends with `/`
        if os.path.isdir(target):
            continue
        if os.path.lexists(target):
            conflicts.append(target)
        folders.append((entry, target))
    for entry in entries:
        target = _target(entry, to, cache_dir, snap)
        if target is None:
            if entry["source"] == "history":
                dump = entry
            continue
        if os.path.lexists(target):
            if _same(target, entry, chunker):
                unchanged += 1
                continue
            if entry["source"] == "cache":
                continue  # another result for the same action: both are valid
            conflicts.append(target)
        plan.append((entry, target))
    if dump is not None:
        db_url = db_url or environ.get("CONVEYOR_DB_URL")
        if not db_url:
            raise BackupError(
                f"snapshot {snap.short_id} holds a PostgreSQL history: name the database "
                "to restore it into",
                hint="--db-url postgresql+psycopg://user@host/db (an empty database)",
            )
        if not sources.pg_is_empty(db_url, environ) and not force:
            conflicts.append(f"the database {_shown(db_url)} (it has tables)")
    if conflicts and not force:
        more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
        raise BackupError(
            f"restore would overwrite {conflicts[0]}{more}",
            hint="restore into an empty directory (--to DIR), or give --force to overwrite",
        )
    written = size = cached = 0
    # Reading, decompressing, checking and writing release the GIL: files in parallel.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for done in pool.map(lambda pair: _write(repo, *pair), plan):
            written += 1
            size += int(done["size"])
            cached += done["source"] == "cache"
    _make_folders(folders, force=force)
    history = str(snap.history.get("kind", "none"))
    if dump is not None and db_url:
        with tempfile.TemporaryDirectory(prefix="conveyor-restore-") as scratch:
            path = os.path.join(scratch, sources.PG_DUMP)
            _write(repo, dump, path)
            sources.pg_restore(db_url, path, environ, clean=force)
        history = f"postgresql into {_shown(db_url)}"
    return Restored(snap, to, written - cached, size, unchanged, cached, history)


def _shown(url: str) -> str:
    from conveyor.urls import without_userinfo

    return without_userinfo(url)


def _write(repo: Repository, entry: Mapping[str, Any], target: str) -> Mapping[str, Any]:
    try:
        with atomic_file(target, makedirs=True, perms=int(entry["mode"]) & 0o7777) as fh:
            for data in repo.chunks(list(entry["chunks"])):
                fh.write(data)
    except CorruptChunk as exc:
        raise CorruptChunk(exc.chunk, f"{exc.why}; {entry['path']} cannot be restored") from None
    os.utime(target, ns=(int(entry["mtime_ns"]), int(entry["mtime_ns"])))
    return entry


def _make_folders(folders: list[tuple[dict[str, Any], str]], *, force: bool) -> None:
    """The folders no file made, then every new folder's mode and mtime, the deepest
    first (making a folder inside changes its parent's mtime)."""
    for _, target in folders:
        if force and os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)  # a file where a folder was: --force replaces it
        os.makedirs(target, exist_ok=True)
    for entry, target in sorted(folders, key=lambda pair: pair[1].count(os.sep), reverse=True):
        os.chmod(target, int(entry["mode"]) & 0o7777)
        os.utime(target, ns=(int(entry["mtime_ns"]), int(entry["mtime_ns"])))
