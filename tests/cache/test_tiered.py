"""The tiered store (conveyor.cache.tiered): local first, the remote second with
write-through, uploads in the background, and a remote that fails or lies never failing
the run. The "remote" is a real store (a LocalCache in its own directory, or the
in-memory one) behind `Remote`, a wrapper that can be down, slow or corrupting, and
records the calls it serves in order."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.interface import (
    BlobMissing,
    Capabilities,
    CorruptBlob,
    EntryState,
    Store,
    StoreUnavailable,
    referenced_blobs,
)
from conveyor.cache.local import LocalCache
from conveyor.cache.stores import using
from conveyor.cache.tiered import TieredStore
from conveyor.cli import run_cli
from conveyor.model import Digest
from tests.cache.memory import MemoryStore
from tests.conftest import Project


def digest_of(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


class Remote:
    """A Store standing for a remote server: `down` refuses every call (as a server that
    does not answer), `corrupt` sends wrong bytes for every blob read, `gate` holds
    every upload until it is set (a slow server), `latency` delays every lookup;
    `calls` is what it served, in order."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False
        self.corrupt = False
        self.gate: threading.Event | None = None
        self.latency = 0.0
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def _call(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)
        if self.down:
            raise StoreUnavailable(
                "failed to connect to all addresses",
                reason="connection refused",
                where="grpc://127.0.0.1:1",
            )

    def _upload(self, name: str) -> None:
        self._call(name)
        if self.gate is not None:
            self.gate.wait()

    def _bad(self, data: bytes) -> bytes:
        return bytes([data[0] ^ 1]) + data[1:] if self.corrupt and data else data

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def find_missing(self, digests: Iterable[Digest]) -> list[Digest]:
        self._upload("find_missing")
        return self.inner.find_missing(digests)

    def put_bytes(self, data: bytes) -> Digest:
        self._upload("put_bytes")
        return self.inner.put_bytes(data)

    def put_file(self, path: str) -> Digest:
        self._upload("put_file")
        return self.inner.put_file(path)

    def get_bytes(self, digest: Digest) -> bytes:
        self._call("get_bytes")
        return self._bad(self.inner.get_bytes(digest))

    def get_many(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        self._call("get_many")
        return {d: self._bad(b) for d, b in self.inner.get_many(digests).items()}

    def get_file(
        self, digest: Digest, dest: str, *, executable: bool = False, mode: int | None = None
    ) -> None:
        self._call("get_file")
        self.inner.get_file(digest, dest, executable=executable, mode=mode)
        if self.corrupt:
            Path(dest).write_bytes(self._bad(Path(dest).read_bytes()))

    def get_action_result(self, action: Digest) -> re_pb2.ActionResult | None:
        self._call("get_action_result")
        time.sleep(self.latency)
        return self.inner.get_action_result(action)

    def put_action_result(self, action: Digest, result: re_pb2.ActionResult) -> None:
        self._upload("put_action_result")
        self.inner.put_action_result(action, result)

    def remove_action(self, action: Digest) -> None:
        raise AssertionError("a remote result is never removed: REAPI cannot")

    def entry_state(self, action: Digest) -> EntryState | None:
        raise AssertionError("the tiered store asks the local store")

    def touch(self, action: Digest, blobs: Iterable[Digest]) -> None:
        raise AssertionError("the tiered store touches the local store only")

    def flush(self) -> None:
        self._call("flush")


# One inline-sized output, one over the memory store's inline limit but within a batch,
# one over its batch limit (64 KiB: read on its own), and a log.
SMALL, MEDIUM, LARGE = b"small output\n", os.urandom(4000), os.urandom(100_000)
LOG = b"built\n"


def store_result(store: Store, action_name: str, *, large: bytes = LARGE) -> Digest:
    """A result as the job cache stores it: the larger outputs as blobs, the small one
    and the log inline; its action digest."""
    result = re_pb2.ActionResult(exit_code=0)
    for path, data in (("small.txt", SMALL), ("medium.bin", MEDIUM), ("large.bin", large)):
        d = digest_of(data)
        out = result.output_files.add(
            path=path, digest=re_pb2.Digest(hash=d.hash, size_bytes=d.size_bytes)
        )
        if data is SMALL:
            out.contents = data
        else:
            assert store.put_bytes(data) == d
    log = digest_of(LOG)
    result.stdout_digest.CopyFrom(re_pb2.Digest(hash=log.hash, size_bytes=log.size_bytes))
    result.stdout_raw = LOG
    action = digest_of(action_name.encode())
    store.put_action_result(action, result)
    return action


def all_blobs(large: bytes = LARGE) -> list[Digest]:
    return [digest_of(b) for b in (SMALL, MEDIUM, large, LOG)]


def remote_with_result(action_name: str = "build") -> tuple[MemoryStore, Digest]:
    """A remote holding one result, every blob in its CAS (as a server has them)."""
    inner = MemoryStore()
    for data in (SMALL, LOG):
        inner.put_bytes(data)
    return inner, store_result(inner, action_name)


def test_a_remote_hit_is_written_through_and_then_served_locally(tmp_path: Path) -> None:
    inner, action = remote_with_result()
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    warnings: list[str] = []
    tiered = TieredStore(local, remote, upload=False, on_warning=warnings.append)

    found = tiered.get_action_result(action)

    assert found is not None
    assert [f.path for f in found.output_files] == ["small.txt", "medium.bin", "large.bin"]
    assert local.get_action_result(action) == found, "the result is stored locally"
    assert local.find_missing(referenced_blobs(found)) == []
    assert local.get_bytes(digest_of(LARGE)) == LARGE
    assert "get_many" in remote.calls, "the medium blob in a batch"
    assert "get_file" in remote.calls, "the large one (over the remote's batch) on its own"

    remote.down = True
    remote.calls.clear()
    assert tiered.get_action_result(action) == found
    assert tiered.get_many([digest_of(MEDIUM)]) == {digest_of(MEDIUM): MEDIUM}
    assert remote.calls == [], "served locally: the remote was not asked"
    assert warnings == []


def test_blobs_the_local_store_lacks_are_read_from_the_remote_and_kept(tmp_path: Path) -> None:
    inner = MemoryStore()
    there = inner.put_bytes(MEDIUM)
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=False, on_warning=pytest.fail)
    here = local.put_bytes(b"local")
    nowhere = digest_of(b"nowhere")

    assert tiered.find_missing([here, there, nowhere]) == [nowhere]
    assert tiered.get_many([here, there]) == {here: b"local", there: MEDIUM}
    assert local.get_bytes(there) == MEDIUM, "written through"
    with pytest.raises(BlobMissing):
        tiered.get_bytes(nowhere)
    dest = tmp_path / "out" / "large.bin"
    big = inner.put_bytes(LARGE)
    tiered.get_file(big, str(dest))
    assert dest.read_bytes() == LARGE


