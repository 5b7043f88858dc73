"""SARIF 2.1.0 logs (what CodeQL, Semgrep, ruff, Bandit, Trivy and most scanners write)
read as findings for the findings gate and its baseline, and written for code-scanning
services such as GitHub's.

Severity of a result, from the first of these that is present (the table is
`conveyor.reports.findings`, documented in docs/configuration.md, "Findings: identity and
severity"):

1. `properties["security-severity"]` of the result itself, else of its rule (the rule is
   found in `runs[].tool.driver.rules[]` or `runs[].tool.extensions[].rules[]` by
   `ruleIndex` / `rule.index`, else by `ruleId`): a CVSS score, as a string or a number,
   GitHub code scanning's convention. >= 9.0 is critical, >= 7.0 high, >= 4.0 medium,
   > 0 low, 0 note. A value that is not a number is ignored.
2. A level: the result's `level`, else its rule's `defaultConfiguration.level`, else the
   rule's `properties["problem.severity"]` (CodeQL's), else SARIF's default ("warning";
   "none" for a result whose `kind` is not "fail"). For a security finding (a "security"
   tag on the result or its rule) error -> high, warning -> medium, note -> low; for any
   other (a linter's) error -> medium, warning -> low, note -> note; none -> note.

A pipeline's `gates.findings.severity` overrides this per tool or rule, when the gates
are evaluated (not here: the kept measurements stay as the tool reported them).

Results that are not findings are skipped: `kind` "pass" or "notApplicable", and results
with an accepted suppression (e.g. an in-source `nosemgrep`), as code scanning hides them.

The message is `message.text`, else the rule's `messageStrings[message.id]`, else its
`shortDescription`, with `{0}`-style placeholders filled from `message.arguments`. The
path is the first location's artifact URI (`file://` URIs, absolute paths, or relative
ones resolved against `run.originalUriBaseIds[uriBaseId]` when present, else against the
directory of the job; an undefined "%SRCROOT%", GitHub's name for the source root and
what `write_sarif` uses, against the workspace), percent-decoded and made
workspace-relative when inside it.

The fingerprint (what a baseline lists) is Conveyor's own, `conveyor.reports.findings`:
the flagged source line's hash and an occurrence index, never the line number. The
tool's own `fingerprints`/`partialFingerprints` are not used: they differ from tool to
tool and version to version (a tool that starts writing them would make every finding
new), and some give every finding of a rule in a file the same one. Only Conveyor's own
("conveyor/v2", what `write_sarif` writes) is taken as is, so a log it wrote reads back
the same.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from conveyor.fsutil import atomic_write
from conveyor.model import SEVERITIES, Finding
from conveyor.reports import findings as identity
from conveyor.reports.coverage import _workspace_path
from conveyor.reports.junit import ReportError

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "conveyor/v2"
SRCROOT = "%SRCROOT%"

# What write_sarif states per severity: scores that read back as the same severity.
SEVERITY_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "note": "0.0"}
SEVERITY_LEVEL = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "note": "note",
}
_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def read_sarif(path: str, workspace: str, base_dir: str) -> list[Finding]:
    """Every finding of every run of one SARIF 2.1.0 log. `base_dir` is the absolute
    directory of the job that wrote it (relative URIs without a known base resolve
    against it)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            log = json.load(fh)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(log, dict):
        raise ReportError(f"{path}: not a SARIF log (a JSON {type(log).__name__}, not an object)")
    version = log.get("version")
    if version != "2.1.0":
        found = f"version {version!r}" if version is not None else "no version"
        raise ReportError(f"{path}: SARIF {found}, expected 2.1.0")
    runs = log.get("runs")
    if not isinstance(runs, list):
        raise ReportError(f"{path}: not a SARIF log (no 'runs' list)")
    findings: list[Finding] = []
    sources = identity.SourceLines(workspace)
    for index, run in enumerate(runs):
        findings += _read_run(path, index, run, workspace, base_dir, sources)
    return findings


