"""The local CAS and action cache: verified reads, atomic writes, sharing, pruning."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.interface import CorruptBlob
from conveyor.cache.local import LocalCache, default_root
from conveyor.model import Digest


@pytest.fixture
def cache(tmp_path: Path) -> LocalCache:
    return LocalCache(str(tmp_path / "cache"))


def blob_path(cache: LocalCache, d: Digest) -> Path:
    return Path(cache.root) / "cas" / d.hash[:2] / d.hash


def test_bytes_and_files_round_trip(cache: LocalCache, tmp_path: Path) -> None:
    d = cache.put_bytes(b"hello")
    assert d == Digest(hashlib.sha256(b"hello").hexdigest(), 5)
    assert cache.get_bytes(d) == b"hello"
    src = tmp_path / "tool.sh"
    src.write_bytes(b"#!/bin/sh\necho hi\n")
    fd = cache.put_file(str(src))
    dest = tmp_path / "out" / "deep" / "tool.sh"
    cache.get_file(fd, str(dest), executable=True)
    assert dest.read_bytes() == src.read_bytes()
    assert os.access(dest, os.X_OK)
    missing = Digest("0" * 64, 1)
    assert cache.find_missing([d, fd, missing]) == [missing]


def test_a_corrupt_blob_is_evicted_and_never_restored(cache: LocalCache, tmp_path: Path) -> None:
    d = cache.put_bytes(b"precious bytes")
    path = blob_path(cache, d)
    path.write_bytes(b"precious byteZ")
    dest = tmp_path / "restored.txt"
    dest.write_text("old content")
    with pytest.raises(CorruptBlob):
        cache.get_file(d, str(dest))
    assert dest.read_text() == "old content", "a failed restore leaves the old file alone"
    assert not path.exists(), "the bad blob was evicted"
    assert cache.find_missing([d]) == [d]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "restored.txt"], "no temporary"


def make_result(cache: LocalCache) -> re_pb2.ActionResult:
    out = cache.put_bytes(b"built\n")
    log = cache.put_bytes(b"compiling...\n")
    result = re_pb2.ActionResult(exit_code=0)
    result.output_files.add(path="dist/app", digest=re_pb2.Digest(hash=out.hash, size_bytes=6))
    result.stdout_digest.CopyFrom(re_pb2.Digest(hash=log.hash, size_bytes=log.size_bytes))
    return result


def test_action_results_round_trip(cache: LocalCache) -> None:
    action = Digest("a" * 64, 10)
    assert cache.get_action_result(action) is None
    result = make_result(cache)
    cache.put_action_result(action, result)
    assert cache.get_action_result(action) == result


def test_a_damaged_action_entry_is_a_miss(cache: LocalCache) -> None:
    action = Digest("b" * 64, 10)
    cache.put_action_result(action, make_result(cache))
    path = Path(cache.root) / "ac" / "bb" / action.hash
    path.write_bytes(path.read_bytes()[:-3])  # truncated, as by a full disk
    assert cache.get_action_result(action) is None
    assert not path.exists()


def test_an_entry_whose_output_was_pruned_is_a_miss(cache: LocalCache) -> None:
    action = Digest("c" * 64, 10)
    result = make_result(cache)
    cache.put_action_result(action, result)
    out = result.output_files[0].digest
    blob_path(cache, Digest(out.hash, out.size_bytes)).unlink()
    assert cache.get_action_result(action) is None


WRITER = """
import sys
from conveyor.cache.local import LocalCache
cache = LocalCache(sys.argv[1])
for i in range(200):
    cache.put_bytes(("shared-%d" % i).encode() * 50)
    cache.put_bytes(("own-%s-%d" % (sys.argv[2], i)).encode() * 50)
"""


def test_processes_sharing_one_cache_never_corrupt_it(cache: LocalCache) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, cache.root, str(n)]) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    report = cache.verify()
    assert report.corrupt == ()
    assert report.checked == 200 + 4 * 200
    assert list((Path(cache.root) / "tmp").iterdir()) == []


KILLED = """
import os, sys
from conveyor.cache.local import LocalCache
cache = LocalCache(sys.argv[1])
data = os.urandom(8 << 20)
print("ready", flush=True)
n = 0
while True:
    n += 1
    cache.put_bytes(data + str(n).encode())
"""


def test_sigkill_while_storing_leaves_no_partial_entry(cache: LocalCache) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, cache.root], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    report = cache.verify()
    assert report.checked >= 1
    assert report.corrupt == (), "every entry that exists is whole"


def test_prune_removes_least_recently_used_first(cache: LocalCache) -> None:
    digests = [cache.put_bytes(bytes([i]) * 1000) for i in range(5)]
    now = time.time()
    for age, d in zip((5000, 4000, 3000, 2000, 1000), digests, strict=True):
        os.utime(blob_path(cache, d), (now - age, now - age))
    cache.get_bytes(digests[0])  # used just now: most recent, and inside the grace period
    report = cache.prune(2500, now=now)
    assert report.removed == 3
    assert cache.find_missing(digests) == digests[1:4]
    assert cache.stats().blob_bytes == 2000


def test_prune_keeps_entries_in_use_even_over_the_limit(cache: LocalCache) -> None:
    d = cache.put_bytes(b"x" * 1000)
    report = cache.prune(0)
    assert report.removed == 0
    assert cache.find_missing([d]) == []


def test_stats_and_clear(cache: LocalCache) -> None:
    cache.put_action_result(Digest("d" * 64, 1), make_result(cache))
    st = cache.stats()
    assert (st.blobs, st.actions) == (2, 1)
    assert st.blob_bytes == len(b"built\n") + len(b"compiling...\n")
    cache.clear()
    assert cache.stats().total_bytes == 0


def test_cache_location(tmp_path: Path) -> None:
    assert default_root({"CONVEYOR_CACHE_DIR": "/x/y", "XDG_CACHE_HOME": "/z"}) == "/x/y"
    assert default_root({"XDG_CACHE_HOME": "/z"}) == "/z/conveyor"
