"""Gates against measurements: one GateResult per threshold, whatever the scope (a job,
or the pipeline with every job's measurements combined).

A gate whose data is missing fails, saying what to declare: a coverage minimum with no
coverage report is not a pass.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.fsutil import atomic_write
from conveyor.gates.licenses import LicenseSource, licenses_gate
from conveyor.gates.measure import FINDINGS, Measurements
from conveyor.model import (
    SEVERITIES,
    CommandGate,
    Finding,
    GateLevel,
    GateResult,
    Gates,
    Pipeline,
)
from conveyor.reports.findings import is_current, with_severities
from conveyor.units import first_few, format_duration

FAILING = ("failed", "error")


@dataclass
class Context:
    """What gates need beyond the measurements."""

    root: str
    quarantine: frozenset[tuple[str, str]] = frozenset()
    """(job, test) pairs `conveyor flaky --quarantine` listed: reported, never blocking."""
    changed: Callable[[str | None], dict[str, set[int]]] | None = None
    """Changed lines since a base (None: the CI's target branch), for diff coverage."""
    command: Callable[[CommandGate, str], tuple[int | None, list[str]]] | None = None
    """Runs a command gate for a scope: (exit code, last lines of output)."""
    own_findings: list[Finding] = field(default_factory=list)
    """Findings of Conveyor's own scanners (committed secrets): pipeline scope only."""
    own_scanned: bool = False
    """Whether one of Conveyor's own scanners ran (its findings count even when none)."""
    severity: tuple[tuple[str, str], ...] = ()
    """The pipeline's `gates.findings.severity` (`severities`): every gate's, a job's too."""
    vulnerabilities: Callable[[str], Any] | None = None
    """The audit of a scope's lockfiles, for the vulnerabilities gate
    (`conveyor.gates.vulnerabilities.Audits`)."""
    deps_ignore: tuple[tuple[str, str, str | None], ...] = ()
    """`deps.ignore`: the advisories set aside (id, reason, until)."""
    licenses: LicenseSource | None = None
    """The workspace's dependencies' licenses, judged (conveyor.gates.licenses)."""


def evaluate(gates: Gates, m: Measurements, ctx: Context) -> list[GateResult]:
    """One GateResult per threshold of `gates` against `m` (a job's measurements, or the
    pipeline's combined), in a fixed order: tests, coverage, findings, sizes, time,
    commands, vulnerabilities, licenses."""
    out: list[GateResult] = []
    if gates.tests is not None:
        out.append(_tests(gates, m, ctx))
    if gates.coverage is not None:
        out += _coverage(gates, m, ctx)
    if gates.findings is not None:
        out += _findings(gates, m, ctx)
    if gates.sizes is not None:
        out += _sizes(gates, m)
    if gates.time is not None:
        limit = gates.time.max
        took = m.duration
        out.append(
            GateResult(
                gate="time",
                scope=m.scope,
                level=gates.time.level,
                passed=took is not None and took <= limit,
                measured=format_duration(took) if took is not None else "not measured",
                threshold=f"<= {format_duration(limit)}",
            )
        )
    for gate in gates.commands:
        out.append(_command(gate, m, ctx))
    if gates.vulnerabilities is not None:
        out += _vulnerabilities(gates, m, ctx)
    if gates.licenses is not None:
        out.append(licenses_gate(gates.licenses, m.scope, ctx.licenses))
    return out


def judged_when_partial(
    gates: list[GateResult], ran: set[str], jobs: set[str]
) -> tuple[list[GateResult], list[str]]:
    """When only part of the pipeline ran (`conveyor run lint`, `if:`, a failure that
    stopped the rest), its gates whose data only the other jobs produce are left out:
    (the gates kept, a warning for each left out)."""
    if ran == jobs:
        return gates, []
    notes = [
        f"the pipeline's gate {g.gate} was not evaluated: {g.detail} (not every job ran)"
        for g in gates
        if g.unmeasured
    ]
    return [g for g in gates if not g.unmeasured], notes


def _missing(m: Measurements, *kinds: str) -> str:
    """Why a gate has no data: no report of any of `kinds` was read (and the first
    problem with one that was declared)."""
    problems = [p for p in m.problems if any(f" {kind} report" in p for kind in kinds)]
    why = f"; {problems[0]}" if problems else ""
    names = " or ".join(kinds)
    declare = " or ".join(f"`reports: {{{kind}: ...}}`" for kind in kinds)
    return f"no {names} report was read: declare {declare} on the job{why}"


def _tests(gates: Gates, m: Measurements, ctx: Context) -> GateResult:
    assert gates.tests is not None
    gate = gates.tests
    limit = f"<= {gate.max_failures} failure{'s' if gate.max_failures != 1 else ''}"
    if not m.reports.get("junit"):
        return GateResult(
            gate="tests",
            scope=m.scope,
            level=gate.level,
            passed=False,
            measured="no test results",
            threshold=limit,
            detail=_missing(m, "junit"),
            unmeasured=True,
        )
    failing = [c for c in m.tests if c["status"] in FAILING]
    quarantined = [c for c in failing if (c.get("job", ""), c["name"]) in ctx.quarantine]
    counted = [c for c in failing if c not in quarantined]
    measured = f"{len(counted)} failed of {len(m.tests)}"
    if quarantined:
        measured += f" ({len(quarantined)} quarantined)"
    detail = _names("failed", counted) + _names("quarantined, not counted", quarantined)
    return GateResult(
        gate="tests",
        scope=m.scope,
        level=gate.level,
        passed=len(counted) <= gate.max_failures,
        measured=measured,
        threshold=limit,
        detail="; ".join(detail),
    )


def _names(label: str, cases: list[dict[str, object]]) -> list[str]:
    if not cases:
        return []
    return [f"{label}: {first_few([str(c['name']) for c in cases])}"]


def _pct(value: float) -> str:
    return f"{value:.1f}%"


def _coverage(gates: Gates, m: Measurements, ctx: Context) -> list[GateResult]:
    gate = gates.coverage
    assert gate is not None
    wanted = [
        (kind, limit)
        for kind, limit in (("line", gate.line), ("branch", gate.branch), ("diff", gate.diff))
        if limit is not None
    ]
    cov = m.coverage
    out = []
    for kind, limit in wanted:
        name, threshold = f"coverage.{kind}", f">= {_pct(limit)}"
        if cov is None:
            out.append(
                GateResult(
                    gate=name,
                    scope=m.scope,
                    level=gate.level,
                    passed=False,
                    measured="no coverage",
                    threshold=threshold,
                    detail=_missing(m, "coverage"),
                    unmeasured=True,
                )
            )
            continue
        if kind == "line":
            rate = cov.line_rate
            measured = (
                f"{_pct(rate)} ({cov.lines_covered}/{cov.lines_total} lines)"
                if rate is not None
                else "no lines"
            )
            out.append(
                GateResult(
                    gate=name,
                    scope=m.scope,
                    level=gate.level,
                    passed=rate is not None and rate >= limit,
                    measured=measured,
                    threshold=threshold,
                )
            )
        elif kind == "branch":
            rate = cov.branch_rate
            if rate is None:
                out.append(
                    GateResult(
                        gate=name,
                        scope=m.scope,
                        level=gate.level,
                        passed=False,
                        measured="no branch data",
                        threshold=threshold,
                        detail=(
                            "the report has no branch data: measure it (coverage run "
                            "--branch, or your tool's branch option)"
                        ),
                    )
                )
                continue
            out.append(
                GateResult(
                    gate=name,
                    scope=m.scope,
                    level=gate.level,
                    passed=rate >= limit,
                    measured=f"{_pct(rate)} ({cov.branches_covered}/{cov.branches_total} branches)",
                    threshold=threshold,
                )
            )
        else:
            out.append(_diff(name, threshold, limit, gate.diff_base, gate.level, m, ctx))
    return out


def _diff(
    name: str,
    threshold: str,
    limit: float,
    base: str | None,
    level: GateLevel,
    m: Measurements,
    ctx: Context,
) -> GateResult:
    from conveyor.gates.diffcov import DiffError

    cov = m.coverage
    assert cov is not None
    assert ctx.changed is not None
    try:
        changed = ctx.changed(base)
    except DiffError as exc:
        return GateResult(
            gate=name,
            scope=m.scope,
            level=level,
            passed=False,
            measured="no diff",
            threshold=threshold,
            detail=f"{exc}; set gates.coverage.diff_base to a branch or commit that exists here "
            "(on CI, fetch it: actions/checkout with fetch-depth: 0)",
        )
    total = covered = 0
    uncovered: list[str] = []
    for path, lines in sorted(changed.items()):
        info = cov.files.get(path)
        if info is None:
            continue  # not code the report measures (docs, config, tests not traced)
        for line in sorted(lines):
            hits = info.lines.get(line)
            if hits is None:
                continue  # not executable
            total += 1
            if hits > 0:
                covered += 1
            else:
                uncovered.append(f"{path}:{line}")
    if total == 0:
        return GateResult(
            gate=name,
            scope=m.scope,
            level=level,
            passed=True,
            measured="no changed lines to cover",
            threshold=threshold,
        )
    rate = covered / total * 100
    detail = ""
    if uncovered:
        detail = "not covered: " + first_few(uncovered, 10)
    return GateResult(
        gate=name,
        scope=m.scope,
        level=level,
        passed=rate >= limit,
        measured=f"{_pct(rate)} ({covered}/{total} changed lines)",
        threshold=threshold,
        detail=detail,
    )


BASELINE_VERSION = 2
"""2: fingerprints of scheme 2 ("hash:index", `conveyor.reports.findings`), one entry a
line with the tool, rule and path it stands for. 1 listed scheme-1 fingerprints, which
gave identical findings in one file one fingerprint."""


class OutdatedBaseline(ValueError):
    """A baseline of an older fingerprint scheme: rewritten, not trusted."""


def load_baseline(root: str, path: str) -> set[str] | None:
    """The fingerprints a findings baseline lists, or None when the file is missing.
    Raises OutdatedBaseline for one of an older scheme, ValueError for anything else."""
    full = os.path.join(root, path)
    try:
        with open(full, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a findings baseline ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: not a findings baseline (expected {{"findings": [...]}})')
    version = data.get("version")
    if version == 1 or (version is None and isinstance(data.get("fingerprints"), list)):
        raise OutdatedBaseline(
            f"{path} lists fingerprints of Conveyor's first scheme, which gave identical "
            "findings in one file one fingerprint: rewrite it from a run of the code it "
            "should describe, `conveyor gates --write-baseline` (every finding of that run "
            "is then known; review the diff before committing it)"
        )
    if version != BASELINE_VERSION:
        raise ValueError(
            f"{path}: a findings baseline of version {version!r}; this Conveyor reads "
            f"version {BASELINE_VERSION} (written by a newer Conveyor?)"
        )
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise ValueError(f'{path}: not a findings baseline (expected {{"findings": [...]}})')
    prints = set()
    for entry in entries:
        fingerprint = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fingerprint, str):
            raise ValueError(
                f'{path}: every entry of "findings" needs a "fingerprint", got {entry!r:.80}'
            )
        prints.add(fingerprint)
    return prints


def severities(pipeline: Pipeline) -> tuple[tuple[str, str], ...]:
    """The pipeline's severity overrides (`gates.findings.severity`; a job has none)."""
    return pipeline.gates.findings.severity if pipeline.gates.findings else ()


def write_baseline(root: str, path: str, findings: list[Finding]) -> int:
    """Record the findings as known (`conveyor gates --write-baseline`); how many.

    Sorted by path, tool, rule and fingerprint, one finding a line: a diff of the file
    shows what was accepted, a line a finding. The message is left out: a scanner's
    message may quote what it found (a key), and the file is committed."""
    entries = {
        f.fingerprint: {
            "fingerprint": f.fingerprint,
            "tool": f.tool,
            "rule": f.rule,
            "path": f.path,
        }
        for f in findings
    }
    ordered = sorted(
        entries.values(),
        key=lambda e: (e["path"] or "", e["tool"] or "", e["rule"] or "", e["fingerprint"] or ""),
    )
    lines = ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in ordered)
    body = f"[\n{lines}\n  ]" if ordered else "[]"
    data = f'{{\n  "version": {BASELINE_VERSION},\n  "findings": {body}\n}}\n'
    atomic_write(os.path.join(root, path), data, makedirs=True)
    return len(ordered)


