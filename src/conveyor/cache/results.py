"""What the job cache keeps of a job's execution, in REAPI's terms and in its own: the
ActionResult's execution metadata (which run produced it, when, from which key), a
`Hit` served from the cache and what storing a result gave back (`Stored`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conveyor.model import Digest

# Re-exported: the job cache's modules name them from here.
from conveyor.reapi.metadata import MANIFEST_TYPE as MANIFEST_TYPE
from conveyor.reapi.metadata import VALUES_TYPE as VALUES_TYPE

ACTION_TYPE = "type.googleapis.com/conveyor.ActionDigest"
"""The type URL of the action digest ("hash/size") a result published under a
fingerprint key (`keys.fingerprint_key`) is the result of, in its auxiliary metadata."""


@dataclass(frozen=True)
class Hit:
    log: list[str]
    outputs_digest: str
    saved: float
    """Seconds the original execution took."""
    origin: str
    """Which earlier run produced it."""
    outputs: tuple[tuple[str, str, int], ...] = ()
    """(workspace-relative path, sha256, size) of every output file restored."""
    exit_code: int = 0
    """What the job exited with (non-zero: failures a tests gate tolerated)."""
    values: tuple[tuple[str, str], ...] = ()
    """What the job wrote to $CONVEYOR_OUTPUT."""


@dataclass(frozen=True)
class Stored:
    outputs_digest: str
    missing_outputs: tuple[str, ...]
    outputs: tuple[tuple[str, str, int], ...] = ()
    """(workspace-relative path, sha256, size) of every output file."""
    not_stored: str | None = None
    """Why the result was not put in the cache although it could have been."""


def describe_execution(
    result: Any,
    *,
    worker: str,
    started: float,
    finished: float,
    manifest: bytes,
    values: tuple[tuple[str, str], ...] = (),
) -> None:
    """Fill an ActionResult's ExecutedActionMetadata: the worker (`conveyor@host run
    ID`, which `origin_of` reads back), the start and end, and the parts of the key.
    They travel with the result (REAPI's auxiliary metadata), so `why` can compare
    against them and no separate blob is written per job."""
    from google.protobuf.timestamp_pb2 import Timestamp

    meta = result.execution_metadata
    meta.worker = worker
    start, end = Timestamp(), Timestamp()
    start.FromNanoseconds(int(started * 1e9))
    end.FromNanoseconds(int(finished * 1e9))
    meta.execution_start_timestamp.CopyFrom(start)
    meta.execution_completed_timestamp.CopyFrom(end)
    extra = meta.auxiliary_metadata.add()
    extra.type_url = MANIFEST_TYPE
    extra.value = manifest
    if values:
        extra = meta.auxiliary_metadata.add()
        extra.type_url = VALUES_TYPE
        extra.value = json.dumps([list(pair) for pair in values]).encode()


def with_action(result: Any, action: Digest) -> Any:
    """A copy of `result` that names the action it is the result of: what is published
    under the action's fingerprint key."""
    copy = type(result)()
    copy.CopyFrom(result)
    extra = copy.execution_metadata.auxiliary_metadata.add()
    extra.type_url = ACTION_TYPE
    extra.value = f"{action.hash}/{action.size_bytes}".encode()
    return copy


def action_of(result: Any) -> Digest | None:
    """The action a result found by fingerprint is the result of, the note taken out of
    `result` (which is then as it is stored under the action); None: it names none, or
    not readably."""
    for i, extra in enumerate(result.execution_metadata.auxiliary_metadata):
        if extra.type_url == ACTION_TYPE:
            sha, _, size = extra.value.decode("ascii", "replace").partition("/")
            if len(sha) != 64 or sha.strip("0123456789abcdef") or not size.isdigit():
                return None
            del result.execution_metadata.auxiliary_metadata[i]
            return Digest(sha, int(size))
    return None


def values_of(result: Any) -> tuple[tuple[str, str], ...]:
    """The values stored with a result (none when it has none, or they are unreadable)."""
    for extra in result.execution_metadata.auxiliary_metadata:
        if extra.type_url == VALUES_TYPE:
            try:
                data = json.loads(extra.value)
                return tuple((str(k), str(v)) for k, v in data)
            except (ValueError, TypeError):
                return ()
    return ()


def origin_of(result: Any, here: str | None = None) -> str:
    """Which run produced a result, and on which machine when not on `here` (a result
    from the team's remote cache: CI's, say): stored in it (ExecutedActionMetadata.worker,
    "conveyor@HOST run ID"; another client of the server writes its own)."""
    worker: str = result.execution_metadata.worker
    if worker.startswith("conveyor@") and " run " in worker:
        host, run = worker.removeprefix("conveyor@").split(" ", 1)
        return run if host == here else f"{run} on {host}"
    if worker:
        return f"{worker} (another client of the cache)"
    return "an earlier run with the same inputs"
