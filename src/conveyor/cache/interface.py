"""What a cache store is, in the terms of the Remote Execution API (REAPI v2), so that the
local store, a remote one and a tiered one are interchangeable under the job cache:

    ContentStore (CAS)             REAPI
      find_missing(digests)        ContentAddressableStorage.FindMissingBlobs
      put_bytes / put_file         BatchUpdateBlobs / ByteStream.Write
      get_bytes / get_file         ByteStream.Read (a file: streamed to its destination)
      get_many(digests)            BatchReadBlobs
    ActionCache
      get_action_result(action)    ActionCache.GetActionResult (NOT_FOUND: None)
      put_action_result(action, r) ActionCache.UpdateActionResult
    Capabilities                   Capabilities.GetCapabilities (CacheCapabilities)

A miss is a value (`None`), never an exception. Everything else that goes wrong in a
store is a `CacheError`: a blob gone (`BlobMissing`), a blob that failed its digest
(`CorruptBlob`, evicted), or a store that cannot be read or written (`StoreUnavailable`:
a full disk, no permission, a server down). Only writing to a destination the caller
chose (`get_file`'s `dest`) or reading a file it hands over (`put_file`'s `path`) raises
OSError: those are the caller's files, not the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from conveyor.errors import EnvironmentProblem
from conveyor.model import Digest

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2


class CacheError(EnvironmentProblem):
    """Base of every error a store raises; the job cache treats each as "not cached"."""


class BlobMissing(CacheError):
    """Blobs asked for are not in the store (pruned, or never stored). An entry that
    needed them is a miss: the job runs again."""

    def __init__(self, digests: Sequence[Digest]) -> None:
        self.digests = tuple(digests)
        names = ", ".join(str(d) for d in self.digests[:3])
        more = f" and {len(self.digests) - 3} more" if len(self.digests) > 3 else ""
        super().__init__(f"blob {names}{more} is not in the cache")


class CorruptBlob(CacheError):
    """A stored blob did not match its digest. It has been evicted; the caller treats the
    entry that needed it as a miss (the job runs again)."""

    def __init__(self, digest: Digest, detail: str) -> None:
        super().__init__(f"blob {digest} is corrupt ({detail}); evicted")
        self.digest = digest


class StoreUnavailable(CacheError):
    """The store could not be read or written (a full disk, no permission, a server that
    does not answer). `reason` says what happened (an OS error's strerror), `where` which
    file or server; the message is what the underlying error said."""

    def __init__(self, message: str, *, reason: str, where: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.where = where


# A NamedTuple, not a dataclass: it is as immutable, and building a dataclass costs about a
# millisecond at import, which every `conveyor run` would pay (see conveyor.cache.local).
class Capabilities(NamedTuple):
    """What a store can do, read once by its users (REAPI's CacheCapabilities)."""

    max_inline_bytes: int
    """Outputs and logs up to this size travel inside the ActionResult (REAPI's
    OutputFile.contents and stdout_raw) instead of as blobs of their own; 0: never."""
    max_batch_bytes: int
    """The most bytes one `get_many` asks for (REAPI's max_batch_total_size_bytes); a
    larger blob is read on its own (`get_file`, `get_bytes`)."""
    supports_touch: bool
    """Whether `touch` keeps entries alive; False: it does nothing, and is not called."""


class EntryState(NamedTuple):
    """What `ActionCache.entry_state` says of a stored entry, for the price of a stat."""

    identity: tuple[int, int]
    """Equal for as long as the entry is the same one (not replaced, not removed)."""
    used_at: float
    """When it was last stored or marked used (seconds since the epoch)."""


def file_mode(executable: bool, mode: int | None) -> int:
    """The permission bits `ContentStore.get_file` gives a file: `mode` when the entry kept
    one, with its executable bits following `executable`; else 0755 or 0644."""
    if mode is None:
        return 0o755 if executable else 0o644
    # The executable bit is part of the digest the result was stored under: it wins.
    return (mode | 0o100) if executable else (mode & ~0o111)


def batches(digests: Sequence[Digest], limit: int, *, overhead: int = 0) -> Iterator[list[Digest]]:
    """`digests` (each within `limit`) in runs whose sizes, each with `overhead` (what a
    request spends on a blob besides its bytes), fit in `limit`: what one batched read
    or write may carry (Capabilities.max_batch_bytes)."""
    batch: list[Digest] = []
    total = 0
    for d in digests:
        size = d.size_bytes + overhead
        if batch and total + size > limit:
            yield batch
            batch, total = [], 0
        batch.append(d)
        total += size
    if batch:
        yield batch


def referenced_blobs(result: remote_execution_pb2.ActionResult) -> list[Digest]:
    """The blobs an ActionResult refers to but does not carry inline (REAPI's
    OutputFile.contents and stdout_raw): a store serves the result only while all of
    them are in its CAS, or a hit could not be restored."""
    needed = [
        Digest(f.digest.hash, f.digest.size_bytes)
        for f in result.output_files
        if len(f.contents) != f.digest.size_bytes
    ]
    out = result.stdout_digest
    if result.HasField("stdout_digest") and len(result.stdout_raw) != out.size_bytes:
        needed.append(Digest(out.hash, out.size_bytes))
    return needed


class ContentStore(Protocol):
    """A content-addressed store of blobs, each named by the SHA-256 digest of its bytes.
    Every read is verified against the digest: a blob that fails is evicted and raised as
    CorruptBlob, never returned."""

    @property
    def capabilities(self) -> Capabilities:
        """What this store can do (constant for its lifetime)."""
        ...

    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of `digests` the store lacks, each once, in the order first given."""
        ...

    def put_bytes(self, data: bytes) -> Digest:
        """Store `data`; its digest."""
        ...

    def put_file(self, path: str) -> Digest:
        """Store the file at `path` (hashed from what was stored, so a file changing while
        it is stored can never be filed under the wrong digest); its digest."""
        ...

    def get_bytes(self, digest: Digest) -> bytes:
        """A blob's bytes (raises BlobMissing, CorruptBlob)."""
        ...

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """The bytes of every blob of `digests` in one request (callers keep the total
        within `capabilities.max_batch_bytes`); raises BlobMissing naming every one that
        is not there, or CorruptBlob."""
        ...

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Put a blob at `dest` (directories made, written atomically, verified before it
        is visible, permissions by `file_mode`); raises BlobMissing, CorruptBlob, and
        OSError only for writing `dest`. A failed restore leaves `dest` as it was."""
        ...


class ActionCache(Protocol):
    """Results of actions by action digest (REAPI's ActionCache)."""

    def get_action_result(self, action: Digest) -> remote_execution_pb2.ActionResult | None:
        """The stored result, or None: none stored, corrupt (evicted), or referring to a
        blob that is gone. Never a result that cannot be restored whole (REAPI asks the
        same of a server: the blobs a returned result refers to are in its CAS)."""
        ...

    def put_action_result(self, action: Digest, result: remote_execution_pb2.ActionResult) -> None:
        """Store `result` under `action`, replacing any earlier one. Outputs and the log
        may ride inline (OutputFile.contents, stdout_raw) up to `max_inline_bytes`; every
        other blob it refers to must have been put first."""
        ...

    def remove_action(self, action: Digest) -> None:
        """Forget the result stored under `action`, if any (its blobs stay until pruned)."""
        ...

    def entry_state(self, action: Digest) -> EntryState | None:
        """The state of the entry under `action` for the price of a stat, or None: there
        is none, or the store cannot tell cheaply (then every hit is a full lookup)."""
        ...

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        """Mark an entry and the blobs it refers to as used now, without reading them (so
        that pruning, least recently used first, keeps them)."""
        ...


class Store(ContentStore, ActionCache, Protocol):
    """A CAS and an action cache together: what the job cache is given."""

    def flush(self) -> None:
        """Finish what the store deferred (uploads batched until the run ends); called
        once as the run ends. A store that writes through has nothing to do."""
        ...
