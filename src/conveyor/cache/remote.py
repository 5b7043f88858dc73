"""A remote cache: a `Store` (conveyor.cache.interface) served by a Remote Execution API
v2 server (BuildGrid, Buildbarn, BuildBuddy, NativeLink...) over gRPC.

    find_missing        FindMissingBlobs, in batches
    put_bytes/put_file  BatchUpdateBlobs up to the server's batch size, else ByteStream
                        Write in chunks (uploads/{uuid}/blobs/{hash}/{size})
    get_bytes/get_file  ByteStream Read (blobs/{hash}/{size}), resumed at the offset
                        reached when a retry is needed; a file is streamed to a temp file
                        beside it and renamed once its SHA-256 is checked
    get_many            BatchReadBlobs
    get/put result      GetActionResult / UpdateActionResult

Every blob read is verified against its digest. The server cannot be told to drop a
corrupt blob, so `CorruptBlob` says so instead of "evicted". What REAPI has no call for
is a no-op: `remove_action`, `touch` (capabilities say so), `entry_state` (None: every
hit is a full lookup). With `upload` off the store is read-only: writes are refused,
since a read-only machine must not fill the team's cache.

The channel, the credential and the retries are conveyor.reapi.channel's (a connection
remote execution may share): calls failing with UNAVAILABLE or RESOURCE_EXHAUSTED are
retried with backoff, and what still fails is a `StoreUnavailable` whose reason is one
line: "cannot reach ...", "TLS handshake failed", "auth refused", "unknown instance ...".

grpc and the protos are imported when a store is made, never at import: `conveyor
--help` and a run without a remote do not load them.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple, TypeVar

from conveyor.cache.interface import (
    BlobMissing,
    Capabilities,
    CorruptBlob,
    EntryState,
    StoreUnavailable,
    batches,
    file_mode,
)
from conveyor.fsutil import atomic_file
from conveyor.model import Digest, Remote
from conveyor.reapi.channel import Connection, RemoteUnavailable

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

T = TypeVar("T")

# ByteStream chunks: well under gRPC's default 4 MiB message limit, large enough that
# per-message overhead is noise (a 50 MiB read ran at about 690 MiB/s with the server's
# own chunking).
CHUNK = 1 << 20
# Digests per FindMissingBlobs: 1000 took 9 ms against BuildGrid; a bound keeps one
# request well inside any server's message limit (about 80 bytes a digest).
FIND_BATCH = 10_000
# Per-blob overhead in a batch request (digest, framing), counted against the server's
# max_batch_total_size_bytes along with the data.
BATCH_OVERHEAD = 100
# When the server names no batch limit (0: "no limit" in REAPI), stay under gRPC's
# default 4 MiB message size, which is what servers that say nothing usually enforce.
DEFAULT_BATCH = 4 * 1024 * 1024 - 64 * 1024
EMPTY = Digest(hashlib.sha256(b"").hexdigest(), 0)


class RemoteCheck(NamedTuple):
    """What `check` found out about a remote cache (`conveyor remote check`)."""

    url: str
    instance_name: str
    digest_functions: tuple[str, ...]
    """The digest functions the server's CAS accepts (Conveyor needs SHA256)."""
    max_batch_bytes: int
    """The server's max_batch_total_size_bytes (0: it names none)."""
    update_enabled: bool
    """Whether the server lets clients write action results."""
    exec_enabled: bool
    """Whether the server also executes actions (remote execution)."""
    api_version: str
    """The newest REAPI version it speaks, e.g. "2.2"."""
    round_trip: float
    """Seconds one GetCapabilities took (after the connection was made)."""
    probe: str
    """"write+read": a random blob written and read back; "read": a FindMissingBlobs
    only (upload off: this machine must not write)."""
    probe_time: float
    """Seconds the probe took."""


