"""A small REAPI client of its own for the worker's tests (upload, Execute, read), so they
do not depend on Conveyor's Execute client."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as re_pb2,
)
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2_grpc as re_grpc,
)
from buildgrid.common.protos.google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

Files = Mapping[str, "bytes | tuple[bytes, bool]"]
"""Input files by path: their bytes, or (bytes, executable)."""


def digest_of(data: bytes) -> Any:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class Client:
    def __init__(self, url: str) -> None:
        self.channel = grpc.insecure_channel(url.removeprefix("grpc://"))
        self.cas = re_grpc.ContentAddressableStorageStub(self.channel)
        self.execution = re_grpc.ExecutionStub(self.channel)
        self.operations = operations_pb2_grpc.OperationsStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def put(self, *blobs: bytes) -> list[Any]:
        digests = [digest_of(b) for b in blobs]
        request = re_pb2.BatchUpdateBlobsRequest(
            requests=[
                re_pb2.BatchUpdateBlobsRequest.Request(digest=d, data=b)
                for d, b in zip(digests, blobs, strict=True)
                if b
            ]
        )
        if request.requests:
            reply = self.cas.BatchUpdateBlobs(request, timeout=30)
            assert all(r.status.code == 0 for r in reply.responses), reply
        return digests

    def read(self, digest: Any) -> bytes:
        if digest.size_bytes == 0:
            return b""
        reply = self.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(digests=[digest]), timeout=30)
        assert reply.responses[0].status.code == 0, reply
        data: bytes = reply.responses[0].data
        return data

    def tree(self, files: Files) -> Any:
        """Upload files as a Directory tree; the root's digest."""
        nested: dict[str, Any] = {}
        for path, content in files.items():
            parts = path.split("/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = content if isinstance(content, tuple) else (content, False)

        def build(node: dict[str, Any]) -> Any:
            directory = re_pb2.Directory()
            for name in sorted(node):
                value = node[name]
                if isinstance(value, dict):
                    child = build(value)
                    directory.directories.add(name=name, digest=child)
                else:
                    data, executable = value
                    (d,) = self.put(data)
                    directory.files.add(name=name, digest=d, is_executable=executable)
            (d,) = self.put(directory.SerializeToString(deterministic=True))
            return d

        return build(nested)

    def action(
        self,
        script: str,
        *,
        files: Files | None = None,
        env: Mapping[str, str] | None = None,
        outputs: tuple[str, ...] = (),
        cwd: str = "",
        timeout: float | None = None,
        pool: str | None = None,
        salt: str | None = None,
    ) -> Any:
        """An Action running `sh -ec script`, uploaded with its Command and inputs."""
        variables = dict(env or {})
        variables["SALT"] = salt or os.urandom(8).hex()  # every test's action is new
        command = re_pb2.Command(
            arguments=["sh", "-ec", script],
            environment_variables=[
                re_pb2.Command.EnvironmentVariable(name=k, value=v)
                for k, v in sorted(variables.items())
            ],
            output_paths=list(outputs),
            working_directory=cwd,
        )
        if pool:
            command.platform.properties.add(name="pool", value=pool)
        action = re_pb2.Action(
            command_digest=self.put(command.SerializeToString(deterministic=True))[0],
            input_root_digest=self.tree(files or {}),
            platform=command.platform,
        )
        if timeout is not None:
            action.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout)))
        (digest,) = self.put(action.SerializeToString(deterministic=True))
        return digest

    def start(self, action: Any, timeout: float = 60) -> Iterator[Any]:
        return iter(
            self.execution.Execute(
                re_pb2.ExecuteRequest(action_digest=action, skip_cache_lookup=True),
                timeout=timeout,
            )
        )

    def execute(self, action: Any, timeout: float = 60) -> Any:
        """Execute and wait: the ExecuteResponse."""
        return finish(self.start(action, timeout))

    def cancel(self, name: str) -> None:
        self.operations.CancelOperation(
            operations_pb2.CancelOperationRequest(name=name), timeout=10
        )


def finish(stream: Iterator[Any]) -> Any:
    for operation in stream:
        if operation.done:
            response = re_pb2.ExecuteResponse()
            assert operation.response.Unpack(response), operation
            return response
    raise AssertionError("the Execute stream ended with no result")
