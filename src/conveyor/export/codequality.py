"""Findings as a GitLab Code Quality report (the Code Climate JSON subset GitLab reads
from `artifacts: reports: codequality`), so a merge request shows what the scanners and
the secrets check found, beside the diff.

GitLab requires each issue's fingerprint to be unique: a finding reported twice (two
jobs scanning the same file) is one issue. Severities follow Conveyor's five one for one
(the findings gates' severities, with `gates.findings.severity` applied by the caller)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from conveyor.fsutil import atomic_write
from conveyor.model import Finding

SEVERITY = {
    "critical": "blocker",
    "high": "critical",
    "medium": "major",
    "low": "minor",
    "note": "info",
}
"""Conveyor's severities as GitLab's (info, minor, major, critical, blocker)."""


def write(path: str, findings: Sequence[Finding]) -> None:
    """Write the findings to `path` atomically (an empty list when there are none: GitLab
    then shows that nothing was found), each fingerprint once."""
    seen: set[str] = set()
    issues = []
    for f in findings:
        if f.fingerprint in seen:
            continue
        seen.add(f.fingerprint)
        issues.append(
            {
                "type": "issue",
                "check_name": f"{f.tool}/{f.rule}",
                "description": f.message,
                "categories": ["Security"] if f.tool == "conveyor-secrets" else ["Bug Risk"],
                "severity": SEVERITY.get(f.severity, "info"),
                "fingerprint": f.fingerprint,
                "location": {"path": f.path or ".", "lines": {"begin": f.line or 1}},
            }
        )
    atomic_write(path, json.dumps(issues, indent=1) + "\n")
