"""The job index: the last result each job of a workspace stored, so that `--explain` and
`conveyor why` can compare a miss's key against it.

One small JSON file per workspace in the cache directory, read on first use and written
once per run: a file per job cost a write per job. Losing an update to a concurrent run
only makes an explanation vaguer; results themselves are never looked up through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

from conveyor.fsutil import atomic_write
from conveyor.model import Digest


class JobIndex:
    def __init__(self, cache_root: str, workspace: str) -> None:
        key = hashlib.sha256(workspace.encode()).hexdigest()
        self.path = os.path.join(cache_root, "jobs", f"{key}.json")
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                self._data = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def get(self, job: str) -> dict[str, Any] | None:
        """{action, action_size, run_id, time, duration} of the job's last stored result."""
        with self._lock:
            return self._load().get(job)

    def put(self, job: str, action: Digest, run_id: str, duration: float) -> None:
        """Remember this job's newest stored result; written out by `flush`."""
        with self._lock:
            self._load()[job] = {
                "action": action.hash,
                "action_size": action.size_bytes,
                "run_id": run_id,
                "time": time.time(),
                "duration": duration,
            }
            self._dirty = True

    def forget(self, job: str, action: Digest) -> None:
        """Forget the job's entry if it is still `action` (its result was taken back)."""
        with self._lock:
            index = self._load()
            if index.get(job, {}).get("action") == action.hash:
                del index[job]
                self._dirty = True

    def flush(self) -> None:
        with self._lock:
            if not self._dirty or self._data is None:
                return
            try:
                # json.dumps, not json.dump: dump streams in pure Python
                atomic_write(self.path, json.dumps(self._data), makedirs=True)
                self._dirty = False
            except OSError:
                pass  # only explanations (`why`) would be the poorer
