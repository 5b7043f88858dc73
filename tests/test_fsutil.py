"""The one atomic write: whole or not at all, never in another writer's way."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from conveyor.fsutil import atomic_file, atomic_write


def _hammer(path: str, mark: str, times: int) -> None:
    for _ in range(times):
        atomic_write(path, mark * 50_000)


def test_concurrent_writers_of_one_file_never_collide(tmp_path: Path) -> None:
    """Two runs writing the same file (a summary, an index) at once: with one fixed
    `.tmp` name, one's rename took the other's temporary away and it failed."""
    target = str(tmp_path / "index.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(target, mark, 200)) for mark in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    content = Path(target).read_text()
    assert content in ("a" * 50_000, "b" * 50_000), "one writer's whole content"
    assert os.listdir(tmp_path) == ["index.json"], "no temporary left behind"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")

    class Boom(Exception):
        pass

    def write_half() -> None:
        with atomic_file(str(target)) as fh:
            fh.write(b"half of the new")
            raise Boom

    with pytest.raises(Boom):
        write_half()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_modes_as_open_would_make_them_or_as_asked(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(str(tmp_path / "report.xml"), "<x/>")
        atomic_write(str(tmp_path / "tool"), b"#!/bin/sh\n", perms=0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.xml").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "tool").stat().st_mode) == 0o755


def test_a_long_name_still_fits(tmp_path: Path) -> None:
    """The temporary's name is bounded: a 250-character file name plus a suffix would
    pass the file system's limit of 255."""
    target = tmp_path / ("n" * 250)
    atomic_write(str(target), "x", makedirs=True)
    assert target.read_text() == "x"


def test_makedirs_and_fsync(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run.json"
    atomic_write(str(target), "{}", makedirs=True, fsync=True)
    assert target.read_text() == "{}"
