"""The one module that runs git: each git command Conveyor asks, as a typed function.

Git runs in the workspace's directory with the caller's environment, as the user's own
git would (GIT_DIR, GIT_INDEX_FILE and the user's config apply), and never reads a
terminal. Its stderr is dropped, except where its message is shown to a user (diff
coverage: `GitError`). A git that cannot be started at all (not installed) raises
OSError, which each caller turns into what it means there: usually "not a git
checkout".

Commands a caller overlaps with other work are started (`start_*`, returning a
`Running`) and read when their answer is needed: a no-op run waits on the workspace scan
and nothing else, so its three commands run at once, beside Conveyor's own start-up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

GIT = "git"

IndexEntries = dict[str, tuple[str, bool]]
"""Tracked file -> (blob id, executable): regular files only (no links, no submodules)."""


class GitError(Exception):
    """Git ran and failed; the message is the last line it wrote to stderr."""


class Running:
    """A git command started, its answer not read yet."""

    def __init__(self, args: Sequence[str], root: str) -> None:
        self._proc = subprocess.Popen(
            [GIT, *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def output(self, timeout: float | None = None) -> bytes | None:
        """Its stdout once it has exited; None when it failed, or did not finish within
        `timeout` seconds (it is killed then)."""
        try:
            out, _ = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            return None
        return out if self._proc.returncode == 0 else None

    def paths(self) -> list[str] | None:
        """Its NUL-separated output (`-z`) as paths; None when it failed."""
        out = self.output()
        return None if out is None else [n.decode() for n in out.split(b"\0") if n]

    def words(self, timeout: float | None = None) -> list[str]:
        """Its output split at whitespace; none when it failed or timed out."""
        out = self.output(timeout)
        return out.decode().split() if out else []

    def close(self) -> None:
        """Stop it and reap it if its answer was not read (nobody needed it)."""
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()


# -- the workspace scan (workspace.files.GitScan) ---------------------------------------
def start_index(root: str) -> Running:
    """The index, staged entries with their blob ids (`ls-files -s`): see parse_index."""
    return Running(("ls-files", "-s", "-z"), root)


def start_modified(root: str) -> Running:
    """Tracked files whose content differs from the index (`diff-files`: git's racy-safe
    stat check), as paths."""
    return Running(("diff-files", "--name-only", "-z"), root)


def start_untracked(root: str, under: Sequence[str] = ()) -> Running:
    """Untracked files that are not ignored, as paths; only below the workspace-relative
    directories `under` ("dir/") when given."""
    return Running(("ls-files", "-o", "--exclude-standard", "-z", *_pathspec(under)), root)


def parse_index(out: bytes) -> IndexEntries:
    """The output of `start_index`: regular files (mode 100644 or 100755) only."""
    tracked: IndexEntries = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, oid, _stage = meta.split()
        if mode in (b"100644", b"100755"):
            tracked[path.decode()] = (oid.decode(), mode == b"100755")
    return tracked


CONVERTING = frozenset({"text", "eol", "crlf", "filter", "ident", "working-tree-encoding"})
"""The attributes under which git may write a file's bytes other than its blob's (line
endings, a smudge filter such as Git LFS's, $Id$, an encoding) and call it clean."""


def converted(root: str, paths: Sequence[str]) -> set[str] | None:
    """Those of the tracked `paths` whose bytes in the working tree may differ from
    their blob's: an attribute in `CONVERTING` is set for them (`check-attr`, which reads
    every attributes file git does). None when any may (core.autocrlf is on) or git
    cannot tell."""
    try:
        crlf = _run(root, ("config", "--get", "core.autocrlf"))
        if crlf.returncode not in (0, 1):  # 1: not set
            return None
        if crlf.stdout.strip().lower() not in (b"", b"false", b"no", b"off", b"0"):
            return None  # "true" and "input" both convert
        if not paths:
            return set()
        done = subprocess.run(
            [GIT, "check-attr", "-a", "-z", "--stdin"],
            cwd=root,
            input=b"\0".join(p.encode() for p in paths) + b"\0",
            capture_output=True,
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    # `-a` names only the attributes set, unset or given a value: (path, name, value).
    fields = done.stdout.split(b"\0")
    out = set()
    for i in range(0, len(fields) - 2, 3):
        name, value = fields[i + 1].decode(), fields[i + 2]
        if name in CONVERTING and value != b"unset":  # unset: never converted ("binary")
            out.add(fields[i].decode())
    return out


# -- files written by a run (run.undeclared) ---------------------------------------------
def start_content_changes(root: str, under: Sequence[str] = ()) -> Running:
    """Tracked files whose bytes differ from HEAD's, as paths. Not diff-files: a file
    written again with the same bytes is no change."""
    args = ("diff", "--no-ext-diff", "--no-renames", "--name-only", "-z", *_pathspec(under))
    return Running(args, root)


def not_ignored(root: str, paths: Sequence[str]) -> list[str]:
    """Those of the untracked `paths` that git does not ignore (`check-ignore
    --no-index`: the index is not read). All of them when git cannot tell."""
    if not paths:
        return []
    try:
        done = subprocess.run(
            [GIT, "check-ignore", "--no-index", "--stdin", "-z"],
            cwd=root,
            input=b"\0".join(p.encode() for p in paths) + b"\0",
            capture_output=True,
        )
    except OSError:
        return list(paths)
    if done.returncode not in (0, 1):  # 1: none is ignored
        return list(paths)
    ignored = {p.decode() for p in done.stdout.split(b"\0") if p}
    return [p for p in paths if p not in ignored]


# -- the run context (graph.context.GitFacts) ------------------------------------------
def start_branch(root: str) -> Running:
    """HEAD's branch, short (`main`); fails on a detached HEAD. An unborn branch (no
    commit yet) has its name."""
    return Running(("symbolic-ref", "-q", "--short", "HEAD"), root)


def start_head(root: str) -> Running:
    """HEAD's commit id; fails before the first commit."""
    return Running(("rev-parse", "-q", "--verify", "HEAD"), root)


def start_tags_at_head(root: str) -> Running:
    """The tags pointing at HEAD, one a line."""
    return Running(("tag", "--points-at", "HEAD"), root)


def describe(root: str) -> str:
    """`git describe --tags --always`: the newest tag reachable from HEAD with the
    commits since and HEAD's short id (`v1.4.0-3-g8a7d0ce`), the tag alone on a tagged
    commit, HEAD's short id without any tag; GitError when there is no commit."""
    return _text(root, ("describe", "--tags", "--always")).strip()


def remote_url(root: str) -> str | None:
    """The URL of the checkout's `origin` remote, else of its first remote; None when it
    has none (or is no checkout). As configured: it may hold credentials."""
    done = _run(root, ("remote",))
    names = done.stdout.decode("utf-8", "replace").split() if done.returncode == 0 else []
    if not names:
        return None
    name = "origin" if "origin" in names else names[0]
    got = _run(root, ("remote", "get-url", name))
    url = got.stdout.decode("utf-8", "replace").strip()
    return url if got.returncode == 0 and url else None


# -- changes since a ref (graph.affected, gates.diffcov) -------------------------------
def is_commit(root: str, ref: str) -> bool:
    """Whether `ref` names a commit."""
    done = _run(root, ("rev-parse", "--verify", "-q", f"{ref}^{{commit}}"))
    return done.returncode == 0


def changed_since(root: str, ref: str) -> list[str]:
    """Tracked files that differ between `ref` and the working tree."""
    return _paths(_checked(root, ("diff", "--name-only", "-z", "--no-renames", ref)))


def untracked(root: str) -> list[str]:
    """Untracked files that are not ignored, asked now (`start_untracked` to overlap)."""
    return _paths(_checked(root, ("ls-files", "-o", "--exclude-standard", "-z")))


def toplevel(root: str) -> str:
    """The top directory of the checkout holding `root`."""
    return _text(root, ("rev-parse", "--show-toplevel")).strip()


def merge_base(root: str, ref: str, other: str = "HEAD") -> str:
    """The commit where `other` left `ref` (their best common ancestor)."""
    return _text(root, ("merge-base", ref, other)).strip()


def diff_patch(root: str, since: str) -> str:
    """The unified diff, with no context lines, from commit `since` to the working
    tree, below `root`; paths unquoted, renames as a deletion and an addition."""
    args = ("-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff")
    return _text(root, (*args, "--unified=0", "--no-renames", since, "--", "."))


# -- running ---------------------------------------------------------------------------
def _pathspec(under: Sequence[str]) -> tuple[str, ...]:
    return ("--", *under) if under else ()


def _paths(out: bytes) -> list[str]:
    return [p.decode() for p in out.split(b"\0") if p]


def _run(root: str, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [GIT, *args], cwd=root, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )


def _checked(root: str, args: Sequence[str]) -> bytes:
    done = _run(root, args)
    if done.returncode != 0:
        raise GitError(_last_line(done.stderr.decode("utf-8", "replace")))
    return done.stdout


def _text(root: str, args: Sequence[str]) -> str:
    """Its stdout as text (in the locale's encoding); GitError when it failed."""
    done = subprocess.run(
        [GIT, *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise GitError(_last_line(done.stderr))
    return done.stdout


def _last_line(stderr: str) -> str:
    text = stderr.strip()
    return text.splitlines()[-1] if text else ""
