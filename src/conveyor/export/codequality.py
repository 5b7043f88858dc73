"""Findings as a GitLab Code Quality report (the Code Climate JSON subset GitLab reads
from `artifacts: reports: codequality`), so a merge request shows what the scanners and
the secrets check found, beside the diff."""

from __future__ import annotations

import json
from collections.abc import Sequence

from conveyor.fsutil import atomic_write
from conveyor.model import Finding

# GitLab's severities: info, minor, major, critical, blocker.
SEVERITY = {
    "critical": "critical",
    "high": "major",
    "medium": "minor",
    "low": "info",
    "note": "info",
}


def write(path: str, findings: Sequence[Finding]) -> None:
    """Write the findings to `path` atomically (an empty list when there are none: GitLab
    then shows that nothing was found)."""
    issues = [
        {
            "type": "issue",
            "check_name": f"{f.tool}/{f.rule}",
            "description": f.message,
            "categories": ["Security"] if f.tool == "conveyor-secrets" else ["Bug Risk"],
            "severity": SEVERITY.get(f.severity, "info"),
            "fingerprint": f.fingerprint,
            "location": {"path": f.path or ".", "lines": {"begin": f.line or 1}},
        }
        for f in findings
    ]
    atomic_write(path, json.dumps(issues, indent=1) + "\n")
