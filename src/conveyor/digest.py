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

from conveyor.model import Digest

EMPTY = Digest(hashlib.sha256(b"").hexdigest(), 0)
# A stat entry recorded less than this long after the file's mtime is "racy".
RACY_NS = 2_000_000_000
_STATE_VERSION = 1


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


class WorkspaceFiles:
    """The files of one workspace and their digests, with the two shortcuts above.

    One instance per run: git is asked once, the state file read once and written once.
    """

    def __init__(self, root: str, state_file: str, *, racy_ns: int = RACY_NS) -> None:
        self.root = root
        self.racy_ns = racy_ns
        self.state_file = state_file
        self._oids: dict[str, tuple[str, int]] = {}
        self._stats: dict[str, tuple[int, int, int, int, int, str]] = {}
        self._dirty_state = False
        self._git: tuple[dict[str, tuple[str, bool]], set[str], list[str]] | None = None
        self._sorted: list[str] | None = None
        self._load()

    # -- persisted state -------------------------------------------------------------
    def _load(self) -> None:
        try:
            with open(self.state_file, "rb") as fh:
                version, oids, stats = pickle.load(fh)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
            return
        if version == _STATE_VERSION:
            self._oids, self._stats = oids, stats

    def save(self) -> None:
        """Write the state atomically; a failure only costs re-hashing next time."""
        if not self._dirty_state:
            return
        try:
            os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
            tmp = f"{self.state_file}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump((_STATE_VERSION, self._oids, self._stats), fh, pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.state_file)
            self._dirty_state = False
        except OSError:
            pass

    # -- git ---------------------------------------------------------------------------
    def _git_state(self) -> tuple[dict[str, tuple[str, bool]], set[str], list[str]]:
        """(tracked: path -> (blob id, executable), modified tracked paths, untracked paths)."""
        if self._git is not None:
            return self._git
        tracked: dict[str, tuple[str, bool]] = {}
        dirty: set[str] = set()
        untracked: list[str] = []
        try:
            ls = subprocess.run(
                ["git", "ls-files", "-s", "-z"], cwd=self.root, capture_output=True, check=True
            ).stdout
            for entry in ls.split(b"\0"):
                if not entry:
                    continue
                meta, path = entry.split(b"\t", 1)
                mode, oid, _stage = meta.split()
                if mode in (b"100644", b"100755"):
                    tracked[path.decode()] = (oid.decode(), mode == b"100755")
            st = subprocess.run(
                ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
                cwd=self.root,
                capture_output=True,
                check=True,
            ).stdout
            for entry in st.split(b"\0"):
                if len(entry) < 4:
                    continue
                name = entry[3:].decode()
                if entry[:2] == b"??":
                    untracked.append(name)
                else:
                    dirty.add(name)
        except (OSError, subprocess.CalledProcessError):
            tracked, dirty, untracked = {}, set(), self._walk()
        self._git = (tracked, dirty, untracked)
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
            digest = self.hash_path(rel)
            self._oids[oid] = (digest.hash, digest.size_bytes)
            self._dirty_state = True
            return FileInfo(digest, executable)
        full = os.path.join(self.root, rel)
        st = os.stat(full)
        return FileInfo(self._by_stat(rel, full, st), bool(st.st_mode & stat.S_IXUSR))

    def hash_path(self, rel: str) -> Digest:
        full = os.path.join(self.root, rel)
        return self._by_stat(rel, full, os.stat(full))

    def _by_stat(self, rel: str, full: str, st: os.stat_result) -> Digest:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self._stats.get(rel)
        if cached is not None and cached[:5] == key:
            return Digest(cached[5], st.st_size)
        digest = digest_file(full)
        # Racy: recorded too soon after the last change to trust the stat next time.
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > self.racy_ns:
            self._stats[rel] = (*key, digest.hash)
            self._dirty_state = True
        else:
            self._stats.pop(rel, None)
        return digest
