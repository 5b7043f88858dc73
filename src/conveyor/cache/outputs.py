"""A job's declared outputs as they are on disk: which files and symlinks a result holds,
and putting a symlink or a file back without ever writing outside the workspace.

Symlinks are kept as symlinks (REAPI's OutputSymlink), never followed: `node_modules/.bin`
is a directory of relative links, and restoring them as copies of their targets breaks
the next job. A link whose target resolves outside the workspace cannot be restored the
same way on another checkout (or would let a cache entry point a restore at any file of
the machine), so a result holding one is not stored. Nothing below a symlinked directory
is collected: the link itself is the output.

Files are put back from a store in batches (`restore_files`): one `get_many` (REAPI's
BatchReadBlobs) for as many small blobs as a batch holds, a larger blob streamed alone.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import shutil
from collections.abc import Sequence
from typing import NamedTuple

from conveyor.cache.interface import ContentStore, CorruptBlob, batches, file_mode
from conveyor.fsutil import atomic_write
from conveyor.model import Digest

_WILDCARDS = frozenset("*?[")


class Collected(NamedTuple):
    files: list[tuple[str, str]]
    """(path relative to the job's directory, absolute path) of every regular file."""
    links: list[tuple[str, str]]
    """(path relative to the job's directory, link target as written) of every symlink."""
    missing: tuple[str, ...]
    """Patterns that matched nothing."""
    refused: tuple[str, ...]
    """Workspace paths of symlinks pointing outside the workspace."""


def collect(root: str, base: str, patterns: Sequence[str]) -> Collected:
    """What the output patterns (relative to `base`, the job's directory) match now."""
    found: dict[str, str] = {}
    links: dict[str, str] = {}
    missing: list[str] = []
    refused: list[str] = []
    prefix = base + os.sep
    for pattern in patterns:
        full = os.path.join(base, pattern)
        if any(c in pattern for c in _WILDCARDS):
            candidates = [p for p in glob.glob(full, recursive=True) if not _below_link(prefix, p)]
        elif os.path.lexists(full):
            candidates = [full]
        else:
            missing.append(pattern)
            continue
        for path in candidates:
            if not os.path.islink(path) and os.path.isdir(path):
                for directory, dirs, names in os.walk(path):
                    for name in dirs:  # os.walk lists symlinked directories, never enters them
                        sub = os.path.join(directory, name)
                        if os.path.islink(sub):
                            _add(root, prefix, base, sub, found, links, refused)
                    for name in names:
                        _add(
                            root, prefix, base, os.path.join(directory, name), found, links, refused
                        )
            else:
                _add(root, prefix, base, path, found, links, refused)
    return Collected(sorted(found.items()), sorted(links.items()), tuple(missing), tuple(refused))


def _add(
    root: str,
    prefix: str,
    base: str,
    path: str,
    found: dict[str, str],
    links: dict[str, str],
    refused: list[str],
) -> None:
    # Slicing, not relpath (which cost more than storing a small output).
    rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, base)
    rel = rel.replace(os.sep, "/")
    if os.path.islink(path):
        target = os.readlink(path)
        if not link_inside(root, path, target):
            refused.append(os.path.relpath(path, root).replace(os.sep, "/"))
        else:
            links[rel] = target
    elif os.path.isfile(path):
        found[rel] = path
    # else a socket or a FIFO: nothing a cache can hold


def link_inside(root: str, path: str, target: str) -> bool:
    """Whether a symlink at `path` with `target` points inside the workspace `root`
    (lexically: a relative target that does not climb out)."""
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
    root = os.path.normpath(root)
    return resolved == root or resolved.startswith(root + os.sep)


def _below_link(prefix: str, path: str) -> bool:
    """Whether a glob match lies below a symlinked directory of the job's tree (glob's
    `**` follows links; the link itself is the output)."""
    if not path.startswith(prefix):
        return False
    parts = path[len(prefix) :].split(os.sep)[:-1]
    cur = prefix.rstrip(os.sep)
    for part in parts:
        cur = os.path.join(cur, part)
        if os.path.islink(cur):
            return True
    return False


def inside(root: str, dest: str) -> bool:
    """Whether writing `dest` lands inside the workspace once every symlink on the way is
    resolved (a directory replaced by a link to elsewhere must not redirect a restore)."""
    top = root.rstrip(os.sep)
    if dest.startswith(top + os.sep):
        parts = dest[len(top) + 1 :].split(os.sep)[:-1]
        if "" not in parts and "." not in parts and ".." not in parts:
            # The usual case, in an lstat per directory below the workspace (realpath
            # took one per directory of the whole path, twice, for each file restored):
            # with no link among them, the directory is where it says.
            here = top
            for part in parts:
                here = f"{here}{os.sep}{part}"
                if os.path.islink(here):
                    break
            else:
                return True
    real_root = _real(root)
    real = os.path.realpath(os.path.dirname(dest))
    return real == real_root or real.startswith(real_root + os.sep)


@functools.lru_cache(maxsize=8)
def _real(root: str) -> str:
    """The workspace's own place, links resolved (the same for the whole run)."""
    return os.path.realpath(root)


def restore_link(dest: str, target: str) -> None:
    """Make `dest` a symlink to `target` (atomically, through a rename), replacing a file
    or an earlier link; a real directory there is removed first."""
    with contextlib.suppress(OSError):
        if os.readlink(dest) == target:
            return
    directory = os.path.dirname(dest) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".conveyor-link-{os.getpid()}-{os.path.basename(dest)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class FileToRestore(NamedTuple):
    """A file to put back: its digest, where, and how (see `file_mode`)."""

    digest: Digest
    dest: str
    executable: bool
    mode: int | None = None
    contents: bytes | None = None
    """The bytes, when the entry carried them inline (then the store is not asked)."""


def restore_files(
    store: ContentStore, files: Sequence[FileToRestore], *, blobs: Sequence[Digest] = ()
) -> dict[Digest, bytes]:
    """Write each file at its `dest` (atomically, verified, mode set) and read `blobs`
    (a log, say) in the same batches; the bytes of `blobs`. Raises what the store raises
    (BlobMissing, CorruptBlob: the caller's miss), and CorruptBlob for inline contents
    that do not match their digest; a file not yet written is left as it was."""
    limit = store.capabilities.max_batch_bytes
    batched = [f.digest for f in files if f.contents is None and f.digest.size_bytes <= limit]
    wanted = list(dict.fromkeys([*batched, *(d for d in blobs if d.size_bytes <= limit)]))
    got: dict[Digest, bytes] = {}
    for batch in batches(wanted, limit):
        got.update(store.get_many(batch))
    for f in files:
        perms = file_mode(f.executable, f.mode)
        if f.contents is not None:
            actual = hashlib.sha256(f.contents).hexdigest()
            if actual != f.digest.hash or len(f.contents) != f.digest.size_bytes:
                raise CorruptBlob(f.digest, f"inline contents hash to {actual[:12]}")
            atomic_write(f.dest, f.contents, perms=perms, makedirs=True)
        elif f.digest in got:
            atomic_write(f.dest, got[f.digest], perms=perms, makedirs=True)
        else:
            store.get_file(f.digest, f.dest, executable=f.executable, mode=f.mode)
    return {d: got[d] if d in got else store.get_bytes(d) for d in blobs}
