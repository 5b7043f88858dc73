"""Files a run wrote in the workspace that no job declares: found after the run, blamed on
the job that wrote them, and kept out of the cache.

A job's cached result holds only its declared `outputs:`; whatever else it writes is
missing after a cache hit in a fresh clone, although the run said "cached". So after a
run in which jobs were executed and stored, the directories of those jobs are looked at
once more for what is new or modified (untracked files that git does not ignore,
tracked files whose bytes differ from their blob), and every such file written since
the run started (its mtime or ctime) that is not a declared output, report, artifact or
dependency cache of some job, nor Conveyor's own state, is attributed to a job: to the
only job that was running when the file was last written, else to the executed jobs
whose `dir:` holds it (the deepest first). Looking once per run rather than around
every job keeps a cold run of a thousand jobs at one walk.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from conveyor.cache.jobs import JobCache
from conveyor.model import Job, JobResult
from conveyor.workspace import git
from conveyor.workspace.globs import anchor, paths_matcher, patterns_matcher

# Caches tools keep beside the sources for themselves, rebuilt whenever missing, never
# what another job reads: not worth a warning when a project's .gitignore omits them.
_TOOL_CACHES = re.compile(
    r"(?:.*/)?(?:__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.hypothesis)(?:/.*)?"
)

# File times come from the kernel's coarse clock, up to a tick (10 ms at HZ=100)
# behind the time a job's start was read with.
_SLACK = 0.02
# Above this many tracked files in the directories to look at, git (which reads its
# whole index: ~130 ms at 20,000 files) is cheaper than a walk with a stat per file.
_WALK_MAX = 5000


class Ran(NamedTuple):
    job: Job
    started: float
    finished: float


def written_since(
    root: str,
    since_ns: int,
    tracked: Mapping[str, tuple[str, bool]],
    initially_dirty: frozenset[str],
    dirs: Sequence[str],
    skip: Callable[[str], bool] = lambda rel: False,
) -> dict[str, float | None]:
    """Files below `dirs` written since `since_ns` (their mtime or ctime) that git does
    not ignore and that hold something new, with the time of that write (None: a tracked
    file deleted since, unless it was already missing or modified when the run started).
    `skip`: paths not worth looking at (declared outputs), left out before git is asked.

    Walked rather than asked of git (`git ls-files -o` and `git diff` read the whole
    index: 30 ms for one package of a 20,000-file monorepo, 130 ms for all of it):
    directories holding tracked files are walked, others only when their own mtime says
    an entry was added since; a tracked file written again is compared with its blob;
    the untracked files found, usually none, are checked against .gitignore at once."""
    prefixes = sorted({"" if d in (".", "") else d.rstrip("/") + "/" for d in dirs})
    if "" in prefixes:
        prefixes = [""]
    paths = sorted(tracked)
    under: list[str] = []
    for prefix in prefixes:
        lo = bisect.bisect_left(paths, prefix)
        hi = bisect.bisect_left(paths, prefix + "\U0010ffff")
        under += paths[lo:hi]
    if len(under) > _WALK_MAX:
        return _asked_of_git(root, since_ns, initially_dirty, prefixes, skip)
    holding = {""}
    for rel in under:
        cut = rel.rfind("/")
        while cut > 0 and rel[:cut] not in holding:
            holding.add(rel[:cut])
            cut = rel.rfind("/", 0, cut)
    seen: set[str] = set()
    found: dict[str, float | None] = {}
    untracked: list[str] = []
    stack = [p.rstrip("/") for p in prefixes]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if rel in (".git", ".conveyor") or skip(rel):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                if rel in holding or max(st.st_mtime_ns, st.st_ctime_ns) >= since_ns:
                    stack.append(rel)
                continue
            seen.add(rel)
            written = max(st.st_mtime_ns, st.st_ctime_ns)
            if written < since_ns:
                continue
            known = tracked.get(rel)
            if known is None:
                untracked.append(rel)
            elif not _same_blob(os.path.join(root, rel), st, known):
                found[rel] = written / 1e9
    for rel in under:
        if rel not in seen and rel not in initially_dirty and not skip(rel):
            try:
                os.lstat(os.path.join(root, rel))
            except OSError:
                found[rel] = None  # deleted during the run
    for rel in git.not_ignored(root, untracked):
        st = os.lstat(os.path.join(root, rel))
        found[rel] = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
    return found


def _asked_of_git(
    root: str,
    since_ns: int,
    initially_dirty: frozenset[str],
    prefixes: Sequence[str],
    skip: Callable[[str], bool],
) -> dict[str, float | None]:
    """`written_since` for many files: git's untracked files and content changes, both
    asked at once (its index read once each is then cheaper than a walk)."""
    under = [] if "" in prefixes else prefixes
    try:
        running = [
            git.start_untracked(root, under),
            git.start_content_changes(root, under),
        ]
    except OSError:
        return {}
    listed: list[str] = []
    for command in running:
        listed += command.paths() or []
    found: dict[str, float | None] = {}
    for rel in listed:
        if skip(rel):
            continue
        try:
            st = os.lstat(os.path.join(root, rel))
        except OSError:
            if rel not in initially_dirty:
                found[rel] = None
            continue
        written = max(st.st_mtime_ns, st.st_ctime_ns)
        if written >= since_ns:
            found[rel] = written / 1e9
    return found


def _same_blob(path: str, st: os.stat_result, known: tuple[str, bool]) -> bool:
    """Whether a tracked file still holds its blob (git's object id of the bytes), with
    its executable bit: written again unchanged (a formatter with nothing to do)."""
    oid, executable = known
    if bool(st.st_mode & 0o100) != executable or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == oid


def declared(jobs: Sequence[Job]) -> Callable[[str], bool]:
    """Whether a path is one some job declares it writes (outputs, reports, artifacts,
    caches), or a tool's own cache."""
    paths = []
    for job in jobs:
        mine = [*job.outputs, *(job.artifacts.paths if job.artifacts else ())]
        mine += [p for c in job.caches for p in c.paths if not p.startswith("~")]
        paths += [anchor(job.dir, p) for p in mine]
    matches = paths_matcher(paths)
    return lambda rel: matches(rel) or bool(_TOOL_CACHES.fullmatch(rel))


def attribute(
    written: dict[str, float | None], ran: Sequence[Ran], jobs: Sequence[Job]
) -> tuple[dict[str, list[str]], list[str]]:
    """(job name -> the undeclared files blamed on it, files blamed on no job)."""
    is_declared = declared(jobs)
    blamed: dict[str, list[str]] = {}
    nobody: list[str] = []
    for rel in sorted(written):
        if rel == ".conveyor" or rel.startswith(".conveyor/"):
            continue
        if is_declared(rel):
            continue
        when = written[rel]
        who = list(ran) if len(ran) == 1 else _by_time(when, ran)
        if len(who) != 1:
            who = _by_dir(rel, who or list(ran))
        if not who:
            nobody.append(rel)
        for r in who:
            blamed.setdefault(r.job.name, []).append(rel)
    return blamed, nobody


def _by_time(when: float | None, ran: Sequence[Ran]) -> list[Ran]:
    """The jobs that were running when a file was last written: those whose run holds
    the time, else the one that started soonest after it (a file's time comes from a
    coarse clock that lags by up to a tick, never leads)."""
    if when is None:
        return []
    inside = [r for r in ran if r.started <= when <= r.finished]
    if inside:
        return inside
    after = [r for r in ran if when < r.started <= when + _SLACK]
    if not after:
        return []
    first = min(r.started for r in after)
    return [r for r in after if r.started == first]


def _by_dir(rel: str, pool: Sequence[Ran]) -> list[Ran]:
    """The jobs of `pool` whose directory holds `rel`, only those of the deepest one."""
    best: list[Ran] = []
    depth = -1
    for r in pool:
        d = r.job.dir
        if d in (".", ""):
            here = 0
        elif rel.startswith(d.rstrip("/") + "/"):
            here = d.count("/") + 1
        else:
            continue
        if here > depth:
            best, depth = [r], here
        elif here == depth:
            best.append(r)
    return best


def keyed_without(
    jobcache: JobCache, by_name: dict[str, Job], written: dict[str, float | None]
) -> list[str]:
    """Take back the results stored for jobs whose `inputs:` choose a file that was
    written during the run after the job was keyed (so the key left it out: the files
    a glob chooses from were listed when the run started)."""
    warnings = []
    for name, (_digest, keyed) in list(jobcache.stored.items()):
        job = by_name.get(name)
        if job is None or not job.inputs:
            continue
        chosen = patterns_matcher(job.dir, job.inputs)
        missed = [
            rel
            for rel, when in written.items()
            if when is not None and rel not in keyed and chosen(rel)
        ]
        if missed:
            jobcache.retract(job)
            warnings.append(
                f"job '{name}' was not cached: its inputs include {', '.join(sorted(missed)[:5])}, "
                "written during the run by a job that does not declare it in its `outputs:`"
            )
    return warnings


def review(jobcache: JobCache, jobs: Sequence[Job], results: Sequence[JobResult]) -> list[str]:
    """After a run: warn of the files jobs wrote without declaring them, and take back
    the stored results of the jobs they are blamed on (unless the job says `cache: true`,
    then it is stored anyway). One warning per job, with the paths and the fix."""
    if not jobcache.stored:
        return []
    by_name = {j.name: j for j in jobs}
    ran = [
        Ran(by_name[r.name], r.started_at, r.finished_at)
        for r in results
        if not r.cached
        and r.started_at is not None
        and r.finished_at is not None
        and r.name in by_name
    ]
    files = jobcache.files
    tracked = files.tracked()
    if tracked is None:
        return []  # not a git checkout: nothing tells ignored files from the others
    is_declared = declared(jobs)
    written = written_since(
        files.root,
        files.scan_started_ns(),
        tracked,
        files.initially_dirty,
        [r.job.dir for r in ran] or ["."],
        is_declared,
    )
    if not written:
        return []
    warnings = keyed_without(jobcache, by_name, written)
    blamed, nobody = attribute(written, ran, jobs)
    for name, paths in blamed.items():
        job = by_name[name]
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        if job.cache_said and name in jobcache.stored:
            warnings.append(
                f"job '{name}' wrote files it does not declare: {shown}; stored anyway "
                "(cache: true), so a cache hit will not restore them"
            )
            continue
        if name not in jobcache.stored:
            continue  # not cached anyway: nothing to take back, nothing a hit would miss
        jobcache.retract(job)
        warnings.append(
            f"job '{name}' wrote files it does not declare: {shown}; its result was not "
            "cached, since a cache hit would not restore them. Declare them in its "
            "`outputs:` (or set `cache: false`; `cache: true` stores it anyway)"
        )
    if nobody and jobcache.stored:
        warnings.append(
            "files were written during the run that no job declares: "
            + ", ".join(nobody[:5])
            + (f" and {len(nobody) - 5} more" if len(nobody) > 5 else "")
        )
    return warnings