def _read_run(
    path: str, index: int, run: Any, workspace: str, base_dir: str, sources: identity.SourceLines
) -> list[Finding]:
    tool_obj = _obj(run, "tool")
    driver = _obj(tool_obj, "driver")
    tool = driver.get("name")
    if not isinstance(tool, str) or not tool:
        raise ReportError(f"{path}: runs[{index}] has no tool.driver.name")
    components = [driver] + [e for e in _list(tool_obj, "extensions") if isinstance(e, dict)]
    by_id: dict[str, dict[str, Any]] = {}
    for component in reversed(components):  # the driver's rules win over extensions'
        for rule in _list(component, "rules"):
            if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                by_id[rule["id"]] = rule
    bases = _obj(run, "originalUriBaseIds")
    artifacts = _list(run, "artifacts")
    found: list[tuple[Finding, int | None, object]] = []
    for result in _list(run, "results"):
        if not isinstance(result, dict) or _not_a_finding(result):
            continue
        rule = _rule(result, components, by_id)
        rule_id = str(
            result.get("ruleId") or _obj(result, "rule").get("id") or rule.get("id") or ""
        )
        file, line, column = _location(result, bases, artifacts, workspace, base_dir)
        message = _message(result, rule)
        finding = Finding(tool, rule_id, _severity(result, rule), message, file, line)
        own = _obj(result, "partialFingerprints").get(FINGERPRINT_KEY)
        found.append((finding, column, own))
    return identity.fingerprinted(found, sources)


def _obj(value: Any, key: str) -> dict[str, Any]:
    item = value.get(key) if isinstance(value, dict) else None
    return item if isinstance(item, dict) else {}


