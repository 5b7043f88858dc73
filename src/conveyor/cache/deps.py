"""Dependency caches in the manner of actions/cache: `caches:` on a job.

    caches:
      - key: pip-{{ os }}-{{ hashFiles('requirements*.txt') }}
        restore_keys: [pip-{{ os }}-]
        paths: [.venv, ~/.cache/pip]

Before the job runs, the entry with exactly `key` is restored, else the newest entry
whose key starts with one of `restore_keys` (in order). After the job succeeds, if the
exact key was not restored, `paths` are saved under it. Entries are immutable: a key
is written once. The files live in the store's CAS (`conveyor.cache.interface`), read
back in batches; an entry is a JSON listing (path, digest, mode, or symlink target)
stored as a blob, indexed by key on this machine under `<cache directory>/deps/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from conveyor.cache.interface import BlobMissing, ContentStore, CorruptBlob
from conveyor.errors import ConfigError
from conveyor.fsutil import STATE_DIR, atomic_write, ensure_state_dir
from conveyor.model import CacheSpec, Digest, Job
from conveyor.workspace.files import WorkspaceFiles

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_HASHFILES = re.compile(
    r"hashFiles\(\s*((?:'[^']*'|\"[^\"]*\")(?:\s*,\s*(?:'[^']*'|\"[^\"]*\"))*)\s*\)"
)


def render_key(template: str, job: Job, files: WorkspaceFiles) -> str:
    """Fill `{{ hashFiles('glob', ...) }}`, `{{ os }}`, `{{ arch }}` and `{{ matrix.X }}`."""

    def repl(m: re.Match[str]) -> str:
        expr = m.group(1)
        hf = _HASHFILES.fullmatch(expr)
        if hf:
            globs = [g.strip()[1:-1] for g in re.findall(r"'[^']*'|\"[^\"]*\"", hf.group(1))]
            return hash_files(job, files, globs)
        if expr in ("os", "runner.os"):
            return platform.system().lower()
        if expr == "arch":
            return platform.machine().lower()
        if expr.startswith("matrix.") and expr[7:] in dict(job.matrix):
            return dict(job.matrix)[expr[7:]]
        raise ConfigError(
            f"unknown expression '{{{{ {expr} }}}}' in a cache key",
            path=("jobs", job.base, "caches"),
            hint="use hashFiles('glob', ...), os, arch or matrix.NAME",
        )

    return _TEMPLATE.sub(repl, template)


def hash_files(job: Job, files: WorkspaceFiles, globs: list[str]) -> str:
    """SHA-256 over the digests of the matching files (relative to the job's directory);
    an empty string when nothing matches, as GitHub's hashFiles does."""
    paths = files.select(job.dir, globs)
    if not paths:
        return ""
    h = hashlib.sha256()
    for path in paths:
        h.update(f"{path}\0{files.info(path).digest}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Restored:
    key: str
    exact: bool
    files: int


class Restoration(NamedTuple):
    """What restoring a job's `caches:` did."""

    lines: list[str]
    """To show in its log."""
    exact: set[str]
    """The keys restored exactly (they need no saving after the job)."""
    hits: tuple[bool, ...] = ()
    """For each of its `caches:`, in order: restored with its exact key (the job sees it
    as CONVEYOR_CACHE_HIT_<N>, as actions/cache's `cache-hit`)."""


class DependencyCaches:
    """The `caches:` of a workspace's jobs, over a store's CAS."""

    def __init__(
        self,
        store: ContentStore,
        files: WorkspaceFiles,
        root: str,
        local_dir: str,
        lock: threading.Lock | None = None,
    ) -> None:
        """`root`: the workspace; `local_dir`: where the key index lives (the cache
        directory, shared by the machine's workspaces)."""
        self.store = store
        self.files = files
        self.root = root
        self.index_dir = os.path.join(local_dir, "deps")
        self._lock = lock or threading.Lock()
        """Held while keys are rendered: `files` is shared with the run's other jobs."""

    def restore_all(self, job: Job, *, read: bool = True) -> Restoration:
        """Restore each of the job's `caches:`."""
        lines: list[str] = []
        exact: set[str] = set()
        hits: list[bool] = []
        for spec in job.caches:
            with self._lock:
                key = render_key(spec.key, job, self.files)
                prefixes = [render_key(r, job, self.files) for r in spec.restore_keys]
            restored = self.restore(job, spec, key, prefixes) if read else None
            hits.append(restored is not None and restored.exact)
            if restored is None:
                lines.append(f"conveyor: cache {key!r} not found")
            elif restored.exact:
                exact.add(key)
                lines.append(f"conveyor: cache {key!r} restored ({restored.files} files)")
            else:
                lines.append(
                    f"conveyor: cache {key!r} not found; restored {restored.key!r} "
                    f"({restored.files} files)"
                )
        return Restoration(lines, exact, tuple(hits))

    def save_all(self, job: Job, exact: set[str]) -> list[str]:
        """Save each of the job's `caches:` whose exact key was not restored."""
        lines = []
        for spec in job.caches:
            with self._lock:
                key = render_key(spec.key, job, self.files)
            if key in exact:
                continue
            count = self.save(job, spec, key)
            if count:
                lines.append(f"conveyor: cache {key!r} saved ({count} files)")
        return lines

    def _paths(self, job: Job, spec: CacheSpec) -> list[str]:
        base = os.path.join(self.root, job.dir)
        return [os.path.normpath(os.path.join(base, os.path.expanduser(p))) for p in spec.paths]

    def _index(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.index_dir, digest[:2], digest)

    def _entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not os.path.isdir(self.index_dir):
            return out
        for shard in os.scandir(self.index_dir):
            for entry in os.scandir(shard.path):
                try:
                    with open(entry.path, encoding="utf-8") as fh:
                        out.append(json.load(fh))
                except (OSError, ValueError):
                    continue
        return out

    def restore(
        self, job: Job, spec: CacheSpec, key: str, restore_keys: list[str]
    ) -> Restored | None:
        entry = self._load(key)
        exact = entry is not None
        if entry is None:
            for prefix in restore_keys:
                candidates = [e for e in self._entries() if e.get("key", "").startswith(prefix)]
                if candidates:
                    entry = max(candidates, key=lambda e: e.get("time", 0))
                    break
        if entry is None:
            return None
        from conveyor.cache.outputs import FileToRestore, restore_files

        targets = self._paths(job, spec)
        try:
            listing = json.loads(self.store.get_bytes(Digest(*entry["listing"])))
            placed = self._placed(targets, entry["listing"])
            todo = []
            dests = []
            for item in listing:
                top = targets[item["root"]]
                dest = os.path.join(top, item["path"]) if item["path"] else top
                dests.append(dest)
                known = placed.get(dest)
                if known is not None and known == _stat(dest):
                    continue  # put there by the last restore or save, untouched since
                if "link" in item:
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    if os.path.lexists(dest):
                        os.unlink(dest)
                    os.symlink(item["link"], dest)
                else:
                    todo.append(FileToRestore(Digest(item["hash"], item["size"]), dest, item["x"]))
            restore_files(self.store, todo)  # in batches: a .venv is thousands of files
        except (CorruptBlob, BlobMissing, KeyError, ValueError):
            return None
        self._place(targets, entry["listing"], dests)
        return Restored(entry["key"], exact, len(listing))

    # -- what is in place ------------------------------------------------------------------
    # A cache-hit job's caches are restored on every run; rewriting a .venv of thousands
    # of files that is already there took seconds of a no-op run. Each restore (and save)
    # notes, in the workspace's state, the entry and each file's (size, mtime, inode) as
    # it left them; the next restore of the same entry skips a file whose stat is
    # unchanged (as git's index trusts a stat), and rewrites any other.

    def _marker(self, targets: list[str], *, create: bool = False) -> str:
        digest = hashlib.sha256(json.dumps(targets).encode()).hexdigest()
        if create:  # through ensure_state_dir: .conveyor/ gets the .gitignore that hides it
            return os.path.join(ensure_state_dir(self.root, "depcaches", digest[:2]), digest)
        return os.path.join(self.root, STATE_DIR, "depcaches", digest[:2], digest)

    def _placed(self, targets: list[str], listing: list[Any]) -> dict[str, list[int] | None]:
        """Each file the last restore or save of the same entry left, with its stat."""
        try:
            with open(self._marker(targets), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("listing") != listing:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    def _place(self, targets: list[str], listing: list[Any], dests: list[str]) -> None:
        data = {"listing": listing, "files": {d: _stat(d) for d in dests}}
        # A read-only workspace: no note, and the next restore writes every file again.
        with contextlib.suppress(OSError):
            atomic_write(self._marker(targets, create=True), json.dumps(data))

    def _load(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._index(key), encoding="utf-8") as fh:
                data: dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            return None
        return data if data.get("key") == key else None

    def save(self, job: Job, spec: CacheSpec, key: str) -> int:
        """Store `paths` under `key` (once); the number of files saved."""
        if self._load(key) is not None:
            return 0
        listing: list[dict[str, Any]] = []
        for i, top in enumerate(self._paths(job, spec)):
            if os.path.isdir(top) and not os.path.islink(top):
                found = []
                for directory, dirs, names in os.walk(top):
                    links = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
                    found += [os.path.join(directory, n) for n in names + links]
                pairs = [(full, os.path.relpath(full, top)) for full in found]
            elif os.path.lexists(top):
                pairs = [(top, "")]  # a single file: restored to the path itself
            else:
                continue
            for full, rel in pairs:
                if os.path.islink(full):
                    listing.append({"root": i, "path": rel, "link": os.readlink(full)})
                elif os.path.isfile(full):
                    digest = self.store.put_file(full)
                    executable = bool(os.stat(full).st_mode & 0o100)
                    listing.append(
                        {
                            "root": i,
                            "path": rel,
                            "hash": digest.hash,
                            "size": digest.size_bytes,
                            "x": executable,
                        }
                    )
        blob = self.store.put_bytes(json.dumps(listing, sort_keys=True).encode())
        path = self._index(key)
        ref = [blob.hash, blob.size_bytes]
        entry = {"key": key, "listing": ref, "time": time.time()}
        atomic_write(path, json.dumps(entry), makedirs=True)
        targets = self._paths(job, spec)
        dests = [
            os.path.join(targets[item["root"]], item["path"])
            if item["path"]
            else targets[item["root"]]
            for item in listing
        ]
        self._place(targets, ref, dests)
        return len(listing)


def _stat(path: str) -> list[int] | None:
    """(size, mtime in ns, inode) of the file or link itself; None when it is not there."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]