def _findings(gates: Gates, m: Measurements, ctx: Context) -> list[GateResult]:
    gate = gates.findings
    assert gate is not None
    if not gate.max:
        return []  # only overrides (or a baseline): nothing to judge at this scope
    findings = list(m.findings)
    if m.scope == "pipeline":
        findings += ctx.own_findings
    findings = with_severities(findings, ctx.severity)
    note = ""
    if gate.baseline:
        try:
            known = load_baseline(ctx.root, gate.baseline)
        except ValueError as exc:
            outdated = isinstance(exc, OutdatedBaseline)
            return [
                GateResult(
                    gate="findings",
                    scope=m.scope,
                    level=gate.level,
                    passed=False,
                    measured="outdated baseline" if outdated else "unreadable baseline",
                    threshold="a findings baseline",
                    detail=str(exc),
                )
            ]
        if known is None:
            note = f"no baseline at {gate.baseline} yet: every finding counts"
        else:
            findings = [f for f in findings if f.fingerprint not in known]
            older = sum(1 for f in findings if not is_current(f.fingerprint))
            if older:
                # A past run measured before issue 13 (`conveyor gates` on it): say why
                # its findings are all new rather than let the count speak for itself.
                note = (
                    f"{older} finding(s) of this run have fingerprints of an older Conveyor "
                    "and count as new: run the pipeline again"
                )
    own = m.scope == "pipeline" and ctx.own_scanned
    if not any(m.reports.get(kind) for kind in FINDINGS) and not own:
        return [
            GateResult(
                gate="findings",
                scope=m.scope,
                level=gate.level,
                passed=False,
                measured="no findings",
                threshold="a SARIF or Code Quality report",
                detail=_missing(m, *FINDINGS),
                unmeasured=True,
            )
        ]
    out = []
    limits = dict(gate.max)
    for severity in SEVERITIES:
        if severity not in limits:
            continue
        hits = [f for f in findings if f.severity == severity]
        detail = first_few([f"{f.rule} at {f.path}:{f.line}" if f.path else f.rule for f in hits])
        if note:
            detail = f"{detail}; {note}" if detail else note
        out.append(
            GateResult(
                gate=f"findings.{severity}",
                scope=m.scope,
                level=gate.level,
                passed=len(hits) <= limits[severity],
                measured=f"{len(hits)}{' new' if gate.baseline and not note else ''}",
                threshold=f"<= {limits[severity]}",
                detail=detail,
            )
        )
    return out


