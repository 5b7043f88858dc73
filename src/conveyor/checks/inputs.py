"""Declared `inputs:` that match no file, with a did-you-mean from the workspace's files.

A typo in an input glob (`src/mian.py`) silently leaves a file out of the job's cache
key, so edits to it never re-run the job (issue 10). `unmatched_inputs` finds such
patterns for one job; it is pure and cheap enough to call on every run: one compiled
regex per pattern and a bisected slice of the sorted pool, matched exactly as
`WorkspaceFiles.select` does. A pattern that a job it needs (directly or through
others) may produce is not reported, since such files do not exist before the run.
`conveyor validate` reports them as located warnings; the run reports them too.
"""

from __future__ import annotations

import bisect
import difflib
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from conveyor.errors import ConfigPath
from conveyor.model import Job, Pipeline
from conveyor.workspace.globs import anchor, glob_regex

__all__ = [
    "Unmatched",
    "pipeline_unmatched",
    "produced_by",
    "unmatched_inputs",
    "unmatched_message",
    "workspace_pool",
]

_GLOB = re.compile(r"[*?\[]")


class Unmatched(NamedTuple):
    """A positive `inputs:` pattern of a job that matches no file of the workspace."""

    job: str
    """The job instance's name."""
    pattern: str
    """As written, relative to the job's dir."""
    suggestion: str | None
    """A close path that exists, relative to the job's dir as the pattern is, or None."""
    path: ConfigPath
    """Where the pattern is in the file: ('jobs', BASE, 'inputs', i)."""


def unmatched_message(item: Unmatched) -> str:
    """The one-line text: `'src/mian.py' matches no file (did you mean 'src/main.py'?)`;
    callers prefix it with a location (`conveyor.yml:5:17: warning: jobs.x.inputs[1]: `)
    or the job's name."""
    hint = f" (did you mean {item.suggestion!r}?)" if item.suggestion else ""
    return f"{item.pattern!r} matches no file{hint}"


def unmatched_inputs(
    job: Job, pool: Sequence[str], produced: Callable[[str], bool] | None = None
) -> list[Unmatched]:
    """The job's positive `inputs:` patterns ('!' excludes are not checked) that match
    nothing in `pool`: the workspace-relative files inputs are chosen from (tracked and
    untracked-not-ignored), **sorted**. `produced(anchored)` says whether a pattern, made
    workspace-relative, may be written by an upstream job (see `produced_by`); those are
    not reported."""
    out: list[Unmatched] = []
    for i, pattern in enumerate(job.inputs):
        if pattern.startswith("!"):
            continue
        anchored = anchor(job.dir, pattern)
        if _matches(anchored, pool) or (produced is not None and produced(anchored)):
            continue
        suggestion = _suggest(anchored, pool)
        if suggestion is not None:
            suggestion = _relative(suggestion, job.dir, trailing=pattern.endswith("/"))
        out.append(Unmatched(job.name, pattern, suggestion, ("jobs", job.base, "inputs", i)))
    return out


def produced_by(
    job: Job, jobs: Mapping[str, Job], needs: Mapping[str, Sequence[str]]
) -> Callable[[str], bool]:
    """Whether an anchored input pattern of `job` may be an output of a job it needs,
    directly or transitively. `needs` maps instance names to the instance names they need
    (`graph.adjacency`). Conservative: when two globs might overlap, they do."""
    outputs: list[str] = []
    seen = {job.name}
    stack = list(needs.get(job.name, ()))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        upstream = jobs.get(name)
        if upstream is None:
            continue
        outputs.extend(anchor(upstream.dir, o) for o in upstream.outputs)
        stack.extend(needs.get(name, ()))
    if not outputs:
        return lambda _pattern: False
    compiled = [_Glob.of(o) for o in outputs]

    def produced(pattern: str) -> bool:
        wanted = _Glob.of(pattern)
        return any(_overlaps(wanted, out) for out in compiled)

    return produced


def pipeline_unmatched(pipeline: Pipeline, pool: Sequence[str]) -> list[Unmatched]:
    """`unmatched_inputs` of every job of the pipeline, upstream outputs accounted for;
    matrix instances that report the same thing at the same place are reported once."""
    from conveyor.graph import plan as graph

    jobs = {j.name: j for j in pipeline.jobs}
    needs: dict[str, list[str]] = {}
    out: list[Unmatched] = []
    seen: set[tuple[ConfigPath, str | None]] = set()

    def produced(job: Job) -> Callable[[str], bool]:
        # Upstream outputs are gathered only for a pattern that matched nothing (rare):
        # the transitive needs of every job of a large pipeline are not free.
        built: list[Callable[[str], bool]] = []

        def check(pattern: str) -> bool:
            if not built:
                if not needs:
                    needs.update(graph.adjacency(pipeline))
                built.append(produced_by(job, jobs, needs))
            return built[0](pattern)

        return check

    for job in pipeline.jobs:
        for item in unmatched_inputs(job, pool, produced(job)):
            if (item.path, item.suggestion) not in seen:
                seen.add((item.path, item.suggestion))
                out.append(item)
    return out


