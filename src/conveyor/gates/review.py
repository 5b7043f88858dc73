"""The gates of a past run, evaluated again: with the thresholds as `conveyor.yml` has
them now, against what that run measured (its `reports.jsonl`, and `secrets.sarif` when
Conveyor's own secrets scanner ran). What `conveyor gates` shows, and the dashboard's
page of a run. Command gates ran against the workspace as it was then: they are not run
again."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Set
from dataclasses import dataclass

from conveyor.errors import UserError
from conveyor.gates.diffcov import ChangedLines
from conveyor.gates.evaluate import Context, evaluate, judged_when_partial, severities
from conveyor.gates.evaluate import write_baseline as save_baseline
from conveyor.gates.keeper import load_quarantine
from conveyor.gates.licenses import kept_by_run
from conveyor.gates.measure import Measurements, load_all
from conveyor.gates.vulnerabilities import Audits
from conveyor.model import Finding, GateResult, Gates, Pipeline
from conveyor.reports.findings import is_current

OWN_FINDINGS = "secrets.sarif"
"""Where a run keeps the findings of Conveyor's own secrets scanner."""


@dataclass(frozen=True)
class WrittenBaseline:
    """A findings baseline written before the gates were evaluated again."""

    path: str
    """As `gates.findings.baseline` names it, relative to the workspace."""
    findings: int
    """How many findings (distinct fingerprints) it lists."""


@dataclass(frozen=True)
class GateReview:
    """A past run's gates, evaluated again."""

    results: tuple[GateResult, ...]
    """Every job's gates in the pipeline's order, then the pipeline's."""
    left_out: tuple[str, ...] = ()
    """Warnings: why each of the pipeline's gates left out was (its data comes only from
    jobs that did not run), and a quarantine list read from its old place."""
    baselines: tuple[WrittenBaseline, ...] = ()
    """The baselines written first, when asked to."""

    @property
    def blocking(self) -> bool:
        """Whether a gate at the error level failed."""
        return any(g.blocking for g in self.results)


def review(
    pipeline: Pipeline,
    run_dir: str,
    *,
    wall_time: float | None,
    ran: Set[str],
    environ: Mapping[str, str],
    write_baseline: bool = False,
) -> GateReview:
    """Evaluate again the gates of the run in `run_dir`, which took `wall_time` and ran
    the jobs `ran`. With `write_baseline`, the run's findings are first recorded in the
    findings gates' baseline files (then known, not new)."""
    parts = load_all(run_dir)
    by_scope = {m.scope: m for m in parts}
    own: list[Finding] = []
    scanned = os.path.exists(os.path.join(run_dir, OWN_FINDINGS))
    if scanned:
        from conveyor.reports.sarif import read_sarif

        own = read_sarif(os.path.join(run_dir, OWN_FINDINGS), pipeline.root, pipeline.root)
    quarantine = load_quarantine(pipeline)
    context = Context(
        root=pipeline.root,
        quarantine=quarantine.tests,
        severity=severities(pipeline),
        changed=ChangedLines(pipeline.root, environ),
        command=None,
        own_findings=own,
        own_scanned=scanned,
        vulnerabilities=_vulnerability_audits(pipeline, run_dir, environ),
        deps_ignore=tuple((i.id, i.reason, i.until) for i in pipeline.deps.ignore),
        licenses=lambda: kept_by_run(pipeline, run_dir),
    )
    written: list[WrittenBaseline] = []
    if write_baseline:
        # Before evaluating: the gates then count only findings newer than these.
        findings = [f for m in parts if m.scope != "pipeline" for f in m.findings] + own
        older = [f for f in findings if not is_current(f.fingerprint)]
        if older:
            raise UserError(
                f"{len(older)} finding(s) of this run have fingerprints of an older "
                "Conveyor, which a baseline can no longer match",
                hint="run the pipeline again, then `conveyor gates --write-baseline`",
            )
        for scope_gates in [pipeline.gates, *(j.gates for j in pipeline.jobs)]:
            if scope_gates.findings is not None and scope_gates.findings.baseline:
                path = scope_gates.findings.baseline
                n = save_baseline(pipeline.root, path, findings)
                written.append(WrittenBaseline(path=path, findings=n))
    if write_baseline:
        written += _write_vulnerability_baselines(pipeline, context)
    results: list[GateResult] = []
    for job in pipeline.jobs:
        m = by_scope.get(job.name)
        if job.gates and m is not None:
            results += evaluate(_without_commands(job.gates), m, context)
    notes: list[str] = [quarantine.note] if quarantine.note else []
    if pipeline.gates:
        jobs = [m for m in parts if m.scope != "pipeline"]
        whole = by_scope.get("pipeline") or Measurements.combined(jobs, wall_time)
        whole.duration = wall_time
        judged, left_out = judged_when_partial(
            evaluate(_without_commands(pipeline.gates), whole, context),
            set(ran),
            {j.name for j in pipeline.jobs},
        )
        results += judged
        notes += left_out
    return GateReview(results=tuple(results), left_out=tuple(notes), baselines=tuple(written))


def _without_commands(gates: Gates) -> Gates:
    """Command gates ran against the workspace as it was: not re-run for a past run."""
    return dataclasses.replace(gates, commands=())


def _vulnerability_audits(
    pipeline: Pipeline, run_dir: str, environ: Mapping[str, str]
) -> Audits | None:
    """What the run's audits found (`vulnerabilities.json`); a scope it did not audit
    is audited now."""
    scopes = [pipeline.gates, *(j.gates for j in pipeline.jobs)]
    if not any(g.vulnerabilities is not None for g in scopes):
        return None
    from conveyor.gates.vulnerabilities import LiveAudits, PastAudits, stored

    return PastAudits(stored(run_dir) or {}, LiveAudits(pipeline, environ))


def _write_vulnerability_baselines(pipeline: Pipeline, context: Context) -> list[WrittenBaseline]:
    """Each vulnerabilities gate's baseline, from what the run found in its scope."""
    from conveyor.gates.vulnerabilities import write_baseline as save

    written = []
    scopes = [("pipeline", pipeline.gates), *((j.name, j.gates) for j in pipeline.jobs)]
    for scope, gates in scopes:
        gate = gates.vulnerabilities
        if gate is None or not gate.baseline or context.vulnerabilities is None:
            continue
        audited = context.vulnerabilities(scope)
        if audited.problem:
            raise UserError(
                f"the baseline {gate.baseline} cannot be written: {audited.problem}",
                hint="conveyor deps db import PATH",
            )
        n = save(pipeline.root, gate.baseline, audited.found)
        written.append(WrittenBaseline(path=gate.baseline, findings=n))
    return written
