"""Which versions retention removes, and removing them (`conveyor artifacts prune`, and
the end of a run that stored versions with retention rules).

- A version past its `expires` (the job's `expire_in`) goes; but one stored with
  `keep: {latest: true}` stays while it is the newest version of its name on its
  branch (GitLab keeps the artifacts of each ref's most recent successful job so).
- `keep: {last: N}`: of a name's versions (on each branch, with `per: branch`), the N
  newest are kept and older ones go. The rule is the newest version's: what the
  pipeline says now.
- A version in a protected channel (`artifacts.protected_channels`, default `prod`)
  never goes, and is not counted among the N.

Then the blobs no version names any more go (files and attachments alike). Pruning
holds the store exclusively: no run writes a blob meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import ArtifactVersion
from conveyor.artifacts.store import parse_iso, remove_stale_tmp


@dataclass(frozen=True)
class Removal:
    version: ArtifactVersion
    reason: str


@dataclass(frozen=True)
class PruneReport:
    removed: tuple[Removal, ...]
    blobs: tuple[tuple[str, int], ...]
    """Blobs no version names any more: (sha256, size)."""
    kept: int
    """Versions that stay."""
    dry_run: bool
    held: tuple[Removal, ...] = ()
    """Versions past their expiry that stay, and why (the newest on their branch)."""

    @property
    def freed(self) -> int:
        return sum(size for _sha, size in self.blobs)


def plan(
    versions: Iterable[ArtifactVersion],
    *,
    protected: Sequence[str],
    now: float | None = None,
    held: list[Removal] | None = None,
) -> list[Removal]:
    """The versions retention removes now, and why; protected channels keep theirs.
    `held` gets the expired versions that stay as the newest on their branch."""
    moment = time.time() if now is None else now
    out: list[Removal] = []
    gone: set[tuple[str, str]] = set()
    by_name: dict[str, list[ArtifactVersion]] = {}
    for v in versions:
        by_name.setdefault(v.name, []).append(v)
    for name in sorted(by_name):
        found = sorted(by_name[name], key=lambda v: (v.created, v.build_number or 0))
        latest = {v.branch: v for v in found}  # the newest on each branch
        for v in found:
            if v.channel in protected or not v.expires:
                continue
            try:
                expired = parse_iso(v.expires) <= moment
            except ValueError:
                continue
            if expired and v.keep_latest and latest[v.branch] is v:
                if held is not None:
                    where = f"branch {v.branch}" if v.branch else "no branch"
                    held.append(Removal(v, f"expired {v.expires}, but the newest on {where}"))
            elif expired:
                out.append(Removal(v, f"expired {v.expires}"))
                gone.add((v.name, v.version))
        newest = found[-1]
        if newest.keep_last is None:
            continue
        groups: dict[str | None, list[ArtifactVersion]] = {}
        for v in found:
            if v.channel in protected or (v.name, v.version) in gone:
                continue
            key = v.branch if newest.keep_per == "branch" else None
            groups.setdefault(key, []).append(v)
        for key, members in groups.items():
            older = members[: -newest.keep_last] if len(members) > newest.keep_last else []
            where = f" on branch {key}" if newest.keep_per == "branch" else ""
            for v in older:
                out.append(Removal(v, f"older than the newest {newest.keep_last}{where}"))
    return out


def prune(
    store: Store,
    *,
    protected: Sequence[str],
    dry_run: bool = False,
    names: Sequence[str] | None = None,
    now: float | None = None,
) -> PruneReport:
    """Retention applied (`plan`), then the blobs no version names removed; with
    `dry_run`, only said. `names`: only these artifacts' versions are judged (the blobs
    of every name are still collected)."""
    if not store.exists():
        return PruneReport((), (), 0, dry_run)
    with store.exclusive():
        every = store.versions()
        judged = every if names is None else [v for v in every if v.name in set(names)]
        held: list[Removal] = []
        removals = plan(judged, protected=protected, now=now, held=held)
        going = {(r.version.name, r.version.version) for r in removals}
        staying = [v for v in every if (v.name, v.version) not in going]
        named: set[str] = set()
        for v in staying:
            named.update(f.sha256 for f in v.files)
            named.update(a.sha256 for a in v.attachments)
        blobs = tuple(sorted((sha, size) for sha, size in store.blobs() if sha not in named))
        if not dry_run:
            for removal in removals:
                store.remove(removal.version)
            for sha, _size in blobs:
                store.remove_blob(sha)
            remove_stale_tmp(store.root + "/tmp")
    return PruneReport(tuple(removals), blobs, len(staying), dry_run, tuple(held))
