"""A backup repository: chunks in packs, indexes, snapshots.

    config                      JSON: format version, chunker sizes, compression, the
                                key's scrypt parameters and check value (if encrypted)
    packs/<2 hex>/<sha256>      chunks back to back; named by the SHA-256 of its bytes
    index/<sha256>              where each chunk of some packs is (pack, offset, length)
    snapshots/<sha256>          one backup: when, what, and the chunks of its manifest

A chunk is stored as one byte naming its compression, then its bytes, the whole sealed
with the key when the repository is encrypted. Indexes and snapshots are stored the same
way. The write order is the commit protocol: packs, then the index naming them, then the
snapshot; each file is written whole (backend.py). A backup killed at any point leaves at
most packs no index names, or indexed chunks no snapshot uses (the next backup reuses
them; prune removes what nothing uses), and never a snapshot whose chunks are missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from conveyor.backup.backend import Backend, BackupError
from conveyor.backup.crypto import PASSWORD_ENV, KdfParams, Key, WrongKey
from conveyor.errors import EnvironmentProblem

FORMAT = 1
PACK_TARGET = 16 << 20
"""A pack is written once it holds this much: few files for S3 and for the disk."""
AVG_CHUNK = 1 << 20
MIN_CHUNK = 256 << 10
MAX_CHUNK = 8 << 20
RANGE_READ = 64 << 10
"""Chunks from this size on are read alone; smaller ones with their whole pack."""
PACKS_CACHED = 8
_WINDOW = 64 << 20
"""`chunks` plans its reads this many stored bytes of a file at a time."""
_PLAIN, _ZSTD, _ZLIB = 0, 1, 2
COMPRESSIONS = ("zstd", "zlib", "none")


class Location(NamedTuple):
    pack: str
    offset: int
    length: int


class CorruptChunk(EnvironmentProblem):
    """A chunk that is missing or does not match its id: the repository is damaged."""

    def __init__(self, chunk: str, why: str) -> None:
        super().__init__(
            f"chunk {chunk}: {why}", hint="`conveyor backup verify` lists every damaged chunk"
        )
        self.chunk = chunk
        self.why = why


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: float
    host: str
    workspace: str
    tree: tuple[str, ...]
    """The chunks of the manifest (JSON lines, one per file), in order."""
    summary: Mapping[str, Any]
    history: Mapping[str, Any]
    indexes: frozenset[str] = frozenset()
    """The index files there were when it was saved. Index files are never changed, and
    each chunk it names was in one of them: while they all remain, every chunk it names
    is indexed (none in older snapshots, which did not say)."""

    @property
    def short_id(self) -> str:
        return self.id[:8]


def pack_name(pack: str) -> str:
    return f"packs/{pack[:2]}/{pack}"


class Repository:
    """An opened repository: its key, its index in memory, a pack being filled."""

    def __init__(
        self, backend: Backend, config: Mapping[str, Any], key: Key, compression: str
    ) -> None:
        self.backend = backend
        self.config = config
        self.key = key
        self.compression = compression
        self.index: dict[str, Location] = {}
        self.index_files: list[str] = []
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._pack = bytearray()
        self._pack_entries: list[tuple[str, int, int]] = []
        self._written: list[tuple[str, list[tuple[str, int, int]]]] = []
        self.added_bytes = 0
        self.added_chunks = 0
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        # A zstd compressor per thread: they are not safe to share.
        self._local = threading.local()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        backend: Backend,
        environ: Mapping[str, str],
        *,
        create: bool = False,
        compression: str = "zstd",
    ) -> Repository:
        """Open the repository (with create, make it first if there is none yet)."""
        password = environ.get(PASSWORD_ENV) or None
        try:
            config = json.loads(backend.read("config"))
        except FileNotFoundError:
            if not create:
                raise BackupError(
                    f"{backend.where}: not a backup repository (no config)",
                    hint="`conveyor backup create --repo ...` makes one",
                ) from None
            config = cls._init(backend, password)
        except ValueError:
            raise BackupError(f"{backend.where}/config: not a backup repository's config") from None
        if config.get("format") != FORMAT:
            raise BackupError(f"{backend.where}: repository format {config.get('format')!r}")
        enc = config.get("encryption")
        if enc and password is None:
            raise BackupError(
                f"{backend.where}: the repository is encrypted", hint=f"set {PASSWORD_ENV}"
            )
        if not enc and password is not None:
            raise BackupError(
                f"{backend.where}: the repository is not encrypted, yet {PASSWORD_ENV} is set",
                hint=f"unset {PASSWORD_ENV}, or back up to a new repository to encrypt",
            )
        key = Key(password, KdfParams.from_json(enc) if enc else None)
        if enc and not key.matches(str(enc["check"])):
            raise BackupError(
                f"{backend.where}: wrong password ({PASSWORD_ENV}) for this repository"
            )
        repo = cls(backend, config, key, compression)
        repo._load_index()
        return repo

    @staticmethod
    def _init(backend: Backend, password: str | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "format": FORMAT,
            "id": os.urandom(16).hex(),
            "chunker": {"avg": AVG_CHUNK, "min": MIN_CHUNK, "max": MAX_CHUNK},
            "encryption": None,
        }
        if password is not None:
            params = KdfParams(os.urandom(16))
            config["encryption"] = {
                **params.to_json(),
                "check": Key(password, params).check_value(),
            }
        backend.write("config", json.dumps(config, indent=1).encode())
        return config

    def _load_index(self) -> None:
        for name, _ in self.backend.list("index"):
            self.index_files.append(name)
            for pack, entries in self._read_json(name)["packs"].items():
                for chunk, offset, length in entries:
                    self.index[chunk] = Location(pack, offset, length)

    # -- stored files ----------------------------------------------------------------------
    def encode(self, data: bytes | memoryview) -> bytes:
        """Compressed (when that helps) and sealed."""
        raw = bytes(data)
        body = raw
        tag = _PLAIN
        if self.compression == "zstd":
            zstd = getattr(self._local, "zstd", None)
            if zstd is None:
                import zstandard

                zstd = self._local.zstd = zstandard.ZstdCompressor(level=3)
            packed = zstd.compress(raw)
            if len(packed) < len(raw):
                body, tag = packed, _ZSTD
        elif self.compression == "zlib":
            packed = zlib.compress(raw, 6)
            if len(packed) < len(raw):
                body, tag = packed, _ZLIB
        return self.key.seal(bytes([tag]) + body)

    def decode(self, stored: bytes) -> bytes:
        """The bytes `encode` was given; WrongKey or ValueError when they are damaged."""
        plain = self.key.open(stored)
        if not plain:
            raise ValueError("empty")
        tag, body = plain[0], plain[1:]
        if tag == _PLAIN:
            return body
        if tag == _ZSTD:
            import zstandard

            return bytes(zstandard.ZstdDecompressor().decompress(body))
        if tag == _ZLIB:
            return zlib.decompress(body)
        raise ValueError(f"unknown compression {tag}")

    def _write_json(self, folder: str, data: object) -> str:
        plain = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        name = hashlib.sha256(plain).hexdigest()
        self.backend.write(f"{folder}/{name}", self.encode(plain))
        return name

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads(self.decode(self.backend.read(name)))
        except (WrongKey, ValueError) as exc:
            raise BackupError(
                f"{self.backend.where}/{name}: damaged ({exc or 'bad seal'})"
            ) from None

    # -- chunks ----------------------------------------------------------------------------
    def claim(self, chunk: str) -> bool:
        """True when this chunk is new and the caller is to store it (once, whatever the
        threads); False when the repository has it or another thread is storing it."""
        with self._lock:
            if chunk in self.index or chunk in self._pending:
                return False
            self._pending.add(chunk)
            return True

    def add(self, chunk: str, data: bytes | memoryview) -> None:
        """Store a claimed chunk: into the open pack, written out when full."""
        self.add_stored(chunk, self.encode(data))

    def add_stored(self, chunk: str, stored: bytes, *, new: bool = True) -> None:
        """A claimed chunk already encoded (by `encode`, here or in a child process)
        into the open pack, counted as added unless it is only moved (prune's
        repacking): the index names the new pack once it is written."""
        full = None
        with self._lock:
            self._pack_entries.append((chunk, len(self._pack), len(stored)))
            self._pack += stored
            if new:
                self.added_bytes += len(stored)
                self.added_chunks += 1
            if len(self._pack) >= PACK_TARGET:
                full = self._take_pack()
        if full is not None:
            self._write_pack(*full)

    def _take_pack(self) -> tuple[bytes, list[tuple[str, int, int]]]:
        pack, entries = bytes(self._pack), self._pack_entries
        self._pack, self._pack_entries = bytearray(), []
        return pack, entries

    def _write_pack(self, pack: bytes, entries: list[tuple[str, int, int]]) -> None:
        name = hashlib.sha256(pack).hexdigest()
        self.backend.write(pack_name(name), pack)
        with self._lock:
            self._written.append((name, entries))
            for chunk, offset, length in entries:
                self.index[chunk] = Location(name, offset, length)
                self._pending.discard(chunk)

    def flush(self) -> None:
        """Write the open pack and an index of every pack written since the last flush:
        after this, the chunks added are in the repository for good."""
        with self._lock:
            full = self._take_pack() if self._pack else None
        if full is not None:
            self._write_pack(*full)
        with self._lock:
            written, self._written = self._written, []
        if written:
            name = self._write_json("index", {"packs": dict(written)})
            self.index_files.append(f"index/{name}")

    def read_pack(self, pack: str) -> bytes:
        """A whole pack, the last few kept: small chunks are read many to a pack."""
        with self._lock:
            cached = self._cache.get(pack)
            if cached is not None:
                self._cache.move_to_end(pack)
                return cached
        data = self.backend.read(pack_name(pack))
        with self._lock:
            self._cache[pack] = data
            while len(self._cache) > PACKS_CACHED:
                self._cache.popitem(last=False)
        return data

    def chunk(self, chunk: str) -> bytes:
        """A chunk's bytes, checked against its id; CorruptChunk when they are missing or
        do not match."""
        where = self.index.get(chunk)
        if where is None:
            raise CorruptChunk(chunk, "missing: no index names it")
        try:
            if where.length >= RANGE_READ:
                # Large chunks of files backed up side by side share packs: reading only
                # the chunk, not its pack, reads each byte once.
                stored = self.backend.read_range(pack_name(where.pack), where.offset, where.length)
            else:
                stored = self.read_pack(where.pack)[where.offset : where.offset + where.length]
        except FileNotFoundError:
            raise CorruptChunk(chunk, f"missing: its pack {where.pack[:12]} is gone") from None
        if len(stored) != where.length:
            raise CorruptChunk(chunk, f"missing: its pack {where.pack[:12]} is cut short")
        return self.check(chunk, stored)

    def chunks(self, ids: list[str]) -> Iterator[bytes]:
        """A file's chunks' bytes in order, each checked (CorruptChunk as `chunk`).

        Small chunks a file takes from one pack are read in one range, a window of the
        file at a time: a SQLite history's pages changed over many backups lie in many
        packs, a few side by side in each, and read a pack at a time (eight kept) its
        pages would read each pack whole again and again. A file with one small chunk
        in a pack reads it as `chunk` does: the whole pack, kept for its neighbours."""
        at = 0
        while at < len(ids):
            window: list[tuple[str, Location]] = []
            size = 0
            while at < len(ids) and (not window or size < _WINDOW):
                where = self.index.get(ids[at])
                if where is None:
                    raise CorruptChunk(ids[at], "missing: no index names it")
                window.append((ids[at], where))
                size += where.length
                at += 1
            stored = self._small_chunks(window)
            for chunk, _ in window:
                got = stored.get(chunk)
                yield self.chunk(chunk) if got is None else self.check(chunk, got)

    def _small_chunks(self, window: list[tuple[str, Location]]) -> dict[str, bytes]:
        """The stored bytes of the window's small chunks taken two or more from a pack
        not kept: one range of that pack each."""
        by_pack: dict[str, list[tuple[str, Location]]] = {}
        for chunk, where in window:
            if where.length < RANGE_READ:
                by_pack.setdefault(where.pack, []).append((chunk, where))
        found: dict[str, bytes] = {}
        for pack, wanted in by_pack.items():
            with self._lock:
                kept = pack in self._cache
            if kept or len(wanted) < 2:
                continue
            start = min(w.offset for _, w in wanted)
            end = max(w.offset + w.length for _, w in wanted)
            try:
                span = self.backend.read_range(pack_name(pack), start, end - start)
            except FileNotFoundError:
                continue  # `chunk` names what is missing
            for chunk, where in wanted:
                piece = span[where.offset - start : where.offset - start + where.length]
                if len(piece) == where.length:
                    found[chunk] = piece
        return found

    def check(self, chunk: str, stored: bytes) -> bytes:
        try:
            data = self.decode(stored)
        except WrongKey:
            raise CorruptChunk(chunk, "does not open (damaged)") from None
        except Exception as exc:  # any decoder's complaint means the same: damaged
            raise CorruptChunk(chunk, f"does not decode ({exc})") from None
        if self.key.chunk_id(data) != chunk:
            raise CorruptChunk(chunk, "its content does not match its id")
        return data

    # -- snapshots -------------------------------------------------------------------------
    def save_snapshot(self, record: Mapping[str, Any]) -> Snapshot:
        """The commit point: everything it names is indexed before it is written."""
        self.flush()
        record = {**record, "indexes": sorted(self.index_files)}
        name = self._write_json("snapshots", record)
        return _snapshot(name, record)

    def snapshots(self) -> list[Snapshot]:
        """The complete backups, oldest first."""
        found = [
            _snapshot(name.rsplit("/", 1)[-1], self._read_json(name))
            for name, _ in self.backend.list("snapshots")
        ]
        return sorted(found, key=lambda s: (s.time, s.id))

    def find(self, ref: str) -> Snapshot:
        """The snapshot `ref` names: an id or its start, or `latest`."""
        snaps = self.snapshots()
        if ref == "latest" and snaps:
            return snaps[-1]
        matches = [s for s in snaps if s.id.startswith(ref.lower())] if ref else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise BackupError(
                f"{self.backend.where}: no snapshot {ref!r}",
                hint="`conveyor backup list` shows them",
            )
        raise BackupError(f"snapshot id {ref!r} is ambiguous: give more of it")

    def manifest(self, snap: Snapshot) -> list[dict[str, Any]]:
        """Every file of a snapshot: source, path, mode, size, mtime_ns, chunks."""
        return [e for e in self.entries(snap) if "chunks" in e]

    def entries(self, snap: Snapshot) -> list[dict[str, Any]]:
        """Every file and folder of a snapshot. A folder's entry (source, path ending
        with `/` or empty, mode, files, dirs, mtime_ns, ctime_ns, ino) has no chunks."""
        # One parse of the whole, not one per line: 40,000 files in a third of the time.
        found: list[dict[str, Any]] = json.loads("[" + ",".join(self.manifest_text(snap)) + "]")
        return found

    def manifest_text(self, snap: Snapshot) -> list[str]:
        """The manifest's lines as stored (one JSON object per file)."""
        text = b"".join(self.chunk(c) for c in snap.tree).strip().decode()
        return text.split("\n") if text else []

    def delete_snapshot(self, snap: Snapshot) -> None:
        self.backend.delete(f"snapshots/{snap.id}")

    def rewrite_index(self, keep: Iterable[str]) -> None:
        """One index of the chunks to keep, then the old indexes gone (in that order, so
        a kill in between leaves two indexes that agree, never none)."""
        by_pack: dict[str, list[tuple[str, int, int]]] = {}
        for chunk in sorted(keep):
            loc = self.index[chunk]
            by_pack.setdefault(loc.pack, []).append((chunk, loc.offset, loc.length))
        old = list(self.index_files)
        new = f"index/{self._write_json('index', {'packs': by_pack})}" if by_pack else None
        for name in old:
            if name != new:
                self.backend.delete(name)
        self.index_files = [new] if new else []
        self.index = {c: self.index[c] for c in keep}


def _snapshot(name: str, record: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        id=name,
        time=float(record["time"]),
        host=str(record.get("host", "")),
        workspace=str(record.get("workspace", "")),
        tree=tuple(record.get("tree", ())),
        summary=dict(record.get("summary", {})),
        history=dict(record.get("history", {})),
        indexes=frozenset(record.get("indexes", ())),
    )
