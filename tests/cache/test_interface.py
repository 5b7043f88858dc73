"""What every store promises (conveyor.cache.interface), held by both implementations:
the local store and the in-memory one. A miss is a value, anything else a CacheError,
never an OSError of the store's own."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.interface import BlobMissing, Capabilities, Store
from conveyor.cache.local import LocalCache
from conveyor.model import Digest
from tests.cache.memory import MemoryStore
from tests.conftest import Project


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalCache(str(tmp_path / "cache"))
    return MemoryStore()


def digest_of(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def test_blobs_round_trip_and_missing_ones_are_found(store: Store, tmp_path: Path) -> None:
    a = store.put_bytes(b"alpha")
    assert a == digest_of(b"alpha")
    src = tmp_path / "b.txt"
    src.write_bytes(b"beta")
    b = store.put_file(str(src))
    gone = digest_of(b"never stored")
    assert store.find_missing([gone, a, gone, b]) == [gone], "each once, in order"
    assert store.get_bytes(a) == b"alpha"
    assert store.get_many([a, b]) == {a: b"alpha", b: b"beta"}
    assert isinstance(store.capabilities, Capabilities)


def test_a_missing_blob_is_blob_missing_naming_each(store: Store, tmp_path: Path) -> None:
    a = store.put_bytes(b"here")
    gone1, gone2 = digest_of(b"one"), digest_of(b"two")
    with pytest.raises(BlobMissing) as many:
        store.get_many([a, gone1, gone2])
    assert many.value.digests == (gone1, gone2)
    with pytest.raises(BlobMissing):
        store.get_bytes(gone1)
    dest = tmp_path / "kept.txt"
    dest.write_text("old")
    with pytest.raises(BlobMissing):
        store.get_file(gone1, str(dest))
    assert dest.read_text() == "old", "a failed restore leaves the file alone"


def test_get_file_sets_the_mode_with_the_executable_bit_winning(
    store: Store, tmp_path: Path
) -> None:
    d = store.put_bytes(b"#!/bin/sh\n")
    tool, key = tmp_path / "deep" / "tool", tmp_path / "key"
    store.get_file(d, str(tool), executable=True)
    store.get_file(d, str(key), executable=False, mode=0o755)
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755
    assert stat.S_IMODE(key.stat().st_mode) == 0o644
    assert tool.read_bytes() == b"#!/bin/sh\n"


def test_an_action_result_missing_is_none_and_an_entry_has_a_state(store: Store) -> None:
    action = digest_of(b"action")
    assert store.get_action_result(action) is None
    assert store.entry_state(action) is None
    blob = store.put_bytes(b"x" * 40)
    result = re_pb2.ActionResult(exit_code=0)
    result.output_files.add(path="out", digest=re_pb2.Digest(hash=blob.hash, size_bytes=40))
    store.put_action_result(action, result)
    assert store.get_action_result(action) == result
    first = store.entry_state(action)
    assert first is not None
    store.put_action_result(action, re_pb2.ActionResult(exit_code=1))
    second = store.entry_state(action)
    assert second is not None
    assert second.identity != first.identity, "a replaced entry is another entry"
    store.remove_action(action)
    assert store.get_action_result(action) is None
    assert store.entry_state(action) is None


def test_a_result_whose_blob_is_gone_is_a_miss(store: Store) -> None:
    action = digest_of(b"action")
    gone = digest_of(b"pruned")
    result = re_pb2.ActionResult()
    result.output_files.add(path="out", digest=re_pb2.Digest(hash=gone.hash, size_bytes=6))
    store.put_action_result(action, result)
    assert store.get_action_result(action) is None


def test_a_run_uses_the_store_it_is_given_and_restores_in_batches(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.cache.stores import using

    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(tmp_path / "disk"))
    # Twenty 2 KiB outputs (above the memory store's inline limit, within one batch) and
    # one of 100 KiB (more than a batch: streamed alone).
    project.pipeline(
        """
        jobs:
          make:
            outputs: [out/]
            run: |
              mkdir -p out
              for i in $(seq 1 20); do head -c 2048 /dev/urandom > out/$i.bin; done
              head -c 102400 /dev/urandom > out/big.bin
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    memory = MemoryStore()
    with using(memory):
        assert project.run("run").code == 0
        made = {p.name: p.read_bytes() for p in (project.root / "out").iterdir()}
        shutil.rmtree(project.root / "out")
        memory.calls.clear()
        result = project.run("run")
    assert result.code == 0
    assert "✔ make cached" in result.out
    assert {p.name: p.read_bytes() for p in (project.root / "out").iterdir()} == made
    assert memory.calls["get_many"] == 1, "twenty small outputs, one request"
    assert memory.calls["get_file"] == 1, "the large one on its own"
    assert len(memory.actions) == 1
    assert not os.path.exists(tmp_path / "disk" / "ac"), "nothing went to the disk store"
