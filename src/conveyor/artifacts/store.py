"""The artifact store: content-addressed blobs and an index of versions, in a directory.

    <dir>/blobs/sha256/ab/<hex>          a file's bytes, named by their SHA-256 (read-only)
    <dir>/index/<name>/<version>.json    one version's record (`record.ArtifactVersion`)
    <dir>/tmp/                           blobs being written (renamed into place when whole)
    <dir>/lock, <dir>/index.lock         see below

The same bytes are stored once, whatever the file, version or name. A blob is written
to a temporary file in `tmp/` while it is hashed, then renamed to its address: a kill
at any moment leaves no half-written blob, only a temporary that the next writer
removes (its process is gone). A version's record is written (in one rename) only once
all its blobs are in place, so a version is either whole in the index or absent.

A version is immutable: storing a name and version again with the same bytes changes
nothing, with other bytes is refused (`VersionConflict`, naming both digests). What
may change of a stored version is where it stands (its channel), when it expires, what
is attached beside it (signatures, provenance, the SBOM) and where it was published.

Runs collecting at once each hold `lock` shared; pruning holds it exclusively, so a
blob is never removed between being written and being named by its version. Changes to
the index (a new version, a promotion, an attachment) are made under `index.lock`.

The store is the default `.conveyor/artifacts/` of the workspace (ignored by git with
the rest of `.conveyor/`) or the pipeline's `artifacts.dir`; the job cache lives
elsewhere (~/.cache/conveyor), so pruning the cache never loses an artifact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.artifacts.record import ATTACHMENT_KINDS, ArtifactFile, ArtifactVersion, Attachment
from conveyor.config.versions import ALLOWED, NAME
from conveyor.errors import UserError
from conveyor.fsutil import STATE_DIR, atomic_write, ensure_state_dir

if TYPE_CHECKING:
    from conveyor.artifacts.backend import Store

BLOBS = os.path.join("blobs", "sha256")
INDEX = "index"
TMP = "tmp"
CHUNK = 1 << 20
"""Bytes read at a time while a file is hashed and copied."""
SMALL = 4 << 20
"""A file up to this size is read whole: hashed first, and written only when its blob
is new."""
CHANNEL = "dev"
"""Where a new version stands."""

_T = TypeVar("_T")
_R = TypeVar("_R")


class ArtifactError(UserError):
    """Something asked of the store cannot be done: no such version, a bad name."""


class VersionConflict(ArtifactError):
    """A name and version already stored with other bytes: versions are immutable."""

    def __init__(self, stored: ArtifactVersion, offered: ArtifactVersion) -> None:
        self.stored = stored
        self.offered = offered
        old = {f.path: f.sha256 for f in stored.files}
        new = {f.path: f.sha256 for f in offered.files}
        changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        when = f" by run {stored.run_id}" if stored.run_id else ""
        self.short = (
            f"artifact {stored.ref} is already stored with other bytes "
            f"(stored {stored.digest[:19]}…, this one {offered.digest[:19]}…)"
        )
        """The conflict in a line, for a job's reason (the message has both digests whole)."""
        super().__init__(
            f"artifact {stored.ref} is already stored{when} with other bytes: stored "
            f"{stored.digest}, this one {offered.digest} ({shown} differ)",
            hint="a version is immutable: give this build another version (e.g. "
            "'1.4.{{ run_number }}'), or store the same bytes",
        )


class NotFound(ArtifactError):
    """No such artifact or version."""


def default_dir(workspace: str) -> str:
    """The workspace's own store, `.conveyor/artifacts/`."""
    return os.path.join(workspace, STATE_DIR, "artifacts")


def now_iso(stamp: float | None = None) -> str:
    """An instant as the store writes it: ISO 8601 UTC to the millisecond."""
    t = time.time() if stamp is None else stamp
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def parse_iso(text: str) -> float:
    """The instant an `now_iso` string (or any ISO 8601 UTC time) names."""
    import datetime as dt

    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def split_ref(ref: str) -> tuple[str, str | None]:
    """'name@version' -> (name, version); 'name' -> (name, None)."""
    name, sep, version = ref.partition("@")
    return name, (version if sep else None)


