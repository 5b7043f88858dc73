"""Forget old snapshots by a keep policy, then remove what no snapshot uses.

The policy is restic's `--keep-daily N --keep-weekly M`: per workspace (host and
path), the newest snapshot of each of the N most recent days that have one, and of each
of the M most recent ISO weeks that have one, are kept; the others are forgotten.

Then chunks no kept snapshot uses are dropped. Packs partly used are repacked, the most
unused first, until what stays unused is at most 5% of what is used (`--max-unused`):
the chunks still used are checked and copied into new packs, indexed, and only then is
one new index of what is kept written, the old indexes deleted, and the packs none of
whose chunks is indexed any more deleted. A prune killed at any point leaves every kept
snapshot whole: at worst a chunk in two packs, or a pack no index names. Packs no
index names (left by a killed backup) are deleted once they are an hour old: a backup
running now may have written one whose index is not written yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.backup.repository import Repository, Snapshot, pack_name

ORPHAN_GRACE = 3600.0
MAX_UNUSED = 0.05
"""What may stay unused in packs still partly used, against what is used (restic's
default): beyond it, the packs with the most unused are repacked."""


@dataclass(frozen=True)
class Pruned:
    kept: list[Snapshot]
    forgotten: list[Snapshot]
    packs_deleted: int
    packs_repacked: int
    bytes_freed: int
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


def prune(
    repo: Repository,
    *,
    daily: int,
    weekly: int,
    dry_run: bool,
    max_unused: float = MAX_UNUSED,
) -> Pruned:
    kept, forgotten = choose(repo.snapshots(), daily, weekly)
    if dry_run:
        return Pruned(kept, forgotten, 0, 0, 0, True)
    for snap in forgotten:
        repo.delete_snapshot(snap)
    used: set[str] = set()
    for snap in kept:
        used.update(snap.tree)
        for entry in repo.manifest(snap):
            used.update(entry["chunks"])
    packs_before = {loc.pack for loc in repo.index.values()}
    repack, size = _to_repack(repo, used, max_unused)
    moved = 0
    # The chunks still used in those packs are copied into new packs (checked against
    # their ids on the way: a damaged chunk stops the prune before anything is deleted)
    # and indexed, before the index is rewritten without the old packs.
    for pack, chunks in repack.items():
        data = repo.backend.read(pack_name(pack))
        for chunk in chunks:
            loc = repo.index[chunk]
            stored = data[loc.offset : loc.offset + loc.length]
            repo.check(chunk, stored)
            repo.add_stored(chunk, stored, new=False)
            moved += len(stored)
    repo.flush()
    # A pack partly used and not repacked keeps all its chunks in the index (they are
    # still readable).
    packs_kept = {repo.index[c].pack for c in used if c in repo.index}
    repo.rewrite_index(c for c, loc in repo.index.items() if loc.pack in packs_kept)
    deleted = freed = 0
    now = time.time()
    for name, modified in list(repo.backend.list("packs")):
        pack = name.rsplit("/", 1)[-1]
        if pack in packs_kept:
            continue
        if pack not in packs_before and now - modified < ORPHAN_GRACE:
            continue  # a pack a running backup has not indexed yet, or this prune's
        repo.backend.delete(name)
        deleted += 1
        freed += size.get(pack, 0)  # what the index knew of it (an orphan: nothing)
    freed -= moved
    return Pruned(kept, forgotten, deleted, len(repack), freed, False)


def _to_repack(
    repo: Repository, used: set[str], max_unused: float
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The partly used packs to rewrite, with their chunks still used: the most unused
    first, until what stays unused is at most `max_unused` of what is used (restic's
    --max-unused). Packs nothing uses are deleted, not repacked. With every indexed
    pack's size."""
    size: dict[str, int] = {}
    unused: dict[str, int] = {}
    still: dict[str, list[str]] = {}
    for chunk, loc in repo.index.items():
        size[loc.pack] = size.get(loc.pack, 0) + loc.length
        if chunk in used:
            still.setdefault(loc.pack, []).append(chunk)
        else:
            unused[loc.pack] = unused.get(loc.pack, 0) + loc.length
    partly = [p for p in still if unused.get(p)]
    budget = max_unused * sum(size[p] - unused.get(p, 0) for p in still)
    left = sum(unused[p] for p in partly)
    repack: dict[str, list[str]] = {}
    for pack in sorted(partly, key=lambda p: unused[p] / size[p], reverse=True):
        if left <= budget:
            break
        repack[pack] = still[pack]
        left -= unused[pack]
    return repack, size
