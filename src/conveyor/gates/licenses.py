"""The `licenses` gate (`gates: {licenses: {level: error}}`, the pipeline's): every
third-party package the workspace's lockfiles pin, judged by the `deps.licenses`
policy. A denied license fails it, and so does an unknown one (no license found, or
one that names no SPDX license) until `deps.licenses.overrides` says what it is.

In a run the workspace is scanned when the pipeline's gates are judged, and what was
found is kept in the run directory (`licenses.json`); `conveyor gates` judges that
again with the policy as conveyor.yml has it now."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from conveyor.model import GateResult, LicensesGate, Pipeline
from conveyor.units import first_few

if TYPE_CHECKING:
    from conveyor.deps.license_report import LicenseReport

LicenseSource = Callable[[], "LicenseReport | None"]
"""What a gate is judged on: the licenses found, judged (None: none were looked for)."""


def licenses_gate(gate: LicensesGate, scope: str, source: LicenseSource | None) -> GateResult:
    """The gate's result: passed when no package's license is denied or unknown."""
    from conveyor.deps.licenses import Verdict

    threshold = "no denied or unknown license"
    try:
        report = source() if source is not None else None
    except OSError as exc:  # the workspace or the run directory could not be read
        return GateResult(
            gate="licenses",
            scope=scope,
            level=gate.level,
            passed=False,
            measured="not checked",
            threshold=threshold,
            detail=f"the licenses could not be read: {exc}",
        )
    if report is None:
        return GateResult(
            gate="licenses",
            scope=scope,
            level=gate.level,
            passed=False,
            measured="not checked",
            threshold=threshold,
            detail="the run kept no licenses.json: run the pipeline again to check them",
            unmeasured=True,
        )
    denied = [p for p in report.failing if p.judgement.verdict is Verdict.DENIED]
    unknown = [p for p in report.failing if p.judgement.verdict is Verdict.UNKNOWN]

    def named(items: list[object]) -> str:
        from conveyor.deps.license_report import Judged

        out = []
        for p in items:
            assert isinstance(p, Judged)
            lic = p.license
            what = lic.expression or "none found"
            out.append(f"{lic.name} {lic.version or ''} ({what})".replace("  ", " "))
        return first_few(out)

    parts = []
    if denied:
        parts.append(f"denied: {named(list(denied))}")
    if unknown:
        parts.append(
            f"unknown: {named(list(unknown))} (say which license in deps.licenses.overrides)"
        )
    if report.errors:
        parts.append(f"not read: {first_few(list(report.errors), 3)}")
    return GateResult(
        gate="licenses",
        scope=scope,
        level=gate.level,
        passed=not denied and not unknown,
        measured=f"{len(denied)} denied, {len(unknown)} unknown of {len(report.packages)}",
        threshold=threshold,
        detail="; ".join(parts),
    )


def scan_for_run(
    pipeline: Pipeline, run_dir: str, environ: Mapping[str, str]
) -> LicenseReport | None:
    """The workspace's licenses for a run's gate, judged and kept in the run directory."""
    from conveyor.deps.license_report import save, scan
    from conveyor.workspace.listing import tracked_files

    report = scan(pipeline.root, tracked_files(pipeline.root), pipeline.deps, environ=environ)
    save(run_dir, report)
    return report


def kept_by_run(pipeline: Pipeline, run_dir: str) -> LicenseReport | None:
    """A past run's licenses, judged by the policy as it is now."""
    from conveyor.deps.license_report import load, policy

    return load(run_dir, policy(pipeline.deps))