class ArtifactStore:
    """The store in `root` (created when first written to)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        # Paths are made by formatting, not os.path.join: a blob path per file of a
        # 10,000-file version.
        self._blobs = os.path.join(self.root, BLOBS)
        self._tmpdir = os.path.join(self.root, TMP)
        self._dirs: set[str] = set()
        self._dirs_lock = threading.Lock()
        self._counter = itertools.count()
        self._cleaned = False

    # -- where things are --------------------------------------------------------------
    def blob_path(self, sha256: str) -> str:
        """Where the blob of these bytes is (whether or not it is there)."""
        return f"{self._blobs}/{sha256[:2]}/{sha256}"

    def blob_location(self, sha256: str) -> str:
        """Where the blob is, as shown to a person (here its path; nothing is read)."""
        return self.blob_path(sha256)

    def record_path(self, name: str, version: str) -> str:
        return os.path.join(self.root, INDEX, name, f"{version}.json")

    def exists(self) -> bool:
        return os.path.isdir(os.path.join(self.root, INDEX))

    # -- locks ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held while blobs are written and named (shared: runs collect at once; a prune
        waits for them)."""
        with self._flock("lock", fcntl.LOCK_SH):
            self._clean_tmp()
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while the store is pruned: no run writes meanwhile."""
        with self._flock("lock", fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def _flock(self, name: str, how: int) -> Iterator[None]:
        os.makedirs(self.root, exist_ok=True)
        self._ignored()
        with open(os.path.join(self.root, name), "a") as fh:
            fcntl.flock(fh, how)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _ignored(self) -> None:
        """A store inside the workspace's `.conveyor/` is ignored by git with it."""
        parent = os.path.dirname(self.root)
        if os.path.basename(parent) == STATE_DIR:
            ensure_state_dir(os.path.dirname(parent))

    def _clean_tmp(self) -> None:
        """Temporaries of writers that are gone (killed mid-write): removed once per
        process, under the shared lock (a live writer's own are kept)."""
        if self._cleaned:
            return
        self._cleaned = True
        remove_stale_tmp(os.path.join(self.root, TMP))

    # -- blobs ---------------------------------------------------------------------------
    def _tmp(self) -> str:
        directory = self._tmpdir
        self._makedirs(directory)
        return f"{directory}/{os.getpid()}.{threading.get_ident()}.{next(self._counter)}.part"

    def _makedirs(self, directory: str) -> None:
        if directory in self._dirs:
            return
        os.makedirs(directory, exist_ok=True)
        with self._dirs_lock:
            self._dirs.add(directory)

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        """Whether the blob is there (and of this size, when given)."""
        try:
            st = os.stat(self.blob_path(sha256))
        except OSError:
            return False
        return size is None or st.st_size == size

    def _place(self, tmp: str, sha256: str, size: int) -> None:
        """A whole temporary moved to its address (or dropped: the bytes are there)."""
        if self.has_blob(sha256, size):
            os.unlink(tmp)
            return
        dest = self.blob_path(sha256)
        self._makedirs(os.path.dirname(dest))
        os.replace(tmp, dest)

    def put_file(self, path: str) -> tuple[str, int]:
        """The file's bytes stored (hashed while they are copied): (sha256, size)."""
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size <= SMALL:
                data = _read_all(fd, size)
                if len(data) <= SMALL:
                    return self.put_bytes(data)
                os.lseek(fd, 0, os.SEEK_SET)
            return self._copy_in(fd)
        finally:
            os.close(fd)

    def _copy_in(self, fd: int) -> tuple[str, int]:
        """A large file's bytes copied into a temporary while they are hashed, then
        renamed to their address."""
        tmp = self._tmp()
        h = hashlib.sha256()
        total = 0
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o444)
        try:
            try:
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                while n := os.readv(fd, [buf]):
                    chunk = view[:n]
                    h.update(chunk)
                    _write_all(out, chunk)
                    total += n
            finally:
                os.close(out)
            sha = h.hexdigest()
            self._place(tmp, sha, total)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return sha, total

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """These bytes stored: (sha256, size)."""
        sha = hashlib.sha256(data).hexdigest()
        fan = f"{self._blobs}/{sha[:2]}"
        dest = f"{fan}/{sha}"
        try:
            if os.stat(dest).st_size == len(data):
                return sha, len(data)
        except FileNotFoundError:
            pass
        tmp = self._tmp()
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o444)
            try:
                _write_all(out, data)
            finally:
                os.close(out)
            self._makedirs(fan)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return sha, len(data)

    def put_files(
        self, paths: Sequence[str], *, threads: int | None = None
    ) -> list[tuple[str, int]]:
        """Many files stored at once (see `in_parallel`); (sha256, size) of each, in order."""
        return in_parallel(self.put_file, paths, threads)

    def put_many(
        self, blobs: Sequence[bytes], *, threads: int | None = None
    ) -> list[tuple[str, int]]:
        """Many documents stored at once (a version's signatures: a file each);
        (sha256, size) of each, in order."""
        return in_parallel(self.put_bytes, blobs, threads)

    def blob_digest(self, sha256: str) -> str | None:
        """The SHA-256 of the blob's bytes as they are now (None: it is gone)."""
        return file_sha256(self.blob_path(sha256))

    # -- the index -----------------------------------------------------------------------
    def get(self, name: str, version: str) -> ArtifactVersion | None:
        """One version's record, or None."""
        if not NAME.fullmatch(name) or not ALLOWED.fullmatch(version):
            return None
        return _read_record(self.record_path(name, version))

    def names(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(os.path.join(self.root, INDEX)) if e.is_dir())
        except OSError:
            return []

    def versions(
        self,
        name: str | None = None,
        *,
        branch: str | None = None,
        channel: str | None = None,
        run_id: str | None = None,
    ) -> list[ArtifactVersion]:
        """Stored versions, oldest first within each name (names in order); only those
        of this name, branch, channel or run when given."""
        out: list[ArtifactVersion] = []
        for each in [name] if name is not None else self.names():
            directory = os.path.join(self.root, INDEX, each)
            try:
                entries = [e.path for e in os.scandir(directory) if e.name.endswith(".json")]
            except OSError:
                continue
            found = [r for r in (_read_record(p) for p in entries) if r is not None]
            found.sort(key=_age)
            out.extend(
                r
                for r in found
                if (branch is None or r.branch == branch)
                and (channel is None or r.channel == channel)
                and (run_id is None or r.run_id == run_id)
            )
        return out

    def find(self, ref: str) -> ArtifactVersion:
        """'name@version', or 'name' for its newest version; NotFound says what there is."""
        name, version = split_ref(ref)
        if version is None:
            found = self.versions(name) if NAME.fullmatch(name) else []
            if found:
                return found[-1]
        else:
            record = self.get(name, version)
            if record is not None:
                return record
        names = self.names()
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            mean = f" (did you mean '{close[0]}'?)" if close else ""
            raise NotFound(
                f"no artifact named '{name}' in {self.root}{mean}",
                hint=f"stored: {', '.join(names[:10])}" if names else "nothing is stored yet",
            )
        known = [v.version for v in self.versions(name)]
        raise NotFound(
            f"no version '{version}' of artifact '{name}'",
            hint=f"its versions: {', '.join(known[-10:])}",
        )

    def store(self, version: ArtifactVersion) -> tuple[ArtifactVersion, bool]:
        """A new version's record written (its blobs must be in place): (the record,
        True); the same bytes already stored under that name and version: (the stored
        record, False); other bytes: VersionConflict."""
        check_name(version.name)
        check_version(version.version)
        for f in version.files:
            check_member(f.path)
        with self._flock("index.lock", fcntl.LOCK_EX):
            stored = self.get(version.name, version.version)
            if stored is not None:
                if stored.digest == version.digest:
                    return stored, False
                raise VersionConflict(stored, version)
            self._write(version)
        return version, True

    def _write(self, version: ArtifactVersion) -> None:
        atomic_write(
            self.record_path(version.name, version.version), version.to_json(), makedirs=True
        )

    def update(
        self, ref: str, change: Callable[[ArtifactVersion], ArtifactVersion]
    ) -> ArtifactVersion:
        """A stored version changed where it may change (channel, expiry, attachments,
        publications, promotions); its content never."""
        with self._flock("index.lock", fcntl.LOCK_EX):
            stored = self.find(ref)
            changed = change(stored)
            fixed = ("name", "version", "files", "created", "run_id", "commit", "build_number")
            for key in fixed:
                if getattr(changed, key) != getattr(stored, key):
                    raise ArtifactError(f"{stored.ref}: its {key} cannot change (immutable)")
            if changed != stored:
                self._write(changed)
            return changed

    def attach(
        self,
        ref: str,
        kind: str,
        name: str,
        data: bytes | None = None,
        *,
        path: str | None = None,
        subject: str | None = None,
        media_type: str | None = None,
    ) -> tuple[ArtifactVersion, Attachment]:
        """A document stored beside a version (its bytes, or the file at `path`): a
        signature (of `subject`, one of its files, or of the whole version), a provenance
        statement, the SBOM. One of a kind and name is replaced by a new one."""
        if kind not in ATTACHMENT_KINDS:
            raise ArtifactError(f"unknown attachment kind {kind!r}: one of {ATTACHMENT_KINDS}")
        check_member(name)
        from conveyor.artifacts.inline import inline_attachment, inline_text
        from conveyor.artifacts.media import media_type as guess

        with self.writing():
            text = inline_text(kind, data) if data is not None else None
            if text is not None:
                attachment = inline_attachment(
                    kind, name, text, subject, media_type or guess(name), now_iso()
                )
            else:
                if path is not None:
                    sha, size = self.put_file(path)
                elif data is not None:
                    sha, size = self.put_bytes(data)
                else:
                    raise ArtifactError("an attachment needs bytes or a file")
                attachment = Attachment(
                    kind=kind,
                    name=name,
                    sha256=sha,
                    size=size,
                    subject=subject,
                    media_type=media_type or guess(name),
                    created=now_iso(),
                )

            def add(v: ArtifactVersion) -> ArtifactVersion:
                if subject is not None and subject not in {f.path for f in v.files}:
                    raise ArtifactError(f"{v.ref} has no file {subject!r} to attach {name!r} to")
                kept = tuple(a for a in v.attachments if (a.kind, a.name) != (kind, name))
                return dataclasses.replace(v, attachments=(*kept, attachment))

            return self.update(ref, add), attachment

    def record_publication(self, ref: str, where: Mapping[str, Any]) -> ArtifactVersion:
        """Where a version was published (target kind, location, when, digests verified)."""
        entry = {"when": now_iso(), **dict(where)}
        return self.update(ref, lambda v: dataclasses.replace(v, published=(*v.published, entry)))

    def promote(self, ref: str, channel: str) -> ArtifactVersion:
        """The version moved to another channel (dev -> staging -> prod); its bytes as
        they were."""
        check_channel(channel)

        def move(v: ArtifactVersion) -> ArtifactVersion:
            if v.channel == channel:
                return v
            step = {"from": v.channel, "to": channel, "when": now_iso()}
            return dataclasses.replace(v, channel=channel, promotions=(*v.promotions, step))

        return self.update(ref, move)

    def set_expiry(self, ref: str, expires: str | None) -> ArtifactVersion:
        return self.update(ref, lambda v: dataclasses.replace(v, expires=expires))

    def files(self, version: ArtifactVersion) -> list[tuple[ArtifactFile, str]]:
        """Each file of the version with the local path of its blob (read-only: copy it
        before changing it)."""
        return [(f, self.blob_path(f.sha256)) for f in version.files]

    def attachment_path(self, attachment: Attachment) -> str:
        """The blob of an attachment that has one (an inline one has none: see
        `artifacts.inline.read_attachment` and `local_paths`)."""
        return self.blob_path(attachment.sha256)

    def remove(self, version: ArtifactVersion) -> None:
        """A version's record removed (its blobs stay until `unreferenced_blobs` are)."""
        with self._flock("index.lock", fcntl.LOCK_EX):
            path = self.record_path(version.name, version.version)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # the name's last version

    def blobs(self) -> Iterator[tuple[str, int]]:
        """Every blob: (sha256, size)."""
        base = os.path.join(self.root, BLOBS)
        try:
            fans = list(os.scandir(base))
        except OSError:
            return
        for fan in fans:
            if not fan.is_dir():
                continue
            for entry in os.scandir(fan.path):
                with contextlib.suppress(OSError):
                    yield entry.name, entry.stat().st_size

    def referenced(self) -> set[str]:
        """Every blob some version names (its files and attachments)."""
        out: set[str] = set()
        for v in self.versions():
            out.update(f.sha256 for f in v.files)
            out.update(a.sha256 for a in v.attachments if a.content is None)
        return out

    def remove_blob(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.blob_path(sha256))


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def in_parallel(
    work: Callable[[_T], _R], items: Sequence[_T], threads: int | None = None
) -> list[_R]:
    """`work` done for every item, on a thread per core (up to 8), each thread taking
    the next item: storing a blob is hashing and system calls, which release the GIL.
    The results in the items' order; the first exception raised, after the threads
    have stopped taking items."""
    workers = min(threads or min(8, os.cpu_count() or 1), len(items))
    if workers <= 1:
        return [work(item) for item in items]
    out: list[_R | None] = [None] * len(items)
    taken = itertools.count()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            while not failed and (i := next(taken)) < len(items):
                out[i] = work(items[i])
        except BaseException as exc:
            failed.append(exc)

    pool = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failed:
        raise failed[0]
    return out  # type: ignore[return-value]  # every slot filled: no thread failed


