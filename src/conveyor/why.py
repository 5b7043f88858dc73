"""`conveyor why JOB`: would the cache serve this job now, and if not, what changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor import graph
from conveyor.action import outputs_digest
from conveyor.jobcache import JobCache, origin_of
from conveyor.model import Pipeline, RunContext


@dataclass(frozen=True)
class Verdict:
    job: str
    hit: bool
    action: str
    reasons: tuple[str, ...]
    """For a hit: where it came from; for a miss: what changed."""


def why(
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    jobcache: JobCache,
    selected: Sequence[str],
) -> list[Verdict]:
    """Verdicts for the selected jobs and everything they need, in plan order."""
    plan = graph.plan(pipeline, context, selected)
    outputs: dict[str, str] = {}
    misses: set[str] = set()
    verdicts = []
    for pj in plan.jobs:
        if not pj.will_run:
            continue
        job = pj.job
        argv = (*job.shell, job.script)
        needs = {d: outputs[d] for d in pj.needs if d in outputs}
        built = jobcache.prepare(job, argv, needs)
        result = jobcache.store.get_action_result(built.digest) if job.cache else None
        upstream = [d for d in pj.needs if d in misses]
        if result is not None and not upstream:
            outputs[pj.name] = outputs_digest(result)
            reason = f"cached from {origin_of(result)}"
            verdicts.append(Verdict(pj.name, True, built.digest.hash, (reason,)))
            continue
        misses.add(pj.name)
        if not job.cache:
            reasons: tuple[str, ...] = (
                "caching is off for this job: it has secrets (say cache: true to cache it)"
                if job.secrets
                else "caching is off for this job (cache: false)",
            )
        elif upstream:
            reasons = tuple(
                f"it needs '{d}', which will run: its key depends on what that produces"
                for d in upstream
            )
        else:
            reasons = tuple(jobcache.explain_miss(job, built))
        verdicts.append(Verdict(pj.name, False, built.digest.hash, reasons))
    return verdicts