def check(remote: Remote, environ: Mapping[str, str]) -> RemoteCheck:
    """Connect, read the capabilities, time a round trip and probe the CAS (a random
    blob written and read back when `remote.upload`, else a FindMissingBlobs). Raises
    StoreUnavailable saying what failed."""
    store = RemoteStore(remote, environ)
    try:
        caps = store.server_capabilities()  # connects: not part of the round trip
        start = time.perf_counter()
        caps = store.server_capabilities(refresh=True)
        round_trip = time.perf_counter() - start
        cache = caps.cache_capabilities
        start = time.perf_counter()
        data = os.urandom(64)
        if remote.upload:
            store.get_bytes(store.put_bytes(data))  # verified as it is read
            probe = "write+read"
        else:
            store.find_missing([Digest(hashlib.sha256(data).hexdigest(), len(data))])
            probe = "read"
        probe_time = time.perf_counter() - start
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2 as re_pb2,
        )

        names = re_pb2.DigestFunction.Value.Name
        high = caps.high_api_version
        return RemoteCheck(
            url=remote.url,
            instance_name=remote.instance_name,
            digest_functions=tuple(names(f) for f in cache.digest_function),
            max_batch_bytes=cache.max_batch_total_size_bytes,
            update_enabled=cache.action_cache_update_capabilities.update_enabled,
            exec_enabled=caps.execution_capabilities.exec_enabled,
            api_version=f"{high.major}.{high.minor}",
            round_trip=round_trip,
            probe=probe,
            probe_time=probe_time,
        )
    finally:
        store.close()


class RemoteCorruptBlob(CorruptBlob):
    """A blob the server sent did not match its digest. It stays on the server (REAPI
    has no call to remove a blob): the entry that needed it is a miss, as for any
    CorruptBlob."""

    def __init__(self, digest: Digest, detail: str, where: str) -> None:
        super().__init__(digest, detail)
        self.args = (f"blob {digest} from {where} is corrupt ({detail})",)
        self.message = self.args[0]


