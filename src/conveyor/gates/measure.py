"""What a job's gates are evaluated against, read once as the job finishes: its test
cases (JUnit), coverage (Cobertura/LCOV), findings (SARIF), output files and duration.
Kept in the run directory (`gates/<job>.json`) so `conveyor gates` can evaluate a past
run again, against the gates as they are now."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.model import Finding, Job, JobResult, OutputFile

if TYPE_CHECKING:
    from conveyor.reports.coverage import Coverage


@dataclass
class Measurements:
    """One job's (or, combined, the pipeline's) measured facts."""

    scope: str
    tests: list[dict[str, Any]] = field(default_factory=list)
    """Test cases: job, suite, name, status (passed, failed, error, skipped), duration,
    message."""
    coverage: Coverage | None = None
    findings: list[Finding] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    duration: float | None = None
    reports: dict[str, int] = field(default_factory=dict)
    """How many report files of each kind (junit, coverage, sarif) were read."""
    problems: list[str] = field(default_factory=list)
    """Report files that could not be read."""

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "tests": self.tests,
            "coverage": self.coverage.to_json() if self.coverage is not None else None,
            "findings": [f.__dict__ for f in self.findings],
            "outputs": [list(o) for o in self.outputs],
            "duration": self.duration,
            "reports": self.reports,
            "problems": self.problems,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurements:
        from conveyor.reports.coverage import Coverage

        cov = data.get("coverage")
        return cls(
            scope=data["scope"],
            tests=list(data.get("tests") or []),
            coverage=Coverage.from_json(cov) if cov else None,
            findings=[Finding(**f) for f in data.get("findings") or []],
            outputs=[OutputFile(*o) for o in data.get("outputs") or []],
            duration=data.get("duration"),
            reports=dict(data.get("reports") or {}),
            problems=list(data.get("problems") or []),
        )

    @classmethod
    def combined(cls, parts: list[Measurements], duration: float | None) -> Measurements:
        """The pipeline's view: every job's tests, findings and outputs; one coverage
        merged from every report (a unit and an integration job cover one codebase)."""
        whole = cls(scope="pipeline", duration=duration)
        for part in parts:
            whole.tests += part.tests
            whole.findings += part.findings
            whole.outputs += part.outputs
            whole.problems += part.problems
            for kind, n in part.reports.items():
                whole.reports[kind] = whole.reports.get(kind, 0) + n
            if part.coverage is not None:
                whole.coverage = (
                    part.coverage
                    if whole.coverage is None
                    else whole.coverage.merged(part.coverage)
                )
        return whole


def measure(root: str, job: Job, result: JobResult) -> Measurements:
    """Read the job's declared reports (as they are now: the job just wrote them, or the
    cache just restored them) into Measurements."""
    from conveyor.reports.junit import ReportError, read_cases, report_files

    base = os.path.normpath(os.path.join(root, job.dir))
    m = Measurements(
        scope=job.name,
        outputs=list(result.outputs),
        duration=result.duration,
    )
    reports = job.reports
    for kind, patterns in (
        ("junit", reports.junit),
        ("coverage", reports.coverage),
        ("sarif", reports.sarif),
    ):
        if not patterns:
            continue
        files = report_files(root, job.dir, patterns)
        m.reports[kind] = 0
        for path in files:
            try:
                if kind == "junit":
                    m.tests += [{**case, "job": job.name} for case in read_cases(path)]
                elif kind == "coverage":
                    from conveyor.reports.coverage import read_coverage

                    cov = read_coverage(path, root, base)
                    m.coverage = cov if m.coverage is None else m.coverage.merged(cov)
                else:
                    from conveyor.reports.sarif import read_sarif

                    m.findings += read_sarif(path, root, base)
                m.reports[kind] += 1
            except ReportError as exc:
                m.problems.append(f"{job.name}: {exc}")
        if not files:
            m.problems.append(
                f"{job.name}: no {kind} report matches {', '.join(patterns)} "
                f"(relative to {job.dir})"
            )
    return m


def save(run_dir: str, file_name: str, m: Measurements) -> None:
    """Write the measurements where `conveyor gates` finds them (atomically)."""
    base = os.path.join(run_dir, "gates")
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, f"{file_name}.json")
    with open(f"{path}.tmp", "w", encoding="utf-8") as fh:
        json.dump(m.to_json(), fh)
    os.replace(f"{path}.tmp", path)


def load_all(run_dir: str) -> list[Measurements]:
    """Every job's measurements saved in a run directory."""
    base = os.path.join(run_dir, "gates")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out = []
    for name in names:
        if name.endswith(".json") and not name.startswith("_"):
            with open(os.path.join(base, name), encoding="utf-8") as fh:
                out.append(Measurements.from_json(json.load(fh)))
    return out