def _read_all(fd: int, size: int) -> bytes:
    """A small file's bytes, in one read when the file is still `size` bytes long (a
    regular file gives fewer bytes than asked only at its end); a file that grew or
    shrank since it was measured is read on to its end."""
    first = os.read(fd, size + 1)
    if len(first) == size:
        return first
    parts = [first]
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _age(record: ArtifactVersion) -> tuple[str, int, str]:
    return (record.created, record.build_number or 0, record.version)


def _read_record(path: str) -> ArtifactVersion | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return ArtifactVersion.from_dict(data)
    except (OSError, ValueError):
        return None


def file_sha256(path: str) -> str | None:
    """The SHA-256 of a file's bytes (None: it cannot be read)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
    except OSError:
        return None
    return h.hexdigest()


def remove_stale_tmp(directory: str, *, max_age: float = 86400.0) -> list[str]:
    """Temporaries whose writer is gone (its pid no longer runs) or older than
    `max_age`: removed; their names."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    now = time.time()
    for entry in entries:
        pid_text = entry.name.split(".", 1)[0]
        alive = pid_text.isdigit() and _alive(int(pid_text))
        try:
            old = now - entry.stat().st_mtime > max_age
        except OSError:
            continue
        if not alive or old:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ArtifactError(
            f"{name!r} is not an artifact name: letters, digits and . _ - (at most 128, "
            "starting with a letter or digit)"
        )
    return name


