"""Forget old snapshots by a keep policy, then remove what no snapshot uses.

The policy is restic's `--keep-daily N --keep-weekly M`: per workspace (host and
path), the newest snapshot of each of the N most recent days that have one, and of each
of the M most recent ISO weeks that have one, are kept; the others are forgotten.

Then chunks no kept snapshot uses are dropped: one new index of what is kept is written
before the old indexes are deleted, and packs are deleted only after that, each only
when none of its chunks is still used (a pack still partly used is kept whole). Packs no
index names (left by a killed backup) are deleted once they are an hour old: a backup
running now may have written one whose index is not written yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.backup.repository import Repository, Snapshot

ORPHAN_GRACE = 3600.0


@dataclass(frozen=True)
class Pruned:
    kept: list[Snapshot]
    forgotten: list[Snapshot]
    packs_deleted: int
    dry_run: bool


def choose(
    snaps: Iterable[Snapshot], daily: int, weekly: int
) -> tuple[list[Snapshot], list[Snapshot]]:
    """(keep, forget), oldest first."""
    groups: dict[tuple[str, str], list[Snapshot]] = {}
    for snap in snaps:
        groups.setdefault((snap.host, snap.workspace), []).append(snap)
    keep: set[str] = set()
    for members in groups.values():
        newest_first = sorted(members, key=lambda s: (s.time, s.id), reverse=True)
        for count, bucket in ((daily, "%Y-%m-%d"), (weekly, "%G-W%V")):
            seen: list[str] = []
            for snap in newest_first:
                period = time.strftime(bucket, time.gmtime(snap.time))
                if period in seen:
                    continue
                if len(seen) >= count:
                    break
                seen.append(period)
                keep.add(snap.id)
    every = sorted((s for m in groups.values() for s in m), key=lambda s: (s.time, s.id))
    return [s for s in every if s.id in keep], [s for s in every if s.id not in keep]


def prune(repo: Repository, *, daily: int, weekly: int, dry_run: bool) -> Pruned:
    kept, forgotten = choose(repo.snapshots(), daily, weekly)
    if dry_run:
        return Pruned(kept, forgotten, 0, True)
    for snap in forgotten:
        repo.delete_snapshot(snap)
    used: set[str] = set()
    for snap in kept:
        used.update(snap.tree)
        for entry in repo.manifest(snap):
            used.update(entry["chunks"])
    keep_chunks = {c for c in repo.index if c in used}
    packs_before = {loc.pack for loc in repo.index.values()}
    packs_kept = {repo.index[c].pack for c in keep_chunks}
    # A pack partly used keeps all its chunks in the index (they are still readable).
    keep_chunks = {c for c, loc in repo.index.items() if loc.pack in packs_kept}
    repo.rewrite_index(keep_chunks)
    deleted = 0
    now = time.time()
    for name, modified in list(repo.backend.list("packs")):
        pack = name.rsplit("/", 1)[-1]
        if pack in packs_kept:
            continue
        if pack not in packs_before and now - modified < ORPHAN_GRACE:
            continue
        repo.backend.delete(name)
        deleted += 1
    return Pruned(kept, forgotten, deleted, False)
