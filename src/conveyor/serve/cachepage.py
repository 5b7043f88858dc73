"""The cache page: hit rate (local and remote), the time the cache saved, the misses
by cause (what `conveyor why` said of each job that ran, as the run kept it in its
summary), per job figures of `conveyor stats`, and the size of the local cache."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore
from conveyor.insights.stats import JobFigures
from conveyor.serve.files import runs_base

CAUSES = (
    ("caching is off", "caching is off for the job"),
    ("--no-cache", "--no-cache"),
    ("no earlier result", "no earlier result (first run)"),
    ("removed from the cache", "evicted (pruned, cleared or corrupt)"),
    ("no longer in the cache", "evicted (pruned, cleared or corrupt)"),
    ("can no longer be read", "evicted (pruned, cleared or corrupt)"),
    ("cannot be served", "evicted (pruned, cleared or corrupt)"),
    ("the command changed", "the command changed"),
    ("working directory changed", "the working directory changed"),
    ("upstream outputs of", "the outputs of a needed job changed"),
    ("env ", "an environment variable changed"),
    ("input ", "an input file changed"),
    ("tool ", "a tool version changed"),
    ("platform ", "the platform changed"),
    ("matrix value", "a matrix value changed"),
    ("declared outputs changed", "the declared outputs changed"),
    ("Conveyor was upgraded", "Conveyor was upgraded"),
)
"""What a miss's reasons say (their wording is cache.jobs' and cache.keys.explain's), in
the order they are looked for in a reason."""
NOT_RECORDED = "not recorded (`conveyor run --explain` records why a job missed)"
RUN_DIRS = 500
"""The most run directories read for the misses (the newest)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MissCause:
    cause: str
    misses: int
    """Jobs that ran for this reason (a miss can have several)."""
    example: str
    """One reason as recorded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePage:
    pipeline: str | None
    since: float
    jobs: int
    """Jobs that took part (not skipped)."""
    hits: int
    local_hits: int
    remote_hits: int
    hit_rate: float | None
    saved: float
    """Seconds the cache saved (the original durations of the hits)."""
    misses: tuple[MissCause, ...]
    misses_read: int
    """Misses whose reasons were found in the run directories."""
    per_job: tuple[JobFigures, ...]
    cache_dir: str
    cache_bytes: int | None
    """The local cache's size (None: not there)."""
    cache_entries: int | None


def cause_of(reason: str) -> str:
    """The cause a miss's reason names."""
    for needle, cause in CAUSES:
        if needle in reason:
            return cause
    return "other"


def misses(root: str, pipeline: str, since: float) -> tuple[tuple[MissCause, ...], int]:
    """The misses of the workspace's runs of `pipeline` since `since` by cause (from the
    newest RUN_DIRS run directories), and how many misses were read."""
    base = runs_base(root)
    try:
        names = sorted(os.listdir(base))[-RUN_DIRS:]
    except OSError:
        return (), 0
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    read = 0
    for name in names:
        try:
            with open(os.path.join(base, name, "summary.json"), encoding="utf-8") as fh:
                summary = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(summary, dict) or summary.get("pipeline") != pipeline:
            continue
        if (summary.get("started_at") or 0.0) < since:
            continue
        for job in summary.get("jobs") or ():
            if not isinstance(job, dict) or job.get("cached"):
                continue
            if job.get("status") in ("skipped", "cancelled") or job.get("started_at") is None:
                continue
            read += 1
            reasons = [str(r) for r in job.get("miss_reasons") or ()]
            found = {cause_of(r): r for r in reasons} or {NOT_RECORDED: ""}
            for cause, example in found.items():
                counts[cause] = counts.get(cause, 0) + 1
                examples.setdefault(cause, example)
    out = sorted(
        (MissCause(cause=c, misses=n, example=examples[c]) for c, n in counts.items()),
        key=lambda m: (-m.misses, m.cause),
    )
    return tuple(out), read


def cache_page(
    store: HistoryStore,
    root: str,
    pipeline: str | None,
    since: float,
    per_job: tuple[JobFigures, ...],
    cache_dir: str,
    size: tuple[int, int] | None,
) -> CachePage:
    """The cache figures of `pipeline` since `since` (`per_job` from `conveyor stats`;
    `size`: the local cache's bytes and entries, measured by the caller)."""
    totals = (0, 0, 0, 0, 0.0)
    causes: tuple[MissCause, ...] = ()
    read = 0
    if pipeline is not None:
        window = and_(
            runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
        )
        hit = and_(jobs.c.cached.is_(True))
        query = (
            select(
                func.sum(case((jobs.c.status != "skipped", 1), else_=0)),
                func.sum(case((hit, 1), else_=0)),
                func.sum(case((and_(hit, jobs.c.cache_tier == "remote"), 1), else_=0)),
                func.sum(case((hit, jobs.c.saved), else_=0.0)),
            )
            .select_from(jobs.join(runs, jobs.c.run_id == runs.c.id))
            .where(window)
        )
        with store.engine.connect() as conn:
            counted, hits, remote, saved = conn.execute(query).one()
        totals = (
            int(counted or 0),
            int(hits or 0),
            int(hits or 0) - int(remote or 0),
            int(remote or 0),
            float(saved or 0.0),
        )
        causes, read = misses(root, pipeline, since)
    counted_, hits_, local_, remote_, saved_ = totals
    return CachePage(
        pipeline=pipeline,
        since=since,
        jobs=counted_,
        hits=hits_,
        local_hits=local_,
        remote_hits=remote_,
        hit_rate=hits_ / counted_ if counted_ else None,
        saved=saved_,
        misses=causes,
        misses_read=read,
        per_job=tuple(sorted(per_job, key=lambda j: (-j.saved, j.job))),
        cache_dir=cache_dir,
        cache_bytes=None if size is None else size[0],
        cache_entries=None if size is None else size[1],
    )
