"""An audit as people and machines read it: one line per finding, a summary, JSON, and
SARIF 2.1.0 for code-scanning services (the same schema, levels and security-severity
scores as `conveyor.reports.sarif`, plus the column and each rule's fix as its help)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any
from urllib.parse import quote

from conveyor.fsutil import atomic_write
from conveyor.interop.audit import RULES, SEVERITIES, Audit, Finding
from conveyor.reports.sarif import SCHEMA, SRCROOT

_LEVEL = {"high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {"high": "8.0", "medium": "5.5", "low": "2.0", "info": "0.0"}


def line(f: Finding) -> str:
    """`FILE:LINE:COL: SEVERITY [rule] message (fix: ...)`."""
    return f"{f.path}:{f.line}:{f.col}: {f.severity} [{f.rule}] {f.message} (fix: {f.fix})"


def summary(result: Audit) -> str:
    """One line: how many findings of each severity, in how many files."""
    files = f"{len(result.files)} file{'s' if len(result.files) != 1 else ''}"
    if not result.findings:
        return f"no findings in {files}"
    counts = Counter(f.severity for f in result.findings)
    parts = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    total = len(result.findings)
    return f"{total} finding{'s' if total != 1 else ''} in {files}: {parts}"


def as_json(result: Audit) -> str:
    by_severity = Counter(f.severity for f in result.findings)
    return json.dumps(
        {
            "files": list(result.files),
            "findings": [f.as_dict() for f in result.findings],
            "summary": {s: by_severity[s] for s in SEVERITIES},
        },
        indent=2,
    )


def write_sarif(result: Audit, path: str, version: str) -> None:
    """The audit as a SARIF 2.1.0 log, written atomically."""
    used = sorted({f.rule for f in result.findings})
    index = {rule: i for i, rule in enumerate(used)}
    rules = [
        {
            "id": rule,
            "shortDescription": {"text": RULES[rule].title},
            "help": {"text": f"fix: {RULES[rule].fix}"},
            "defaultConfiguration": {"level": _LEVEL[RULES[rule].severity]},
            "properties": {
                "security-severity": _SCORE[RULES[rule].severity],
                "tags": ["security", "ci"],
            },
        }
        for rule in used
    ]
    results: list[dict[str, Any]] = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.message} (fix: {f.fix})"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact(f.path),
                        "region": {"startLine": f.line, "startColumn": f.col},
                    }
                }
            ],
            "properties": {"security-severity": _SCORE[f.severity]},
        }
        for f in result.findings
    ]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "conveyor-audit",
                        "version": version,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    atomic_write(path, json.dumps(log, indent=2) + "\n")


def _artifact(path: str) -> dict[str, str]:
    if os.path.isabs(path):
        return {"uri": "file://" + quote(path.replace(os.sep, "/"))}
    return {"uri": quote(path.replace(os.sep, "/")), "uriBaseId": SRCROOT}
