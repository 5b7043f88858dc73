"""The remote cache is shared infrastructure, not a Conveyor format: Bazel and Conveyor
use one BuildGrid server (REAPI v2), each finds its own entries there, and Conveyor reads
a blob Bazel stored by its digest alone.

Bazel is Debian's `bazel-bootstrap` (4.2.3; /usr/bin/bazel), run offline: a workspace
with one genrule and no external repositories, its output root in tmp_path, its server
shut down at the end. Missing Bazel or BuildGrid skips the test, with the command that
installs it; with CONVEYOR_TESTS_NEED_BUILDGRID=1 (CI) it fails it instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.cache.local import LocalCache
from conveyor.cache.remote import RemoteStore
from conveyor.cache.stores import using
from conveyor.cache.tiered import TieredStore
from conveyor.model import Digest, Remote
from tests.conftest import Project
from tests.reapi import ExecServer, Server, buildgrid, workers

pytestmark = pytest.mark.slow

BAZEL_TEXT = b"hello from bazel\n"
CONVEYOR_TEXT = b"hello from conveyor\n"
# One Bazel command's bound: the first starts the Bazel server (a JVM, about 8 s here).
BAZEL_TIMEOUT = 90.0


def digest_of(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def bazel_binary() -> str:
    """The `bazel` command; else skip (or fail, when CI says the remote tools are there)."""
    path = shutil.which("bazel")
    if path is not None:
        return path
    reason = "bazel is not installed (apt-get install bazel-bootstrap)"
    if os.environ.get("CONVEYOR_TESTS_NEED_BUILDGRID") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class Bazel:
    """`bazel` in one workspace, with its output root (and so its server) of its own."""

    def __init__(self, binary: str, workspace: Path, user_root: Path) -> None:
        self.binary = binary
        self.workspace = workspace
        self.user_root = user_root

    def __call__(
        self, *args: str, timeout: float = BAZEL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        startup = [
            # Debian's own rc file stays: it points Bazel at its install base in
            # /usr/share/bazel, without which the launcher cannot start. A user's and
            # the workspace's rc files could change the flags under test.
            "--nohome_rc",
            "--noworkspace_rc",
            f"--output_user_root={self.user_root}",
            # Should the test die before `shutdown`, the server still ends by itself.
            "--max_idle_secs=60",
        ]
        return subprocess.run(
            [self.binary, *startup, *args],
            cwd=self.workspace,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def server_pids(self) -> list[int]:
        """The Bazel servers running for this output root (their pid files)."""
        return [int(p.read_text()) for p in self.user_root.glob("*/server/server.pid.txt")]

    def build(self, url: str, target: str) -> subprocess.CompletedProcess[str]:
        return self(
            "build",
            f"--remote_cache={url}",
            "--remote_upload_local_results",
            # The action's key must not hold the test's PATH: a user on another machine
            # with another PATH gets the same entry.
            "--incompatible_strict_action_env",
            # No sandbox: linux-sandbox needs namespaces a CI container may not allow,
            # and the strategy is not part of the cache key.
            "--spawn_strategy=local",
            # Nothing is downloaded: a repository that would need the network fails the
            # build instead. (--nofetch would also refuse @bazel_tools, which Bazel
            # unpacks from its own install base.)
            "--experimental_repository_disable_download",
            "--color=no",
            "--curses=no",
            target,
        )


@pytest.fixture
def bazel(tmp_path: Path) -> Iterator[Bazel]:
    """A Bazel workspace with a genrule writing BAZEL_TEXT; its server is shut down (and
    killed, if `shutdown` did not end it) at the end."""
    binary = bazel_binary()
    workspace = tmp_path / "bazel-ws"
    workspace.mkdir()
    (workspace / "WORKSPACE").write_text('workspace(name = "interop")\n')
    (workspace / "BUILD").write_text(
        "genrule(\n"
        '    name = "greeting",\n'
        '    outs = ["greeting.txt"],\n'
        f"    cmd = \"printf '{BAZEL_TEXT.decode().strip()}\\\\n' > $@\",\n"
        ")\n"
    )
    tool = Bazel(binary, workspace, tmp_path / "bazel-root")
    try:
        yield tool
    finally:
        pids = tool.server_pids()
        try:
            tool("shutdown", timeout=3)
        except subprocess.TimeoutExpired:
            # A server that used a remote cache or executor hangs in its shutdown here
            # (Bazel 4 waits on its gRPC channels; both tests' teardowns sat out a 10 s
            # bound): killed, as _wait_gone does a lingering one.
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for pid in pids:
            _wait_gone(pid)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a daemon's parent here may be slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _wait_gone(pid: int) -> None:
    """The Bazel server gone after `bazel shutdown`; killed if it lingers (a JVM on a
    loaded machine can take a while), so no test leaves one behind."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with buildgrid(tmp_path / "buildgrid") as running:
        yield running


