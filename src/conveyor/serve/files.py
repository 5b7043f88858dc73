"""The only files the dashboard reads: those inside the workspace's run directories.

A run id from an address is used only when it is the exact name of an entry of
`.conveyor/runs/` (never joined into a path as given), and a file is read only when its
real path (symbolic links resolved) lies inside that run's real directory."""

from __future__ import annotations

import os

from conveyor.fsutil import STATE_DIR

MAX_LOG_BYTES = 4 * 2**20
"""The most of a log a page shows: the last 4 MiB (the raw log has the rest)."""


def runs_base(root: str) -> str:
    return os.path.join(root, STATE_DIR, "runs")


def run_dir(root: str, run_id: str) -> str | None:
    """The run's directory, when `run_id` is exactly the name of one."""
    base = runs_base(root)
    try:
        names = os.listdir(base)
    except OSError:
        return None
    if run_id not in names or run_id in (".", ".."):
        return None
    path = os.path.join(base, run_id)
    return path if os.path.isdir(path) else None


def inside(root: str, run_id: str, path: str | None) -> str | None:
    """`path` (a log path the history holds) resolved, when it is a regular file inside
    the run's directory; None otherwise (gone, elsewhere, a link out of it)."""
    directory = run_dir(root, run_id)
    if directory is None or not path:
        return None
    real_dir = os.path.realpath(directory)
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(directory, path))
    if os.path.commonpath([real_dir, real]) != real_dir or real == real_dir:
        return None
    return real if os.path.isfile(real) else None


def read_tail(path: str, limit: int = MAX_LOG_BYTES) -> tuple[str, bool]:
    """The file's text (its last `limit` bytes), and whether it was cut."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        cut = size > limit
        fh.seek(size - limit if cut else 0)
        data = fh.read()
    if cut:
        data = data[data.find(b"\n") + 1 :]
    return data.decode("utf-8", errors="replace"), cut