def check_version(version: str) -> str:
    from conveyor.config.versions import describe_allowed

    if not ALLOWED.fullmatch(version):
        raise ArtifactError(f"{version!r} is not a version: {describe_allowed()}")
    return version


def check_channel(channel: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", channel):
        raise ArtifactError(
            f"{channel!r} is not a channel name: lower-case letters, digits and _ . -"
        )
    return channel


def check_member(path: str) -> str:
    """A path inside an artifact: relative, '/'-separated, no '.' or '..' parts, no
    empty parts, no NUL (what a fetch or an archive may write safely)."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
        or (len(parts[0]) >= 2 and parts[0][1] == ":")
    ):
        raise ArtifactError(f"{path!r} is not a path an artifact may hold")
    return path


Document = tuple[str, str, bytes, str | None]
"""An attachment to make: (kind, name, bytes, subject)."""


def make_attachments(store: Store, documents: Sequence[Document], created: str) -> list[Attachment]:
    """The attachments of `documents`, their blobs stored (at once: `put_many`), a
    signature kept in the record instead (`artifacts.inline`). Under `store.writing()`."""
    from conveyor.artifacts.inline import inline_attachment, inline_text
    from conveyor.artifacts.media import media_type as guess

    for kind, name, _data, _subject in documents:
        if kind not in ATTACHMENT_KINDS:
            raise ArtifactError(f"unknown attachment kind {kind!r}: one of {ATTACHMENT_KINDS}")
        check_member(name)
    texts = [inline_text(kind, data) for kind, _name, data, _subject in documents]
    stored = iter(
        store.put_many([d[2] for d, text in zip(documents, texts, strict=True) if text is None])
    )
    made: list[Attachment] = []
    for (kind, name, _data, subject), text in zip(documents, texts, strict=True):
        if text is not None:
            made.append(inline_attachment(kind, name, text, subject, guess(name), created))
            continue
        sha, size = next(stored)
        made.append(
            Attachment(
                kind=kind,
                name=name,
                sha256=sha,
                size=size,
                subject=subject,
                media_type=guess(name),
                created=created,
            )
        )
    return made


def with_attachments(version: ArtifactVersion, made: Sequence[Attachment]) -> ArtifactVersion:
    """The version with `made` attached, replacing any of the same kind and name; an
    ArtifactError when one is about a file the version does not have."""
    paths = {f.path for f in version.files}
    for a in made:
        if a.subject is not None and a.subject not in paths:
            raise ArtifactError(f"{version.ref} has no file {a.subject!r} to attach {a.name!r} to")
    new = {(a.kind, a.name) for a in made}
    kept = tuple(a for a in version.attachments if (a.kind, a.name) not in new)
    return dataclasses.replace(version, attachments=(*kept, *made))


def attach_all(store: Store, ref: str, documents: Sequence[Document]) -> ArtifactVersion:
    """Several documents (kind, name, bytes, subject) attached in one change of the
    version's record: a version of 10,000 files signed one `attach` at a time would
    rewrite its whole record 10,000 times. Any store (a directory, a bucket): only
    `writing`, `put_many` and `update` are used."""
    with store.writing():
        made = make_attachments(store, documents, now_iso())
        return store.update(ref, lambda v: with_attachments(v, made))
