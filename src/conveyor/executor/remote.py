"""Run job attempts on a REAPI server's workers (BuildGrid, Buildbarn, BuildBuddy...):
the second `Executor`, beside the local one.

An attempt whose request carries a `RemoteSpec` is executed remotely:

    upload      FindMissingBlobs over the Action, Command, Directory messages and input
                files; only what the server lacks is sent (BatchUpdateBlobs, ByteStream)
    execute     Execute streams the long-running operation; a stream that drops (the
                server restarted, the connection reset) is resumed with WaitExecution
                by the operation's name
    cancel      Ctrl-C or fail-fast: CancelOperation, so the worker stops the process
                (a Conveyor worker kills its process group)
    outputs     the ActionResult's files, symlinks and directory trees written into the
                workspace (verified against their digests, renamed into place), its log
                replayed line by line, its values written to $CONVEYOR_OUTPUT's file

so the job's dependents, the job cache and the gates see what a local run would have
left. Any other request (and `probe`) goes to the local executor.

A server that cannot be reached, or that does not execute (a cache-only server), never
fails the run (Bazel's --remote_local_fallback): one warning, and every remote job from
then on runs here. A job that failed remotely is executed again with the server's cache
lookup skipped, so its retries really run (a server may cache failures).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conveyor.executor.interface import (
    Cancel,
    Cas,
    ExecOutcome,
    ExecRequest,
    Executor,
    ProbeResult,
    RemoteSpec,
)
from conveyor.fsutil import atomic_write
from conveyor.model import Digest
from conveyor.reapi.channel import Connection
from conveyor.reapi.metadata import VALUES_TYPE

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

# Outputs up to this size are read in batches (BatchReadBlobs); larger ones are streamed
# to their place one by one (ByteStream).
SMALL_OUTPUT = 1 << 20
# google.rpc.Code values an ExecuteResponse's status may carry.
_OK, _CANCELLED, _DEADLINE_EXCEEDED = 0, 1, 4


class RemoteFailed(Exception):
    """The remote execution of one attempt failed in a way a local run would not have
    (the server refused the action, an output could not be fetched or placed)."""


class _InputChanged(Exception):
    """An input's bytes are no longer those the action names: this attempt runs here."""


class _Fallback(Exception):
    """The server is out of reach or does not execute: run here (and stop asking it)."""


