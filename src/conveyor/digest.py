"""Content digests of workspace files, computed as rarely as possible and never wrong.

Every digest is SHA-256 of a file's bytes (what REAPI wants). Two shortcuts avoid
reading files again:

* a clean git-tracked file is known by its git blob id, and a blob id always names
  the same bytes, so a persisted map blob id -> digest is valid forever;
* any other file is known by its stat (dev, inode, size, mtime_ns, ctime_ns); an entry
  whose mtime is within the racy window of when it was recorded is not trusted (git's
  rule), since the file could have changed again within the same timestamp tick.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import pickle
import posixpath
import re
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.model import Digest

EMPTY = Digest(hashlib.sha256(b"").hexdigest(), 0)
# A stat entry recorded less than this long after the file's mtime is "racy".
RACY_NS = 2_000_000_000
_STATE_VERSION = 2


def digest_bytes(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def digest_file(path: str) -> Digest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return Digest(h.hexdigest(), size)


@dataclass(frozen=True)
class FileInfo:
    digest: Digest
    executable: bool


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over '/'-separated relative paths: ** spans directories."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    # A directory matches everything below it.
    return re.compile(out + "(?:/.*)?")


def anchor(base: str, pattern: str) -> str:
    """A pattern relative to a job's directory, made relative to the workspace."""
    joined = pattern if base in (".", "") else f"{base.rstrip('/')}/{pattern}"
    return posixpath.normpath(joined)


