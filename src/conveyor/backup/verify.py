"""Every chunk of a repository read back and checked against its id, and every
snapshot's manifest checked for chunks no index has; a bad chunk is named with the
files (snapshot and path) that use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from conveyor.backup.repository import CorruptChunk, Repository, pack_name


@dataclass(frozen=True)
class Damage:
    chunk: str
    why: str
    files: list[tuple[str, str]] = field(default_factory=list)
    """(snapshot short id, path) of each file that uses it."""


@dataclass(frozen=True)
class Verified:
    snapshots: int
    packs: int
    chunks: int
    bytes: int
    damage: list[Damage]

    @property
    def ok(self) -> bool:
        return not self.damage


def verify(repo: Repository) -> Verified:
    bad: dict[str, str] = {}
    by_pack: dict[str, list[tuple[str, int, int]]] = {}
    for chunk, loc in repo.index.items():
        by_pack.setdefault(loc.pack, []).append((chunk, loc.offset, loc.length))
    size = 0
    for pack, entries in sorted(by_pack.items()):
        try:
            data = repo.backend.read(pack_name(pack))
        except FileNotFoundError:
            for chunk, _, _ in entries:
                bad[chunk] = f"missing: its pack {pack[:12]} is gone"
            continue
        size += len(data)
        for chunk, offset, length in entries:
            try:
                repo.check(chunk, data[offset : offset + length])
            except CorruptChunk as exc:
                bad[chunk] = exc.why
    damage: dict[str, Damage] = {}
    snaps = repo.snapshots()
    for snap in snaps:
        for chunk in snap.tree:
            if chunk in bad or chunk not in repo.index:
                why = bad.get(chunk, "missing: no index names it")
                damage.setdefault(chunk, Damage(chunk, why)).files.append(
                    (snap.short_id, "(the snapshot's manifest)")
                )
        try:
            files = repo.manifest(snap)
        except CorruptChunk:
            continue  # named above
        for entry in files:
            for chunk in entry["chunks"]:
                if chunk in bad or chunk not in repo.index:
                    why = bad.get(chunk, "missing: no index names it")
                    damage.setdefault(chunk, Damage(chunk, why)).files.append(
                        (snap.short_id, f"{entry['source']}:{entry['path']}")
                    )
    for chunk, why in bad.items():
        damage.setdefault(chunk, Damage(chunk, why))
    return Verified(len(snaps), len(by_pack), len(repo.index), size, list(damage.values()))
