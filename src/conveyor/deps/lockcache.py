"""Lockfiles read before, kept by content: a lockfile whose text is unchanged, and whose
parser would look at the same siblings (go.sum, package.json, a workspace member's
manifest, a glob's matches) with the same content, is not parsed again.

Every `deps` command and the dependency gates read the inventory; a large workspace's
lockfiles take a few hundred milliseconds to parse, which a warm audit would otherwise
pay on every call. An entry is a pickle under `.conveyor/cache/lockfiles/` keyed by the
lockfile's path and text, Conveyor's version and the dependency readers' code (a
development install changes code without changing the version); it records what the
parser looked at, and is used only when each of those still reads the same. Entries are
written whole or not at all (`atomic_file`), a state directory that cannot be written
is simply not used, and an entry that cannot be read is parsed again. Like the
pipeline cache, the pickles are the workspace's own state: `.conveyor/` is the user's,
never shared.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from typing import Any

from conveyor.deps.inventory import (
    Lockfile,
    LockfileError,
    glob_siblings,
    read_lockfile,
    read_sibling,
)

_SCHEMA = "1"


def read(root: str, path: str) -> Lockfile | LockfileError:
    """`read_lockfile(root, path)`, from the cache when nothing it depends on changed."""
    try:
        with open(os.path.join(root, path), "rb") as fh:
            raw = fh.read()
    except OSError:
        return read_lockfile(root, path)  # it says what is wrong
    entry = _entry_path(root, path, raw)
    found = _load(entry, root, path)
    if found is not None:
        return found
    looked: dict[str, object] = {}
    result = read_lockfile(root, path, looked)
    if isinstance(result, Lockfile):
        _store(entry, root, result, looked)
    return result


def _entry_path(root: str, path: str, raw: bytes) -> str:
    from conveyor import __version__
    from conveyor.fsutil import STATE_DIR

    digest = hashlib.sha256(
        f"{_SCHEMA}\0{__version__}\0{_code_stamp()}\0{path}\0".encode() + raw
    ).hexdigest()[:40]
    return os.path.join(root, STATE_DIR, "cache", "lockfiles", f"{digest}.pickle")


def _load(entry: str, root: str, path: str) -> Lockfile | None:
    try:
        with open(entry, "rb") as fh:
            looked, lockfile = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    if not isinstance(lockfile, Lockfile) or not isinstance(looked, dict):
        return None
    if looked != _look_again(root, path, looked):
        return None  # a sibling or a glob's matches changed: parsed again
    return lockfile


def _look_again(root: str, path: str, looked: dict[str, Any]) -> dict[str, object]:
    now: dict[str, object] = {}
    for name in looked:
        if name.startswith("glob:"):
            now[name] = glob_siblings(root, path, name.removeprefix("glob:"))
        else:
            now[name] = read_sibling(root, path, name)
    return now


def _store(entry: str, root: str, lockfile: Lockfile, looked: dict[str, object]) -> None:
    from conveyor.fsutil import STATE_DIR, atomic_file, ensure_state_dir

    if not os.path.isdir(os.path.join(root, STATE_DIR)) and not os.access(root, os.W_OK):
        return
    try:
        ensure_state_dir(root, "cache", "lockfiles")
        with atomic_file(entry) as fh:
            pickle.dump((looked, lockfile), fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:
        pass  # a cache that cannot be written is not used


@functools.cache
def _code_stamp() -> str:
    """The dependency readers' code, by file identity (size and modification time)."""
    here = os.path.dirname(__file__)
    stamps = []
    for base, dirs, names in os.walk(here):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                try:
                    st = os.stat(os.path.join(base, name))
                except OSError:
                    continue
                stamps.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()
