"""SARIF 2.1.0 logs (what CodeQL, Semgrep, ruff, Bandit, Trivy and most scanners write)
read as findings for the findings gate and its baseline, and written for code-scanning
services such as GitHub's.

Severity of a result, from the first of these that is present:

1. `properties["security-severity"]` of the result itself, else of its rule (the rule is
   found in `runs[].tool.driver.rules[]` or `runs[].tool.extensions[].rules[]` by
   `ruleIndex` / `rule.index`, else by `ruleId`): a CVSS score, as a string or a number,
   GitHub code scanning's convention. >= 9.0 is critical, >= 7.0 high, >= 4.0 medium,
   > 0 low, 0 note. A value that is not a number is ignored.
2. The result's `level`, else its rule's `defaultConfiguration.level`, else SARIF's
   default ("warning"; "none" for a result whose `kind` is not "fail"):
   error -> high, warning -> medium, note -> low, none -> note.

Results that are not findings are skipped: `kind` "pass" or "notApplicable", and results
with an accepted suppression (e.g. an in-source `nosemgrep`), as code scanning hides them.

The message is `message.text`, else the rule's `messageStrings[message.id]`, else its
`shortDescription`, with `{0}`-style placeholders filled from `message.arguments`. The
path is the first location's artifact URI (`file://` URIs, absolute paths, or relative
ones resolved against `run.originalUriBaseIds[uriBaseId]` when present, else against the
directory of the job; an undefined "%SRCROOT%", GitHub's name for the source root and
what `write_sarif` uses, against the workspace), percent-decoded and made
workspace-relative when inside it.

The fingerprint (what a baseline lists) never contains the line number, so that a
finding keeps it when code above it moves: a SHA-256 of the tool and the result's own
`fingerprints`/`partialFingerprints` when it has some (Conveyor's own "conveyor/v1" is
taken as is), else of the tool, rule, path and message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from conveyor.fsutil import atomic_write
from conveyor.model import SEVERITIES, Finding
from conveyor.reports.coverage import _workspace_path
from conveyor.reports.junit import ReportError

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "conveyor/v1"
SRCROOT = "%SRCROOT%"

_LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "note"}
# What write_sarif states per severity: scores that read back as the same severity.
_SEVERITY_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "note": "0.0"}
_SEVERITY_LEVEL = {
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
    for index, run in enumerate(runs):
        findings += _read_run(path, index, run, workspace, base_dir)
    return findings


def _read_run(path: str, index: int, run: Any, workspace: str, base_dir: str) -> list[Finding]:
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
    findings = []
    for result in _list(run, "results"):
        if not isinstance(result, dict) or _not_a_finding(result):
            continue
        rule = _rule(result, components, by_id)
        rule_id = result.get("ruleId") or _obj(result, "rule").get("id") or rule.get("id") or ""
        file, line = _location(result, bases, artifacts, workspace, base_dir)
        message = _message(result, rule)
        findings.append(
            Finding(
                tool=tool,
                rule=str(rule_id),
                severity=_severity(result, rule),
                message=message,
                path=file,
                line=line,
                fingerprint=_fingerprint(result, tool, str(rule_id), file, message),
            )
        )
    return findings


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
        score = _score(_obj(holder, "properties").get("security-severity"))
        if score is not None:
            if score >= 9.0:
                return "critical"
            if score >= 7.0:
                return "high"
            if score >= 4.0:
                return "medium"
            return "low" if score > 0 else "note"
    level = result.get("level") or _obj(rule, "defaultConfiguration").get("level")
    if level is None:
        level = "warning" if result.get("kind", "fail") == "fail" else "none"
    return _LEVEL_SEVERITY.get(str(level), "medium")


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    return score if math.isfinite(score) else None


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
) -> tuple[str | None, int | None]:
    locations = _list(result, "locations")
    physical = _obj(locations[0], "physicalLocation") if locations else {}
    artifact = _obj(physical, "artifactLocation")
    if "uri" not in artifact:
        index = _int(artifact.get("index"))
        if index is not None and 0 <= index < len(artifacts):
            artifact = _obj(artifacts[index], "location") or artifact
    line = _int(_obj(physical, "region").get("startLine"))
    uri = artifact.get("uri")
    if not isinstance(uri, str) or not uri:
        return None, line
    resolved = _resolve(uri, artifact.get("uriBaseId"), bases, workspace, base_dir, depth=0)
    if resolved is None:
        return uri, line
    return _workspace_path(resolved, workspace), line


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


def _fingerprint(
    result: dict[str, Any], tool: str, rule: str, path: str | None, message: str
) -> str:
    partial = _obj(result, "partialFingerprints")
    own = partial.get(FINGERPRINT_KEY)
    if isinstance(own, str) and own:
        return own
    items = sorted(
        [("fingerprints", str(k), str(v)) for k, v in _obj(result, "fingerprints").items()]
        + [("partialFingerprints", str(k), str(v)) for k, v in partial.items()]
    )
    if items:
        key: list[Any] = [tool, items]
    else:
        key = [tool, rule, path or "", message]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


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
            "defaultConfiguration": {"level": _SEVERITY_LEVEL[severity]},
            "properties": {"security-severity": _SEVERITY_SCORE[severity]},
        }
        for rule, severity in rules.items()
    ]
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _SEVERITY_LEVEL[finding.severity],
            "message": {"text": finding.message},
        }
        if finding.path:
            physical: dict[str, Any] = {"artifactLocation": _artifact(finding.path)}
            if finding.line is not None and finding.line >= 1:
                physical["region"] = {"startLine": finding.line}
            result["locations"] = [{"physicalLocation": physical}]
        if finding.fingerprint:
            result["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
        result["properties"] = {"security-severity": _SEVERITY_SCORE[finding.severity]}
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
