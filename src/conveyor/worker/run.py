"""One lease's execution: the Action's Command run in a fresh directory built from the CAS,
its outputs and log uploaded, and the ActionResult the server is given back.

The contract with Conveyor's Execute client (executor.remote):

- the process gets the Command's environment, plus the worker's own values of the
  baseline names (executor.environment.BASELINE_ENV) it does not set; a Command from
  Conveyor (CONVEYOR=true) also gets CONVEYOR_WORKSPACE (the input root) and
  CONVEYOR_OUTPUT (a fresh file outside it), whose values come back in the result's
  auxiliary metadata (cache.results.VALUES_TYPE), parsed as the local scheduler does;
- `output_paths` are Conveyor's output patterns (cache.outputs.collect: globs, files,
  symlinks); Bazel's `output_files` / `output_directories` are honoured too (a
  directory as a Tree blob);
- the log is the combined output lines, each ending in "\\n": in `stdout_raw` when
  small, and always as the blob `stdout_digest`; stderr is empty (as for local jobs);
- `Action.timeout` stops the process group and answers DEADLINE_EXCEEDED with the
  partial result, as REAPI says.

The process runs through executor.local (its own process group, killed with its whole
tree on timeout or cancel; a watchdog stops it if the worker dies).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.cache.interface import BlobMissing, CacheError
from conveyor.cache.outputs import collect
from conveyor.cache.results import VALUES_TYPE
from conveyor.executor.environment import BASELINE_ENV
from conveyor.executor.interface import Cancel, ExecRequest
from conveyor.model import Digest
from conveyor.worker.materialize import BadInputRoot, BlobCache, file_digest, remove_tree

if TYPE_CHECKING:
    from conveyor.cache.remote import RemoteStore
    from conveyor.executor.local import LocalExecutor

INLINE_LOG = 64 * 1024
"""A log up to this size also travels inline (stdout_raw): no second call to read it."""
SMALL = 1 << 20
"""Output files up to this size are read whole and uploaded in batches."""

# google.rpc.Code values (the lease's status).
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, FAILED_PRECONDITION, UNAVAILABLE = 0, 3, 4, 9, 14


@dataclass
class Context:
    """What every lease of a worker shares."""

    store: RemoteStore
    cache: BlobCache
    executor: LocalExecutor
    work_dir: str
    environ: Mapping[str, str]
    host: str = field(default_factory=socket.gethostname)


@dataclass
class Outcome:
    """How a lease ended: the status to report and the result (None when cancelled:
    nothing is reported)."""

    code: int
    message: str = ""
    result: Any = None
    exit_code: int | None = None
    cancelled: bool = False
    seconds: float = 0.0


def _timestamp(field_: Any, when: float) -> None:
    field_.FromNanoseconds(int(when * 1e9))


def _digest_proto(re_pb2: Any, d: Digest) -> Any:
    return re_pb2.Digest(hash=d.hash, size_bytes=d.size_bytes)


def _inside(base: str, rel: str) -> str:
    """`rel` below `base`, refused if it climbs out."""
    path = os.path.normpath(os.path.join(base, rel))
    if path != base and not path.startswith(base + os.sep):
        raise BadInputRoot(f"path {rel!r} leaves the input root")
    return path


def run_lease(ctx: Context, action: Any, bot_id: str, cancel: Cancel) -> Outcome:
    """Run `action` (an Action proto) to its end; never raises for the action's own
    faults (they are the outcome's status)."""
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2 as re_pb2,
    )

    started = time.time()
    lease_dir = tempfile.mkdtemp(dir=ctx.work_dir, prefix=f"{action.command_digest.hash[:8]}-")
    try:
        return _run(ctx, re_pb2, action, bot_id, cancel, lease_dir, started)
    except BadInputRoot as exc:
        return Outcome(INVALID_ARGUMENT, str(exc), seconds=time.time() - started)
    except BlobMissing as exc:
        missing = ", ".join(f"{d.hash[:12]}/{d.size_bytes}" for d in exc.digests[:5])
        return Outcome(
            FAILED_PRECONDITION,
            f"blobs missing from the CAS: {missing}",
            seconds=time.time() - started,
        )
    except CacheError as exc:
        # The server's CAS failing is not the action's fault: UNAVAILABLE makes BuildGrid
        # give the job to a worker again.
        return Outcome(UNAVAILABLE, str(exc), seconds=time.time() - started)
    finally:
        remove_tree(lease_dir)