def _list(value: Any, key: str) -> list[Any]:
    item = value.get(key) if isinstance(value, dict) else None
    return item if isinstance(item, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _not_a_finding(result: dict[str, Any]) -> bool:
    if result.get("kind") in ("pass", "notApplicable"):
        return True
    return any(
        isinstance(s, dict) and s.get("status", "accepted") == "accepted"
        for s in _list(result, "suppressions")
    )


def _rule(
    result: dict[str, Any], components: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    ref = _obj(result, "rule")
    index = _int(result.get("ruleIndex"))
    if index is None:
        index = _int(ref.get("index"))
    component = components[0]
    extension = _int(_obj(ref, "toolComponent").get("index"))
    if extension is not None and 0 <= extension < len(components) - 1:
        component = components[extension + 1]
    rules = _list(component, "rules")
    if index is not None and 0 <= index < len(rules) and isinstance(rules[index], dict):
        return rules[index]  # type: ignore[no-any-return]
    rule_id = result.get("ruleId") or ref.get("id")
    if isinstance(rule_id, str):
        # A hierarchical id ("CA2101/1") names a sub-rule of the descriptor "CA2101".
        return by_id.get(rule_id) or by_id.get(rule_id.split("/")[0]) or {}
    return {}


def _severity(result: dict[str, Any], rule: dict[str, Any]) -> str:
    for holder in (result, rule):
        scored = identity.from_score(_obj(holder, "properties").get("security-severity"))
        if scored is not None:
            return scored
    level = (
        result.get("level")
        or _obj(rule, "defaultConfiguration").get("level")
        or _obj(rule, "properties").get("problem.severity")
    )
    if level is None:
        level = "warning" if result.get("kind", "fail") == "fail" else "none"
    return identity.from_level(str(level), _security(result, rule))


def _security(result: dict[str, Any], rule: dict[str, Any]) -> bool:
    """Whether the result or its rule is tagged "security" (CodeQL's and Semgrep's way
    of saying a rule finds vulnerabilities, not defects)."""
    for holder in (result, rule):
        tags = _obj(holder, "properties").get("tags")
        if isinstance(tags, list) and any(
            isinstance(t, str) and t.lower() == "security" for t in tags
        ):
            return True
    return False


def _message(result: dict[str, Any], rule: dict[str, Any]) -> str:
    message = _obj(result, "message")
    text = message.get("text")
    if not isinstance(text, str):
        template = _obj(_obj(rule, "messageStrings"), str(message.get("id"))).get("text")
        if not isinstance(template, str):
            template = _obj(rule, "shortDescription").get("text")
        text = template if isinstance(template, str) else ""
    args = [str(a) for a in _list(message, "arguments")]
    if args:
        text = _PLACEHOLDER.sub(lambda m: args[int(m[1])] if int(m[1]) < len(args) else m[0], text)
    return text


def _location(
    result: dict[str, Any],
    bases: dict[str, Any],
    artifacts: list[Any],
    workspace: str,
    base_dir: str,
) -> tuple[str | None, int | None, int | None]:
    locations = _list(result, "locations")
    physical = _obj(locations[0], "physicalLocation") if locations else {}
    artifact = _obj(physical, "artifactLocation")
    if "uri" not in artifact:
        index = _int(artifact.get("index"))
        if index is not None and 0 <= index < len(artifacts):
            artifact = _obj(artifacts[index], "location") or artifact
    region = _obj(physical, "region")
    line, column = _int(region.get("startLine")), _int(region.get("startColumn"))
    uri = artifact.get("uri")
    if not isinstance(uri, str) or not uri:
        return None, line, column
    resolved = _resolve(uri, artifact.get("uriBaseId"), bases, workspace, base_dir, depth=0)
    if resolved is None:
        return uri, line, column
    return _workspace_path(resolved, workspace), line, column


def _resolve(
    uri: str, base_id: Any, bases: dict[str, Any], workspace: str, base_dir: str, depth: int
) -> str | None:
    """The absolute local path a URI names; None for a non-file URI (https:...)."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return os.path.normpath(unquote(parts.path))
    if len(parts.scheme) > 1:
        return None
    path = unquote(uri)
    if os.path.isabs(path):
        return os.path.normpath(path)
    base = base_dir
    # originalUriBaseIds entries may themselves be relative to another base id.
    entry = bases.get(base_id) if isinstance(base_id, str) else None
    if isinstance(entry, dict) and isinstance(entry.get("uri"), str) and depth < 8:
        resolved = _resolve(
            entry["uri"], entry.get("uriBaseId"), bases, workspace, base_dir, depth + 1
        )
        if resolved is not None:
            base = resolved
    elif base_id == SRCROOT:
        base = workspace  # the source root by convention (what write_sarif means by it)
    return os.path.normpath(os.path.join(base, path))


def write_sarif(
    findings: Sequence[Finding], tool: str, version: str, path: str, information_uri: str = ""
) -> None:
    """A SARIF 2.1.0 log of one run of `tool`, written atomically. Workspace-relative
    paths are written as URIs relative to "%SRCROOT%" (what code-scanning services
    expect), others as `file://` URIs."""
    rules: dict[str, str] = {}
    for finding in findings:
        if finding.severity not in SEVERITIES:
            raise ValueError(f"severity {finding.severity!r}: expected one of {SEVERITIES}")
        worst = rules.get(finding.rule)
        if worst is None or SEVERITIES.index(finding.severity) < SEVERITIES.index(worst):
            rules[finding.rule] = finding.severity
    index = {rule: i for i, rule in enumerate(rules)}
    driver: dict[str, Any] = {"name": tool, "version": version}
    if information_uri:
        driver["informationUri"] = information_uri
    # The rule states its worst finding's severity: code scanning reads it from there.
    driver["rules"] = [
        {
            "id": rule,
            "defaultConfiguration": {"level": SEVERITY_LEVEL[severity]},
            "properties": {"security-severity": SEVERITY_SCORE[severity]},
        }
        for rule, severity in rules.items()
    ]
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": SEVERITY_LEVEL[finding.severity],
            "message": {"text": finding.message},
        }
        if finding.path:
            physical: dict[str, Any] = {"artifactLocation": _artifact(finding.path)}
            if finding.line is not None and finding.line >= 1:
                physical["region"] = {"startLine": finding.line}
            result["locations"] = [{"physicalLocation": physical}]
        if finding.fingerprint:
            result["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
        result["properties"] = {"security-severity": SEVERITY_SCORE[finding.severity]}
        results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
    atomic_write(path, json.dumps(log, indent=2) + "\n")


def _artifact(path: str) -> dict[str, str]:
    if os.path.isabs(path):
        return {"uri": "file://" + quote(path.replace(os.sep, "/"))}
    return {"uri": quote(path), "uriBaseId": SRCROOT}
