"""`conveyor why JOB`: would the cache serve this job now, and if not, what changed.

It follows the run's own steps (conveyor.run.scheduler) without running anything: the same
plan, the same keys (prepare), the same lookups. What a hit upstream would restore is
taken as in place, so a job whose inputs a needed job generates is keyed as the run will
key it. A job whose key depends on the outputs of a needed job that will run cannot be
known before that job runs: its verdict is neither hit nor miss (`hit` is None)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor.cache.jobs import JobCache
from conveyor.cache.keys import action_argv, outputs_digest
from conveyor.cache.results import origin_of
from conveyor.graph import plan as graph
from conveyor.model import Digest, Pipeline, RunContext
from conveyor.workspace.files import FileInfo


@dataclass(frozen=True)
class Verdict:
    job: str
    hit: bool | None
    """True: served from the cache; False: runs; None: depends on what a needed job that
    runs first produces."""
    action: str
    reasons: tuple[str, ...]
    """For a hit: where it came from; otherwise: what changed."""
    source: str | None = None
    """For a hit: "local" (this machine's cache) or "remote" (the team's: a run would
    fetch it)."""


def why(
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    jobcache: JobCache,
    selected: Sequence[str],
) -> list[Verdict]:
    """Verdicts for the selected jobs and everything they need, in plan order."""
    return verdicts(graph.plan(pipeline, context, selected), jobcache)


def verdicts(plan: graph.Plan, jobcache: JobCache, *, explain: bool = True) -> list[Verdict]:
    """A verdict for each job of `plan` that will run, in plan order: keys made and
    looked up (`JobCache.peek`), nothing run, restored or written to the workspace or
    to a cache: a result in the remote cache is a hit "from the remote cache", looked
    at there. `explain`: say what changed for each miss (against the job's last entry
    here, and its latest in the remote cache)."""
    outputs: dict[str, str] = {}
    runs: set[str] = set()
    found = []
    for pj in plan.jobs:
        if not pj.will_run:
            continue
        job = pj.job
        if job.matrix_from is not None:
            runs.add(pj.name)  # its instances, and so their keys, are not known yet
            sources = ", ".join(dict.fromkeys(need for _, need, _ in job.matrix_from.refs))
            reason = f"its instances are known once {sources} has run"
            found.append(Verdict(pj.name, None, "", (reason,)))
            continue
        if pj.left_out:
            runs.add(pj.name)
            reason = f"not cached: --only left out what it needs ({', '.join(pj.left_out)})"
            found.append(Verdict(pj.name, None, "", (reason,)))
            continue
        if job.reads_values:
            # Its text, and so its key, holds values its needs write as they run.
            runs.add(pj.name)
            reason = "it reads values of the jobs it needs: its key is known once they have run"
            found.append(Verdict(pj.name, None, "", (reason,)))
            continue
        upstream = [d for d in pj.needs if d in runs]
        if upstream:
            runs.add(pj.name)
            reasons = tuple(
                f"it needs '{d}', which will run: its key depends on what that produces"
                for d in upstream
            )
            found.append(Verdict(pj.name, None, "", reasons))
            continue
        argv = action_argv(job)
        needs = {d: outputs[d] for d in pj.needs}
        built = jobcache.prepare(job, argv, needs)
        peeked = jobcache.peek(job, built)
        if peeked is not None:
            result = peeked.result
            outputs[pj.name] = outputs_digest(result)
            for out in result.output_files:
                # What the hit restores is what the jobs after it are keyed on.
                rel = os.path.normpath(os.path.join(job.dir, out.path))
                digest = Digest(out.digest.hash, out.digest.size_bytes)
                jobcache.files.assume(rel, FileInfo(digest, bool(out.is_executable)))
            origin = origin_of(result, os.uname().nodename)
            where = f"the remote cache ({origin})" if peeked.remote else origin
            reason = f"cached from {where}"
            source = "remote" if peeked.remote else "local"
            found.append(Verdict(pj.name, True, built.digest.hash, (reason,), source))
            continue
        runs.add(pj.name)
        reasons = tuple(jobcache.explain_miss(job, built)) if explain else ()
        found.append(Verdict(pj.name, False, built.digest.hash, reasons))
    return found