def _run(
    ctx: Context,
    re_pb2: Any,
    action: Any,
    bot_id: str,
    cancel: Cancel,
    lease_dir: str,
    started: float,
) -> Outcome:
    store = ctx.store
    result = re_pb2.ActionResult()
    meta = result.execution_metadata
    meta.worker = f"conveyor-worker@{ctx.host}/{bot_id}"
    _timestamp(meta.worker_start_timestamp, started)
    _timestamp(meta.input_fetch_start_timestamp, started)
    command = re_pb2.Command.FromString(
        store.get_bytes(Digest(action.command_digest.hash, action.command_digest.size_bytes))
    )
    if not command.arguments:
        return Outcome(INVALID_ARGUMENT, "the Command has no arguments")
    root = os.path.join(lease_dir, "root")
    done = ctx.cache.materialize(
        Digest(action.input_root_digest.hash, action.input_root_digest.size_bytes), root
    )
    if not os.path.isdir(root):  # an empty input root has no Directory blob to walk
        os.makedirs(root)
    _timestamp(meta.input_fetch_completed_timestamp, time.time())
    try:
        cwd = _inside(root, command.working_directory)
        os.makedirs(cwd, exist_ok=True)
        outputs = list(command.output_paths) or [
            *command.output_files,
            *command.output_directories,
        ]
        # REAPI: the worker makes the parents of the outputs before the command runs.
        for path in outputs:
            if not any(c in path for c in "*?["):
                os.makedirs(os.path.dirname(_inside(cwd, path)), exist_ok=True)
        env = {v.name: v.value for v in command.environment_variables}
        for name in BASELINE_ENV:
            if name not in env and name in ctx.environ:
                env[name] = ctx.environ[name]
        values_file = None
        if env.get("CONVEYOR") == "true":
            values_file = os.path.join(lease_dir, "values")
            with open(values_file, "wb"):
                pass
            env["CONVEYOR_WORKSPACE"] = root
            env["CONVEYOR_OUTPUT"] = values_file
        timeout = action.timeout.ToTimedelta().total_seconds() if action.HasField("timeout") else 0
        lines: list[str] = []
        _timestamp(meta.execution_start_timestamp, time.time())
        outcome = ctx.executor.execute(
            ExecRequest(
                name=action.command_digest.hash[:12],
                argv=tuple(command.arguments),
                cwd=cwd,
                env=env,
                timeout=timeout or None,
            ),
            lines.append,
            cancel,
        )
        _timestamp(meta.execution_completed_timestamp, time.time())
        if outcome.cancelled:
            return Outcome(OK, "cancelled", cancelled=True, seconds=time.time() - started)
        exit_code = outcome.exit_code
        if outcome.error is not None:
            lines.append(f"conveyor worker: {outcome.error}")
            exit_code = 127 if "not found" in outcome.error else 126
        if outcome.timed_out:
            lines.append(f"conveyor worker: timed out after {timeout:g} s")
        if values_file is not None:
            from conveyor.executor.values import read

            values, notes = read(values_file)
            lines.extend(notes)
            if values:
                import json

                extra = meta.auxiliary_metadata.add()
                extra.type_url = VALUES_TYPE
                extra.value = json.dumps([list(pair) for pair in values]).encode()
        result.exit_code = exit_code if exit_code is not None else 1
        _timestamp(meta.output_upload_start_timestamp, time.time())
        log = ("\n".join(lines) + "\n").encode() if lines else b""
        _upload_outputs(store, re_pb2, result, root, cwd, command, log)
        _timestamp(meta.output_upload_completed_timestamp, time.time())
        _timestamp(meta.worker_completed_timestamp, time.time())
    finally:
        ctx.cache.check(done)
    seconds = time.time() - started
    if outcome.timed_out:
        return Outcome(
            DEADLINE_EXCEEDED,
            f"the action timed out after {timeout:g} s",
            result,
            result.exit_code,
            seconds=seconds,
        )
    return Outcome(OK, "", result, result.exit_code, seconds=seconds)


