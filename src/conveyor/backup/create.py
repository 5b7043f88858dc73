"""One backup: every file of the plan chunked into the repository, then the snapshot.

A file whose size and mtime are those the previous backup of this workspace recorded
is not read again: its chunks are reused (as restic does with its parent snapshot), so
a second backup costs a stat per file plus the files that changed. A file modified in
the second before that backup began is read anyway (git's racy-mtime rule). Files are
chunked on a pool of threads: hashing, compressing and sealing release the GIL.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conveyor.backup import sources
from conveyor.backup.repository import Repository, Snapshot

_KEYS = ("source", "path", "mode", "size", "mtime_ns", "chunks")
RACY = 1.0
"""Seconds before the previous backup began in which an mtime does not vouch for a file."""


@dataclass(frozen=True)
class Created:
    snapshot: Snapshot
    files: int
    bytes: int
    read_files: int
    read_bytes: int
    added_chunks: int
    added_bytes: int
    seconds: float


class Chunker:
    """A FastCDC chunker per thread (pyfastcdc's is not safe to share)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._local = threading.local()

    def _get(self) -> Any:
        cdc = getattr(self._local, "cdc", None)
        if cdc is None:
            from pyfastcdc import FastCDC

            conf = self.repo.config["chunker"]
            cdc = FastCDC(
                int(conf["avg"]),
                min_size=int(conf["min"]),
                max_size=int(conf["max"]),
                seed=self.repo.key.seed,
            )
            self._local.cdc = cdc
        return cdc

    def store(self, data: bytes | memoryview) -> list[str]:
        """Chunk `data` into the repository; its chunk ids in order."""
        ids = []
        for piece in self._get().cut_buf(data):
            chunk = self.repo.key.chunk_id(piece.data)
            if self.repo.claim(chunk):
                self.repo.add(chunk, piece.data)
            ids.append(chunk)
        return ids

    def ids(self, data: bytes | memoryview) -> list[str]:
        """The ids `store` would give, storing nothing."""
        return [self.repo.key.chunk_id(p.data) for p in self._get().cut_buf(data)]


def read_file(path: str, use: Callable[[bytes | memoryview], list[str]]) -> tuple[list[str], int]:
    """`use` applied to the file's bytes (mapped, not read into memory): (ids, size)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return [], 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return use(view), size
            finally:
                view.release()


def create(
    repo: Repository,
    plan: sources.Plan,
    environ: Mapping[str, str],
    *,
    threads: int | None = None,
) -> Created:
    """Back up the plan's files; the snapshot is written last (the commit point)."""
    started = time.time()
    host = socket.gethostname()
    workspace = os.path.abspath(plan.workspace)
    latest = _latest(repo, host, workspace)
    parent = _parent(repo, latest)
    # A file changed in the second before the previous backup began may have changed
    # again within the same mtime: read it.
    parent_start_ns = int(((latest.time if latest else 0.0) - RACY) * 1e9)
    chunker = Chunker(repo)
    lines: dict[int, str] = {}
    counts = [0, 0]
    count_lock = threading.Lock()

    def entry_of(item: sources.Item) -> dict[str, Any] | None:
        """The file's entry, its chunks reused from the previous backup when its size
        and mtime vouch for it; else without chunks (to be read)."""
        st = item.stat
        if st is None:
            try:
                st = os.stat(item.file)
            except FileNotFoundError:
                return None  # gone since the walk (a pruned run): nothing to keep
        entry: dict[str, Any] = {
            "source": item.source,
            "path": item.path,
            "mode": stat.S_IMODE(st.st_mode),
            "mtime_ns": st.st_mtime_ns,
        }
        found = None if item.fresh else parent.get((item.source, item.path))
        if found is not None:
            before, line = found
            if (
                before["size"] == st.st_size
                and before["mtime_ns"] == st.st_mtime_ns
                and st.st_mtime_ns < parent_start_ns
                and all(map(repo.index.__contains__, before["chunks"]))
            ):
                entry["size"], entry["chunks"] = before["size"], before["chunks"]
                if before["mode"] == entry["mode"]:
                    lines[id(entry)] = line  # the same line: not encoded again
        return entry

    def read(pair: tuple[sources.Item, dict[str, Any]]) -> dict[str, Any] | None:
        item, entry = pair
        try:
            ids, size = read_file(item.file, chunker.store)
        except FileNotFoundError:
            return None
        with count_lock:
            counts[0] += 1
            counts[1] += size
        entry["size"], entry["chunks"] = size, ids
        return entry

    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conveyor-backup-") as scratch:
        phases = {"parent": time.time() - started}
        mark = time.time()
        items, history = sources.items(plan, scratch, environ)
        # Only the files to read go to the pool: a second backup of 40,000 files hands
        # it a few hundred, instead of paying a future per file.
        to_read = []
        for item in items:
            entry = entry_of(item)
            if entry is None:
                continue
            if "chunks" in entry:
                entries.append(entry)
            else:
                to_read.append((item, entry))
        phases["walk"] = time.time() - mark
        mark = time.time()
        with ThreadPoolExecutor(max_workers=threads or min(4, os.cpu_count() or 1)) as pool:
            entries.extend(e for e in pool.map(read, to_read) if e is not None)
        phases["read"] = time.time() - mark
    mark = time.time()
    entries.sort(key=lambda e: (e["source"], e["path"]))
    # One JSON line per file, keys in one order: unchanged files give unchanged lines,
    # so the manifest's chunks dedup against the previous backup's.
    encode = json.JSONEncoder(separators=(",", ":")).encode
    manifest = "".join(
        (lines.get(id(e)) or encode({k: e[k] for k in _KEYS})) + "\n" for e in entries
    ).encode()
    tree = chunker.store(manifest)
    total = sum(int(e["size"]) for e in entries)
    summary: dict[str, Any] = {
        "files": len(entries),
        "bytes": total,
        "read_files": counts[0],
        "read_bytes": counts[1],
        "added_chunks": repo.added_chunks,
        "added_bytes": repo.added_bytes,
        "seconds": round(time.time() - started, 3),
    }
    phases["manifest"] = time.time() - mark
    # Where the time went (the previous manifest read; the walk, the history copied and
    # the files stat'ed; the files read; the manifest written), for bench/backup.py.
    summary["phases"] = {k: round(v, 3) for k, v in phases.items()}
    record = {
        "time": started,
        "host": host,
        "workspace": workspace,
        "tree": tree,
        "summary": summary,
        "history": history,
        "cache_dir": plan.cache_dir,
    }
    snap = repo.save_snapshot(record)
    return Created(
        snapshot=snap,
        files=len(entries),
        bytes=total,
        read_files=counts[0],
        read_bytes=counts[1],
        added_chunks=repo.added_chunks,
        added_bytes=repo.added_bytes,
        seconds=time.time() - started,
    )


def _latest(repo: Repository, host: str, workspace: str) -> Snapshot | None:
    mine = [s for s in repo.snapshots() if s.host == host and s.workspace == workspace]
    return mine[-1] if mine else None


def _parent(
    repo: Repository, snap: Snapshot | None
) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
    """The previous backup of this workspace from this host, by (source, path): each
    file's entry and its manifest line."""
    if snap is None:
        return {}
    try:
        entries, lines = repo.manifest_lines(snap)
    except Exception:  # a damaged parent only costs reading every file again
        return {}
    return {(e["source"], e["path"]): (e, line) for e, line in zip(entries, lines, strict=True)}
