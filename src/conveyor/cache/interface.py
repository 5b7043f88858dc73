"""What a cache is, in REAPI's terms: a CAS of blobs by digest, and an action cache from
action digest to ActionResult (the protobuf message, so a remote store can be swapped in)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from conveyor.model import Digest

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2


class CorruptBlob(Exception):
    """A stored blob did not match its digest. It has been evicted; the caller treats the
    entry that needed it as a miss (the job runs again)."""

    def __init__(self, digest: Digest, detail: str) -> None:
        super().__init__(f"blob {digest} is corrupt ({detail}); evicted")
        self.digest = digest


class ContentStore(Protocol):
    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]: ...

    def put_bytes(self, data: bytes) -> Digest: ...

    def put_file(self, path: str) -> Digest: ...

    def get_bytes(self, digest: Digest) -> bytes: ...

    def get_file(self, digest: Digest, dest: str, *, executable: bool = False) -> None: ...


class ActionCache(Protocol):
    def get_action_result(self, action: Digest) -> remote_execution_pb2.ActionResult | None: ...

    def put_action_result(
        self, action: Digest, result: remote_execution_pb2.ActionResult
    ) -> None: ...