def test_uploads_send_the_missing_blobs_first_and_the_result_last(tmp_path: Path) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=True, on_warning=pytest.fail)
    inner.put_bytes(MEDIUM)  # already on the server: not sent again

    first = store_result(tiered, "build")
    second = store_result(tiered, "test", large=LARGE[::-1])
    tiered.flush()

    results = [i for i, c in enumerate(remote.calls) if c == "put_action_result"]
    blobs = [i for i, c in enumerate(remote.calls) if c in ("put_bytes", "put_file")]
    assert len(results) == 2
    assert min(results) > max(blobs), "results only after every blob"
    assert remote.calls.index("find_missing") < min(blobs), "asked what it lacks first"
    sent = [digest_of(b) for b in (SMALL, LARGE, LOG, LARGE[::-1])]
    assert sorted(inner.blobs) == sorted([*sent, digest_of(MEDIUM)])
    for action in (first, second):
        on_remote = inner.get_action_result(action)
        assert on_remote is not None
        # The small output and the log ride inline as well (a reader needs no second
        # call), and are blobs of their own too (sent above); larger outputs only blobs.
        assert on_remote.stdout_raw == LOG
        inline = {f.path: f.contents for f in on_remote.output_files if f.contents}
        assert list(inline.values()) == [SMALL], inline
    assert remote.calls.count("put_bytes") + remote.calls.count("put_file") == 4
    summary = tiered.uploads()
    assert summary is not None
    assert (summary.results, summary.blobs, summary.failed) == (2, 4, 0)
    assert summary.bytes == sum(d.size_bytes for d in sent)
    line = tiered.summary()
    assert line is not None
    assert line.startswith("uploaded 4 blobs (200.0 kB) and 2 results to the remote cache in ")
    assert local.get_action_result(first) is not None, "stored locally as well"


