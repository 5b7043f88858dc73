"""A real BuildGrid server (REAPI v2) for the remote cache tests, on a free loopback port
in a temp directory: the CAS, ByteStream, ActionCache and Capabilities services, with no
database (see /work/shared/notes on BuildGrid: cache-only needs none).

The server is BuildGrid 0.4.4 from its own virtualenv, made by `.ci/buildgrid.sh`
($CONVEYOR_BUILDGRID_VENV, else `.venv-buildgrid` in the repository): its protos and the
client's (buildgrid-common) cannot be imported by one process, so it only ever runs as
`bgd`. A missing `bgd` skips the test, with the command that installs it; with
CONVEYOR_TESTS_NEED_BUILDGRID=1 (set in CI, which runs the script) it fails it instead.

Its CAS is on disk (`Server.blob_path`), so that a test can damage a blob the way a
failing disk or a buggy server would, and keeps its blobs over a restart. Its instances
have action caches of their own and share the CAS: "" and "other" are open, "secure"
asks for a JWT (HS256, signed with `Server.secret`). One server shows instance
separation and authentication both, since a start costs 3-7 s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.history.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
READY_WITHIN = 20.0


def bgd() -> str:
    """The `bgd` command; else skip (or fail, when the CI says it is installed)."""
    venv = os.environ.get("CONVEYOR_BUILDGRID_VENV") or str(REPO / ".venv-buildgrid")
    path = os.path.join(venv, "bin", "bgd")
    if os.access(path, os.X_OK):
        return path
    reason = f"BuildGrid is not installed at {path} (run .ci/buildgrid.sh)"
    if os.environ.get("CONVEYOR_TESTS_NEED_BUILDGRID") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: jwt
  algorithm: hs256
  secret: {secret_file}
  allow-unauthenticated-instances: ["", "other"]
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
  - !lru-action-cache &ac-other
    storage: *cas
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
  - !lru-action-cache &ac-secure
    storage: *cas
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
instances:
{instances}
thread-pool-size: 100
"""

INSTANCE = """\
  - name: "{name}"
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *{cache}
"""


@dataclass
class Server:
    """A running BuildGrid: its URL, the secret its JWTs are signed with, its process."""

    url: str
    port: int
    secret: str
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    def token(self, *, expires_in: float = 3600.0, secret: str | None = None) -> str:
        """A JWT the server accepts (HS256 with its secret), or signed with `secret`."""
        return jwt_hs256(
            {"sub": "tests", "exp": int(time.time() + expires_in)}, secret or self.secret
        )

    def blob_path(self, hash_: str) -> Path:
        """Where the server keeps a blob (BuildGrid's disk storage: 2 hex, the rest)."""
        return self.directory / "cas" / "cas" / "objects" / hash_[:2] / hash_[2:]

    def log(self) -> str:
        path = self.directory / "bgd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def start(self) -> None:
        """Start it and wait until it answers GetCapabilities (bounded)."""
        with (self.directory / "bgd.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [bgd(), "server", "start", str(self.directory / "bgd.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + READY_WITHIN
        # The port opens about 2 s before gRPC answers: wait for an answer.
        while not answers(self.port):
            if self.proc.poll() is not None:
                raise AssertionError(f"bgd exited ({self.proc.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"bgd not ready in {READY_WITHIN:.0f} s: {self.log()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (it stops within about a second), SIGKILL if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def answers(port: int) -> bool:
    """Whether a server on `port` answers GetCapabilities for instance "" now."""
    import grpc
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2 as re_pb2,
    )
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2_grpc as re_grpc,
    )

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = re_grpc.CapabilitiesStub(channel)
        try:
            stub.GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name=""), timeout=1.0)
        except grpc.RpcError:
            return False
    return True


@contextmanager
def buildgrid(directory: Path) -> Iterator[Server]:
    """A BuildGrid server in `directory`, started and ready; stopped at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    secret = base64.b64encode(os.urandom(24)).decode()
    (directory / "secret").write_text(secret)
    instances = "".join(
        INSTANCE.format(name=name, cache=cache)
        for name, cache in (("", "ac"), ("other", "ac-other"), ("secure", "ac-secure"))
    )
    (directory / "bgd.yml").write_text(
        CONFIG.format(
            port=port,
            secret_file=directory / "secret",
            cas=directory / "cas",
            instances=instances,
        )
    )
    server = Server(url=f"grpc://127.0.0.1:{port}", port=port, secret=secret, directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def jwt_hs256(claims: dict[str, object], secret: str) -> str:
    """A JSON Web Token signed with HS256 (RFC 7519): a few lines, no library."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"