def workspace_pool(root: str) -> list[str]:
    """The files inputs are chosen from, sorted: git-tracked files that still exist and
    untracked files git does not ignore; every file (outside .git and .conveyor) when
    `root` is not a git checkout. Runs git (through `digest.GitScan`)."""
    from conveyor.workspace.files import GitScan

    scan = GitScan(root, untracked=True)
    try:
        state = scan.result()
        if state is None:
            return sorted(_walk(root))
        tracked, dirty = state
        files = {p for p in tracked if p not in dirty or os.path.isfile(os.path.join(root, p))}
        files.update(scan.untracked())
        return sorted(files)
    finally:
        scan.close()


def _walk(root: str) -> Iterable[str]:
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".conveyor")]
        rel = os.path.relpath(base, root).replace(os.sep, "/")
        for name in files:
            yield name if rel == "." else f"{rel}/{name}"


def _literal(anchored: str) -> str:
    """The part of a pattern before its first glob character."""
    return _GLOB.split(anchored, maxsplit=1)[0]


def _matches(anchored: str, pool: Sequence[str]) -> bool:
    # Every path the regex matches starts with the pattern's literal part: bisect to it.
    prefix = _literal(anchored)
    rx = glob_regex(anchored)
    start = bisect.bisect_left(pool, prefix)
    end = bisect.bisect_left(pool, prefix + "\U0010ffff", start)
    return any(rx.fullmatch(pool[k]) for k in range(start, end))


class _Glob(NamedTuple):
    text: str
    rx: re.Pattern[str]
    literal: str
    is_glob: bool

    @classmethod
    def of(cls, text: str) -> _Glob:
        return cls(text, glob_regex(text), _literal(text), _GLOB.search(text) is not None)


def _overlaps(pattern: _Glob, output: _Glob) -> bool:
    """Whether files matched by an input pattern may be written by a declared output (a
    path, a directory meaning all below it, or a glob); both workspace-relative."""
    if output.rx.fullmatch(pattern.text) or pattern.rx.fullmatch(output.text):
        return True
    if not pattern.is_glob and not output.is_glob:
        return False  # two plain paths, neither under the other
    # A glob on either side: overlapping literal parts may overlap.
    return pattern.literal.startswith(output.literal) or output.literal.startswith(pattern.literal)


_NAMES: list[tuple[Sequence[str], list[str], dict[str, list[str]]]] = []


def _names(pool: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The pool's directories and its files by basename, for suggestions; remembered for
    the last pool (by identity), since a pipeline asks once per unmatched pattern."""
    if _NAMES and _NAMES[0][0] is pool:
        return _NAMES[0][1], _NAMES[0][2]
    dirs: set[str] = set()
    by_base: dict[str, list[str]] = {}
    for path in pool:
        head, _, base = path.rpartition("/")
        by_base.setdefault(base, []).append(path)
        while head and head not in dirs:
            dirs.add(head)
            head = head.rpartition("/")[0]
    _NAMES[:] = [(pool, sorted(dirs), by_base)]
    return _NAMES[0][1], by_base


def _suggest(anchored: str, pool: Sequence[str]) -> str | None:
    """A workspace-relative path close to an unmatched pattern: for a plain path, the
    closest file or directory, else a file of the closest basename; for a glob whose
    directory part has no file, the glob under the closest directory."""
    dirs, by_base = _names(pool)
    if _GLOB.search(anchored) is not None:
        literal = _literal(anchored)
        head = literal[: literal.rfind("/")] if "/" in literal else ""
        if not head or head in dirs:
            return None
        close = difflib.get_close_matches(head, dirs, n=1, cutoff=0.6)
        return close[0] + anchored[len(head) :] if close else None
    close = difflib.get_close_matches(anchored, [*pool, *dirs], n=1, cutoff=0.6)
    if close:
        return close[0]
    base = posixpath.basename(anchored)
    names = difflib.get_close_matches(base, list(by_base), n=1, cutoff=0.6)
    if not names:
        return None
    # Of the files with that name, the one whose whole path is closest.
    return difflib.get_close_matches(anchored, by_base[names[0]], n=1, cutoff=0.0)[0]


def _relative(path: str, job_dir: str, *, trailing: bool) -> str:
    """A workspace-relative suggestion written as the pattern was: relative to the job's dir."""
    rel = path if job_dir in (".", "") else posixpath.relpath(path, job_dir)
    return rel + "/" if trailing and not rel.endswith("/") else rel