def test_the_empty_blob_is_never_sent_and_the_remote_result_still_serves(
    tmp_path: Path,
) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=True, on_warning=pytest.fail)
    empty = digest_of(b"")
    result = re_pb2.ActionResult(exit_code=0)
    result.output_files.add(path="empty.txt", digest=re_pb2.Digest(hash=empty.hash))
    result.stdout_digest.CopyFrom(re_pb2.Digest(hash=empty.hash))
    action = digest_of(b"quiet job")

    tiered.put_action_result(action, result)
    tiered.flush()

    assert "put_bytes" not in remote.calls
    assert inner.get_action_result(action) is not None
    other = TieredStore(
        LocalCache(str(tmp_path / "other")), remote, upload=False, on_warning=pytest.fail
    )
    assert other.get_action_result(action) is not None


def test_with_upload_off_nothing_is_written_to_the_remote(tmp_path: Path) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=False, on_warning=pytest.fail)

    action = store_result(tiered, "build")
    tiered.flush()

    assert local.get_action_result(action) is not None
    assert inner.blobs == {}
    assert inner.actions == {}
    assert not any(c.startswith(("put", "find")) for c in remote.calls)
    assert tiered.summary() is None


def test_a_remote_that_fails_mid_run_is_told_once_and_then_left_alone(tmp_path: Path) -> None:
    inner, cached = remote_with_result("cached")
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    warnings: list[str] = []
    tiered = TieredStore(local, remote, upload=True, on_warning=warnings.append)
    assert tiered.get_action_result(cached) is not None, "served while the server was up"

    remote.down = True
    assert tiered.get_action_result(digest_of(b"another")) is None, "a miss, not an error"
    assert warnings == [
        "remote cache unavailable: connection refused (grpc://127.0.0.1:1); "
        "the rest of this run uses the local cache only"
    ]
    asked = len(remote.calls)
    assert tiered.get_action_result(digest_of(b"a third")) is None
    with pytest.raises(BlobMissing):
        tiered.get_bytes(digest_of(b"nowhere"))
    stored = store_result(tiered, "stored after")
    tiered.flush()
    assert remote.calls[asked:] == [], "not asked again in this run"
    assert len(warnings) == 1
    assert local.get_action_result(stored) is not None, "the run goes on locally"
    assert tiered.get_action_result(cached) is not None, "what came through stays"
    fetched, uploaded = str(tiered.summary()).split("\n")
    assert fetched.startswith("1 result (2 blobs, 104.0 kB) came from the remote cache in ")
    assert uploaded == "1 result not uploaded to the remote cache"


