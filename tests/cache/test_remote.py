"""The remote store against a real BuildGrid (tests/reapi.py): blobs small and large,
batches, action results, instances, verification of what the server sends, a server
down or restarted, authentication, and a fresh clone restoring a run's outputs from it."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.interface import BlobMissing, CorruptBlob, StoreUnavailable
from conveyor.cache.remote import RemoteStore, check
from conveyor.cache.stores import using
from conveyor.model import Digest, Remote
from tests.conftest import Project
from tests.history.conftest import free_port
from tests.reapi import Server
from tests.reapi import buildgrid as start_buildgrid

MB = 1024 * 1024


def store(server: Server, environ: dict[str, str] | None = None, **settings: object) -> RemoteStore:
    remote = Remote(url=server.url, **{"upload": True, **settings})  # type: ignore[arg-type]
    return RemoteStore(remote, environ or {})


def digest_of(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def action(name: str) -> Digest:
    """A made-up action digest, unique to this test session."""
    return digest_of(f"{name} {os.urandom(8).hex()}".encode())


@pytest.fixture
def remote(buildgrid: Server) -> Iterator[RemoteStore]:
    s = store(buildgrid)
    yield s
    s.close()


# -- blobs --------------------------------------------------------------------------------


def test_small_and_large_blobs_round_trip(remote: RemoteStore, tmp_path: Path) -> None:
    small = os.urandom(1000)
    # Larger than the server's batch limit (4 MiB less 1 KiB from GetCapabilities):
    # BatchUpdateBlobs would be refused, so this goes by ByteStream.
    large = os.urandom(5 * MB)
    assert remote.capabilities.max_batch_bytes < len(large)
    d_small, d_large = remote.put_bytes(small), remote.put_bytes(large)
    assert (d_small, d_large) == (digest_of(small), digest_of(large))
    assert remote.get_bytes(d_small) == small
    assert remote.get_bytes(d_large) == large

    source = tmp_path / "big.bin"
    source.write_bytes(large[::-1])
    d_file = remote.put_file(str(source))
    assert d_file == digest_of(large[::-1])
    dest = tmp_path / "out" / "tool"
    remote.get_file(d_file, str(dest), executable=True)
    assert dest.read_bytes() == large[::-1]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert remote.get_bytes(remote.put_bytes(b"")) == b""


def test_many_small_blobs_go_up_in_batches_and_read_back(remote: RemoteStore) -> None:
    # More than one batch's worth (the server's limit is about 4 MB), one too large for
    # any batch, and the empty blob (never sent): every one stored under its digest.
    blobs = [os.urandom(40_000) for _ in range(150)] + [b"", os.urandom(5 * 2**20)]
    digests = remote.put_many(blobs)
    assert digests == [digest_of(b) for b in blobs]
    assert remote.find_missing(digests) == []
    assert remote.get_bytes(digests[77]) == blobs[77]
    assert remote.get_bytes(digests[-1]) == blobs[-1]


def test_find_missing_keeps_the_order_and_names_each_once(remote: RemoteStore) -> None:
    present = remote.put_bytes(os.urandom(64))
    gone = [digest_of(os.urandom(64)) for _ in range(3)]
    asked = [gone[2], present, gone[0], gone[2], gone[1], present]
    assert remote.find_missing(asked) == [gone[2], gone[0], gone[1]]
    assert remote.find_missing([present]) == []


def test_get_many_reads_a_batch_and_names_every_missing_blob(remote: RemoteStore) -> None:
    blobs = [os.urandom(3000) for _ in range(50)]
    digests = [remote.put_bytes(b) for b in blobs]
    assert remote.get_many(digests) == dict(zip(digests, blobs, strict=True))
    gone = [digest_of(os.urandom(10)) for _ in range(2)]
    with pytest.raises(BlobMissing) as missing:
        remote.get_many([digests[0], gone[0], digests[1], gone[1]])
    assert set(missing.value.digests) == set(gone)


def test_a_blob_the_server_damaged_is_refused_and_never_restored(
    buildgrid: Server, remote: RemoteStore, tmp_path: Path
) -> None:
    data = os.urandom(2000)
    digest = remote.put_bytes(data)
    # As a failing disk under the server would: same size, other bytes.
    buildgrid.blob_path(digest.hash).write_bytes(os.urandom(2000))
    with pytest.raises(CorruptBlob, match=f"blob {digest} from {buildgrid.url} is corrupt"):
        remote.get_bytes(digest)
    with pytest.raises(CorruptBlob):
        remote.get_many([digest])
    dest = tmp_path / "app.txt"
    dest.write_text("before\n")
    with pytest.raises(CorruptBlob):
        remote.get_file(digest, str(dest))
    assert dest.read_text() == "before\n", "a failed restore leaves the file as it was"
    assert os.listdir(tmp_path) == ["app.txt"], "no temp file left beside it"


def test_a_missing_blob_is_blob_missing(remote: RemoteStore, tmp_path: Path) -> None:
    gone = digest_of(os.urandom(100))
    with pytest.raises(BlobMissing):
        remote.get_bytes(gone)
    with pytest.raises(BlobMissing):
        remote.get_file(gone, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


# -- action results -----------------------------------------------------------------------


def test_action_results_round_trip_and_a_miss_is_none(remote: RemoteStore) -> None:
    log = remote.put_bytes(b"building\n")
    out = remote.put_bytes(os.urandom(500))
    result = re_pb2.ActionResult(
        exit_code=0,
        stdout_digest=re_pb2.Digest(hash=log.hash, size_bytes=log.size_bytes),
        output_files=[
            re_pb2.OutputFile(
                path="dist/app", digest=re_pb2.Digest(hash=out.hash, size_bytes=out.size_bytes)
            )
        ],
    )
    key = action("build")
    assert remote.get_action_result(key) is None
    remote.put_action_result(key, result)
    got = remote.get_action_result(key)
    assert got is not None
    assert got.output_files[0].digest.hash == out.hash
    assert got.stdout_digest.hash == log.hash


def test_instances_keep_their_results_apart(buildgrid: Server) -> None:
    main, other = store(buildgrid), store(buildgrid, instance_name="other")
    key = action("test")
    main.put_action_result(key, re_pb2.ActionResult(exit_code=0))
    assert main.get_action_result(key) is not None
    assert other.get_action_result(key) is None


def test_a_read_only_remote_serves_but_refuses_to_write(buildgrid: Server) -> None:
    writer, reader = store(buildgrid), store(buildgrid, upload=False)
    key = action("lint")
    writer.put_action_result(key, re_pb2.ActionResult(exit_code=0))
    blob = writer.put_bytes(b"shared")
    assert reader.get_action_result(key) is not None
    assert reader.get_bytes(blob) == b"shared"
    with pytest.raises(StoreUnavailable, match=r"read-only here \(remote.upload is off\)"):
        reader.put_action_result(key, re_pb2.ActionResult(exit_code=1))
    with pytest.raises(StoreUnavailable, match="read-only"):
        reader.put_bytes(b"mine")
    assert writer.get_action_result(key) == re_pb2.ActionResult(exit_code=0)


# -- what check() reports -----------------------------------------------------------------


def test_check_reports_the_servers_capabilities_and_probes(buildgrid: Server) -> None:
    found = check(Remote(url=buildgrid.url, upload=True), {})
    assert found.digest_functions == ("SHA256",)
    assert found.max_batch_bytes == 4_193_280  # BuildGrid 0.4.4's
    assert found.update_enabled is True
    assert found.exec_enabled is False, "a cache-only server"
    assert found.probe == "write+read"
    assert 0 < found.round_trip < 1
    assert check(Remote(url=buildgrid.url), {}).probe == "read"


# -- failures ---------------------------------------------------------------------------


def test_no_server_is_cannot_reach_quickly() -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        RemoteStore(Remote(url=url, timeout=2, retries=2), {}).get_action_result(action("x"))
    assert time.monotonic() - start < 3, "backoff of 0.5 s and 1 s at most"
    assert err.value.reason == f"cannot reach {url}"
    assert str(err.value).startswith(f"cannot reach {url} after 2 retries (GetActionResult)")
    assert err.value.where == url


def test_tls_to_a_plain_server_says_tls_failed(buildgrid: Server) -> None:
    url = buildgrid.url.replace("grpc://", "grpcs://")
    with pytest.raises(StoreUnavailable) as err:
        check(Remote(url=url, timeout=3, retries=0), {})
    assert err.value.reason == "TLS handshake failed"
    assert str(err.value).startswith(f"TLS with {url} failed: ")


def test_an_unknown_instance_is_named(buildgrid: Server) -> None:
    remote = Remote(url=buildgrid.url, instance_name="nope", auth_env="TOKEN")
    with pytest.raises(StoreUnavailable, match=f"{buildgrid.url} has no instance 'nope'"):
        check(remote, {"TOKEN": buildgrid.token()})


def test_a_bad_url_is_refused_before_any_call() -> None:
    with pytest.raises(StoreUnavailable, match="is not grpc://host:port or grpcs://host:port"):
        RemoteStore(Remote(url="http://cache.example:8080"), {})


@pytest.mark.slow  # two server starts: 10-15 s on a busy 2-core machine
def test_a_restarted_server_is_used_again_by_the_same_store(tmp_path: Path) -> None:
    with start_buildgrid(tmp_path / "bgd") as server:
        s = store(server, timeout=5)  # the default 3 retries
        data = os.urandom(100)
        digest = s.put_bytes(data)
        server.stop()
        with pytest.raises(StoreUnavailable, match="cannot reach"):
            s.get_bytes(digest)
        server.start()
        # Its CAS is on disk: the blob is still there, and the same channel reconnects.
        assert s.get_bytes(digest) == data
        key = action("after restart")
        s.put_action_result(key, re_pb2.ActionResult(exit_code=0))
        assert s.get_action_result(key) is not None


@pytest.mark.slow  # two server starts and 256 MiB sent: 15-25 s on a busy 2-core machine
def test_an_upload_cut_by_the_server_dying_completes_once_it_is_back(tmp_path: Path) -> None:
    import threading

    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for _ in range(256):
            fh.write(os.urandom(1 << 20))
    with start_buildgrid(tmp_path / "bgd") as server:
        s = store(server, timeout=30, retries=8)
        outcome: list[object] = []

        def upload() -> None:
            try:
                outcome.append(s.put_file(str(big)))
            except Exception as exc:  # reported below
                outcome.append(exc)

        sender = threading.Thread(target=upload)
        sender.start()
        # Killed while the bytes are on their way (the write has begun: the server's
        # disk CAS has a temporary file growing), then started again.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any((tmp_path / "bgd").rglob("*tmp*")):
            time.sleep(0.01)
        time.sleep(0.2)
        assert sender.is_alive(), "the upload ended before the server was killed"
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait()
        server.start()
        sender.join(timeout=120)
        assert outcome, "the upload never returned"
        assert outcome[0] == digest_of(big.read_bytes()), outcome[0]
        # The server has the whole blob, verified as it is read back.
        copy = tmp_path / "copy.bin"
        s.get_file(digest_of(big.read_bytes()), str(copy))
        assert copy.read_bytes() == big.read_bytes()


# -- authentication -----------------------------------------------------------------------


def test_a_valid_token_is_sent_on_every_call(buildgrid: Server) -> None:
    secure = RemoteStore(
        Remote(url=buildgrid.url, instance_name="secure", upload=True, auth_env="CI_CACHE_TOKEN"),
        {"CI_CACHE_TOKEN": buildgrid.token()},
    )
    key = action("secure")
    blob = secure.put_bytes(b"secret build output")
    secure.put_action_result(key, re_pb2.ActionResult(exit_code=0))
    assert secure.get_action_result(key) is not None
    assert secure.get_bytes(blob) == b"secret build output"
    assert secure.find_missing([blob]) == []


def test_a_refused_token_says_auth_refused_and_never_shows_it(buildgrid: Server) -> None:
    token = buildgrid.token(secret="not the server's")
    secure = RemoteStore(
        Remote(url=buildgrid.url, instance_name="secure", auth_env="CI_CACHE_TOKEN"),
        {"CI_CACHE_TOKEN": token},
    )
    with pytest.raises(StoreUnavailable) as err:
        secure.get_action_result(action("x"))
    assert err.value.reason == "auth refused"
    assert "the credential from CI_CACHE_TOKEN" in str(err.value)
    assert token not in str(err.value)
    assert token.split(".")[2] not in repr(err.value)
    anonymous = RemoteStore(Remote(url=buildgrid.url, instance_name="secure"), {})
    with pytest.raises(StoreUnavailable, match="no credential configured"):
        anonymous.get_action_result(action("x"))


def test_a_credential_variable_not_set_is_named() -> None:
    with pytest.raises(StoreUnavailable) as err:
        RemoteStore(Remote(url="grpc://127.0.0.1:1", auth_env="CI_CACHE_TOKEN"), {})
    assert str(err.value) == "the remote cache's credential variable CI_CACHE_TOKEN is not set"


# -- a run and a fresh clone --------------------------------------------------------------

PIPELINE = """
jobs:
  build:
    inputs: [src/**]
    outputs: [dist/]
    run: |
      mkdir -p dist
      tr a-z A-Z < src/a.txt > dist/app.txt
      printf '#!/bin/sh\\necho tool\\n' > dist/tool.sh && chmod 750 dist/tool.sh
      head -c 5242880 /dev/urandom > dist/big.bin
      echo built >> ../runs.log
"""


def test_a_fresh_clone_restores_a_runs_outputs_from_the_remote(
    buildgrid: Server, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(PIPELINE)
    # Unique to this test: the server outlives it, and a result stored by another
    # session's run of it must not be what is found.
    project.write("src/a.txt", f"alpha {os.urandom(8).hex()}\n")
    project.write(".gitignore", "dist/\n")
    project.commit()
    with using(store(buildgrid)):
        first = project.run("run", "--plain")
    assert first.code == 0, first.out + first.err
    assert (tmp_path / "runs.log").read_text() == "built\n"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    copy = Project(clone, project.capsys)
    # Another machine: its own (empty) local cache and job index, a read-only remote.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-machine"))
    with using(store(buildgrid, upload=False)):
        second = copy.run("run", "--plain")
    assert second.code == 0, second.out + second.err
    assert "build cached" in second.out
    assert (tmp_path / "runs.log").read_text() == "built\n", "the job did not run again"
    for name in ("app.txt", "tool.sh", "big.bin"):
        original, restored = project.root / "dist" / name, clone / "dist" / name
        assert restored.read_bytes() == original.read_bytes(), name
        assert stat.S_IMODE(restored.stat().st_mode) == stat.S_IMODE(original.stat().st_mode)


def test_importing_the_remote_store_loads_no_grpc() -> None:
    """`conveyor --help` and a run without a remote must not pay for gRPC (about 140 ms here)."""
    probe = (
        "import sys, conveyor.cache.remote; print(sorted(m for m in sys.modules if 'grpc' in m))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
