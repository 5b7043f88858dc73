"""One backup: every file of the plan chunked into the repository, then the snapshot.

A file the previous backup of this workspace vouches for is not read again (scan.py):
a second backup costs a stat per file plus the files that changed. Files are chunked
on a pool of threads while the walk goes on, the history copied and chunked alongside:
copying, hashing, compressing and sealing release the GIL.
"""

from __future__ import annotations

import mmap
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conveyor.backup import scan, sources
from conveyor.backup.forked import Forked
from conveyor.backup.repository import Repository, Snapshot

_BATCH_FILES = 64
_BATCH_BYTES = 8 << 20
"""A task of the pool reads this many files or bytes, whichever comes first."""
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

    def pieces(self, data: bytes | memoryview, fixed: int = 0) -> Iterator[memoryview]:
        """`data` cut where its content says (FastCDC), or every `fixed` bytes."""
        if fixed:
            view = memoryview(data)
            return (view[at : at + fixed] for at in range(0, len(view), fixed))
        return (piece.data for piece in self._get().cut_buf(data))

    def store(self, data: bytes | memoryview, fixed: int = 0) -> list[str]:
        """Chunk `data` into the repository; its chunk ids in order."""
        ids = []
        for piece in self.pieces(data, fixed):
            chunk = self.repo.key.chunk_id(piece)
            if self.repo.claim(chunk):
                self.repo.add(chunk, piece)
            ids.append(chunk)
        return ids

    def ids(self, data: bytes | memoryview, fixed: int = 0) -> list[str]:
        """The ids `store` would give, storing nothing."""
        return [self.repo.key.chunk_id(piece) for piece in self.pieces(data, fixed)]


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
    chunker = Chunker(repo)

    def read(batch: list[sources.Found]) -> list[tuple[str, int]]:
        """Each file's manifest line and the bytes read; a file gone since the walk (a
        pruned run) is left out."""
        done = []
        for source, path, where, st in batch:
            try:
                ids, size = read_file(where, chunker.store)
            except FileNotFoundError:
                continue
            done.append((scan.line_of(source, path, st, size, ids), size))
        return done

    workers = threads or min(4, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="conveyor-backup-") as scratch:
        # The history is copied and cut in a child process from the start (forked.py:
        # a thread would take the GIL from the walk thousands of times), while this
        # process reads the previous manifest and walks the files. Forked before the
        # pool starts any thread.
        copying = Forked(lambda: _copy_history(plan, scratch, environ, chunker), scratch)
        pool = ThreadPoolExecutor(max_workers=workers + 1)  # one more to store the history
        try:
            history_job = pool.submit(_store_history, copying, repo)
            latest = _latest(repo, host, workspace)
            # A file changed in the second before the previous backup began may have
            # changed again within the same mtime: read it.
            parent = scan.Parent(
                _parent_lines(repo, latest),
                int(((latest.time if latest else 0.0) - RACY) * 1e9),
                repo.index,
                # The index files the parent was saved with all remain (no prune since):
                # the chunks it names need no look-up.
                indexed=latest is not None
                and bool(latest.indexes)
                and latest.indexes.issubset(repo.index_files),
            )
            phases = {"parent": time.time() - started}
            mark = time.time()
            # Files to read go to the pool as the walk finds them, a few to a task: a
            # second backup of 40,000 files hands it a few hundred, with no future per
            # file, and a first backup reads while it walks.
            jobs: list[Future[list[tuple[str, int]]]] = []
            batch: list[sources.Found] = []
            batch_bytes = 0

            def to_read(found: sources.Found) -> None:
                nonlocal batch, batch_bytes
                batch.append(found)
                batch_bytes += found[3].st_size
                if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
                    jobs.append(pool.submit(read, batch))
                    batch, batch_bytes = [], 0

            lines, total = scan.scan(*sources.roots(plan), parent, to_read)
            if batch:
                jobs.append(pool.submit(read, batch))
            phases["walk"] = time.time() - mark
            mark = time.time()
            done, history = history_job.result()
            for job in jobs:
                done.extend(job.result())
        except BaseException:
            copying.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    phases["read"] = time.time() - mark
    mark = time.time()
    lines.extend(line for line, _ in done)
    read_bytes = sum(size for _, size in done)
    total += read_bytes
    # One JSON line per file, keys in one order, sorted as text: unchanged files give
    # unchanged lines in the same order, so the manifest's chunks dedup against the
    # previous backup's.
    lines.sort()
    files = sum(line[-2] == "]" for line in lines)  # a folder's line ends with a number
    tree = chunker.store("".join(line + "\n" for line in lines).encode())
    summary: dict[str, Any] = {
        "files": files,
        "bytes": total,
        "read_files": len(done),
        "read_bytes": read_bytes,
        "added_chunks": repo.added_chunks,
        "added_bytes": repo.added_bytes,
        "seconds": round(time.time() - started, 3),
    }
    phases["manifest"] = time.time() - mark
    # Where the time went (the previous manifest read; the walk, with the history
    # copied and files read alongside; the reading left after the walk; the manifest
    # written), for bench/backup.py.
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
        files=files,
        bytes=total,
        read_files=len(done),
        read_bytes=read_bytes,
        added_chunks=repo.added_chunks,
        added_bytes=repo.added_bytes,
        seconds=time.time() - started,
    )


