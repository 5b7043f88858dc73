"""What this workspace last got from the cache (or put in it) for each job, so that the
next run can serve the same hit from a stat of the entry and of each output instead of
reading, verifying and parsing the entry and the log again.

Kept in `.conveyor/cache/hits`, one pickle per workspace, written once per run.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Collection
from typing import Any, NamedTuple

from conveyor.fsutil import atomic_file

_VERSION = 3


class HitRecord(NamedTuple):
    action: str
    entry: tuple[int, int]
    """(inode, size) of the action-cache entry when it was verified."""
    outputs: tuple[tuple[str, str, int, bool], ...]
    """(workspace-relative path, sha256, size, executable) of every output file."""
    log: tuple[str, ...] | None
    """The log's lines, or None when it is long: then it is read from the CAS."""
    log_digest: tuple[str, int] | None
    saved: float
    origin: str
    outputs_digest: str
    links: tuple[tuple[str, str], ...]
    """(workspace-relative path, target) of every output symlink."""
    exit_code: int
    values: tuple[tuple[str, str], ...] = ()
    """What the job wrote to $CONVEYOR_OUTPUT."""


class HitRecords:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._old: dict[str, tuple[Any, ...]] | None = None
        self._new: dict[str, HitRecord] = {}

    def _load(self) -> dict[str, tuple[Any, ...]]:
        """Job name -> its record as a plain tuple: stored so because unpickling a
        thousand NamedTuples (a Python-level call each) took longer than the hits."""
        if self._old is None:
            try:
                with open(self.path, "rb") as fh:
                    version, data = pickle.load(fh)
                ok = version == _VERSION and isinstance(data, dict)
                self._old = data if ok else {}
            except (OSError, ValueError, TypeError, EOFError, pickle.UnpicklingError):
                self._old = {}
        return self._old

    def get(self, job: str) -> HitRecord | None:
        old = self._old  # loaded once: then read without the lock (one per job counted)
        if old is None:
            with self._lock:
                old = self._load()
        raw = old.get(job)
        if raw is None or len(raw) != len(HitRecord._fields):
            return None
        return HitRecord._make(raw)

    def put(self, job: str, record: HitRecord) -> None:
        self._new[job] = record  # one dict store: atomic in CPython

    def drop(self, job: str) -> None:
        with self._lock:
            self._new.pop(job, None)

    def save(self, jobs: Collection[str]) -> None:
        """Write the records of `jobs` (the pipeline's: others are dropped)."""
        with self._lock:
            if not self._new:
                return
            merged = {k: v for k, v in self._load().items() if k in jobs}
            merged.update((k, tuple(v)) for k, v in self._new.items())
            try:
                with atomic_file(self.path) as fh:
                    pickle.dump((_VERSION, merged), fh, pickle.HIGHEST_PROTOCOL)
            except OSError:
                pass
