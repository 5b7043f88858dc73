"""The local cache: a CAS and an action cache in one directory, safe to share.

    <root>/cas/<2 hex>/<sha256>     blobs, named by their digest
    <root>/ac/<2 hex>/<sha256>      ActionResult of an action digest: a line with the
                                    SHA-256 of the payload, then the serialised message;
                                    small outputs and logs ride inside it (REAPI's
                                    OutputFile.contents and stdout_raw) instead of being
                                    blobs: a remote store uploads those to its CAS
    <root>/tmp/                     writes in progress

Every write goes to a temp file in `tmp/` (same filesystem) and is renamed into place,
so a reader sees a whole entry or none, whatever kills the writer and however many
`conveyor` processes share the directory. Every read is verified: a blob that does not
hash to its name, or an entry whose checksum fails, is evicted and reported, and counts
as a miss. That verification is also why entries are not fsynced: a write torn by a
power loss can only ever be a miss, never a wrong result, and an fsync per entry cost
about 0.5 ms each here, which was a third of a cold 200-job run. Use refreshes an
entry's mtime, which is what `prune` orders by (least recently used first).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, NamedTuple

from conveyor.cache.interface import (
    BlobMissing,
    Capabilities,
    CorruptBlob,
    EntryState,
    StoreUnavailable,
    file_mode,
    referenced_blobs,
)
from conveyor.fsutil import atomic_file
from conveyor.model import Digest

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

_CHUNK = 1 << 20
# Entries used this recently are never pruned: a running build may be restoring them.
PRUNE_GRACE = 600.0
# Outputs and logs up to this size ride inside the action entry instead of being blobs:
# on this kind of disk a file created costs about 0.25 ms, the largest part of storing a
# job's result, and small outputs are the common case.
INLINE_MAX = 16 * 1024
CAPABILITIES = Capabilities(
    max_inline_bytes=INLINE_MAX,
    # No round trip to save here: a batch only bounds the memory one read holds.
    max_batch_bytes=4 * 1024 * 1024,
    supports_touch=True,
)


def default_root(environ: dict[str, str] | None = None) -> str:
    """$CONVEYOR_CACHE_DIR, else $XDG_CACHE_HOME/conveyor, else ~/.cache/conveyor."""
    env = os.environ if environ is None else environ
    if env.get("CONVEYOR_CACHE_DIR"):
        return env["CONVEYOR_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "conveyor")


# NamedTuples, not dataclasses: building a dataclass costs about a millisecond at import,
# and every `conveyor run` imports this module.
class Stats(NamedTuple):
    """What the cache holds (`conveyor cache stats`)."""

    blobs: int
    blob_bytes: int
    actions: int
    action_bytes: int

    @property
    def total_bytes(self) -> int:
        """Blobs and action results together."""
        return self.blob_bytes + self.action_bytes


class PruneReport(NamedTuple):
    """What `prune` removed and what it left."""

    removed: int
    freed_bytes: int
    kept_bytes: int


class VerifyReport(NamedTuple):
    """How many blobs `verify` read, and those that did not match their digest (evicted)."""

    checked: int
    corrupt: tuple[str, ...]


class LocalCache:
    """A `Store` (conveyor.cache.interface) on local disk; `stats`, `prune`, `verify` and
    `clear` maintain it (`conveyor cache`)."""

    capabilities = CAPABILITIES

    def __init__(self, root: str) -> None:
        """Open (creating it if needed) the cache in `root`; StoreUnavailable if it cannot
        be created."""
        self.root = root
        self._tmp = os.path.join(root, "tmp")
        self._base = {kind: os.path.join(root, kind, "") for kind in ("cas", "ac")}
        with self._unavailable():
            for sub in ("cas", "ac", "tmp"):
                os.makedirs(os.path.join(root, sub), exist_ok=True)
        # Shard directories known to exist: a makedirs per write is a measurable cost.
        self._dirs: set[str] = set()
        self._serial = itertools.count()

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._dirs:
            os.makedirs(directory, exist_ok=True)
            self._dirs.add(directory)

    def _temp(self, directory: str, prefix: str) -> tuple[int, str]:
        """A new temp file, named by process, thread and a counter (no retries needed)."""
        name = f"{prefix}{os.getpid()}-{threading.get_ident()}-{next(self._serial)}"
        path = os.path.join(directory, name)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), path

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """OSErrors of the store's own files become StoreUnavailable (the message is the
        OS error's; `where` the file, or the cache's root when the error names none)."""
        try:
            yield
        except OSError as exc:
            raise StoreUnavailable(
                str(exc), reason=exc.strerror or str(exc), where=exc.filename or self.root
            ) from exc

    # -- paths and atomic writes --------------------------------------------------------
    def _path(self, kind: str, digest: Digest) -> str:
        h = digest.hash
        return f"{self._base[kind]}{h[:2]}/{h}"  # os.path.join cost more than the stat

    def _commit(self, data: bytes, final: str) -> None:
        """Write bytes to `final` through a temp file and a rename."""
        fd, tmp = self._temp(self._tmp, "w-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self._ensure_dir(os.path.dirname(final))
            os.replace(tmp, final)
        except BaseException:
            _unlink(tmp)
            raise

    # -- CAS ----------------------------------------------------------------------------
    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of `digests` not in the CAS, each once, in the order first given."""
        return [d for d in dict.fromkeys(digests) if not os.path.exists(self._path("cas", d))]

    def put_bytes(self, data: bytes) -> Digest:
        """Store `data` (already there: its use is refreshed); its digest."""
        digest = Digest(hashlib.sha256(data).hexdigest(), len(data))
        final = self._path("cas", digest)
        if os.path.exists(final):
            _touch(final)
        else:
            with self._unavailable():
                self._commit(data, final)
        return digest

    def put_file(self, path: str) -> Digest:
        """Store a file; it is hashed from the stored copy, so a file changing while it is
        stored can never be filed under the wrong digest."""
        with open(path, "rb") as src, self._unavailable():
            fd, tmp = self._temp(self._tmp, "f-")
            try:
                with os.fdopen(fd, "wb") as out:
                    digest = _copy_hashing(src, out)
                final = self._path("cas", digest)
                if os.path.exists(final):
                    _unlink(tmp)
                    _touch(final)
                else:
                    self._ensure_dir(os.path.dirname(final))
                    os.replace(tmp, final)
                return digest
            except BaseException:
                _unlink(tmp)
                raise

    def _open(self, digest: Digest) -> tuple[str, IO[bytes]]:
        """A blob's path and the blob opened (BlobMissing, StoreUnavailable)."""
        path = self._path("cas", digest)
        try:
            return path, open(path, "rb")  # the caller closes it
        except FileNotFoundError:
            raise BlobMissing([digest]) from None
        except OSError as exc:
            raise StoreUnavailable(
                str(exc), reason=exc.strerror or str(exc), where=exc.filename or path
            ) from exc

    def open_blob(self, digest: Digest) -> IO[bytes]:
        """A blob opened for reading as it is stored, unverified: for a reader that
        hashes what it reads anyway (an upload to a remote cache). BlobMissing if it is
        not there."""
        return self._open(digest)[1]

    def get_bytes(self, digest: Digest) -> bytes:
        """A blob's bytes, verified, its use refreshed (BlobMissing, CorruptBlob: evicted)."""
        path, fh = self._open(digest)
        with fh, self._unavailable():
            data = fh.read()
        self._check(digest, path, len(data), hashlib.sha256(data).hexdigest())
        _touch(path)
        return data

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """Every blob of `digests`; BlobMissing names all those that are not there."""
        missing = self.find_missing(digests)
        if missing:
            raise BlobMissing(missing)
        return {d: self.get_bytes(d) for d in dict.fromkeys(digests)}

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Materialise a blob at `dest` (atomically, verified while copied, mode set)."""
        path, src = self._open(digest)
        with src, atomic_file(dest, perms=file_mode(executable, mode), makedirs=True) as out:
            copied = _copy_hashing(src, out)
            self._check(digest, path, copied.size_bytes, copied.hash)
        _touch(path)

    def _check(self, digest: Digest, path: str, size: int, actual: str) -> None:
        if size != digest.size_bytes or actual != digest.hash:
            _unlink(path)
            raise CorruptBlob(digest, f"read {size} bytes hashing to {actual[:12]}")

    # -- action cache -----------------------------------------------------------------------
    def get_action_result(self, action: Digest) -> remote_execution_pb2.ActionResult | None:
        """The stored result, or None: not stored, corrupt (evicted), or missing a blob it
        refers to (pruned): never a result that cannot be restored whole."""
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

        path = self._path("ac", action)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(
                str(exc), reason=exc.strerror or str(exc), where=exc.filename or path
            ) from exc
        head, _, payload = raw.partition(b"\n")
        if head.decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
            _unlink(path)
            return None
        result = remote_execution_pb2.ActionResult()
        result.ParseFromString(payload)
        if self.find_missing(referenced_blobs(result)):
            return None
        _touch(path)
        return result

    def entry_state(self, action: Digest) -> EntryState | None:
        """The entry's (inode, size) and mtime, None if there is none: whether an entry
        checked earlier is still the same one (entries are only ever replaced by a rename,
        which gives a new inode) for the price of a stat."""
        try:
            st = os.stat(self._path("ac", action))
        except OSError:
            return None
        return EntryState((st.st_ino, st.st_size), st.st_mtime)

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        """Mark an entry and its blobs as used now (for `prune`), without reading them."""
        _touch(self._path("ac", action))
        for blob in blobs:
            _touch(self._path("cas", blob))

    def remove_action(self, action: Digest) -> None:
        """Forget an action's result (its blobs stay until pruned)."""
        with self._unavailable():
            _unlink(self._path("ac", action))

    def put_action_result(self, action: Digest, result: remote_execution_pb2.ActionResult) -> None:
        """Store `result` under `action`: a line with the payload's SHA-256, then the
        payload (inline outputs and log included)."""
        payload = result.SerializeToString(deterministic=True)
        head = hashlib.sha256(payload).hexdigest().encode()
        with self._unavailable():
            self._commit(head + b"\n" + payload, self._path("ac", action))

    def flush(self) -> None:
        """Nothing: every write went straight to disk."""

    # -- maintenance ----------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[str, str, os.stat_result]]:
        for kind in ("cas", "ac"):
            base = os.path.join(self.root, kind)
            for shard in os.scandir(base):
                if not shard.is_dir():
                    continue
                for entry in os.scandir(shard.path):
                    try:
                        yield kind, entry.path, entry.stat()
                    except FileNotFoundError:
                        continue

    def stats(self) -> Stats:
        """Count the blobs and action results on disk and their sizes."""
        counts = {"cas": [0, 0], "ac": [0, 0]}
        for kind, _path, st in self._entries():
            counts[kind][0] += 1
            counts[kind][1] += st.st_size
        return Stats(counts["cas"][0], counts["cas"][1], counts["ac"][0], counts["ac"][1])

    def prune(self, max_bytes: int, *, now: float | None = None) -> PruneReport:
        """Remove least recently used entries until the cache fits in `max_bytes`; entries
        used in the last PRUNE_GRACE seconds are kept whatever the size."""
        now = time.time() if now is None else now
        entries = sorted(self._entries(), key=lambda e: e[2].st_mtime)
        total = sum(st.st_size for _, _, st in entries)
        removed = freed = 0
        for _kind, path, st in entries:
            if total <= max_bytes:
                break
            if now - st.st_mtime < PRUNE_GRACE:
                continue
            _unlink(path)
            total -= st.st_size
            freed += st.st_size
            removed += 1
        self._clean_tmp(now)
        return PruneReport(removed, freed, total)

    def verify(self) -> VerifyReport:
        """Hash every blob and check every action entry; evict what is corrupt."""
        checked = 0
        corrupt: list[str] = []
        for kind, path, _st in list(self._entries()):
            checked += 1
            with open(path, "rb") as fh:
                data = fh.read()
            if kind == "cas":
                ok = hashlib.sha256(data).hexdigest() == os.path.basename(path)
            else:
                head, _, payload = data.partition(b"\n")
                ok = head.decode("ascii", "replace") == hashlib.sha256(payload).hexdigest()
            if not ok:
                _unlink(path)
                corrupt.append(os.path.relpath(path, self.root))
        return VerifyReport(checked, tuple(corrupt))

    def clear(self) -> None:
        """Remove every blob and action result (the cache directory stays)."""
        for sub in ("cas", "ac", "tmp"):
            shutil.rmtree(os.path.join(self.root, sub), ignore_errors=True)
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    def _clean_tmp(self, now: float) -> None:
        """Temp files of writers that died (a day old) are removed."""
        for entry in os.scandir(self._tmp):
            try:
                if now - entry.stat().st_mtime > 86400:
                    _unlink(entry.path)
            except FileNotFoundError:
                continue


def _copy_hashing(src: IO[bytes], out: IO[bytes]) -> Digest:
    """Copy an open file into `out`, hashing what is copied."""
    h = hashlib.sha256()
    size = 0
    while chunk := src.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
        out.write(chunk)
    return Digest(h.hexdigest(), size)


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
