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
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.history.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
# How long a start may take before the test fails: about 8 s alone (3 s of it importing
# BuildGrid), but with the suite's other xdist worker busy beside it on a loaded 2-core
# machine, starts past 20 s were seen. A bound on the server, not on Conveyor.
READY_WITHIN = 60.0


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


# -- remote execution: BuildGrid's scheduler over PostgreSQL, and `conveyor worker`s ------

EXEC_CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: {database}
    pool-size: 10
    max-overflow: 20
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 10000
    allow-updates: true
    cache-failed-actions: true
schedulers:
  - !sql-scheduler &sched
    sql: *sql
    storage: *cas
    action-cache: *ac
    bot-session-keepalive-timeout: {keepalive}
    property-set: !dynamic-property-set
      match-property-keys: [pool]
    session-expiry-timer-interval: 1
    poll-interval: 0.2
    bot-poll-interval: 0.1
    job-assignment-interval: 0.1
instances:
  - name: ""
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *sched
thread-pool-size: 100
"""

KEEPALIVE = 6
"""The execution server's bot-session-keepalive-timeout (seconds): a worker killed
mid-lease has its job requeued within this plus the reaper's 1 s. Not shorter: BuildGrid
gives a long-poll 80% of it and assigns no lease to one shorter than 3 s."""


def postgres_bindir() -> str:
    """PostgreSQL's server binaries (the newest installed); else skip (or fail, when
    CONVEYOR_TESTS_NEED_BUILDGRID=1 says the CI has them)."""
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    reason = (
        "PostgreSQL's server binaries are not under /usr/lib/postgresql "
        "(BuildGrid's scheduler needs them for remote execution)"
    )
    if os.environ.get("CONVEYOR_TESTS_NEED_BUILDGRID") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def postgres_for_buildgrid() -> Iterator[str]:
    """A PostgreSQL server in a temp directory (as the `postgres` user when we are root:
    it refuses root; so not under pytest's directories, which only their owner may enter)
    with an empty database `bgd`; its SQLAlchemy URL. Stopped and removed at the end."""
    import shutil
    import tempfile

    bindir = postgres_bindir()
    directory = Path(tempfile.mkdtemp(prefix="conveyor-bgd-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = directory / "data", free_port()

    def run(*argv: str) -> None:
        proc = subprocess.run(
            [*as_user, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {proc.stdout}{proc.stderr}")

    try:
        run(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "bgd", "--no-sync")
        run(
            f"{bindir}/pg_ctl",
            "-D",
            str(data),
            "-w",
            "-l",
            str(directory / "log"),
            "-o",
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=bgd dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE bgd")
        # psycopg2, not the bare postgresql:// (psycopg 3 under SQLAlchemy 2.1), with which
        # BuildGrid's notifier crashes in a loop and completed jobs never reach a client.
        yield f"postgresql+psycopg2://bgd@127.0.0.1:{port}/bgd"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class ExecServer(Server):
    """A BuildGrid that also executes (Execution, Operations and Bots services, instance
    ""): jobs wait in its queue until a `conveyor worker` takes them. Besides OSFamily
    and ISA it matches the platform property `pool`: a test that starts workers with
    `--platform pool=NAME` and sends actions with pool=NAME has them to itself (a worker
    with a pool also takes actions that name none)."""

    keepalive: int = KEEPALIVE


@contextmanager
def execution_buildgrid(directory: Path, *, keepalive: int = KEEPALIVE) -> Iterator[ExecServer]:
    """BuildGrid with its SQL scheduler on a PostgreSQL of its own, migrations applied,
    started and answering; everything stopped at the end (about 9 s to start)."""
    command = bgd()  # skips first when BuildGrid is missing
    directory.mkdir(parents=True, exist_ok=True)
    with postgres_for_buildgrid() as database:
        migrate = subprocess.run(
            [command, "migrate", "apply", database],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if migrate.returncode != 0:
            raise AssertionError(f"bgd migrate apply failed: {migrate.stdout}{migrate.stderr}")
        port = free_port()
        (directory / "bgd.yml").write_text(
            EXEC_CONFIG.format(
                port=port, database=database, cas=directory / "cas", keepalive=keepalive
            )
        )
        server = ExecServer(
            url=f"grpc://127.0.0.1:{port}",
            port=port,
            secret="",
            directory=directory,
            keepalive=keepalive,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


class Worker:
    """A `conveyor worker` of this checkout, in a subprocess against `server`; its output
    (stdout and stderr) goes to `log`."""

    def __init__(
        self, server: Server, directory: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.log_path = directory / "worker.log"
        environ = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        environ["PYTHONPATH"] = str(REPO / "src")
        environ["PYTHONUNBUFFERED"] = "1"
        environ.update(env or {})
        argv = [
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            "--server",
            server.url,
            "--work-dir",
            str(directory / "work"),
            "--cache-dir",
            str(directory / "cache"),
            *args,
        ]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=directory
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        """Until the worker's output holds `text` (AssertionError with the log if not)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from the worker in {timeout:g} s: {self.log()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM (a drain), SIGKILL after 15 s."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def workers(
    server: Server, directory: Path, count: int = 1, *args: str, env: dict[str, str] | None = None
) -> Iterator[list[Worker]]:
    """`count` workers started against `server` and connected (each printed its bot ids);
    stopped (drained) at the end."""
    started: list[Worker] = []
    try:
        for i in range(count):
            started.append(Worker(server, directory / f"worker{i}", *args, env=env))
        for worker in started:
            worker.wait_for("bot ")
        yield started
    finally:
        for worker in started:
            worker.stop()
