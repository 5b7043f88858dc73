"""The tiered store: the local cache first, a remote one (REAPI) second, as one `Store`
(issue 14).

Reads go to the local store; what it lacks is asked of the remote, verified against its
digest and written through to the local store, so the job cache then restores from
local disk as usual and the next run needs no network. Writes go to the local store
synchronously, as without a remote; with `upload` on, a background thread then puts
each stored result's blobs to the remote (FindMissingBlobs first, in batches, then only
the missing ones) while the run goes on, and `flush` at the end of the run waits for
those and writes the action results last, so a remote reader never sees a result whose
blobs are not there.

A remote that is down, slow or refusing never fails the run (Bazel's
--remote_local_fallback): its first failure is one warning, and the rest of the run
uses the local store only. A blob from the remote that does not match its digest is
refused: the result that needed it is a miss, and the job runs here.

`conveyor why` and `run -n` take a dry look (`peek_action_result`, `remote_entry`): the
remote is asked (GetActionResult, FindMissingBlobs) and nothing is written, here or
there. With `upload` on, each result uploaded also moves its job's "latest" pointer
(`latest_key`), which is how `why` finds the remote entry a miss is compared with.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from conveyor.cache.interface import (
    BlobMissing,
    CacheError,
    Capabilities,
    CorruptBlob,
    EntryState,
    Store,
    StoreUnavailable,
    batches,
    referenced_blobs,
)
from conveyor.cache.results import action_of, with_action
from conveyor.model import Digest
from conveyor.reapi.metadata import MANIFEST_TYPE
from conveyor.units import format_duration, format_size

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

    ActionResult = remote_execution_pb2.ActionResult

LATEST_TYPE = "type.googleapis.com/conveyor.LatestOf"
"""The type URL, in a "latest" pointer's auxiliary metadata, of the action it points at
(JSON: {"hash": ..., "size_bytes": ...})."""
_LATEST_SCHEMA = 1

# Digests per FindMissingBlobs: a digest is about 80 bytes on the wire, so a thousand
# keep a request far below gRPC's default 4 MiB message limit.
FIND_BATCH = 1000
# Results the uploader takes at once: their blobs share the FindMissingBlobs round trips.
_GROUP = 256
# How long the uploader thread stays without work before it ends.
_IDLE = 2.0
# How long `flush` waits for uploads still under way when the run ends. A remote call
# has its own timeout and retries (model.Remote.timeout, .retries); this bounds the sum,
# so a remote that is slow on every call cannot hold the end of a run for long.
FLUSH_TIMEOUT = 300.0
_LINGER = 0.2
"""Seconds the uploader waits for more results before sending a small group."""
RESULT_WRITERS = 8
"""Action results written to the remote at once when the run ends."""
INLINE_BUDGET = 64 * 1024
"""Bytes of outputs and log an uploaded result keeps inline (see `_for_remote`)."""
LARGE_UPLOADS = 4
"""Uploads in flight at once: blobs too large for a batch (each a ByteStream write), or
batches of small ones."""


class UploadSummary(NamedTuple):
    """What the uploads to the remote did in one run (from one `flush` to the next)."""

    results: int
    """Action results written to the remote."""
    blobs: int
    """Blobs the remote lacked and was sent."""
    bytes: int
    """Their size."""
    seconds: float
    """Time spent uploading (mostly while jobs ran)."""
    waited: float
    """Of which the run waited at its end (in `flush`)."""
    failed: int
    """Results stored locally but not uploaded (the remote failed, a blob went missing
    locally meanwhile, or the uploads did not finish in time)."""
    earlier: int = 0
    """Of the results queued, those earlier runs could not upload (the backlog)."""


class _RemoteFailed(Exception):
    """The remote failed and has been turned off (the warning is given): a miss."""


class _Pending(NamedTuple):
    action: Digest
    result: ActionResult


class TieredStore:
    """A `Store` over a local store and a remote one: reads local first, then remote with
    write-through; writes local, and to the remote in the background when `upload`."""

    def __init__(
        self,
        local: Store,
        remote: Store,
        *,
        upload: bool,
        on_warning: Callable[[str], None],
        flush_timeout: float = FLUSH_TIMEOUT,
        backlog: str | None = None,
    ) -> None:
        """`on_warning` is called (at most once per failure kind and run, possibly from the
        uploader's thread) with a line to show the user. `backlog`: a directory where the
        results not uploaded in a run are listed, for the next run that uploads to send
        (see `Backlog`)."""
        self.local = local
        self.remote = remote
        self.upload = upload
        self.on_warning = on_warning
        self.flush_timeout = flush_timeout
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._remote_on = True
        self._refusal_told = False
        self._queue: list[_Pending] = []
        self._busy = 0
        """Results taken by the uploader and not yet done with."""
        self._group_started = 0.0
        self._ready: dict[Digest, ActionResult] = {}
        """Results whose blobs are all on the remote: written at `flush`, after the run
        could still take one back (`remove_action`)."""
        self._on_remote: set[Digest] = set()
        """Blobs known to be on the remote (sent, or found there) this store's lifetime."""
        self._withdrawn: set[Digest] = set()
        """Actions taken back (`remove_action`) this run: never uploaded."""
        self._aliases: dict[Digest, set[Digest]] = {}
        """Fingerprint keys each action's result is also to be written under
        (`publish_fingerprint`)."""
        self._bug: Exception | None = None
        self._thread: threading.Thread | None = None
        self._flushing = False
        self._reset_counts()
        self._summary: UploadSummary | None = None
        self._fetched = [0, 0, 0]  # results, blobs, bytes written through this run
        # When each result written through was asked for and stored: lookups overlap
        # (32 threads), so the time the summary gives is these spans' union, not a sum.
        self._fetch_spans: list[tuple[float, float]] = []
        self._fetch_summary: tuple[int, int, int, float] | None = None
        self._latest: dict[Digest, Digest] = {}
        """Action -> its job's "latest" pointer key, moved once the action's result is
        written to the remote (`point_latest`)."""
        self._unsent: dict[Digest, None] = {}
        """Results stored (or taken from the backlog) and not yet written to the remote:
        what the backlog lists at `flush`."""
        self._backlog = Backlog(backlog) if backlog is not None and upload else None
        self._from_backlog = 0
        if self._backlog is not None:
            self._resume_backlog(self._backlog)

    def _reset_counts(self) -> None:
        self._results = self._blobs = self._bytes = self._failed = 0
        self._seconds = 0.0
        self._queued = 0

    def local_action_result(self, action: Digest) -> ActionResult | None:
        """The local tier's result only: what can be known without a network call (the
        scheduler asks the remote off its own thread, many at a time)."""
        return self.local.get_action_result(action)

    # -- dry looks: `conveyor why`, `run -n` (nothing written, here or there) ----------
    def peek_action_result(self, action: Digest) -> tuple[ActionResult, bool] | None:
        """The result a lookup would serve, and whether it is the remote's, found without
        writing anything: the local tier's, else the remote's when its inline contents
        match their digests and every blob it needs is here or on the remote
        (FindMissingBlobs; nothing fetched). None: no result that could be served. The
        run verifies each blob as it fetches it: a blob the server holds but damaged is
        refused then, a case a look that reads no blob cannot tell."""
        found = self.local.get_action_result(action)
        if found is not None:
            return found, False
        result = self.remote_entry(action)
        if result is None:
            return None
        try:
            _check_inline(result)
            wanted = self.local.find_missing(referenced_blobs(result))
            with self._remote():
                missing = [
                    d
                    for batch in _chunks(wanted, FIND_BATCH)
                    for d in self.remote.find_missing(batch)
                ]
        except (_RemoteFailed, CorruptBlob):
            return None
        return None if missing else (result, True)

    def remote_entry(self, action: Digest) -> ActionResult | None:
        """The remote's result for `action` as stored, for what it says (who produced it,
        the manifest it was keyed from): its blobs not fetched, nothing written here.
        None: the remote has none, or is off (a failure turns it off, with the warning)."""
        if not self._remote_on:
            return None
        try:
            with self._remote():
                return self.remote.get_action_result(action)
        except _RemoteFailed:
            return None

    def point_latest(self, key: Digest, action: Digest) -> None:
        """Once `action`'s result is written to the remote (at `flush`), write its job's
        "latest" pointer `key` (`latest_key`) to it too. Nothing without `upload`: the
        pointer follows the results' trust rule, written only by a machine that writes
        results."""
        if not self.upload:
            return
        with self._lock:
            self._latest[action] = key

    # -- the remote's health ---------------------------------------------------------
    @property
    def remote_enabled(self) -> bool:
        """False once the remote failed: the rest of the run is local only."""
        return self._remote_on

    def _disable(self, warning: str) -> None:
        """Turn the remote off for the rest of the run, dropping the uploads not done;
        the first call tells the user."""
        with self._changed:
            if not self._remote_on:
                return
            self._remote_on = False
            # Those the uploader holds too: it will find the remote off and drop them.
            self._failed += len(self._queue) + len(self._ready) + self._busy
            self._busy = 0
            self._queue.clear()
            self._ready.clear()
            self._aliases.clear()
            self._changed.notify_all()
        self.on_warning(warning)

    @contextlib.contextmanager
    def _remote(self) -> Iterator[None]:
        """Around calls to the remote only: a failure that makes it unusable turns it off
        (with the warning) and becomes _RemoteFailed; BlobMissing and CorruptBlob, which
        are about one blob and not the server, pass through."""
        if not self._remote_on:
            raise _RemoteFailed
        try:
            yield
        except (BlobMissing, CorruptBlob):
            raise
        except CacheError as exc:
            what = f"{exc.reason} ({exc.where})" if isinstance(exc, StoreUnavailable) else str(exc)
            self._disable(
                f"remote cache unavailable: {what}; the rest of this run uses the local cache only"
            )
            raise _RemoteFailed from exc

    def _refused(self, action: Digest, exc: CacheError) -> None:
        """A remote result that cannot be restored whole: a miss, told once per run."""
        with self._lock:
            told, self._refusal_told = self._refusal_told, True
        if not told:
            # CorruptBlob's own message ends in "evicted", which is about a local store.
            why = str(exc).removesuffix("; evicted")
            self.on_warning(
                f"a result in the remote cache was refused: {why}; the job runs here "
                f"(action {action.hash[:12]}; later refusals in this run are not shown)"
            )

    # -- capabilities and the local-only parts ------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """The local store's: the job cache stores to it and restores from it."""
        return self.local.capabilities

    def entry_state(self, action: Digest) -> EntryState | None:
        """The local entry's (a remote hit is written through, so it has one)."""
        return self.local.entry_state(action)

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        """Local only: a remote server keeps what is read from it alive by itself."""
        self.local.touch(action, blobs)

    def remove_action(self, action: Digest) -> None:
        """Forget the local result, and do not upload it if it is not uploaded yet. A
        result already written to the remote stays there: REAPI has no way to delete
        one. Results are written to the remote only at `flush`, after the run has taken
        back those it will (conveyor.run.undeclared), so this does not arise in a run."""
        self.local.remove_action(action)
        with self._lock:  # not a failure: the run chose not to keep it
            self._unsent.pop(action, None)
            self._ready.pop(action, None)
            self._aliases.pop(action, None)
            self._queue = [p for p in self._queue if p.action != action]
            self._withdrawn.add(action)

    # -- reads: local first, then the remote, written through -------------------------
    def get_action_result(self, action: Digest) -> ActionResult | None:
        """The local result, else the remote's with every blob it refers to copied to
        the local store (verified) and the result stored locally; None: neither has
        one, or the remote's cannot be restored whole (refused, with a warning)."""
        found = self.local.get_action_result(action)
        if found is not None or not self._remote_on:
            return found
        began = time.monotonic()
        try:
            with self._remote():
                result = self.remote.get_action_result(action)
        except _RemoteFailed:
            return None
        if result is None or not self._write_through(action, action, result):
            return None
        self._count_result(began)
        return result

    def fingerprint_result(self, key: Digest) -> tuple[Digest, ActionResult, bool] | None:
        """The remote's result published under a fingerprint key
        (`keys.fingerprint_key`), the action it names, and whether the result served is
        the remote's: written through to the local store as that action's, unless the
        local store has its own, which is served instead (False); None: the remote has
        none, or it names no action, or it is refused."""
        if not self._remote_on:
            return None
        began = time.monotonic()
        try:
            with self._remote():
                result = self.remote.get_action_result(key)
        except _RemoteFailed:
            return None
        action = None if result is None else action_of(result)
        if result is None or action is None:
            return None
        found = self.local.get_action_result(action)
        if found is not None:
            return action, found, False
        if not self._write_through(key, action, result):
            return None
        self._count_result(began)
        return action, result, True

    def _write_through(self, asked: Digest, action: Digest, result: ActionResult) -> bool:
        """Every blob of a remote's result copied to the local store (verified), then
        the result stored locally under `action`; False: refused (the warning given) or
        the remote failed."""
        try:
            _check_inline(result)
            self._pull(self.local.find_missing(referenced_blobs(result)))
        except _RemoteFailed:
            return False
        except (BlobMissing, CorruptBlob) as exc:
            self._refused(asked, exc)
            return False
        self.local.put_action_result(action, result)
        return True

    def _count_result(self, began: float) -> None:
        with self._lock:
            self._fetched[0] += 1
            self._fetch_spans.append((began, time.monotonic()))

    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of `digests` neither store has (the remote asked about the rest only)."""
        missing = self.local.find_missing(digests)
        if not missing or not self._remote_on:
            return missing
        try:
            with self._remote():
                return [
                    d
                    for batch in _chunks(missing, FIND_BATCH)
                    for d in self.remote.find_missing(batch)
                ]
        except _RemoteFailed:
            return missing

    def get_bytes(self, digest: Digest) -> bytes:
        """Local, else fetched from the remote into the local store."""
        try:
            return self.local.get_bytes(digest)
        except BlobMissing:
            self._pull_or_missing([digest])
        return self.local.get_bytes(digest)

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """Local, the blobs it lacks fetched from the remote into the local store first."""
        try:
            return self.local.get_many(digests)
        except BlobMissing as exc:
            self._pull_or_missing(exc.digests)
        return self.local.get_many(digests)

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Local, else fetched from the remote into the local store, then put at `dest`."""
        try:
            self.local.get_file(digest, dest, executable=executable, mode=mode)
            return
        except BlobMissing:
            self._pull_or_missing([digest])
        self.local.get_file(digest, dest, executable=executable, mode=mode)

    def _pull_or_missing(self, digests: Sequence[Digest]) -> None:
        try:
            self._pull(digests)
        except _RemoteFailed:
            raise BlobMissing(digests) from None

    def _pull(self, digests: Sequence[Digest]) -> None:
        """Copy blobs from the remote to the local store, each verified against its
        digest before the local store has it: small ones in batches of the remote's
        size, a large one on its own through a temporary file. Raises BlobMissing,
        CorruptBlob (refused), _RemoteFailed."""
        if not digests:
            return
        if not self._remote_on:
            raise _RemoteFailed
        limit = self.remote.capabilities.max_batch_bytes
        small = [d for d in dict.fromkeys(digests) if d.size_bytes <= limit]
        for batch in batches(small, limit):
            with self._remote():
                got = self.remote.get_many(batch)
            absent = [d for d in batch if d not in got]
            if absent:
                raise BlobMissing(absent)
            for d in batch:
                _verify(d, got[d])
                self.local.put_bytes(got[d])
            self._count_fetched(batch)
        large = [d for d in dict.fromkeys(digests) if d.size_bytes > limit]
        if not large:
            return
        scratch = tempfile.mkdtemp(prefix="conveyor-pull-")
        try:
            for d in large:
                path = os.path.join(scratch, d.hash)
                with self._remote():
                    self.remote.get_file(d, path)
                # Hashed before the local store has it: a wrong blob is never filed.
                actual = _digest_file(path)
                if actual != d:
                    raise CorruptBlob(
                        d,
                        f"the remote sent {actual.size_bytes} bytes hashing to {actual.hash[:12]}",
                    )
                self.local.put_file(path)
                os.unlink(path)
                self._count_fetched([d])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _count_fetched(self, digests: Sequence[Digest]) -> None:
        with self._lock:
            self._fetched[1] += len(digests)
            self._fetched[2] += sum(d.size_bytes for d in digests)

    # -- writes: local now, the remote in the background ------------------------------
    def put_bytes(self, data: bytes) -> Digest:
        """Local only; uploaded with the first result that refers to it."""
        return self.local.put_bytes(data)

    def put_file(self, path: str) -> Digest:
        """Local only; uploaded with the first result that refers to it."""
        return self.local.put_file(path)

    def put_action_result(self, action: Digest, result: ActionResult) -> None:
        """Store locally (raising as the local store does), then queue the upload when
        `upload` is on; never waits for the remote.

        Only what the local store accepted is uploaded, and the job cache stores no
        result whose inputs changed while the job ran (JobCache.inputs_changed), so the
        remote never gets one either (Bazel's --guard_against_concurrent_changes)."""
        self.local.put_action_result(action, result)
        if not self.upload:
            return
        self._enqueue(action, result)

    def _resume_backlog(self, backlog: Backlog) -> None:
        """Queue the results earlier runs stored but could not upload (the remote was
        down, or died mid-upload), if the local cache still has them."""
        for action in backlog.claim():
            try:
                result = self.local.get_action_result(action)
            except CacheError:
                result = None
            if result is not None:
                self._from_backlog += 1
                self._enqueue(action, result)

    def _enqueue(self, action: Digest, result: ActionResult) -> None:
        with self._changed:
            self._unsent[action] = None
            self._queued += 1
            if not self._remote_on:
                self._failed += 1  # the warning was given when the remote went
                return
            self._withdrawn.discard(action)
            self._queue.append(_Pending(action, result))
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._uploader, name="conveyor-remote-upload", daemon=True
                )
                self._thread.start()

    def publish_fingerprint(self, action: Digest, key: Digest) -> None:
        """With `upload` on: when the result stored for `action` is written to the
        remote, write it under the fingerprint key `key` too, naming `action` (so that
        another checkout finds it before hashing its inputs). Never locally: the local
        tier has its memo (cache.memo)."""
        if not self.upload:
            return
        with self._lock:
            if self._remote_on:
                self._aliases.setdefault(action, set()).add(key)

    def _uploader(self) -> None:
        """The background thread: takes queued results in groups and sends their blobs;
        ends when idle for a while (the next result stored starts another), so a process
        that runs many runs keeps no thread per store it opened."""
        while True:
            with self._changed:
                if not self._queue:
                    self._changed.wait(_IDLE)
                if not self._queue:
                    self._thread = None
                    return
                if len(self._queue) < _GROUP and not self._flushing:
                    # Results come one job at a time: a moment's wait gathers several
                    # into one FindMissingBlobs and one BatchUpdateBlobs (a call each
                    # per result cost a 1,000-job run seconds on a 2-core machine).
                    self._changed.wait(_LINGER)
                group, self._queue = self._queue[:_GROUP], self._queue[_GROUP:]
                self._busy = len(group)
                self._group_started = time.monotonic()
            try:
                self._send_blobs(group)
            except _RemoteFailed:
                pass  # told, and the group counted as not uploaded, by _disable
            except Exception as exc:  # our bug: kept for flush to raise on the run's thread
                with self._lock:
                    self._bug = exc
            finally:
                with self._changed:
                    self._seconds += time.monotonic() - self._group_started
                    self._busy = 0
                    self._changed.notify_all()

    def _send_blobs(self, group: Sequence[_Pending]) -> None:
        """Every blob of `group` the remote lacks, sent; each result whose blobs are all
        there made ready for `flush` to write."""
        wanted: dict[Digest, bytes | None] = {}
        needs: list[tuple[_Pending, list[Digest]]] = []
        for pending in group:
            of_result = _result_blobs(pending.result)
            needs.append((pending, list(of_result)))
            for d, inline in of_result.items():
                if d not in self._on_remote and wanted.get(d) is None:
                    wanted[d] = inline
        missing: list[Digest] = []
        with self._remote():
            for batch in _chunks(list(wanted), FIND_BATCH):
                missing += self.remote.find_missing(batch)
        absent = set(missing)
        self._on_remote.update(d for d in wanted if d not in absent)
        lost: set[Digest] = set()
        limit = self.remote.capabilities.max_batch_bytes
        put_many = getattr(self.remote, "put_many", None)  # a REAPI server's batches
        if put_many is not None:
            small = [d for d in missing if d.size_bytes <= limit]
            lost |= self._send_small(small, wanted, put_many)
            missing = [d for d in missing if d.size_bytes > limit]

        def send(d: Digest) -> Digest | None:
            """`d` sent; None when it could not be (lost)."""
            try:
                sent = self._send_blob(d, wanted[d], limit)
            except (BlobMissing, CorruptBlob, StoreUnavailable, OSError):
                # The local copy went away or went bad since it was stored (pruned by
                # another run, say): the results that need it are not uploaded.
                return None
            with self._lock:
                self._blobs += 1
                self._bytes += sent
            return d

        if len(missing) > 1:
            # Large blobs a few at a time: reading, hashing and sending one leaves the
            # network or a core idle in turns (10 files of 100 MiB: see bench/upload.py).
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(LARGE_UPLOADS, thread_name_prefix="remote-push") as pool:
                done = list(pool.map(send, missing))
        else:
            done = [send(d) for d in missing]
        for d, ok in zip(missing, done, strict=True):
            if ok is None:
                lost.add(d)
            else:
                self._on_remote.add(d)
        with self._changed:
            self._busy = 0  # done with the group: from here on, counted as ready or failed
            for pending, blobs in needs:
                if pending.action in self._withdrawn or not self._remote_on:
                    continue
                if lost.intersection(blobs):
                    self._failed += 1
                else:
                    self._ready[pending.action] = _for_remote(pending.result)

    def _write_results(
        self,
        ready: Mapping[Digest, ActionResult],
        latest: Mapping[Digest, Digest],
        aliases: Mapping[Digest, set[Digest]],
    ) -> int:
        """The results written to the remote (each also under its `aliases`),
        RESULT_WRITERS at a time; how many. Each result's "latest" pointer (`latest`, by
        action) is written right after it, so a pointer never names a result the remote
        was not given."""

        def write(item: tuple[Digest, ActionResult]) -> bool:
            if not self._remote_on:
                return False
            action, result = item
            try:
                with self._remote():
                    self.remote.put_action_result(action, result)
                    # After the action's own: a reader that finds it by fingerprint
                    # then finds it by the action too.
                    for key in aliases.get(action, ()):
                        self.remote.put_action_result(key, with_action(result, action))
            except _RemoteFailed:
                return False
            with self._lock:
                self._unsent.pop(action, None)
            pointer = latest.get(action)
            if pointer is not None:
                # Not counted among the results: only explanations read it.
                with contextlib.suppress(_RemoteFailed), self._remote():
                    self.remote.put_action_result(pointer, latest_pointer(action, result))
            return True

        if len(ready) == 1:
            return int(write(next(iter(ready.items()))))
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(RESULT_WRITERS, thread_name_prefix="remote-results") as pool:
            return sum(pool.map(write, ready.items()))

    def _send_small(
        self,
        digests: Sequence[Digest],
        wanted: Mapping[Digest, bytes | None],
        put_many: Callable[[Sequence[bytes]], list[Digest]],
    ) -> set[Digest]:
        """Small blobs to the remote, many to a call, a batch's worth read at a time and
        LARGE_UPLOADS batches at once (10,000 outputs of 100 KiB were read into memory
        whole, then sent one batch after another); those lost locally meanwhile."""
        from conveyor.cache.remote import BATCH_OVERHEAD

        limit = self.remote.capabilities.max_batch_bytes
        groups: list[list[Digest]] = [[]]
        size = 0
        for d in digests:
            if groups[-1] and size + d.size_bytes + BATCH_OVERHEAD > limit:
                groups.append([])
                size = 0
            groups[-1].append(d)
            size += d.size_bytes + BATCH_OVERHEAD

        def send(group: Sequence[Digest]) -> set[Digest]:
            lost: set[Digest] = set()
            datas: list[bytes] = []
            kept: list[Digest] = []
            for d in group:
                try:
                    inline = wanted[d]
                    datas.append(self.local.get_bytes(d) if inline is None else inline)
                    kept.append(d)
                except (BlobMissing, CorruptBlob, StoreUnavailable, OSError):
                    lost.add(d)  # gone or bad locally since it was stored: not uploaded
            if not kept:
                return lost
            with self._remote():
                sent = put_many(datas)
            for d, got in zip(kept, sent, strict=True):
                if got != d:
                    lost.add(d)
                    continue
                with self._lock:
                    self._blobs += 1
                    self._bytes += d.size_bytes
                    self._on_remote.add(d)
            return lost

        groups = [g for g in groups if g]
        if len(groups) <= 1:
            return send(groups[0]) if groups else set()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(LARGE_UPLOADS, thread_name_prefix="remote-batch") as pool:
            return set().union(*pool.map(send, groups))

    def _send_blob(self, digest: Digest, inline: bytes | None, limit: int) -> int:
        """One blob to the remote, read from the result or the local store; its size.
        Errors of the local store are raised as they are; the remote's go through
        `_remote`."""
        open_blob = getattr(self.local, "open_blob", None)
        put_stream = getattr(self.remote, "put_stream", None)
        if inline is None and digest.size_bytes > limit and open_blob and put_stream:
            # Straight from the local store's file, hashed once as it is sent.
            with self._remote():
                put_stream(digest, lambda: open_blob(digest))
            return digest.size_bytes
        if inline is None and digest.size_bytes > limit:
            scratch = tempfile.mkdtemp(prefix="conveyor-push-")
            try:
                path = os.path.join(scratch, digest.hash)
                self.local.get_file(digest, path)
                with self._remote():
                    sent = self.remote.put_file(path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        else:
            data = self.local.get_bytes(digest) if inline is None else inline
            with self._remote():
                sent = self.remote.put_bytes(data)
        if sent != digest:
            raise CorruptBlob(digest, f"uploaded as {sent}")
        return digest.size_bytes

    # -- the end of a run ---------------------------------------------------------------
    def flush(self) -> None:
        """Wait (at most `flush_timeout` seconds) for the blob uploads, write the results
        whose blobs are all on the remote, then flush the local store. Never raises for
        the remote; `summary()` tells what was uploaded."""
        began = time.monotonic()
        deadline = began + self.flush_timeout
        with self._changed:
            self._flushing = True  # no more lingering: the run is waiting
            self._changed.notify_all()
            while (self._queue or self._busy) and self._remote_on:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            self._flushing = False
            late = len(self._queue) + self._busy if self._remote_on else 0
            if self._busy:  # the time of a group still under way counts in this run
                now = time.monotonic()
                self._seconds += now - self._group_started
                self._group_started = now
        if late:
            within = format_duration(self.flush_timeout)
            self._disable(
                f"remote cache: uploads did not finish within {within}; "
                f"{late} result{'s' * (late != 1)} not uploaded"
            )
        with self._lock:
            ready, self._ready = self._ready, {}
            latest, self._latest = self._latest, {}
            aliases, self._aliases = self._aliases, {}
        written_started = time.monotonic()
        # Last, and only now: after every blob they refer to, and after the run took
        # back what it would (remove_action), since the remote cannot forget a result.
        # REAPI has no batch for them: several calls in flight (one at a time, 1,000
        # results took 1.2 s after the jobs were done).
        written = self._write_results(ready, latest, aliases) if ready else 0
        with self._lock:
            self._results += written
            self._failed += len(ready) - written
        now = time.monotonic()
        with self._lock:
            bug, self._bug = self._bug, None
            self._seconds += now - written_started
            if self.upload and self._queued:
                self._summary = UploadSummary(
                    self._results,
                    self._blobs,
                    self._bytes,
                    self._seconds,
                    now - began,
                    self._failed,
                    self._from_backlog,
                )
            else:
                self._summary = None
            self._reset_counts()
            results, blobs, size = self._fetched
            self._fetch_summary = (
                (results, blobs, size, covered(self._fetch_spans)) if results or blobs else None
            )
            self._fetched = [0, 0, 0]
            self._fetch_spans = []
            self._refusal_told = False
            self._withdrawn.clear()
            unsent, self._unsent = list(self._unsent), {}
            self._from_backlog = 0
        if self._backlog is not None:
            self._backlog.keep(unsent)
        if bug is not None:
            raise bug
        self.local.flush()

    def uploads(self) -> UploadSummary | None:
        """What the last `flush` found uploaded in its run; None: nothing was to upload."""
        return self._summary

    def summary(self) -> str | None:
        """The lines for the end of the run: what came from the remote cache ('4 results
        (6 blobs, 163.1 kB) came from the remote cache in 80ms') and what went to it
        ('uploaded 12 blobs (3.4 MB) and 5 results to the remote cache in 1.2s'); None
        when neither happened."""
        lines = [line for line in (self._fetch_line(), self._upload_line()) if line is not None]
        return "\n".join(lines) or None

    def _fetch_line(self) -> str | None:
        if self._fetch_summary is None:
            return None
        results, blobs, size, seconds = self._fetch_summary
        return (
            f"{results} result{'s' * (results != 1)} ({blobs} blob{'s' * (blobs != 1)}, "
            f"{format_size(size)}) came from the remote cache in {format_duration(seconds)}"
        )

    def _upload_line(self) -> str | None:
        s = self._summary
        if s is None:
            return None
        if not s.results and s.failed:
            return f"{s.failed} result{'s' * (s.failed != 1)} not uploaded to the remote cache"
        line = (
            f"uploaded {s.blobs} blob{'s' * (s.blobs != 1)} ({format_size(s.bytes)}) and "
            f"{s.results} result{'s' * (s.results != 1)} to the remote cache in "
            f"{format_duration(s.seconds)}"
        )
        if s.waited >= 0.1:
            line += f" ({format_duration(s.waited)} of it after the jobs finished)"
        if s.earlier:
            line += f" ({s.earlier} left by earlier runs)"
        if s.failed:
            line += f"; {s.failed} result{'s' * (s.failed != 1)} not uploaded"
            if self._backlog is not None:
                line += " (the next run that uploads sends them)"
        return line


def covered(spans: Iterable[tuple[float, float]]) -> float:
    """The time at least one of `spans` (start, end) was under way: overlapping spans
    counted once."""
    total = 0.0
    reach = float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


# -- "latest" pointers: the remote entry `conveyor why` compares a miss with -----------
#
# A remote cache has no index to ask "the last result of job X" (results are found by
# their action digest only, and a miss's digest is by definition not there). So a
# machine that uploads also writes, for each result it uploads, a small ActionResult
# under a digest made from the pipeline and the job alone: no outputs, the result's
# execution metadata (who produced it, when, the manifest of its key) and the action it
# stands for. `why` reads it with GetActionResult and compares manifests.
#
# It is safe in the team's cache. Its digest is the SHA-256 of a JSON document, not of
# an Action message, so no client looking a real action up can be served it (that would
# take a SHA-256 preimage); Conveyor reads it only to explain a miss, never as a hit,
# and never writes it to the local cache. It names no blob, so a server serves it
# whatever it evicted (a stale pointer costs only an explanation). It follows the same
# trust rule as results: written only with `upload` on (`point_latest`), in the same
# instance, so a pull request's instance has pointers of its own. Two uploaders racing
# leave the last one's: "latest" is approximate, and only explanations depend on it.


class Backlog:
    """The results a run stored locally but could not upload, for the next run that
    uploads to send: a server killed mid-upload, or down for a run, must not leave the
    team's cache short of what CI built.

    One file per run that left some (JSON: [[hash, size], ...]) in a directory of the
    local cache per remote and instance, so that runs of several workspaces sharing the
    cache never overwrite each other's. A run claims the files there when it starts (a
    rename only one process can win) and lists what it still could not send, with what
    it claimed, in a file of its own when it ends. A claim left by a process that died
    is taken again after an hour."""

    STALE_CLAIM = 3600.0

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def claim(self) -> list[Digest]:
        """The actions listed by earlier runs, their files taken from the directory."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found: dict[Digest, None] = {}
        now = time.time()
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith(".claimed"):
                try:
                    if now - os.stat(path).st_mtime < self.STALE_CLAIM:
                        continue
                except OSError:
                    continue
            elif not name.endswith(".json"):
                continue
            mine = f"{path}.{os.getpid()}.{threading.get_ident()}.claimed"
            try:
                os.rename(path, mine)
                with open(mine, encoding="utf-8") as fh:
                    listed = json.load(fh)
                os.unlink(mine)
            except (OSError, ValueError):
                continue  # another run claimed it first, or it is not ours to read
            for entry in listed if isinstance(listed, list) else ():
                if (
                    isinstance(entry, list)
                    and len(entry) == 2
                    and isinstance(entry[0], str)
                    and isinstance(entry[1], int)
                ):
                    found[Digest(entry[0], entry[1])] = None
        return list(found)

    def keep(self, actions: Sequence[Digest]) -> None:
        """List `actions` for a later run (nothing is written when there are none)."""
        if not actions:
            return
        from conveyor.fsutil import atomic_write

        name = f"{time.time_ns()}-{os.getpid()}-{threading.get_ident()}.json"
        with contextlib.suppress(OSError):  # a full disk loses the list, not the run
            atomic_write(
                os.path.join(self.directory, name),
                json.dumps([[d.hash, d.size_bytes] for d in actions]),
                makedirs=True,
            )


def backlog_directory(root: str, url: str, instance_name: str) -> str:
    """Where the backlog of uploads to one remote instance is kept in a local cache."""
    key = hashlib.sha256(f"{url}\0{instance_name}".encode()).hexdigest()[:16]
    return os.path.join(root, "remote-backlog", key)


def latest_key(pipeline: str, job: str) -> Digest:
    """The action digest of the "latest" pointer of `job` in the pipeline labelled
    `pipeline` (its `name:`, else its directory's name: the same in every clone that
    keeps the repository's name, as CI's do)."""
    payload = json.dumps(
        {"conveyor": "latest", "schema": _LATEST_SCHEMA, "pipeline": pipeline, "job": job},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return Digest(hashlib.sha256(payload).hexdigest(), len(payload))


def latest_pointer(action: Digest, result: ActionResult) -> ActionResult:
    """The pointer to `result` (stored under `action`): its exit code and execution
    metadata with the manifest only, and the action; no outputs, no log."""
    pointer = type(result)(exit_code=result.exit_code)
    meta = pointer.execution_metadata
    meta.CopyFrom(result.execution_metadata)
    kept = [a for a in meta.auxiliary_metadata if a.type_url == MANIFEST_TYPE]
    del meta.auxiliary_metadata[:]
    meta.auxiliary_metadata.extend(kept)
    extra = meta.auxiliary_metadata.add()
    extra.type_url = LATEST_TYPE
    extra.value = json.dumps({"hash": action.hash, "size_bytes": action.size_bytes}).encode()
    return pointer


def pointed_action(pointer: ActionResult) -> Digest | None:
    """The action a "latest" pointer names; None if it is not one (or unreadable)."""
    for extra in pointer.execution_metadata.auxiliary_metadata:
        if extra.type_url == LATEST_TYPE:
            try:
                data = json.loads(extra.value)
                return Digest(str(data["hash"]), int(data["size_bytes"]))
            except (ValueError, TypeError, KeyError):
                return None
    return None


def _result_blobs(result: ActionResult) -> dict[Digest, bytes | None]:
    """Every blob a result refers to, with its bytes when they ride inline: the remote
    gets them all as blobs, since REAPI asks a server to serve a result only while every
    output it names is in its CAS, and inlines them only when a reader asks."""
    blobs: dict[Digest, bytes | None] = {}
    # (The empty blob is left out below: REAPI servers have it without being sent it, and
    # readers never fetch it, its zero bytes being always "inline".)
    for f in result.output_files:
        d = Digest(f.digest.hash, f.digest.size_bytes)
        inline = f.contents if len(f.contents) == d.size_bytes else None
        blobs[d] = blobs.get(d) or inline
    if result.HasField("stdout_digest"):
        out = Digest(result.stdout_digest.hash, result.stdout_digest.size_bytes)
        inline = result.stdout_raw if len(result.stdout_raw) == out.size_bytes else None
        blobs[out] = blobs.get(out) or inline
    return {d: inline for d, inline in blobs.items() if d.size_bytes}


def _for_remote(result: ActionResult) -> ActionResult:
    """The result as the remote gets it: its small outputs and log still inline, up to
    INLINE_BUDGET bytes in all, the rest as blobs only (every blob is uploaded as well).
    A reader then restores a typical hit with the one GetActionResult, instead of a
    BatchReadBlobs after it (BuildGrid keeps what it is given, and ignores a reader's
    request to inline). Past the budget, contents are dropped: a result with every
    output inline could exceed a gRPC message (4 MiB by default)."""
    copy = type(result)()
    copy.CopyFrom(result)
    budget = INLINE_BUDGET
    if copy.stdout_raw:
        if len(copy.stdout_raw) <= budget:
            budget -= len(copy.stdout_raw)
        else:
            copy.ClearField("stdout_raw")
    for f in copy.output_files:
        if f.contents:
            if len(f.contents) <= budget:
                budget -= len(f.contents)
            else:
                f.ClearField("contents")
    return copy


def _check_inline(result: ActionResult) -> None:
    """A remote result's inline outputs and log verified against their digests
    (CorruptBlob): the local store trusts what it is given."""
    # Contents of another length than the digest's are ignored by readers (the blob is
    # fetched instead, and verified), as in interface.referenced_blobs.
    for f in result.output_files:
        if len(f.contents) == f.digest.size_bytes:
            _verify(Digest(f.digest.hash, f.digest.size_bytes), f.contents)
    out = result.stdout_digest
    if result.HasField("stdout_digest") and len(result.stdout_raw) == out.size_bytes:
        _verify(Digest(out.hash, out.size_bytes), result.stdout_raw)


def _verify(digest: Digest, data: bytes) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != digest.size_bytes or actual != digest.hash:
        raise CorruptBlob(digest, f"the remote sent {len(data)} bytes hashing to {actual[:12]}")


def _digest_file(path: str) -> Digest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return Digest(h.hexdigest(), size)


def _chunks(items: Sequence[Digest], n: int) -> Iterator[list[Digest]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])