class RemoteExecutor:
    """An `Executor` that runs requests with a `RemoteSpec` on the server's workers and
    the rest on `local` (see the module's docstring)."""

    def __init__(
        self,
        connection: Connection,
        cas: Cas,
        local: Executor,
        *,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2 as re_pb2,
        )
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2_grpc as re_grpc,
        )
        from buildgrid.common.protos.google.longrunning import operations_pb2 as ops_pb2
        from buildgrid.common.protos.google.longrunning import operations_pb2_grpc as ops_grpc

        self.connection = connection
        self.cas = cas
        self.local = local
        self._re = re_pb2
        self._ops = ops_pb2
        self._execution = re_grpc.ExecutionStub(connection.channel)
        self._operations = ops_grpc.OperationsStub(connection.channel)
        self._on_warning = on_warning
        self._lock = threading.Lock()
        self._failed: set[Digest] = set()
        """Actions that did not succeed in this run: executed again without the server's
        cache lookup, or a retry would be served the failure."""
        self.broken: str | None = None
        """Why remote execution was given up for the rest of the run, once it was."""
        self.executed = 0
        """Attempts the server's workers ran (or served from its cache) in this run."""

    # -- Executor -----------------------------------------------------------------------
    def probe(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        timeout: float,
        cwd: str | None = None,
    ) -> ProbeResult:
        """Short commands (tool versions) are asked of this machine."""
        return self.local.probe(argv, env=env, timeout=timeout, cwd=cwd)

    def execute(
        self, request: ExecRequest, on_line: Callable[[str], None], cancel: Cancel
    ) -> ExecOutcome:
        """The attempt on a remote worker when the request says so and the server
        executes; else here."""
        spec = request.remote
        if spec is None or self.broken is not None:
            return self.local.execute(request, on_line, cancel)
        started = time.time()
        try:
            return self._execute(request, spec, on_line, cancel)
        except _Fallback as exc:
            self._give_up(str(exc))
            on_line(f"[conveyor] remote execution unavailable ({exc}): running here")
            return self.local.execute(request, on_line, cancel)
        except _InputChanged as exc:
            on_line(f"[conveyor] {exc}: running here")
            return self.local.execute(request, on_line, cancel)
        except RemoteFailed as exc:
            with self._lock:
                self._failed.add(spec.action)
            return ExecOutcome(None, started, time.time(), error=str(exc))

    def _give_up(self, reason: str) -> None:
        with self._lock:
            if self.broken is not None:
                return
            self.broken = reason
        if self._on_warning is not None:
            self._on_warning(
                f"remote execution at {self.connection.url} is unavailable ({reason}); "
                "the remote jobs of this run run here"
            )

    # -- one remote attempt ---------------------------------------------------------------
    def _execute(
        self,
        request: ExecRequest,
        spec: RemoteSpec,
        on_line: Callable[[str], None],
        cancel: Cancel,
    ) -> ExecOutcome:
        started = time.time()
        try:
            self._upload(spec)
        except _InputChanged:
            raise
        except Exception as exc:  # the CAS's own errors: the server is not usable
            raise _Fallback(getattr(exc, "reason", None) or str(exc)) from None
        if cancel.requested.is_set():
            return ExecOutcome(None, started, time.time(), cancelled=True)
        with self._lock:
            skip_lookup = spec.action in self._failed
        response = self._run(spec.action, skip_lookup, cancel, on_line)
        if (
            response is not None
            and response.cached_result
            and (response.result.exit_code != 0 or response.status.code != _OK)
        ):
            # A failure the server kept (BuildGrid's cache-failed-actions) is run again
            # rather than replayed: a failure is never served from a cache here, as the
            # job cache never stores one.
            response = self._run(spec.action, True, cancel, on_line)
        if response is None:
            return ExecOutcome(None, started, time.time(), cancelled=True)
        with self._lock:
            self.executed += 1
        status = response.status
        result = response.result
        timed_out = status.code == _DEADLINE_EXCEEDED
        cancelled = status.code == _CANCELLED
        error = None
        if status.code not in (_OK, _DEADLINE_EXCEEDED, _CANCELLED):
            error = f"remote execution failed: {_code(status.code)}: {status.message}"
        where = result.execution_metadata.worker
        if where:
            on_line(
                f"[conveyor] ran on {where}{_phases(result.execution_metadata)}"
                + (" — served from the server's cache" if response.cached_result else "")
            )
        try:
            self._replay_log(result, on_line)
            if error is None:
                self._place_outputs(request.cwd, spec, result)
                self._write_values(spec, result)
        except (RemoteFailed, OSError) as exc:
            error = f"remote execution's outputs could not be placed: {exc}"
        except Exception as exc:  # a CAS error reading outputs or the log
            error = f"remote execution's outputs could not be read: {exc}"
        outcome = ExecOutcome(
            None if error else result.exit_code,
            started,
            time.time(),
            timed_out=timed_out,
            cancelled=cancelled,
            error=error,
            worker=where or f"a worker of {self.connection.url}",
        )
        if not outcome.ok:
            with self._lock:
                self._failed.add(spec.action)
        return outcome

    def _upload(self, spec: RemoteSpec) -> None:
        """Send what the server lacks of the action's blobs and input files."""
        wanted = [*spec.blobs, *spec.files]
        missing = self.cas.find_missing(wanted)
        small = [spec.blobs[d] for d in missing if d in spec.blobs]
        if small:
            self.cas.put_many(small)
        for digest in missing:
            if digest in spec.blobs:
                continue
            path = spec.files[digest]
            sent = self.cas.put_file(path)
            if sent != digest:
                raise _InputChanged(f"{path} changed since the job's key was computed")

    def _run(
        self,
        action: Digest,
        skip_lookup: bool,
        cancel: Cancel,
        on_line: Callable[[str], None],
    ) -> remote_execution_pb2.ExecuteResponse | None:
        """Execute the action and follow its operation to the end: its ExecuteResponse,
        or None when the attempt was cancelled (the operation cancelled on the server)."""
        grpc = self.connection.grpc
        conn = self.connection
        name: str | None = None
        stream: Any = None
        finished = threading.Event()
        lock = threading.Lock()

        def watch() -> None:
            # Cancel from another thread: the loop below is blocked reading the stream.
            while not finished.is_set():
                if cancel.requested.wait(0.2):
                    break
            if finished.is_set():
                return
            with lock:
                op_name, current = name, stream
            if op_name:
                # Best effort: the stream is cut below whatever the server says.
                with contextlib.suppress(Exception):
                    conn.call(
                        "CancelOperation",
                        self._operations.CancelOperation,
                        self._ops.CancelOperationRequest(name=op_name),
                        timeout=10,
                    )
            if current is not None:
                current.cancel()

        watcher = threading.Thread(target=watch, name="remote-cancel", daemon=True)
        watcher.start()
        retried = 0
        try:
            while True:
                if cancel.requested.is_set():
                    return None
                with lock:
                    if name is None:
                        stream = self._execution.Execute(
                            self._re.ExecuteRequest(
                                instance_name=conn.instance_name,
                                action_digest=self._re.Digest(
                                    hash=action.hash, size_bytes=action.size_bytes
                                ),
                                skip_cache_lookup=skip_lookup,
                            ),
                            metadata=conn.metadata,
                        )
                    else:
                        stream = self._execution.WaitExecution(
                            self._re.WaitExecutionRequest(name=name), metadata=conn.metadata
                        )
                try:
                    for operation in stream:
                        retried = 0
                        with lock:
                            name = operation.name or name
                        if operation.done:
                            return self._response(operation)
                except grpc.RpcError as exc:
                    code = exc.code()
                    if cancel.requested.is_set() or code == grpc.StatusCode.CANCELLED:
                        return None
                    if code == grpc.StatusCode.NOT_FOUND and name is not None and retried < 1:
                        # The server forgot the operation (restarted without a database):
                        # execute the action again.
                        with lock:
                            name = None
                        retried += 1
                        continue
                    if code == grpc.StatusCode.UNIMPLEMENTED and name is None:
                        raise _Fallback("the server does not execute actions") from None
                    retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
                    # An operation under way is worth waiting for longer than one call:
                    # the server restarting takes seconds, and the work is not lost.
                    patience = conn.remote.retries if name is None else max(6, conn.remote.retries)
                    if code in retryable and retried < patience:
                        if name is not None and retried == 0:
                            on_line(
                                "[conveyor] the connection to the server dropped: following "
                                "the operation again (WaitExecution)"
                            )
                        conn.backoff(retried)
                        retried += 1
                        continue
                    failure = str(conn.unavailable("Execute", exc, retried))
                    if name is None and code == grpc.StatusCode.UNAVAILABLE:
                        raise _Fallback(failure) from None
                    raise RemoteFailed(failure) from None
                # The stream ended without a finished operation: follow it by name.
                if name is None:
                    raise RemoteFailed("the server ended Execute without naming an operation")
        finally:
            finished.set()

    def _response(self, operation: Any) -> remote_execution_pb2.ExecuteResponse:
        if operation.HasField("error"):
            raise RemoteFailed(
                f"the operation failed: {_code(operation.error.code)}: {operation.error.message}"
            )
        response = self._re.ExecuteResponse()
        if not operation.response.Unpack(response):
            raise RemoteFailed(f"unexpected operation response {operation.response.type_url}")
        return response

    # -- what comes back ------------------------------------------------------------------
    def _blob(self, raw: bytes, digest: Any) -> bytes:
        if raw or not digest.hash or digest.size_bytes == 0:
            return raw
        d = Digest(digest.hash, digest.size_bytes)
        return self.cas.get_many([d])[d]

    def _replay_log(self, result: Any, on_line: Callable[[str], None]) -> None:
        """The worker's output, line by line, as a local run would have printed it."""
        for raw, digest in (
            (result.stdout_raw, result.stdout_digest),
            (result.stderr_raw, result.stderr_digest),
        ):
            data = self._blob(raw, digest)
            if data:
                for line in data.decode("utf-8", "replace").splitlines():
                    on_line(line)

    def _place_outputs(self, cwd: str, spec: RemoteSpec, result: Any) -> None:
        """Write the result's files, trees and symlinks under `cwd`; never outside the
        workspace (`spec.root`), whatever the server says."""
        files: list[tuple[str, Digest, bool, bytes | None]] = []
        for f in result.output_files:
            files.append(
                (
                    f.path,
                    Digest(f.digest.hash, f.digest.size_bytes),
                    f.is_executable,
                    f.contents or None,
                )
            )
        for d in result.output_directories:
            tree = Digest(d.tree_digest.hash, d.tree_digest.size_bytes)
            files += self._tree_files(d.path, tree)
        small = [d for _p, d, _x, raw in files if raw is None and d.size_bytes <= SMALL_OUTPUT]
        fetched = self.cas.get_many(list(dict.fromkeys(small))) if small else {}
        for path, digest, executable, inline in files:
            dest = _inside(spec.root, cwd, path)
            mode = 0o755 if executable else 0o644
            _clear(dest)
            if inline is not None or digest in fetched or digest.size_bytes == 0:
                data = inline if inline is not None else fetched.get(digest, b"")
                atomic_write(dest, data, perms=mode, makedirs=True)
            else:
                self.cas.get_file(digest, dest, executable=executable)
        links = [*result.output_symlinks, *result.output_file_symlinks]
        links += list(result.output_directory_symlinks)
        for link in links:
            dest = _inside(spec.root, cwd, link.path)
            target = os.path.normpath(os.path.join(os.path.dirname(dest), link.target))
            if os.path.isabs(link.target) or not _within(spec.root, target):
                raise RemoteFailed(f"{link.path} links outside the workspace ({link.target})")
            _clear(dest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.symlink(link.target, dest)

    def _tree_files(self, base: str, tree: Digest) -> list[tuple[str, Digest, bool, bytes | None]]:
        """The files of an output directory (a REAPI Tree: its root and every child)."""
        message = self._re.Tree()
        message.ParseFromString(self.cas.get_many([tree])[tree])
        children = {}
        for child in message.children:
            data = child.SerializeToString(deterministic=True)
            children[Digest(hashlib.sha256(data).hexdigest(), len(data))] = child
        out: list[tuple[str, Digest, bool, bytes | None]] = []

        def walk(directory: Any, prefix: str) -> None:
            for f in directory.files:
                out.append(
                    (
                        os.path.join(prefix, f.name),
                        Digest(f.digest.hash, f.digest.size_bytes),
                        f.is_executable,
                        None,
                    )
                )
            for sub in directory.directories:
                child = children.get(Digest(sub.digest.hash, sub.digest.size_bytes))
                if child is None:
                    raise RemoteFailed(f"the tree of {base} lacks {sub.name}")
                walk(child, os.path.join(prefix, sub.name))

        walk(message.root, base)
        return out

    def _write_values(self, spec: RemoteSpec, result: Any) -> None:
        """The values the worker sent back, in $CONVEYOR_OUTPUT's format (GitHub's)."""
        if spec.values_file is None:
            return
        for extra in result.execution_metadata.auxiliary_metadata:
            if extra.type_url != VALUES_TYPE:
                continue
            pairs = json.loads(extra.value)
            lines = []
            for name, value in pairs:
                if "\n" in value:
                    delimiter = "CONVEYOR_EOF"
                    while delimiter in value:
                        delimiter += "_"
                    lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}")
                else:
                    lines.append(f"{name}={value}")
            atomic_write(spec.values_file, "\n".join(lines) + "\n", makedirs=True)