def test_the_fetch_time_is_the_time_lookups_took_not_their_sum(tmp_path: Path) -> None:
    # Eight results asked for at once, as the run's lookup threads ask: the line at the
    # end of the run had said the sum of their times, longer than the run itself.
    inner = MemoryStore()
    actions = [store_result(inner, f"job-{i}") for i in range(8)]
    remote = Remote(inner)
    remote.latency = 0.3
    tiered = TieredStore(
        LocalCache(str(tmp_path / "local")), remote, upload=False, on_warning=print
    )
    began = time.monotonic()
    threads = [threading.Thread(target=tiered.get_action_result, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - began
    tiered.flush()
    line = str(tiered.summary())
    assert line.startswith("8 results (")
    said = line.rsplit(" in ", 1)[1]
    assert said.endswith("ms") or said.endswith("s")
    seconds = float(said[:-2]) / 1000 if said.endswith("ms") else float(said[:-1])
    assert 0.3 <= seconds <= took + 0.05, (line, took)


def test_a_remote_that_fails_during_uploads_never_fails_the_run(tmp_path: Path) -> None:
    remote = Remote(MemoryStore())
    remote.down = True
    warnings: list[str] = []
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=True, on_warning=warnings.append)

    actions = [store_result(tiered, name) for name in ("a", "b", "c")]
    tiered.flush()

    assert len(warnings) == 1
    assert warnings[0].startswith("remote cache unavailable: connection refused")
    assert all(local.get_action_result(a) is not None for a in actions)
    summary = tiered.uploads()
    assert summary is not None
    assert (summary.results, summary.failed) == (0, 3)


@pytest.mark.parametrize("blob", [MEDIUM, LARGE], ids=["batched", "streamed"])
def test_a_corrupt_blob_from_the_remote_is_refused(tmp_path: Path, blob: bytes) -> None:
    inner, action = remote_with_result()
    remote = Remote(inner)
    remote.corrupt = True
    local = LocalCache(str(tmp_path / "local"))
    warnings: list[str] = []
    tiered = TieredStore(local, remote, upload=False, on_warning=warnings.append)

    assert tiered.get_action_result(action) is None, "a miss: the job runs here"
    assert local.get_action_result(action) is None
    assert local.find_missing([digest_of(blob)]) == [digest_of(blob)], "never filed locally"
    assert len(warnings) == 1
    assert warnings[0].startswith("a result in the remote cache was refused: blob ")
    assert "the job runs here" in warnings[0]
    assert "evicted" not in warnings[0]
    with pytest.raises(CorruptBlob):
        tiered.get_bytes(digest_of(blob))

    assert tiered.get_action_result(action) is None
    assert len(warnings) == 1, "told once"
    remote.corrupt = False
    assert tiered.get_action_result(action) is not None, "the remote is still used"


def test_corrupt_inline_contents_from_the_remote_are_refused(tmp_path: Path) -> None:
    inner, action = remote_with_result()
    result = inner.get_action_result(action)
    assert result is not None
    result.output_files[0].contents = b"small outpuT\n"
    inner.put_action_result(action, result)
    local = LocalCache(str(tmp_path / "local"))
    warnings: list[str] = []
    tiered = TieredStore(local, Remote(inner), upload=False, on_warning=warnings.append)

    assert tiered.get_action_result(action) is None
    assert local.get_action_result(action) is None
    assert len(warnings) == 1


def test_flush_waits_for_uploads_under_way(tmp_path: Path) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    remote.gate = threading.Event()
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=True, on_warning=pytest.fail)
    action = store_result(tiered, "build")  # returns at once: the upload is held

    flushing = threading.Thread(target=tiered.flush)
    flushing.start()
    flushing.join(0.3)
    assert flushing.is_alive(), "flush waits while the upload is held"
    assert inner.actions == {}
    remote.gate.set()
    flushing.join(30)
    assert not flushing.is_alive()
    assert inner.get_action_result(action) is not None
    summary = tiered.uploads()
    assert summary is not None
    assert (summary.results, summary.blobs, summary.failed) == (1, 4, 0)
    assert summary.waited > 0


def test_flush_gives_up_on_a_server_too_slow(tmp_path: Path) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    remote.gate = threading.Event()
    local = LocalCache(str(tmp_path / "local"))
    warnings: list[str] = []
    tiered = TieredStore(local, remote, upload=True, on_warning=warnings.append, flush_timeout=0.2)
    action = store_result(tiered, "build")
    try:
        tiered.flush()
    finally:
        remote.gate.set()
    assert warnings == ["remote cache: uploads did not finish within 200ms; 1 result not uploaded"]
    assert local.get_action_result(action) is not None
    assert tiered.summary() == "1 result not uploaded to the remote cache"
    assert "put_action_result" not in remote.calls
    assert not tiered.remote_enabled


def test_a_result_taken_back_is_never_uploaded(tmp_path: Path) -> None:
    inner = MemoryStore()
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, Remote(inner), upload=True, on_warning=pytest.fail)
    kept = store_result(tiered, "kept")
    retracted = store_result(tiered, "retracted")

    tiered.remove_action(retracted)
    tiered.flush()

    assert local.get_action_result(retracted) is None
    assert inner.get_action_result(retracted) is None
    assert inner.get_action_result(kept) is not None
    summary = tiered.uploads()
    assert summary is not None
    assert (summary.results, summary.failed) == (1, 0), "taking one back is no failure"


