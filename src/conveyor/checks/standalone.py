"""The checks on their own, outside a run (`conveyor check`, later the dashboard): those
before the build as `conveyor run` does them first, and with `after` the checks on the
workspace as it is now. Returns what was found; the caller renders it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from conveyor.model import CheckResult, Finding, Pipeline


class CheckRun(NamedTuple):
    """The checks of one `conveyor check`, by phase."""

    before: tuple[CheckResult, ...]
    after: tuple[CheckResult, ...]
    findings: tuple[Finding, ...]
    """What the secret scan found (for SARIF)."""
    scanned: bool
    """Whether the secret scan ran."""

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return (*self.before, *self.after)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The blocking failures: `conveyor check` exits 1 with any."""
        return tuple(c for c in self.results if c.blocking)


def check_workspace(pipeline: Pipeline, environ: Mapping[str, str], *, after: bool) -> CheckRun:
    """The checks before the build, for the jobs a push to this branch would run; without
    `checks:` in the file, manifests, lockfiles and secrets with their defaults. With
    `after`, the configured checks after the build too, on the workspace as it is, except
    the build report (written only at the end of a run)."""
    from conveyor.cache.local import default_root
    from conveyor.checks.before import run_before
    from conveyor.graph import context as run_context
    from conveyor.graph import plan as graph

    plan = graph.plan(pipeline, run_context.detect(pipeline.root, environ, None), [])
    found = run_before(
        pipeline,
        [pj.job for pj in plan.runnable],
        environ,
        cache_dir=default_root(dict(environ)),
        defaults=True,
    )
    later: list[CheckResult] = []
    if after and pipeline.checks.after is not None:
        from conveyor.checks.after import run_after
        from conveyor.model import RunContext

        context = RunContext(branch=None, tag=None, commit=None, event="push")
        later = run_after(pipeline.root, pipeline.checks.after, (), context)
        later = [c for c in later if c.check != "build report"]
    return CheckRun(
        before=tuple(found.results),
        after=tuple(later),
        findings=tuple(found.findings),
        scanned=found.scanned,
    )
