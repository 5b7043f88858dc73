"""The fingerprint memo: a job's fingerprint (its command, environment, needs, tools and
its input files' identities: git blob ids and stats, no contents) to the action digest
it gave. An unchanged job's key is then known without reading a file or building a
proto, most of what a no-op run would cost. A fingerprint covers everything the action
does, so a memo entry can be stale only by missing, never by being wrong."""

from __future__ import annotations

import contextlib
import pickle

from conveyor.fsutil import atomic_file
from conveyor.model import Digest

_MAX_ENTRIES = 50_000
_KEPT_WHEN_FULL = 40_000


class ActionMemo:
    """The memo in `.conveyor/` of one workspace, read when first asked, written once at
    the end of the run with the entries it used first (bounded). Not thread-safe: the
    job cache holds its lock around it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._known: dict[str, tuple[str, int]] | None = None
        self._used: dict[str, tuple[str, int]] = {}

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._known is None:
            try:
                with open(self.path, "rb") as fh:
                    data = pickle.load(fh)
                self._known = data if isinstance(data, dict) else {}
            except (OSError, ValueError, EOFError, pickle.UnpicklingError):
                self._known = {}
        return self._known

    def get(self, fingerprint: str) -> Digest | None:
        """The action digest this fingerprint gave before, if the memo has it."""
        known = self._load().get(fingerprint)
        if known is None:
            return None
        self._used[fingerprint] = known
        return Digest(*known)

    def put(self, fingerprint: str, digest: Digest) -> None:
        """Remember the action digest a fingerprint gave in this run."""
        self._used[fingerprint] = (digest.hash, digest.size_bytes)

    def save(self) -> None:
        """Write the memo: this run's entries first, then older ones, at most 50,000. A
        memo that cannot be written only costs the next run its digests."""
        if not self._used:
            return
        old = self._load()
        merged = {**old, **self._used}
        if len(merged) > _MAX_ENTRIES:
            merged = {**dict(list(old.items())[:_KEPT_WHEN_FULL]), **self._used}
        with contextlib.suppress(OSError), atomic_file(self.path) as fh:
            pickle.dump(merged, fh, pickle.HIGHEST_PROTOCOL)