def test_bazel_and_conveyor_share_one_remote_cache(
    bazel: Bazel,
    server: Server,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = digest_of(BAZEL_TEXT)
    reader = RemoteStore(Remote(url=server.url), {})
    try:
        assert reader.find_missing([blob]) == [blob], "the server starts empty"

        # Bazel builds and uploads; after a clean, its next build is a remote hit.
        built = bazel.build(server.url, "//:greeting")
        assert built.returncode == 0, built.stderr
        assert "remote cache hit" not in built.stderr
        assert (bazel.workspace / "bazel-bin" / "greeting.txt").read_bytes() == BAZEL_TEXT
        assert bazel.server_pids(), "Bazel runs as a server, shut down at the end"

        # Conveyor's own client reads Bazel's output by its digest: the SHA-256 and the
        # size of the text, nothing Bazel-specific.
        assert reader.find_missing([blob]) == []
        assert reader.get_bytes(blob) == BAZEL_TEXT

        # Conveyor runs a pipeline with the same server behind its local cache.
        project.pipeline(
            f"""
            jobs:
              greet:
                outputs: [greeting.txt]
                run: printf '{CONVEYOR_TEXT.decode().strip()}\\n' > greeting.txt
            """
        )
        project.write(".gitignore", "greeting.txt\n")
        project.commit()
        cache = tmp_path / "conveyor-cache"
        monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(cache))
        warnings: list[str] = []
        remote = RemoteStore(Remote(url=server.url, upload=True), {})
        tiered = TieredStore(
            LocalCache(str(cache)), remote, upload=True, on_warning=warnings.append
        )
        try:
            # The run flushes the store at its end: the uploads finish and the result is
            # written, last, before `run` returns.
            with using(tiered):
                ran = project.run("run")
        finally:
            remote.close()
        assert ran.code == 0, ran.out + ran.err
        assert warnings == []
        uploads = tiered.uploads()
        assert uploads is not None
        assert (uploads.results, uploads.failed) == (1, 0)
        assert tiered.summary() is not None
        assert str(tiered.summary()).startswith("uploaded 1 blob (20 B) and 1 result to ")

        # The server holds Conveyor's result, found by its action digest (summary.json
        # records the hash; the job index, the size), and its output's blob.
        (run_dir,) = project.runs()
        (job,) = json.loads((run_dir / "summary.json").read_text())["jobs"]
        (index_file,) = (cache / "jobs").glob("*.json")
        entry = json.loads(index_file.read_text())["greet"]
        assert entry["action"] == job["action_digest"]
        result = reader.get_action_result(Digest(entry["action"], entry["action_size"]))
        assert result is not None, "Conveyor's action result is on the server"
        (output,) = result.output_files
        assert output.path == "greeting.txt"
        assert Digest(output.digest.hash, output.digest.size_bytes) == digest_of(CONVEYOR_TEXT)
        assert reader.get_bytes(digest_of(CONVEYOR_TEXT)) == CONVEYOR_TEXT

        # And Bazel's entries are still there beside Conveyor's: a clean build is a hit.
        assert reader.find_missing([blob]) == []
        cleaned = bazel("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        assert not (bazel.workspace / "bazel-bin" / "greeting.txt").exists()
        again = bazel.build(server.url, "//:greeting")
        assert again.returncode == 0, again.stderr
        assert "1 remote cache hit" in again.stderr, again.stderr
        assert (bazel.workspace / "bazel-bin" / "greeting.txt").read_bytes() == BAZEL_TEXT
    finally:
        reader.close()


def test_bazel_runs_its_action_on_a_conveyor_worker(
    bazel: Bazel, execution_server: ExecServer, tmp_path: Path
) -> None:
    """`conveyor worker` is a worker of the server like any other: Bazel's remote
    executor hands it a genrule, and the output Bazel gets back is the right one."""
    pool = f"bazel{os.getpid()}"
    with workers(execution_server, tmp_path / "workers", 1, "--platform", f"pool={pool}") as (
        worker,
    ):
        built = bazel(
            "build",
            f"--remote_executor={execution_server.url}",
            f"--remote_default_exec_properties=pool={pool}",
            "--incompatible_strict_action_env",
            "--experimental_repository_disable_download",
            "--color=no",
            "--curses=no",
            "//:greeting",
        )
        assert built.returncode == 0, built.stderr + worker.log()
        assert "1 remote" in built.stderr, built.stderr
        assert (bazel.workspace / "bazel-bin" / "greeting.txt").read_bytes() == BAZEL_TEXT
        assert " exit 0 " in worker.log(), worker.log()
