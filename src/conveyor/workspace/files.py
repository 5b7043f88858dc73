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
import contextlib
import hashlib
import os
import pickle
import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.fsutil import atomic_file, ensure_state_dir
from conveyor.model import Digest
from conveyor.workspace import git
from conveyor.workspace.globs import WILDCARD, anchor, glob_regex

EMPTY = Digest(hashlib.sha256(b"").hexdigest(), 0)
# A stat entry recorded less than this long after the file's mtime is "racy".
RACY_NS = 2_000_000_000
# Reads of 64 KiB: a buffer below malloc's mmap threshold (128 KiB). A 1 MiB read buffer
# was mapped and unmapped for every file, 5x the cost of hashing a checkout of small
# files (20,000 files of 2.5 kB: 1.8 s, now 0.3 s); larger files hash as fast either way.
_CHUNK = 1 << 16
_STATE_VERSION = 2


def digest_bytes(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def digest_file(path: str) -> Digest:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:  # most files: one read and the one that says it is all
            more = os.read(fd, _CHUNK)
            if not more:
                return Digest(hashlib.sha256(data).hexdigest(), len(data))
            data += more
        h = hashlib.sha256(data)
        size = len(data)
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
            size += len(chunk)
    except OSError as exc:
        # os.read's errors (a directory where the file was) do not name the file.
        raise type(exc)(exc.errno, exc.strerror, path) from None
    finally:
        os.close(fd)
    return Digest(h.hexdigest(), size)


@dataclass(frozen=True)
class FileInfo:
    digest: Digest
    executable: bool


GitState = tuple[dict[str, tuple[str, bool]], set[str]]


class GitScan:
    """What git knows of a workspace: the index (`ls-files -s`), the tracked files changed
    since (`diff-files`) and, when asked for, the untracked files that are not ignored.
    All are started at once and read when first needed, so they overlap each other and
    whatever Conveyor does meanwhile (the rest of its start-up): on a no-op run they are
    the floor. The untracked scan is the slowest and only inputs chosen by `inputs:`
    globs can include untracked files, so a caller that knows none will be asked for
    them passes `untracked=False`; they are then listed on demand."""

    def __init__(
        self, root: str, *, untracked: bool = True, index_cache: str | None = None
    ) -> None:
        self.root = root
        self.started_ns = time.time_ns()
        """When git was asked: a file whose mtime or ctime is later may differ from what
        the scan says of it (a job or an editor wrote it since)."""
        self._procs: dict[str, git.Running] = {}
        self._state: GitState | None = None
        self._untracked: list[str] | None = None
        self._failed = False
        self._index_cache = index_cache
        self._index_key = _index_key(root) if index_cache else None
        self._tracked = self._cached_index()
        if self._tracked is None:
            self._start("ls", git.start_index)
        self._start("diff", git.start_modified)
        if untracked:
            self._start("untracked", git.start_untracked)

    # `git ls-files -s` of 20,000 files is 1.5 MB to read and parse on every run; the
    # parsed map is kept, keyed by the index file's identity. Git replaces the index by
    # a rename, so a new index is a new inode, and an index changed within the racy
    # window of being read is never kept (the same rule as the stat cache).
    def _cached_index(self) -> dict[str, tuple[str, bool]] | None:
        if self._index_cache is None or self._index_key is None:
            return None
        try:
            with open(self._index_cache, "rb") as fh:
                key, tracked = pickle.load(fh)
        except (OSError, ValueError, EOFError, TypeError, pickle.UnpicklingError):
            return None
        return tracked if key == self._index_key and isinstance(tracked, dict) else None

    def _keep_index(self, tracked: dict[str, tuple[str, bool]]) -> None:
        key = self._index_key
        if self._index_cache is None or key is None or key != _index_key(self.root):
            return
        if time.time_ns() - max(key[3], key[4]) <= RACY_NS:
            return
        with contextlib.suppress(OSError), atomic_file(self._index_cache) as fh:
            pickle.dump((key, tracked), fh, pickle.HIGHEST_PROTOCOL)

    def _start(self, name: str, start: Callable[[str], git.Running]) -> None:
        if self._failed:
            return
        try:
            self._procs[name] = start(self.root)
        except OSError:  # no git at all: every file is then an untracked file
            self._failed = True

    def _collect(self, name: str) -> bytes | None:
        running = self._procs.pop(name, None)
        if running is None:
            return None
        out = running.output()
        if out is None:
            self._failed = True
        return out

    def result(self) -> GitState | None:
        """(tracked: path -> (blob id, executable), tracked paths whose content changed),
        or None when the workspace is not a git checkout (or git is missing)."""
        if self._state is None and not self._failed:
            tracked = self._tracked
            if tracked is None:
                ls = self._collect("ls")
                if ls is not None:
                    tracked = git.parse_index(ls)
                    self._keep_index(tracked)
            diff = self._collect("diff")
            if tracked is not None and diff is not None:
                self._state = tracked, {n.decode() for n in diff.split(b"\0") if n}
        return None if self._failed else self._state

    def untracked(self) -> list[str]:
        """Untracked files that are not ignored (listed now if they were not asked for)."""
        if self._untracked is None:
            if "untracked" not in self._procs:
                self._start("untracked", git.start_untracked)
            out = self._collect("untracked")
            self._untracked = [n.decode() for n in out.split(b"\0") if n] if out else []
        return self._untracked

    def close(self) -> None:
        """Reap the processes if nobody asked for their output (a run that stopped early)."""
        for running in self._procs.values():
            running.close()
        self._procs.clear()


def workspace_state_file(root: str) -> str:
    """The file-state of the workspace at `root` (its state directory is created)."""
    return os.path.join(ensure_state_dir(root, "cache"), "files.state")


def workspace_index_cache(root: str) -> str | None:
    """Where runs keep the parsed git index of `root` (None: no usable state directory)."""
    try:
        return index_cache_file(workspace_state_file(root))
    except OSError:
        return None


def index_cache_file(state_file: str) -> str:
    """Where the parsed git index is kept: beside the workspace's file-state."""
    return os.path.join(os.path.dirname(state_file), "git-index")


def _index_key(root: str) -> tuple[int, int, int, int, int] | None:
    """The identity of the workspace's git index, when the workspace is a plain checkout
    whose index git would use (no GIT_DIR or GIT_INDEX_FILE overriding it)."""
    if any(v in os.environ for v in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE")):
        return None
    try:
        st = os.stat(os.path.join(root, ".git", "index"))
    except OSError:  # not the top of a checkout, a worktree (.git is a file), no index
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


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
        self._walked: list[str] | None = None
        """Every file, when the workspace is not a git checkout."""
        self._sorted: list[str] | None = None
        self._sorted_all: list[str] | None = None
        self._produced: set[str] = set()
        """Files jobs of this run produced (declared outputs, stored or restored): inputs
        of the jobs that need them although they did not exist when git was asked."""
        self._assumed: dict[str, FileInfo] = {}
        """Files a cache hit would restore, by what it would restore (for `why`)."""
        self.initially_dirty: frozenset[str] = frozenset()
        """Tracked files that differed from git's index when git was first asked."""
        self._converted: set[str] | None = None
        self._converted_asked = False

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
        """(tracked: path -> (blob id, executable), tracked paths whose content changed)."""
        if self._git is None:
            if self._scan is None:
                self._scan = GitScan(
                    self.root, untracked=False, index_cache=index_cache_file(self.state_file)
                )
            state = self._scan.result()
            if state is None:
                self._walked = self._walk()
            self._git = state if state is not None else ({}, set())
            self.initially_dirty = frozenset(self._git[1])
        return self._git

    def _untracked(self) -> list[str]:
        self._git_state()
        if self._walked is not None:
            return self._walked
        assert self._scan is not None
        return self._scan.untracked()

    def _walk(self) -> list[str]:
        """Every file of a workspace that is not a git checkout."""
        out = []
        for base, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d not in (".git", ".conveyor")]
            rel = os.path.relpath(base, self.root)
            for name in files:
                out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
        return out

    def tracked(self) -> dict[str, tuple[str, bool]] | None:
        """Tracked file -> (blob id, executable), as git's index says; None when the
        workspace is not a git checkout."""
        tracked, _dirty = self._git_state()
        return None if self._walked is not None else tracked

    def candidates(self) -> list[str]:
        """Every file an `inputs:` glob chooses from, sorted (tracked, untracked and not
        ignored, produced by jobs of this run)."""
        return self._pool(with_untracked=True)

    def _pool(self, with_untracked: bool) -> list[str]:
        """Files inputs are chosen from, sorted: tracked, and untracked-not-ignored too
        when asked for (default inputs are tracked files only)."""
        if with_untracked:
            if self._sorted_all is None:
                tracked, _dirty = self._git_state()
                self._sorted_all = sorted({*tracked, *self._untracked(), *self._produced})
            return self._sorted_all
        if self._sorted is None:
            tracked, _dirty = self._git_state()
            self._sorted = sorted(tracked) if self._walked is None else sorted(self._walked)
        return self._sorted

    def scan_started_ns(self) -> int:
        """When git was asked about the workspace (now, if it was not yet)."""
        self._git_state()
        return self._scan.started_ns if self._scan is not None else time.time_ns()

    def add_produced(self, paths: Sequence[str]) -> None:
        """Files a job of this run produced: from now on they can be inputs."""
        new = [p for p in paths if p not in self._produced]
        if new:
            self._produced.update(new)
            self._sorted_all = None

    def assume(self, rel: str, info: FileInfo) -> None:
        """Take `rel` to hold `info` (what a predicted cache hit would restore there)."""
        self._assumed[rel] = info
        self.add_produced([rel])

    def changed_since(self, paths: Sequence[str], since_ns: int) -> list[str]:
        """Those of `paths` git called clean whose mtime or ctime is `since_ns` or later
        (written since git was asked), or that are gone: what the scan says of them may
        be stale. Each is marked changed, so its digest is taken from its content."""
        stale = self.written_since(paths, since_ns)
        self._git_state()[1].update(stale)
        return stale

    def written_since(
        self, paths: Sequence[str], since_ns: int, sizes: dict[str, int] | None = None
    ) -> list[str]:
        """What `changed_since` finds, without marking them: only stats, so it may run
        outside the lock that guards the marks (other threads keep on meanwhile).
        `sizes`, if given, gets the size of each regular file stated (a caller that
        needs them too stats each file once)."""
        tracked, dirty = self._git_state()
        stale = []
        for rel in paths:
            if rel not in tracked or rel in dirty:
                continue  # known by its stat: never stale
            try:
                st = os.lstat(f"{self.root}/{rel}")
            except OSError:
                stale.append(rel)
                continue
            if max(st.st_mtime_ns, st.st_ctime_ns) >= since_ns:
                stale.append(rel)
            elif sizes is not None and stat.S_ISREG(st.st_mode):
                sizes[rel] = st.st_size
        return stale

    def _under(self, prefix: str, tracked_only: bool = False) -> list[str]:
        pool = self._pool(with_untracked=not tracked_only)
        start = bisect.bisect_left(pool, prefix)
        end = bisect.bisect_left(pool, prefix + "\U0010ffff")
        tracked, dirty = self._git_state()
        out = []
        assumed = self._assumed
        for path in pool[start:end]:
            if (
                (path in dirty or path not in tracked)
                and path not in assumed
                and not os.path.isfile(os.path.join(self.root, path))
            ):
                continue  # deleted since the last commit
            out.append(path)
        return out

    def select(self, base: str, patterns: Sequence[str]) -> list[str]:
        """Workspace-relative files for a job in directory `base`. Patterns are globs
        relative to `base` (`../x` reaches out, '!' excludes); none means every tracked
        file under `base`. A glob chooses among tracked, untracked-not-ignored and
        produced files (as Turborepo's inputs do); a pattern without a wildcard that names
        a file chooses it whatever git says of it (a generated, ignored file the job
        names is one of its inputs)."""
        if not patterns:
            prefix = "" if base in (".", "") else base.rstrip("/") + "/"
            return self._under(prefix, tracked_only=True)
        chosen: set[str] = set()
        excludes = [glob_regex(anchor(base, p[1:])) for p in patterns if p.startswith("!")]
        for pattern in patterns:
            if pattern.startswith("!"):
                continue
            anchored = anchor(base, pattern)
            if not WILDCARD.search(anchored) and (
                anchored in self._assumed or os.path.isfile(f"{self.root}/{anchored}")
            ):
                chosen.add(anchored)
                continue
            literal = re.split(r"[*?\[]", anchored, maxsplit=1)[0]
            prefix = literal if "/" not in literal else literal[: literal.rfind("/") + 1]
            rx = glob_regex(anchored)
            chosen.update(p for p in self._under(prefix) if rx.fullmatch(p))
        return sorted(p for p in chosen if not any(rx.fullmatch(p) for rx in excludes))

    # -- digests -------------------------------------------------------------------------
    def info(self, rel: str) -> FileInfo:
        """Digest and executable bit of a workspace-relative file."""
        if self._assumed:
            assumed = self._assumed.get(rel)
            if assumed is not None:
                return assumed
        tracked, dirty = self._git_state()
        entry = tracked.get(rel)
        if entry is not None and rel not in dirty:
            oid, executable = entry
            known = self._oids.get(oid)
            if known is not None:
                return FileInfo(Digest(known[0], known[1]), executable)
            digest = digest_file(f"{self.root}/{rel}")
            self._oids[oid] = (digest.hash, digest.size_bytes)
            self._dirty_oids = True
            return FileInfo(digest, executable)
        full = f"{self.root}/{rel}"
        st = os.stat(full)
        return FileInfo(self._by_stat(rel, full, st), bool(st.st_mode & stat.S_IXUSR))

    def identities(self, paths: Sequence[str]) -> list[str]:
        """For each file (in order), a string that names its content and executable bit
        exactly: `git:<blob id>` for a clean tracked file (no digest needed: a blob id
        names the same bytes as a SHA-256 does), its digest otherwise. What the action
        memo is keyed on; a file deleted meanwhile is named `-`."""
        tracked, dirty = self._git_state()
        assumed = self._assumed
        out = []
        for rel in paths:
            entry = tracked.get(rel)
            if entry is not None and rel not in dirty and rel not in assumed:
                out.append(f"git:{entry[0]}{'x' if entry[1] else ''}")
                continue
            try:
                i = self.info(rel)
            except FileNotFoundError:
                out.append("-")
                continue
            out.append(f"{i.digest}{'x' if i.executable else ''}")
        return out

    def unconverted(self, paths: Sequence[str]) -> bool:
        """Whether each of `paths` that `identities` names by its blob id holds exactly
        the blob's bytes, here and in any checkout where this holds too: no attribute or
        core.autocrlf converts it (`git.converted`, asked once, for every tracked file).
        Only then can a fingerprint made here be trusted in another checkout."""
        if not self._converted_asked:
            tracked, _dirty = self._git_state()
            self._converted_asked = True
            self._converted = (
                set() if self._walked is not None else git.converted(self.root, sorted(tracked))
            )
        converted = self._converted
        return converted is not None and (not converted or converted.isdisjoint(paths))

    def hash_path(self, rel: str) -> Digest:
        full = os.path.join(self.root, rel)
        return self._by_stat(rel, full, os.stat(full))

    def file_state(self, rel: str) -> tuple[Digest, bool]:
        """Digest and executable bit of any workspace file (outputs too), by the stat cache."""
        full = f"{self.root}/{rel}"
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
        with atomic_file(path, makedirs=True) as fh:
            pickle.dump((_STATE_VERSION, data), fh, pickle.HIGHEST_PROTOCOL)
    except OSError:
        return False
    return True