def test_results_stored_from_many_threads_are_all_uploaded(tmp_path: Path) -> None:
    inner = MemoryStore()
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, Remote(inner), upload=True, on_warning=pytest.fail)
    names = [[f"job {t}-{i}" for i in range(25)] for t in range(6)]

    def worker(mine: list[str]) -> None:
        for name in mine:
            store_result(tiered, name, large=name.encode() * 3000)

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tiered.flush()

    for mine in names:
        for name in mine:
            assert inner.get_action_result(digest_of(name.encode())) is not None, name
    summary = tiered.uploads()
    assert summary is not None
    assert (summary.results, summary.failed) == (150, 0)
    assert summary.blobs == 150 + 3, "each large output, and the three shared blobs once"


# -- end to end: two machines sharing one remote cache ------------------------------------


def run_in(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    old = os.getcwd()
    os.chdir(root)
    try:
        code = run_cli(list(args))
    finally:
        os.chdir(old)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_second_machine_is_served_from_the_remote_cache(
    project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project.pipeline(
        """
        jobs:
          make:
            outputs: [out/]
            run: |
              mkdir -p out
              echo small > out/small.txt
              head -c 300000 /dev/urandom > out/large.bin
              echo made
          check:
            needs: [make]
            outputs: [report.txt]
            run: sha256sum out/large.bin > report.txt
        """
    )
    project.write(".gitignore", "out/\nreport.txt\n")
    project.commit()
    shared = LocalCache(str(tmp_path / "remote"))
    warnings: list[str] = []

    # Machine A: runs everything and uploads.
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(tmp_path / "cache-a"))
    a = TieredStore(
        LocalCache(str(tmp_path / "cache-a")), shared, upload=True, on_warning=warnings.append
    )
    with using(a):
        code, out = run_in(project.root, capsys, "run")
    assert code == 0, out
    assert "cached" not in out
    # 2 results, each also under its job's fingerprint, and each job's "latest" pointer.
    assert shared.stats().actions == 6
    line = a.summary()
    assert line is not None
    assert line.startswith("uploaded "), line
    assert " and 2 results to the remote cache in " in line
    made = {
        p: (project.root / p).read_bytes() for p in ("out/small.txt", "out/large.bin", "report.txt")
    }

    # Machine B: a fresh clone, an empty local cache, the same remote; reads only.
    clone = tmp_path / "machine-b"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(tmp_path / "cache-b"))
    local_b = LocalCache(str(tmp_path / "cache-b"))
    remote = Remote(shared)
    b = TieredStore(local_b, remote, upload=False, on_warning=warnings.append)
    with using(b):
        code, out = run_in(clone, capsys, "run")
    assert code == 0, out
    assert "✔ make cached" in out
    assert "✔ check cached" in out
    assert "made" in out, "the log replayed"
    assert {p: (clone / p).read_bytes() for p in made} == made
    assert "get_action_result" in remote.calls
    assert not any(c.startswith("put") for c in remote.calls), "B does not upload"
    assert local_b.stats().actions == 2, "B's local cache holds the results now"
    # B says what came from the remote, and uploads nothing. The small outputs and logs
    # came inside the results: only the large output was a blob to fetch.
    assert str(b.summary()).startswith("2 results (1 blob, 300.0 kB) came from the remote")
    assert remote.calls.count("get_many") + remote.calls.count("get_file") == 1
    assert "\n" not in str(b.summary())

    # B again, outputs gone and the remote down: served from B's own cache, no warning.
    for p in made:
        (clone / p).unlink()
    remote.down = True
    remote.calls.clear()
    b2 = TieredStore(local_b, remote, upload=False, on_warning=warnings.append)
    with using(b2):
        code, out = run_in(clone, capsys, "run")
    assert code == 0, out
    assert "✔ make cached" in out
    assert {p: (clone / p).read_bytes() for p in made} == made
    assert remote.calls == []
    assert warnings == []