@dataclass(frozen=True)
class _Copied:
    """The history as copied and cut (in a child process): what the snapshot says of
    it, its manifest line, and its chunks the repository lacked, encoded."""

    said: dict[str, str]
    line: str | None
    size: int
    new: list[tuple[str, bytes]]


def _copy_history(
    plan: sources.Plan, scratch: str, environ: Mapping[str, str], chunker: Chunker
) -> _Copied:
    found, said = sources.history(plan, scratch, environ)
    if found is None:
        return _Copied(said, None, 0, [])
    source, path, where, st = found
    # SQLite changes a database page by page in place, never shifting bytes: a chunk
    # per page keeps every page a backup did not touch, and costs no cutting. With 1%
    # more runs, the random keys of its indexes change 2,000 of 18,000 pages (8 MB),
    # but 674 of 1,123 chunks of 64 KiB (44 MB), and every content-defined one.
    # pg_dump's stream shifts: FastCDC.
    fixed = sources.sqlite_page_size(where) if said["kind"] == "sqlite" else 0
    repo = chunker.repo
    new: dict[str, bytes] = {}

    def cut(data: bytes | memoryview) -> list[str]:
        ids = []
        for piece in chunker.pieces(data, fixed):
            chunk = repo.key.chunk_id(piece)
            if chunk not in repo.index and chunk not in new:
                new[chunk] = repo.encode(piece)
            ids.append(chunk)
        return ids

    ids, size = read_file(where, cut)
    os.unlink(where)  # its bytes are encoded: the scratch space is free now
    return _Copied(said, scan.line_of(source, path, st, size, ids), size, list(new.items()))


def _store_history(
    copying: Forked[_Copied], repo: Repository
) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """The history's new chunks stored (the index decides, as for any chunk: one the
    walk stored meanwhile is not stored twice): its manifest line, and what the
    snapshot says of it."""
    copied = copying.result()
    for chunk, stored in copied.new:
        if repo.claim(chunk):
            repo.add_stored(chunk, stored)
    return ([(copied.line, copied.size)] if copied.line else []), copied.said


def _latest(repo: Repository, host: str, workspace: str) -> Snapshot | None:
    mine = [s for s in repo.snapshots() if s.host == host and s.workspace == workspace]
    return mine[-1] if mine else None


def _parent_lines(repo: Repository, snap: Snapshot | None) -> list[str]:
    """The previous backup's manifest lines (none: every file is read)."""
    if snap is None:
        return []
    try:
        return repo.manifest_text(snap)
    except Exception:  # a damaged parent only costs reading every file again
        return []
