"""An in-memory store: the second implementation of `conveyor.cache.interface.Store`, with
dicts. The caching suite runs against it and against the local store alike
(tests/cache/conftest.py), so what passes for both depends on the interface only.

Its capabilities differ from the local store's on purpose (a smaller inline limit, small
batches), so that outputs take the CAS and batch paths a remote store would make them
take. It counts the calls it serves, for tests about round trips.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.interface import (
    BlobMissing,
    Capabilities,
    EntryState,
    file_mode,
    referenced_blobs,
)
from conveyor.fsutil import atomic_write
from conveyor.model import Digest


class MemoryStore:
    """A CAS and an action cache in two dicts (thread-safe: a run stores from its workers)."""

    capabilities = Capabilities(
        max_inline_bytes=1024, max_batch_bytes=64 * 1024, supports_touch=True
    )

    def __init__(self) -> None:
        self.blobs: dict[Digest, bytes] = {}
        self.actions: dict[Digest, tuple[int, bytes, float]] = {}
        """Action digest -> (serial of the entry, serialised ActionResult, last used)."""
        self.calls: Counter[str] = Counter()
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    # -- CAS ----------------------------------------------------------------------------
    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        self.calls["find_missing"] += 1
        return [d for d in dict.fromkeys(digests) if d not in self.blobs]

    def put_bytes(self, data: bytes) -> Digest:
        self.calls["put_bytes"] += 1
        digest = Digest(hashlib.sha256(data).hexdigest(), len(data))
        self.blobs[digest] = data
        return digest

    def put_file(self, path: str) -> Digest:
        self.calls["put_file"] += 1
        with open(path, "rb") as fh:
            data = fh.read()
        digest = Digest(hashlib.sha256(data).hexdigest(), len(data))
        self.blobs[digest] = data
        return digest

    def get_bytes(self, digest: Digest) -> bytes:
        self.calls["get_bytes"] += 1
        if digest not in self.blobs:
            raise BlobMissing([digest])
        return self.blobs[digest]

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        self.calls["get_many"] += 1
        assert sum(d.size_bytes for d in set(digests)) <= self.capabilities.max_batch_bytes
        missing = [d for d in dict.fromkeys(digests) if d not in self.blobs]
        if missing:
            raise BlobMissing(missing)
        return {d: self.blobs[d] for d in digests}

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        self.calls["get_file"] += 1
        if digest not in self.blobs:
            raise BlobMissing([digest])
        atomic_write(dest, self.blobs[digest], perms=file_mode(executable, mode), makedirs=True)

    # -- action cache -------------------------------------------------------------------
    def get_action_result(self, action: Digest) -> re_pb2.ActionResult | None:
        self.calls["get_action_result"] += 1
        with self._lock:
            entry = self.actions.get(action)
            if entry is None:
                return None
            self.actions[action] = (entry[0], entry[1], time.time())
        result = re_pb2.ActionResult()
        result.ParseFromString(entry[1])
        return None if any(d not in self.blobs for d in referenced_blobs(result)) else result

    def put_action_result(self, action: Digest, result: re_pb2.ActionResult) -> None:
        self.calls["put_action_result"] += 1
        payload = result.SerializeToString(deterministic=True)
        with self._lock:
            self.actions[action] = (next(self._serial), payload, time.time())

    def remove_action(self, action: Digest) -> None:
        with self._lock:
            self.actions.pop(action, None)

    def entry_state(self, action: Digest) -> EntryState | None:
        entry = self.actions.get(action)
        return None if entry is None else EntryState((entry[0], len(entry[1])), entry[2])

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        self.calls["touch"] += 1
        with self._lock:
            entry = self.actions.get(action)
            if entry is not None:
                self.actions[action] = (entry[0], entry[1], time.time())

    def flush(self) -> None:
        self.calls["flush"] += 1

    # -- for tests --------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget everything (what `conveyor cache clear` does to the local store)."""
        with self._lock:
            self.blobs.clear()
            self.actions.clear()

    def everything(self) -> bytes:
        """Every byte stored, blobs and entries."""
        return b"".join(
            [*self.blobs.values(), *(payload for _s, payload, _t in self.actions.values())]
        )
