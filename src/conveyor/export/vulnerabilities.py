"""`conveyor deps audit`'s findings for other tools: SARIF 2.1.0 for code scanning (each
result at the lockfile line that pins the component) and a CycloneDX 1.6 VEX document
(the affected components and, per vulnerability, its ratings, what it affects and the
state of its analysis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from conveyor.deps.audit import AuditResult, ComponentFindings, Vulnerability, fingerprint
from conveyor.reports.sarif import SCHEMA, SEVERITY_LEVEL, SEVERITY_SCORE

TOOL = "conveyor-deps"
FINGERPRINT_KEY = "conveyor/vulnerability/v1"

# Code scanning reads a rule's severity from `security-severity` (a CVSS-like score):
# a rating without a score states one inside its band, as every SARIF Conveyor writes.
_BAND_SCORE = {**SEVERITY_SCORE, "none": SEVERITY_SCORE["note"]}
_LEVEL = {**SEVERITY_LEVEL, "none": "note", "unknown": "warning"}


def sarif(result: AuditResult, version: str) -> dict[str, Any]:
    """The findings as a SARIF 2.1.0 log: one rule per vulnerability, one result per
    affected component (ignored ones carry an external suppression with the reason)."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for found in result.findings:
        for v in found.vulnerabilities:
            if v.id not in rules:
                rules[v.id] = _rule(v)
            results.append(_result(found, v, list(rules).index(v.id)))
    driver = {
        "name": TOOL,
        "version": version,
        "informationUri": "https://osv.dev",
        "rules": list(rules.values()),
    }
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the workspace"}}},
                "results": results,
            }
        ],
    }


def _score(v: Vulnerability) -> str | None:
    if v.severity.score is not None:
        return f"{v.severity.score:.1f}"
    return _BAND_SCORE.get(v.severity.rating)


def _rule(v: Vulnerability) -> dict[str, Any]:
    properties: dict[str, Any] = {"tags": ["security", "vulnerability", "dependency"]}
    score = _score(v)
    if score is not None:
        properties["security-severity"] = score
    text = v.summary or v.id
    return {
        "id": v.id,
        "name": v.id.replace("-", ""),
        "shortDescription": {"text": text},
        "fullDescription": {"text": f"{text} ({', '.join(v.ids)})"},
        "helpUri": v.url,
        "help": {"text": f"{text}\n{v.url}"},
        "defaultConfiguration": {"level": _LEVEL[v.severity.rating]},
        "properties": properties,
    }


def _result(found: ComponentFindings, v: Vulnerability, index: int) -> dict[str, Any]:
    c = found.component
    also = f" ({', '.join(v.aliases)})" if v.aliases else ""
    message = f"{c.name} {c.version} is affected by {v.id}{also}, {v.severity.label()}"
    if v.summary:
        message += f": {v.summary}"
    message += "." if not message.endswith(".") else ""
    if found.fix is not None:
        message += f" Upgrade {c.name} to {found.fix} (fixes {len(found.vulnerabilities)})."
    elif v.fixed_in is not None:
        message += f" Fixed in {v.fixed_in}."
    else:
        message += " No fixed version is known."
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(c.lockfile), "uriBaseId": "%SRCROOT%"}
    }
    if c.line is not None:
        physical["region"] = {"startLine": c.line}
    result: dict[str, Any] = {
        "ruleId": v.id,
        "ruleIndex": index,
        "level": _LEVEL[v.severity.rating],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": physical,
                "logicalLocations": [{"name": c.purl, "kind": "package"}],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(c, v)},
    }
    score = _score(v)
    if score is not None:
        result["properties"] = {"security-severity": score}
    if v.ignored is not None:
        until = f" (until {v.ignored.until})" if v.ignored.until else ""
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": v.ignored.reason + until}
        ]
    return result