class _Uploads:
    """Blobs to send: small ones by content (batched), large ones by path."""

    def __init__(self) -> None:
        self.small: dict[Digest, bytes] = {}
        self.large: dict[Digest, str] = {}

    def file(self, path: str) -> Digest:
        if os.path.getsize(path) <= SMALL:
            with open(path, "rb") as fh:
                data = fh.read()
            return self.data(data)
        digest = file_digest(path)
        self.large[digest] = path
        return digest

    def data(self, data: bytes) -> Digest:
        import hashlib

        digest = Digest(hashlib.sha256(data).hexdigest(), len(data))
        self.small[digest] = data
        return digest

    def send(self, store: RemoteStore) -> None:
        """Upload what FindMissingBlobs says the server lacks."""
        missing = set(store.find_missing([*self.small, *self.large]))
        small = [data for d, data in self.small.items() if d in missing]
        if small:
            store.put_many(small)
        for digest, path in self.large.items():
            if digest in missing:
                store.put_file(path)


def _executable(path: str) -> bool:
    # The owner's bit, as Conveyor's own cache reads it (os.access says yes to root for
    # any x bit).
    return bool(os.stat(path).st_mode & 0o100)


def _upload_outputs(
    store: RemoteStore, re_pb2: Any, result: Any, root: str, cwd: str, command: Any, log: bytes
) -> None:
    uploads = _Uploads()
    if command.output_paths:
        found = collect(root, cwd, list(command.output_paths))
        for rel, path in found.files:
            result.output_files.add(
                path=rel,
                digest=_digest_proto(re_pb2, uploads.file(path)),
                is_executable=_executable(path),
            )
        for rel, target in found.links:
            result.output_symlinks.add(path=rel, target=target)
    else:
        for rel in command.output_files:
            path = _inside(cwd, rel)
            if os.path.islink(path):
                result.output_file_symlinks.add(path=rel, target=os.readlink(path))
            elif os.path.isfile(path):
                result.output_files.add(
                    path=rel,
                    digest=_digest_proto(re_pb2, uploads.file(path)),
                    is_executable=_executable(path),
                )
        for rel in command.output_directories:
            path = _inside(cwd, rel)
            if os.path.islink(path):
                result.output_directory_symlinks.add(path=rel, target=os.readlink(path))
            elif os.path.isdir(path):
                tree = re_pb2.Tree()
                tree.root.CopyFrom(_directory(re_pb2, path, uploads, tree))
                digest = uploads.data(tree.SerializeToString(deterministic=True))
                result.output_directories.add(path=rel, tree_digest=_digest_proto(re_pb2, digest))
    log_digest = uploads.data(log)
    result.stdout_digest.CopyFrom(_digest_proto(re_pb2, log_digest))
    if len(log) <= INLINE_LOG:
        result.stdout_raw = log
    uploads.send(store)


def _directory(re_pb2: Any, path: str, uploads: _Uploads, tree: Any) -> Any:
    """The Directory of `path` (its subdirectories added to `tree`'s children)."""
    directory = re_pb2.Directory()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_symlink():
            directory.symlinks.add(name=entry.name, target=os.readlink(entry.path))
        elif entry.is_dir():
            child = _directory(re_pb2, entry.path, uploads, tree)
            tree.children.add().CopyFrom(child)
            data = child.SerializeToString(deterministic=True)
            directory.directories.add(
                name=entry.name, digest=_digest_proto(re_pb2, uploads.data(data))
            )
        elif entry.is_file():
            directory.files.add(
                name=entry.name,
                digest=_digest_proto(re_pb2, uploads.file(entry.path)),
                is_executable=_executable(entry.path),
            )
    return directory
