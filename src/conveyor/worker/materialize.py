"""A worker's blob cache and the input roots it builds from it.

Blobs are kept by content (`blobs/ab/HASH-SIZE`, and `HASH-SIZE.x` for the executable
variant: a hard link shares its inode's mode, so the two need an inode each), written
to a temporary file, made read-only (0444 or 0555) and renamed into place: two leases
fetching the same blob race only to write the same bytes.

An input root is the lease's Directory tree, fetched level by level (one BatchReadBlobs
per level), with each file hard-linked from the cache: a large input root costs no
copy. Read-only modes keep a job from writing through a link by accident (most tools
open with O_TRUNC and get EACCES). Two cases need more:

- root ignores permission bits, so a worker running as root copies instead of linking
  (a job's `echo > input` would otherwise rewrite the cached blob every other lease
  shares);
- a job running as the cache's owner can chmod a linked file and write to it: after
  each lease the linked inodes are checked (size, mtime, mode), and a changed one is
  dropped from the cache, so the next lease fetches it again.

A file system that refuses a link (another device, EPERM, too many links) gets a copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.cache.interface import batches
from conveyor.model import Digest

if TYPE_CHECKING:
    from conveyor.cache.remote import RemoteStore

_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES, errno.ENOTSUP}


class BadInputRoot(Exception):
    """An input root that cannot be built as given (a name with a slash, `..`): the
    action is invalid, not the worker."""


@dataclass
class Materialized:
    """What building an input root linked from the cache: (cache path, its stat then),
    to check after the job."""

    linked: list[tuple[str, os.stat_result]] = field(default_factory=list)
    files: int = 0
    fetched: int = 0
    """Blobs fetched from the server (the rest were in the cache)."""


class BlobCache:
    """Blobs by digest in `root`, fetched from `store` when missing."""

    def __init__(self, root: str, store: RemoteStore, *, link: bool | None = None) -> None:
        self.root = os.path.abspath(root)
        self.store = store
        # Root writes through read-only modes: see the module's docstring.
        self.link = (os.geteuid() != 0) if link is None else link
        self._tmp = os.path.join(self.root, "tmp")
        os.makedirs(os.path.join(self.root, "blobs"), exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2 as re_pb2,
        )

        self._re = re_pb2

    def path(self, digest: Digest, executable: bool) -> str:
        name = f"{digest.hash}-{digest.size_bytes}{'.x' if executable else ''}"
        return os.path.join(self.root, "blobs", digest.hash[:2], name)

    def has(self, digest: Digest, executable: bool) -> bool:
        return os.path.exists(self.path(digest, executable))

    def _install(self, digest: Digest, executable: bool, source: str) -> None:
        """Move the verified temporary file `source` into place, read-only."""
        os.chmod(source, 0o555 if executable else 0o444)
        dest = self.path(digest, executable)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(source, dest)

    def _write(self, digest: Digest, executable: bool, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self._install(digest, executable, tmp)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def ensure(self, wanted: Iterable[tuple[Digest, bool]]) -> int:
        """Make every (digest, executable) present; how many blobs were fetched. Small
        blobs come in batches (BatchReadBlobs), large ones streamed (ByteStream) to a
        temporary file; all are verified by the store (BlobMissing, CorruptBlob)."""
        todo = [(d, x) for d, x in dict.fromkeys(wanted) if not self.has(d, x)]
        if not todo:
            return 0
        # The other variant of a blob already here is copied, not fetched.
        fetch: list[Digest] = []
        for digest, executable in todo:
            other = self.path(digest, not executable)
            if os.path.exists(other):
                fd, tmp = tempfile.mkstemp(dir=self._tmp)
                os.close(fd)
                shutil.copyfile(other, tmp)
                self._install(digest, executable, tmp)
            else:
                fetch.append(digest)
        fetch = list(dict.fromkeys(fetch))
        limit = self.store.capabilities.max_batch_bytes
        small = [d for d in fetch if d.size_bytes + 100 <= limit]
        got: dict[Digest, bytes] = {}
        for batch in batches(small, limit, overhead=100):
            got.update(self.store.get_many(batch))
        for digest in fetch:
            variants = [x for d, x in todo if d == digest]
            if digest in got:
                for executable in variants:
                    self._write(digest, executable, got[digest])
                continue
            fd, tmp = tempfile.mkstemp(dir=self._tmp)
            os.close(fd)
            try:
                self.store.get_file(digest, tmp)
                for executable in variants[1:]:
                    fd2, copy = tempfile.mkstemp(dir=self._tmp)
                    os.close(fd2)
                    shutil.copyfile(tmp, copy)
                    self._install(digest, executable, copy)
                self._install(digest, variants[0], tmp)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return len(fetch)

    def directories(self, root: Digest) -> dict[Digest, Any]:
        """Every Directory of the tree under `root`, fetched a level at a time."""
        found: dict[Digest, Any] = {}
        level = [root]
        while level:
            level = [d for d in dict.fromkeys(level) if d not in found]
            if not level:
                break
            blobs: dict[Digest, bytes] = {}
            limit = self.store.capabilities.max_batch_bytes
            for batch in batches(level, limit, overhead=100):
                blobs.update(self.store.get_many(batch))
            nxt: list[Digest] = []
            for digest in level:
                directory = self._re.Directory.FromString(blobs[digest])
                found[digest] = directory
                nxt.extend(_digest(node.digest) for node in directory.directories)
            level = nxt
        return found

    def materialize(self, root: Digest, dest: str) -> Materialized:
        """Build the input root `root` at `dest` (which must not exist yet)."""
        tree = self.directories(root)
        files: list[tuple[str, Digest, bool]] = []
        links: list[tuple[str, str]] = []
        dirs: list[str] = []

        def walk(digest: Digest, path: str) -> None:
            directory = tree[digest]
            dirs.append(path)
            for node in directory.files:
                files.append(
                    (os.path.join(path, _name(node.name)), _digest(node.digest), node.is_executable)
                )
            for node in directory.symlinks:
                links.append((os.path.join(path, _name(node.name)), node.target))
            for node in directory.directories:
                walk(_digest(node.digest), os.path.join(path, _name(node.name)))

        walk(root, dest)
        done = Materialized(files=len(files))
        done.fetched = self.ensure((d, x) for _, d, x in files)
        for path in dirs:
            os.makedirs(path, exist_ok=True)
        for path, digest, executable in files:
            source = self.path(digest, executable)
            if self.link:
                try:
                    os.link(source, path)
                    done.linked.append((source, os.stat(source)))
                    continue
                except OSError as exc:
                    if exc.errno not in _LINK_FALLBACK:
                        raise
            shutil.copyfile(source, path)
            os.chmod(path, 0o555 if executable else 0o444)
        for path, target in links:
            os.symlink(target, path)
        return done

    def check(self, done: Materialized) -> list[str]:
        """Drop from the cache every linked blob a job changed (see the module's
        docstring); the cache paths dropped."""
        dropped: list[str] = []
        for path, before in done.linked:
            try:
                now = os.stat(path)
            except FileNotFoundError:
                continue
            if (now.st_size, now.st_mtime_ns, stat.S_IMODE(now.st_mode)) != (
                before.st_size,
                before.st_mtime_ns,
                stat.S_IMODE(before.st_mode),
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                dropped.append(path)
        return dropped


def _digest(proto: Any) -> Digest:
    return Digest(proto.hash, proto.size_bytes)


def _name(name: str) -> str:
    """A node's name, refused if it could leave its directory."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise BadInputRoot(f"invalid name in the input root: {name!r}")
    return name


def file_digest(path: str) -> Digest:
    """The SHA-256 digest of a file's bytes."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return Digest(hasher.hexdigest(), size)


def remove_tree(path: str) -> None:
    """Remove a lease's directory, even where its job made directories read-only."""

    def onerror(func: Any, failed: str, exc: BaseException) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o755)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o755)
        with contextlib.suppress(FileNotFoundError):
            func(failed)

    if not os.path.lexists(path):
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onerror)
    else:  # onerror is deprecated from 3.12 on
        shutil.rmtree(path, onerror=lambda func, failed, info: onerror(func, failed, info[1]))