def vex(result: AuditResult, version: str) -> str:
    """The findings as a CycloneDX 1.6 JSON document with VEX data: the affected
    components (by purl) and one vulnerability entry per vulnerability, affecting each
    component it was found in. The analysis is 'in_triage' (Conveyor knows the version
    is in the affected range, not whether the code is reachable), with 'update' as the
    response when a fixed version is known, 'can_not_fix' when none is; an advisory set
    aside says 'will_not_fix' with the reason."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.impact_analysis import (
        ImpactAnalysisAffectedStatus,
        ImpactAnalysisResponse,
        ImpactAnalysisState,
    )
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        VulnerabilityAnalysis,
        VulnerabilityReference,
        VulnerabilitySource,
    )
    from cyclonedx.model.vulnerability import Vulnerability as CdxVulnerability
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    root = CdxComponent(name="workspace", type=ComponentType.APPLICATION, bom_ref="workspace")
    bom.metadata.component = root
    refs: dict[str, str] = {}
    for found in result.findings:
        c = found.component
        if c.purl in refs:
            continue
        refs[c.purl] = c.purl
        bom.components.add(
            CdxComponent(
                name=c.name,
                version=c.version,
                type=ComponentType.LIBRARY,
                purl=PackageURL.from_string(c.purl),
                bom_ref=c.purl,
            )
        )
    # The affected components hang off the workspace: their own edges are the SBOM's.
    bom.register_dependency(root, list(bom.components))
    by_id: dict[str, list[tuple[ComponentFindings, Vulnerability]]] = {}
    for found in result.findings:
        for v in found.vulnerabilities:
            by_id.setdefault(v.id, []).append((found, v))
    for ident, hits in by_id.items():
        first = hits[0][1]
        targets = [
            BomTarget(
                ref=found.component.purl,
                versions=[
                    BomTargetVersionRange(
                        version=found.component.version,
                        status=ImpactAnalysisAffectedStatus.AFFECTED,
                    )
                ],
            )
            for found, _ in hits
        ]
        ignored = next((v.ignored for _, v in hits if v.ignored is not None), None)
        fixes = sorted({f"{f.component.name} {f.fix}" for f, _ in hits if f.fix is not None})
        if ignored is not None:
            until = f" until {ignored.until}" if ignored.until else ""
            analysis = VulnerabilityAnalysis(
                state=ImpactAnalysisState.IN_TRIAGE,
                responses=[ImpactAnalysisResponse.WILL_NOT_FIX],
                detail=f"set aside{until}: {ignored.reason}",
            )
        else:
            analysis = VulnerabilityAnalysis(
                state=ImpactAnalysisState.IN_TRIAGE,
                responses=[
                    ImpactAnalysisResponse.UPDATE if fixes else ImpactAnalysisResponse.CAN_NOT_FIX
                ],
            )
        bom.vulnerabilities.add(
            CdxVulnerability(
                bom_ref=ident,
                id=ident,
                source=VulnerabilitySource(name=_source(ident), url=_uri(first.url)),
                references=[
                    VulnerabilityReference(
                        id=alias, source=VulnerabilitySource(name=_source(alias))
                    )
                    for alias in first.aliases
                ],
                ratings=_ratings(first),
                description=first.summary or None,
                recommendation=("Upgrade to " + ", ".join(fixes)) if fixes else None,
                analysis=analysis,
                affects=targets,
            )
        )
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def _source(ident: str) -> str:
    prefix = ident.split("-", 1)[0]
    return {"GHSA": "GitHub", "CVE": "NVD", "PYSEC": "PyPA", "RUSTSEC": "RustSec"}.get(
        prefix, "OSV"
    )


def _uri(url: str) -> Any:
    from cyclonedx.model import XsUri

    return XsUri(url) if url else None


def _ratings(v: Vulnerability) -> Sequence[Any]:
    from decimal import Decimal

    from cyclonedx.model.vulnerability import (
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
    )

    severity = VulnerabilitySeverity(v.severity.rating)
    if v.severity.vector is None:
        return [VulnerabilityRating(severity=severity)]
    vector = v.severity.vector
    method = (
        VulnerabilityScoreSource.CVSS_V4
        if vector.startswith("CVSS:4")
        else VulnerabilityScoreSource.CVSS_V3_1
        if vector.startswith("CVSS:3.1")
        else VulnerabilityScoreSource.CVSS_V3
        if vector.startswith("CVSS:3")
        else VulnerabilityScoreSource.CVSS_V2
    )
    score = Decimal(str(v.severity.score)) if v.severity.score is not None else None
    return [VulnerabilityRating(score=score, severity=severity, method=method, vector=vector)]