def _phases(meta: Any) -> str:
    """Where the action's time went, as the server and the worker recorded it: " (queued
    0.02 s, inputs 0.01 s, ran 0.21 s, outputs 0.01 s)"; "" when they recorded none."""

    def seconds(ts: Any) -> float | None:
        return ts.seconds + ts.nanos / 1e9 if ts.seconds or ts.nanos else None

    def span(start: Any, end: Any) -> float | None:
        a, b = seconds(start), seconds(end)
        return max(0.0, b - a) if a is not None and b is not None else None

    parts = [
        ("queued", span(meta.queued_timestamp, meta.worker_start_timestamp)),
        ("inputs", span(meta.input_fetch_start_timestamp, meta.input_fetch_completed_timestamp)),
        ("ran", span(meta.execution_start_timestamp, meta.execution_completed_timestamp)),
        (
            "outputs",
            span(meta.output_upload_start_timestamp, meta.output_upload_completed_timestamp),
        ),
    ]
    shown = [f"{name} {value:.2f} s" for name, value in parts if value is not None]
    if not shown:
        return ""
    return f" ({', '.join(shown)})"


def _within(root: str, path: str) -> bool:
    root = os.path.normpath(root)
    return path == root or path.startswith(root + os.sep)


def _inside(root: str, cwd: str, rel: str) -> str:
    """`rel` (relative to the job's directory) as an absolute path in the workspace."""
    dest = os.path.normpath(os.path.join(cwd, rel))
    if os.path.isabs(rel) or not _within(root, dest) or dest == os.path.normpath(root):
        raise RemoteFailed(f"the server returned an output outside the workspace: {rel!r}")
    return dest


def _clear(dest: str) -> None:
    """Make room for an output: a symlink or file in its place goes (never a directory)."""
    if os.path.islink(dest) or os.path.isfile(dest):
        os.unlink(dest)


def _code(code: int) -> str:
    from buildgrid.common.protos.google.rpc import code_pb2

    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return str(code)