_LS_FILES = ("git", "ls-files", "-s", "-z")
_STATUS = ("git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
GitState = tuple[dict[str, tuple[str, bool]], set[str], list[str]]


class GitScan:
    """`git ls-files -s` and `git status` of a workspace, both started at once and read
    when first needed: the two overlap each other and whatever Conveyor does meanwhile
    (the rest of its start-up), which matters on a no-op run where they are the floor."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._procs: list[subprocess.Popen[bytes]] = []
        self._state: GitState | None = None
        self._failed = False
        try:
            for argv in (_LS_FILES, _STATUS):
                self._procs.append(
                    subprocess.Popen(
                        argv,
                        cwd=root,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                )
        except OSError:  # no git at all: every file is then an untracked file
            self._failed = True

    def result(self) -> GitState | None:
        """(tracked: path -> (blob id, executable), modified tracked paths, untracked
        paths), or None when the workspace is not a git checkout (or git is missing)."""
        if self._state is None and not self._failed:
            outputs = []
            for proc in self._procs:
                out, _ = proc.communicate()
                outputs.append(out)
                self._failed = self._failed or proc.returncode != 0
            if len(outputs) == 2 and not self._failed:
                self._state = _parse_git(*outputs)
        return None if self._failed else self._state

    def close(self) -> None:
        """Reap the processes if nobody asked for the result (a run that stopped early)."""
        for proc in self._procs:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()


def _parse_git(ls: bytes, status: bytes) -> GitState:
    tracked: dict[str, tuple[str, bool]] = {}
    dirty: set[str] = set()
    untracked: list[str] = []
    for entry in ls.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, oid, _stage = meta.split()
        if mode in (b"100644", b"100755"):
            tracked[path.decode()] = (oid.decode(), mode == b"100755")
    for entry in status.split(b"\0"):
        if len(entry) < 4:
            continue
        name = entry[3:].decode()
        if entry[:2] == b"??":
            untracked.append(name)
        else:
            dirty.add(name)
    return tracked, dirty, untracked


class WorkspaceFiles:
    """The files of one workspace and their digests, with the two shortcuts above.

    One instance per run: git is asked once, each state file read (lazily) once and
    written once. The two maps live in two files because a run whose every action is
    memoized needs only the small one (stats of outputs and changed files), never the
    blob ids of the whole tree.
    """

    def __init__(
        self,
        root: str,
        state_file: str,
        *,
        racy_ns: int = RACY_NS,
        scan: GitScan | None = None,
    ) -> None:
        self.root = root
        self.racy_ns = racy_ns
        self.state_file = state_file
        self._oids_file = state_file + ".oids"
        self._oids_map: dict[str, tuple[str, int]] | None = None
        self._stats_map: dict[str, tuple[int, int, int, int, int, str]] | None = None
        self._dirty_oids = self._dirty_stats = False
        self._scan = scan
        self._git: GitState | None = None
        self._sorted: list[str] | None = None

    # -- persisted state -------------------------------------------------------------
    @property
    def _oids(self) -> dict[str, tuple[str, int]]:
        if self._oids_map is None:
            self._oids_map = _load_map(self._oids_file)
        return self._oids_map

    @property
    def _stats(self) -> dict[str, tuple[int, int, int, int, int, str]]:
        if self._stats_map is None:
            self._stats_map = _load_map(self.state_file)
        return self._stats_map

    def save(self) -> None:
        """Write what changed atomically; a failure only costs re-hashing next time."""
        if self._dirty_oids and self._oids_map is not None:
            self._dirty_oids = not _save_map(self._oids_file, self._oids_map)
        if self._dirty_stats and self._stats_map is not None:
            self._dirty_stats = not _save_map(self.state_file, self._stats_map)

    def close(self) -> None:
        if self._scan is not None:
            self._scan.close()

    # -- git ---------------------------------------------------------------------------
    def _git_state(self) -> GitState:
        """(tracked: path -> (blob id, executable), modified tracked paths, untracked paths)."""
        if self._git is not None:
            return self._git
        if self._scan is None:
            self._scan = GitScan(self.root)
        state = self._scan.result()
        self._git = state if state is not None else ({}, set(), self._walk())
        return self._git

    def _walk(self) -> list[str]:
        """Every file of a workspace that is not a git checkout."""
        out = []
        for base, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d not in (".git", ".conveyor")]
            rel = os.path.relpath(base, self.root)
            for name in files:
                out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return out

    def _pool(self) -> list[str]:
        """Files inputs are chosen from, sorted: tracked and untracked-not-ignored."""
        if self._sorted is None:
            tracked, _dirty, untracked = self._git_state()
            self._sorted = sorted({*tracked, *untracked})
        return self._sorted

    def _under(self, prefix: str, tracked_only: bool = False) -> list[str]:
        pool = self._pool()
        start = bisect.bisect_left(pool, prefix)
        end = bisect.bisect_left(pool, prefix + "\U0010ffff")
        tracked, dirty, _ = self._git_state()
        out = []
        for path in pool[start:end]:
            if tracked_only and tracked and path not in tracked:
                continue
            if (path in dirty or path not in tracked) and not os.path.isfile(
                os.path.join(self.root, path)
            ):
                continue  # deleted since the last commit
            out.append(path)
        return out

    def select(self, base: str, patterns: Sequence[str]) -> list[str]:
        """Workspace-relative files for a job in directory `base`. Patterns are globs
        relative to `base` (`../x` reaches out, '!' excludes); none means every tracked
        file under `base`."""
        if not patterns:
            prefix = "" if base in (".", "") else base.rstrip("/") + "/"
            return self._under(prefix, tracked_only=True)
        chosen: set[str] = set()
        excludes = [glob_regex(anchor(base, p[1:])) for p in patterns if p.startswith("!")]
        for pattern in patterns:
            if pattern.startswith("!"):
                continue
            anchored = anchor(base, pattern)
            literal = re.split(r"[*?\[]", anchored, maxsplit=1)[0]
            prefix = literal if "/" not in literal else literal[: literal.rfind("/") + 1]
            rx = glob_regex(anchored)
            chosen.update(p for p in self._under(prefix) if rx.fullmatch(p))
        return sorted(p for p in chosen if not any(rx.fullmatch(p) for rx in excludes))

    # -- digests -------------------------------------------------------------------------
    def info(self, rel: str) -> FileInfo:
        """Digest and executable bit of a workspace-relative file."""
        tracked, dirty, _ = self._git_state()
        entry = tracked.get(rel)
        if entry is not None and rel not in dirty:
            oid, executable = entry
            known = self._oids.get(oid)
            if known is not None:
                return FileInfo(Digest(known[0], known[1]), executable)
            digest = digest_file(os.path.join(self.root, rel))
            self._oids[oid] = (digest.hash, digest.size_bytes)
            self._dirty_oids = True
            return FileInfo(digest, executable)
        full = os.path.join(self.root, rel)
        st = os.stat(full)
        return FileInfo(self._by_stat(rel, full, st), bool(st.st_mode & stat.S_IXUSR))

    def identities(self, paths: Sequence[str]) -> list[str]:
        """For each file (in order), a string that names its content and executable bit
        exactly: `git:<blob id>` for a clean tracked file (no digest needed: a blob id
        names the same bytes as a SHA-256 does), its digest otherwise. What the action
        memo is keyed on; a file deleted meanwhile is named `-`."""
        tracked, dirty, _ = self._git_state()
        out = []
        for rel in paths:
            entry = tracked.get(rel)
            if entry is not None and rel not in dirty:
                out.append(f"git:{entry[0]}{'x' if entry[1] else ''}")
                continue
            try:
                i = self.info(rel)
            except FileNotFoundError:
                out.append("-")
                continue
            out.append(f"{i.digest}{'x' if i.executable else ''}")
        return out

    def hash_path(self, rel: str) -> Digest:
        full = os.path.join(self.root, rel)
        return self._by_stat(rel, full, os.stat(full))

    def file_state(self, rel: str) -> tuple[Digest, bool]:
        """Digest and executable bit of any workspace file (outputs too), by the stat cache."""
        full = os.path.join(self.root, rel)
        st = os.stat(full)
        return self._by_stat(rel, full, st), bool(st.st_mode & stat.S_IXUSR)

    def _by_stat(self, rel: str, full: str, st: os.stat_result) -> Digest:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self._stats.get(rel)
        if cached is not None and cached[:5] == key:
            return Digest(cached[5], st.st_size)
        digest = digest_file(full)
        # Racy: recorded too soon after the last change to trust the stat next time.
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > self.racy_ns:
            self._stats[rel] = (*key, digest.hash)
            self._dirty_stats = True
        elif self._stats.pop(rel, None) is not None:
            self._dirty_stats = True
        return digest


def _load_map(path: str) -> dict[Any, Any]:
    try:
        with open(path, "rb") as fh:
            version, data = pickle.load(fh)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
        return {}
    return data if version == _STATE_VERSION and isinstance(data, dict) else {}


def _save_map(path: str, data: dict[Any, Any]) -> bool:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump((_STATE_VERSION, data), fh, pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        return False
    return True