def _sizes(gates: Gates, m: Measurements) -> list[GateResult]:
    from conveyor.units import format_size

    gate = gates.sizes
    assert gate is not None
    out = []
    for pattern, limit in gate.files:
        matched = [o for o in m.outputs if _matches(o.path, pattern)]
        name, threshold = f"sizes[{pattern}]", f"<= {format_size(limit)} each"
        if not matched:
            out.append(
                GateResult(
                    gate=name,
                    scope=m.scope,
                    level=gate.level,
                    passed=False,
                    measured="no such output",
                    threshold=threshold,
                    detail=f"no declared output matches {pattern}",
                    unmeasured=True,
                )
            )
            continue
        over = sorted((o for o in matched if o.size > limit), key=lambda o: -o.size)
        largest = max(matched, key=lambda o: o.size)
        out.append(
            GateResult(
                gate=name,
                scope=m.scope,
                level=gate.level,
                passed=not over,
                measured=f"largest {largest.path} {format_size(largest.size)}",
                threshold=threshold,
                detail=("over: " + first_few([f"{o.path} {format_size(o.size)}" for o in over]))
                if over
                else "",
            )
        )
    if gate.total is not None:
        total = sum(o.size for o in m.outputs)
        out.append(
            GateResult(
                gate="sizes.total",
                scope=m.scope,
                level=gate.level,
                passed=total <= gate.total,
                measured=f"{format_size(total)} in {len(m.outputs)} files",
                threshold=f"<= {format_size(gate.total)}",
            )
        )
    return out


def _matches(path: str, pattern: str) -> bool:
    """A pattern matches a workspace-relative path, or its tail (`*.js` matches
    dist/app.js, as a job writes it relative to its directory)."""
    pattern = pattern.removeprefix("./")
    if fnmatch.fnmatchcase(path, pattern):
        return True
    parts = path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern) for i in range(1, len(parts)))


def _command(gate: CommandGate, m: Measurements, ctx: Context) -> GateResult:
    assert ctx.command is not None
    code, tail = ctx.command(gate, m.scope)
    return GateResult(
        gate=f"command:{gate.name}",
        scope=m.scope,
        level=gate.level,
        passed=code == 0,
        measured=f"exit {code}" if code is not None else "did not run",
        threshold="exit 0",
        detail=" | ".join(tail[-3:]) if code != 0 else "",
    )


def _vulnerabilities(gates: Gates, m: Measurements, ctx: Context) -> list[GateResult]:
    from conveyor.gates.vulnerabilities import evaluate as vulnerabilities

    assert gates.vulnerabilities is not None
    return vulnerabilities(
        gates.vulnerabilities, m.scope, ctx.vulnerabilities, ctx.root, ctx.deps_ignore
    )
