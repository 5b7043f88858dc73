"""Whether a job runs, decided when it is ready: when everything it needs has finished.

GitHub Actions' rules, which GitLab's `when:` maps onto: a job runs when all went well
for it (`success()`: nothing it needs, directly or not, failed or was cancelled, no job
it lists under `needs:` was skipped, and the run is not stopping), unless its `if:`
calls a status function (`always()`, `failure()`, `cancelled()`, `success()`) or it
says `when: on_failure|always`: then that decides. `needs.X.result` reads what became
of a job it needs. A failure the job allows (`allow_failure`) counts as a success for
the status functions; `needs.X.result` still says 'failure'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from conveyor.graph.plan import (
    Plan,
    PlannedJob,
    condition_scope,
    condition_text,
    explain_condition,
    runs_on_status,
)
from conveyor.model import JobResult, JobStatus, RunContext

if TYPE_CHECKING:
    pass


class Upstream(NamedTuple):
    """What went wrong in a finished job or before it, along its needs."""

    failed: str | None = None
    """The first job that failed (itself, or one it needs directly or not)."""
    cancelled: str | None = None
    """The first job that was cancelled, likewise."""


_CLEAN = Upstream()

RESULT_NAMES = {
    JobStatus.SUCCESS: "success",
    JobStatus.FAILED: "failure",
    JobStatus.TIMED_OUT: "failure",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.SKIPPED: "skipped",
}
"""Conveyor's statuses under GitHub's names for `needs.X.result`."""


def upstream(pj: PlannedJob, result: JobResult, trails: Mapping[str, Upstream]) -> Upstream:
    """A finished job's Upstream, from its own result and its needs'."""
    failed = cancelled = None
    if result.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) and not result.allowed_failure:
        failed = result.name
    elif result.status is JobStatus.CANCELLED:
        cancelled = result.name
    for dep in pj.needs:
        trail = trails.get(dep)
        if trail is None or trail is _CLEAN:
            continue
        failed = failed or trail.failed
        cancelled = cancelled or trail.cancelled
    if failed is None and cancelled is None:
        return _CLEAN  # most jobs: one shared value, no tuple built per job
    return Upstream(failed, cancelled)


class Decision(NamedTuple):
    runs: bool
    reason: str
    """Why not, when it does not run."""
    on_status: bool
    """It runs on how the run goes (`if: always()`...): a stopping run still starts it,
    and does not cancel it."""


def decide(
    plan: Plan,
    by_name: Mapping[str, PlannedJob],
    pj: PlannedJob,
    results: Mapping[str, JobResult],
    trails: Mapping[str, Upstream],
    context: RunContext,
    *,
    stopping: str | None,
    interrupted: bool,
    secrets: frozenset[str] = frozenset(),
) -> Decision:
    """Whether `pj`, every need of which has finished, runs now."""
    job = pj.job
    failed = cancelled = None
    for dep in pj.needs:
        trail = trails.get(dep)
        if trail is not None:
            failed = failed or trail.failed
            cancelled = cancelled or trail.cancelled
    # Only needs the job lists count when skipped: a job of an earlier stage that was
    # skipped (an on_failure job, say) does not hold up the later stages, as in GitLab.
    skipped = (
        next((d for d in pj.needs if results[d].status is JobStatus.SKIPPED), None)
        if job.needs_explicit
        else None
    )
    success = failed is None and cancelled is None and skipped is None and stopping is None
    status = {
        "success": success,
        "failure": failed is not None,
        "cancelled": interrupted or cancelled is not None,
        "always": True,
    }
    on_status = runs_on_status(job)
    if not on_status and not success:
        return Decision(False, _why_not(pj, results, trails, failed, cancelled, stopping), False)
    if job.when == "on_failure" and not status["failure"]:
        return Decision(False, "when: on_failure, and nothing it needs failed", True)
    if not job.late or job.condition is None:
        return Decision(True, "", on_status)
    import dataclasses

    from conveyor import expressions

    ended: dict[str, str] = {}
    written: dict[str, dict[str, str]] = {}
    for dep in pj.needs:
        # A matrix job needed: its worst instance's result (and its instances' values, a
        # later one winning, as when the job's text is filled in).
        key = by_name[dep].job.base
        ended[key] = worse(ended.get(key, ""), RESULT_NAMES[results[dep].status])
        if results[dep].values:
            written.setdefault(key, {}).update(results[dep].values)
    scope = dataclasses.replace(
        condition_scope(job, plan.pipeline, context),
        status=status,
        results=ended,
        needs=written,
    )
    node = expressions.parse(condition_text(job.condition))
    if expressions.truthy(expressions.evaluate(node, scope)):
        return Decision(True, "", on_status)
    return Decision(False, explain_condition(job, scope, secrets, status), on_status)


_ORDER = ("", "success", "skipped", "cancelled", "failure")


def worse(a: str, b: str) -> str:
    """The worse of two results: failure, then cancelled, skipped, success."""
    return a if _ORDER.index(a) > _ORDER.index(b) else b


def _why_not(
    pj: PlannedJob,
    results: Mapping[str, JobResult],
    trails: Mapping[str, Upstream],
    failed: str | None,
    cancelled: str | None,
    stopping: str | None,
) -> str:
    """Why a job that runs only when all went well does not."""
    if stopping is not None:
        return f"not started: {stopping}"
    for dep in pj.needs:
        r = results[dep]
        if r.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) and not r.allowed_failure:
            verb = "timed out" if r.status is JobStatus.TIMED_OUT else "failed"
            return f"needs '{dep}', which {verb}"
        if r.status is JobStatus.CANCELLED:
            return f"needs '{dep}', which was cancelled"
    for dep in pj.needs:
        if results[dep].status is JobStatus.SKIPPED and pj.job.needs_explicit:
            cause = trails.get(dep, Upstream())
            if cause.failed:
                return f"needs '{dep}', which was skipped because '{cause.failed}' failed"
            if cause.cancelled:
                return f"needs '{dep}', which was skipped because '{cause.cancelled}' was cancelled"
            return f"needs '{dep}', which was skipped"
    if failed is not None:
        return f"'{failed}' failed before it (only a status function in if: runs a job then)"
    return f"'{cancelled}' was cancelled before it"