class RemoteStore:
    """A `Store` on a REAPI v2 server (see the module's docstring)."""

    def __init__(
        self,
        remote: Remote,
        environ: Mapping[str, str],
        *,
        connection: Connection | None = None,
        cas_writes: bool = False,
    ) -> None:
        """Prepare the channel (gRPC connects on the first call), or share `connection`;
        StoreUnavailable if the URL, the TLS files or the credential's variable are not
        usable. `cas_writes`: blobs may be written even with `upload` off (the inputs of
        a remote execution, or a worker's outputs); action results still may not."""
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2 as re_pb2,
        )
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2_grpc as re_grpc,
        )
        from buildgrid.common.protos.google.bytestream import bytestream_pb2 as bs_pb2
        from buildgrid.common.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc

        self.connection = connection or Connection(remote, environ, error=StoreUnavailable)
        self._grpc = self.connection.grpc
        self._re = re_pb2
        self._bs = bs_pb2
        self.remote = remote
        self.url = remote.url
        self._instance = remote.instance_name
        self._prefix = f"{remote.instance_name}/" if remote.instance_name else ""
        self._cas_writes = cas_writes
        channel = self.connection.channel
        self._cas = re_grpc.ContentAddressableStorageStub(channel)
        self._ac = re_grpc.ActionCacheStub(channel)
        self._caps = re_grpc.CapabilitiesStub(channel)
        self._bytestream = bs_grpc.ByteStreamStub(channel)
        self._lock = threading.Lock()
        self._server_caps: remote_execution_pb2.ServerCapabilities | None = None
        self._capabilities: Capabilities | None = None

    # -- connection ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the channel (calls after this fail)."""
        self.connection.close()

    def _call(
        self,
        what: str,
        method: Callable[..., T],
        request: Any,
        *,
        passthrough: frozenset[Any] = frozenset(),
    ) -> T:
        """Connection.call, raising StoreUnavailable for what still fails."""
        try:
            return self.connection.call(what, method, request, passthrough=passthrough)
        except RemoteUnavailable as exc:  # a connection shared with remote execution
            raise StoreUnavailable(str(exc), reason=exc.reason, where=exc.where) from None

    def _sleep(self, attempt: int) -> None:
        self.connection.backoff(attempt)

    def _unavailable(self, what: str, exc: Any, retried: int) -> StoreUnavailable:
        error = self.connection.unavailable(what, exc, retried)
        if isinstance(error, StoreUnavailable):
            return error
        assert isinstance(error, RemoteUnavailable)
        return StoreUnavailable(str(error), reason=error.reason, where=error.where)

    # -- capabilities -------------------------------------------------------------------
    def server_capabilities(
        self, *, refresh: bool = False
    ) -> remote_execution_pb2.ServerCapabilities:
        """The server's GetCapabilities answer for this instance (asked once)."""
        with self._lock:
            if self._server_caps is not None and not refresh:
                return self._server_caps
        grpc = self._grpc
        request = self._re.GetCapabilitiesRequest(instance_name=self._instance)
        try:
            caps: remote_execution_pb2.ServerCapabilities = self._call(
                "GetCapabilities",
                self._caps.GetCapabilities,
                request,
                passthrough=frozenset(
                    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
                ),
            )
        except grpc.RpcError as exc:
            details = " ".join(str(exc.details()).split())
            raise StoreUnavailable(
                f"{self.url} has no instance {self._instance!r}: {details}",
                reason=f"unknown instance {self._instance!r}",
                where=self.url,
            ) from None
        sha256 = self._re.DigestFunction.SHA256
        functions = caps.cache_capabilities.digest_function
        if functions and sha256 not in functions:
            names = ", ".join(self._re.DigestFunction.Value.Name(f) for f in functions)
            raise StoreUnavailable(
                f"{self.url} does not take SHA-256 digests (it offers {names})",
                reason="digest function unsupported",
                where=self.url,
            )
        with self._lock:
            self._server_caps = caps
        return caps

    @property
    def capabilities(self) -> Capabilities:
        """From the server's CacheCapabilities (asked on first use)."""
        if self._capabilities is None:
            batch = self.server_capabilities().cache_capabilities.max_batch_total_size_bytes
            self._capabilities = Capabilities(
                # BuildGrid ignores inline_output_files when serving a result, and REAPI
                # leaves inlining to the server: outputs are blobs of their own.
                max_inline_bytes=0,
                max_batch_bytes=batch or DEFAULT_BATCH,
                supports_touch=False,
            )
        return self._capabilities

    def _batch_limit(self) -> int:
        return self.capabilities.max_batch_bytes

    # -- CAS ----------------------------------------------------------------------------
    def _digest(self, d: Digest) -> Any:
        return self._re.Digest(hash=d.hash, size_bytes=d.size_bytes)

    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of `digests` the server lacks, each once, in the order first given."""
        # The empty blob is always present (REAPI): no need to ask.
        wanted = [d for d in dict.fromkeys(digests) if d != EMPTY]
        missing: set[Digest] = set()
        for start in range(0, len(wanted), FIND_BATCH):
            part = wanted[start : start + FIND_BATCH]
            request = self._re.FindMissingBlobsRequest(
                instance_name=self._instance, blob_digests=[self._digest(d) for d in part]
            )
            reply = self._call(
                "FindMissingBlobs",
                self._cas.FindMissingBlobs,
                request,
            )
            missing.update(Digest(d.hash, d.size_bytes) for d in reply.missing_blob_digests)
        return [d for d in wanted if d in missing]

    def _writable(self, what: str) -> None:
        if not self.remote.upload and not (self._cas_writes and what == "a blob upload"):
            raise StoreUnavailable(
                f"{self.url} is read-only here (remote.upload is off): {what} refused",
                reason="uploads are off",
                where=self.url,
            )

    def put_bytes(self, data: bytes) -> Digest:
        """Store `data` (one BatchUpdateBlobs, or a ByteStream write when it is larger
        than a batch); its digest."""
        self._writable("a blob upload")
        digest = Digest(hashlib.sha256(data).hexdigest(), len(data))
        if digest == EMPTY:
            return digest
        if len(data) + BATCH_OVERHEAD <= self._batch_limit():
            self._batch_update([(digest, data)])
        elif self.find_missing([digest]):
            self._write(digest, lambda start: _chunks_of(data, start))
        return digest

    def put_file(self, path: str) -> Digest:
        """Store the file at `path`. A small one is read whole and hashed from those
        bytes; a large one is hashed, then streamed while hashed again, and sent again
        if the two differ (it changed meanwhile): it can never be filed under a digest
        other than that of the bytes sent."""
        self._writable("a blob upload")
        if os.path.getsize(path) + BATCH_OVERHEAD <= self._batch_limit():
            with open(path, "rb") as fh:
                data = fh.read()
            if len(data) + BATCH_OVERHEAD <= self._batch_limit():
                return self.put_bytes(data)
        for _ in range(3):
            with open(path, "rb") as fh:
                digest = _hash_stream(fh)
            if digest == EMPTY or not self.find_missing([digest]):
                return digest

            def chunks(start: int, digest: Digest = digest) -> Iterator[bytes]:
                return _checked_chunks(lambda: open(path, "rb"), digest, start)

            try:
                self._write(digest, chunks)
            except _Changed:
                continue
            return digest
        raise StoreUnavailable(
            f"{path} kept changing while it was uploaded to {self.url}",
            reason="file changed while uploaded",
            where=path,
        )

    def put_stream(self, digest: Digest, open_blob: Callable[[], IO[bytes]]) -> None:
        """Send the blob `digest` from the file `open_blob()` opens (asked again for a
        resumed write), hashing it as it goes: one read, no FindMissingBlobs (the caller
        has asked). Bytes that do not hash to `digest` are never committed: CorruptBlob."""
        self._writable("a blob upload")

        try:
            self._write(digest, lambda start: _checked_chunks(open_blob, digest, start))
        except _Changed:
            raise CorruptBlob(digest, "its bytes do not match its digest") from None

    def put_many(self, blobs: Sequence[bytes]) -> list[Digest]:
        """Store small blobs, as many to one BatchUpdateBlobs as the server's batch size
        takes (one call per blob cost a round trip each: 1,000 results' outputs took
        seconds); their digests, in order. A blob too large for a batch goes on its own."""
        self._writable("a blob upload")
        digests = [Digest(hashlib.sha256(data).hexdigest(), len(data)) for data in blobs]
        limit = self._batch_limit()
        batch: list[tuple[Digest, bytes]] = []
        size = 0
        for digest, data in zip(digests, blobs, strict=True):
            if digest == EMPTY:
                continue
            if len(data) + BATCH_OVERHEAD > limit:
                self.put_bytes(data)
                continue
            if batch and size + len(data) + BATCH_OVERHEAD > limit:
                self._batch_update(batch)
                batch, size = [], 0
            batch.append((digest, data))
            size += len(data) + BATCH_OVERHEAD
        if batch:
            self._batch_update(batch)
        return digests

    def _batch_update(self, pairs: Sequence[tuple[Digest, bytes]]) -> None:
        """One BatchUpdateBlobs of these (digest, data) pairs."""
        request = self._re.BatchUpdateBlobsRequest(
            instance_name=self._instance,
            requests=[
                self._re.BatchUpdateBlobsRequest.Request(digest=self._digest(digest), data=data)
                for digest, data in pairs
            ],
        )
        reply = self._call(
            "BatchUpdateBlobs",
            self._cas.BatchUpdateBlobs,
            request,
        )
        for answer in reply.responses:
            if answer.status.code != 0:
                raise StoreUnavailable(
                    f"{self.url} refused blob {answer.digest.hash}/{answer.digest.size_bytes}: "
                    f"{answer.status.message}",
                    reason=f"upload refused ({_code_name(self._grpc, answer.status.code)})",
                    where=self.url,
                )

    def _write(self, digest: Digest, chunks: Callable[[int], Iterable[bytes]]) -> None:
        """ByteStream Write of the bytes `chunks(start)` yields from offset `start`. A
        write cut short (the connection reset, the server restarting) is resumed: the
        server is asked how much it has (QueryWriteStatus) and the rest is sent under
        the same upload name; a server that has forgotten the upload (or cannot say)
        is sent the whole blob again under a new name."""
        grpc = self._grpc
        bs = self._bs
        changed = threading.Event()
        retryable = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})

        def upload_name() -> str:
            return f"{self._prefix}uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size_bytes}"

        name, start, attempt = upload_name(), 0, 0

        def requests() -> Iterator[Any]:
            offset, first = start, True
            pending: bytes | None = None
            try:
                # One chunk behind, so that the last request can carry finish_write.
                for chunk in chunks(start):
                    if pending is not None:
                        yield bs.WriteRequest(
                            resource_name=name if first else "",
                            write_offset=offset,
                            data=pending,
                        )
                        offset += len(pending)
                        first = False
                    pending = chunk
            except _Changed:
                # gRPC cancels the call on an exception here and reports only that.
                changed.set()
                raise
            yield bs.WriteRequest(
                resource_name=name if first else "",
                write_offset=offset,
                data=pending or b"",
                finish_write=True,
            )

        while True:
            try:
                reply = self._call(
                    "ByteStream.Write", self._bytestream.Write, requests, passthrough=retryable
                )
                break
            except StoreUnavailable:
                if changed.is_set():
                    raise _Changed() from None
                raise
            except grpc.RpcError as exc:
                if changed.is_set():
                    raise _Changed() from None
                if attempt >= self.remote.retries:
                    raise self._unavailable("ByteStream.Write", exc, attempt) from None
                self._sleep(attempt)
                attempt += 1
                committed = self._committed(name)
                if committed is None:  # forgotten: all of it again, under a new name
                    name, start = upload_name(), 0
                elif committed >= digest.size_bytes:
                    return
                else:
                    start = committed
        if reply.committed_size not in (digest.size_bytes, -1):
            raise StoreUnavailable(
                f"{self.url} committed {reply.committed_size} of {digest.size_bytes} bytes "
                f"of blob {digest}",
                reason="upload incomplete",
                where=self.url,
            )

    def _committed(self, name: str) -> int | None:
        """How many bytes of the upload `name` the server holds (QueryWriteStatus); the
        whole blob's size once it is complete; None when it does not know the upload or
        cannot tell (a server may not implement the call)."""
        grpc = self._grpc
        try:
            status = self._call(
                "ByteStream.QueryWriteStatus",
                self._bytestream.QueryWriteStatus,
                self._bs.QueryWriteStatusRequest(resource_name=name),
                passthrough=frozenset(
                    {
                        grpc.StatusCode.NOT_FOUND,
                        grpc.StatusCode.UNIMPLEMENTED,
                        grpc.StatusCode.INVALID_ARGUMENT,
                    }
                ),
            )
        except (grpc.RpcError, StoreUnavailable):
            return None
        if status.complete:
            return 1 << 62
        return int(status.committed_size) or None

    def _read(self, digest: Digest, sink: Callable[[bytes], None]) -> None:
        """ByteStream Read of a blob into `sink`; a retry resumes at the offset reached.
        BlobMissing when the server has none."""
        grpc = self._grpc
        name = f"{self._prefix}blobs/{digest.hash}/{digest.size_bytes}"
        received = 0
        attempt = 0
        retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
        while True:
            request = self._bs.ReadRequest(resource_name=name, read_offset=received)
            try:
                for reply in self._bytestream.Read(
                    request, timeout=self.remote.timeout, metadata=self.connection.metadata
                ):
                    sink(reply.data)
                    received += len(reply.data)
                return
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.NOT_FOUND:
                    raise BlobMissing([digest]) from None
                if code in retryable and attempt < self.remote.retries:
                    self._sleep(attempt)
                    attempt += 1
                    continue
                raise self._unavailable("ByteStream.Read", exc, attempt) from None

    def _verify(self, digest: Digest, size: int, actual: str) -> None:
        if size != digest.size_bytes or actual != digest.hash:
            raise RemoteCorruptBlob(
                digest, f"received {size} bytes hashing to {actual[:12]}", self.url
            )

    def get_bytes(self, digest: Digest) -> bytes:
        """A blob's bytes, verified (BlobMissing, CorruptBlob)."""
        if digest == EMPTY:
            return b""
        parts: list[bytes] = []
        self._read(digest, parts.append)
        data = b"".join(parts)
        self._verify(digest, len(data), hashlib.sha256(data).hexdigest())
        return data

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """Every blob of `digests` (BatchReadBlobs, split at the server's batch size);
        BlobMissing names every one that is not there."""
        grpc = self._grpc
        wanted = [d for d in dict.fromkeys(digests) if d != EMPTY]
        got: dict[Digest, bytes] = {d: b"" for d in dict.fromkeys(digests) if d == EMPTY}
        missing: list[Digest] = []
        limit = self._batch_limit()
        # A blob too large for any batch is read on its own (callers should have used
        # get_bytes, but a server's smaller batch size must not turn that into an error).
        for digest in [d for d in wanted if d.size_bytes + BATCH_OVERHEAD > limit]:
            try:
                got[digest] = self.get_bytes(digest)
            except BlobMissing:
                missing.append(digest)
        small = [d for d in wanted if d.size_bytes + BATCH_OVERHEAD <= limit]
        for batch in batches(small, limit, overhead=BATCH_OVERHEAD):
            request = self._re.BatchReadBlobsRequest(
                instance_name=self._instance, digests=[self._digest(d) for d in batch]
            )
            reply = self._call(
                "BatchReadBlobs",
                self._cas.BatchReadBlobs,
                request,
            )
            for answer in reply.responses:
                digest = Digest(answer.digest.hash, answer.digest.size_bytes)
                if answer.status.code == grpc.StatusCode.NOT_FOUND.value[0]:
                    missing.append(digest)
                elif answer.status.code != 0:
                    raise StoreUnavailable(
                        f"{self.url} could not read blob {digest}: {answer.status.message}",
                        reason=f"read failed ({_code_name(grpc, answer.status.code)})",
                        where=self.url,
                    )
                else:
                    data = answer.data
                    self._verify(digest, len(data), hashlib.sha256(data).hexdigest())
                    got[digest] = data
        # A server that leaves a blob out of its answer has not served it either.
        missing.extend(d for d in wanted if d not in got and d not in missing)
        if missing:
            raise BlobMissing(missing)
        return got

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        """Stream a blob to a temp file beside `dest`, check its SHA-256, then rename it
        into place (permissions by `file_mode`); `dest` is untouched if anything fails."""
        with atomic_file(dest, perms=file_mode(executable, mode), makedirs=True) as out:
            hasher = hashlib.sha256()
            size = 0

            def sink(chunk: bytes, out: IO[bytes] = out) -> None:
                nonlocal size
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)

            if digest != EMPTY:
                self._read(digest, sink)
            self._verify(digest, size, hasher.hexdigest())

    # -- action cache -------------------------------------------------------------------
    def get_action_result(self, action: Digest) -> remote_execution_pb2.ActionResult | None:
        """The result stored under `action`, or None. The server checks that the blobs
        it refers to are still in its CAS (REAPI asks it to; BuildGrid does), so no
        second round trip is spent on that: a blob gone meanwhile fails the restore
        with BlobMissing, which the job cache takes as a miss."""
        grpc = self._grpc
        request = self._re.GetActionResultRequest(
            instance_name=self._instance, action_digest=self._digest(action), inline_stdout=True
        )
        try:
            result: remote_execution_pb2.ActionResult = self._call(
                "GetActionResult",
                self._ac.GetActionResult,
                request,
                passthrough=frozenset({grpc.StatusCode.NOT_FOUND}),
            )
        except grpc.RpcError:
            return None
        return result

    def put_action_result(self, action: Digest, result: remote_execution_pb2.ActionResult) -> None:
        """UpdateActionResult (refused when uploads are off)."""
        self._writable("an action result")
        request = self._re.UpdateActionResultRequest(
            instance_name=self._instance, action_digest=self._digest(action), action_result=result
        )
        self._call(
            "UpdateActionResult",
            self._ac.UpdateActionResult,
            request,
        )

    def remove_action(self, action: Digest) -> None:
        """Nothing: REAPI has no call to remove a result (a corrupt or unusable one is
        replaced by the next upload of that action)."""

    def entry_state(self, action: Digest) -> EntryState | None:
        """None: a server cannot tell an entry's state cheaper than serving it."""
        return None

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        """Nothing (`supports_touch` is False): a server keeps what it serves alive."""

    def flush(self) -> None:
        """Nothing: every call is made when asked."""


class _Changed(Exception):
    """A file's bytes changed between hashing it and sending it."""


def _checked_chunks(
    open_blob: Callable[[], IO[bytes]], digest: Digest, start: int
) -> Iterator[bytes]:
    """The bytes of the file `open_blob()` opens from offset `start`, in CHUNKs, hashed as
    sent: if the whole file does not hash to `digest`, _Changed is raised before the
    last chunk's request (finish_write) goes, so the server commits nothing. A resumed
    write reads (and hashes) what the server already has, and sends the rest."""
    sent, size = hashlib.sha256(), 0
    with open_blob() as fh:
        while chunk := fh.read(CHUNK):
            sent.update(chunk)
            size += len(chunk)
            if size > start:
                yield chunk[max(0, start - (size - len(chunk))) :]
    if Digest(sent.hexdigest(), size) != digest:
        raise _Changed()


def _hash_stream(fh: IO[bytes]) -> Digest:
    hasher = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return Digest(hasher.hexdigest(), size)


def _chunks_of(data: bytes, offset: int = 0) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(offset, len(data), CHUNK):
        yield bytes(view[start : start + CHUNK])


def _code_name(grpc: Any, code: int) -> str:
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return str(status.name)
    return str(code)
