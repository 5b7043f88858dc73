"""Findings' severity overrides (`gates.findings.severity`): the most specific key wins."""

from __future__ import annotations

from conveyor.model import Finding
from conveyor.reports.findings import from_level, from_score, is_current, overrides


def _finding(tool: str, rule: str, severity: str = "medium") -> Finding:
    return Finding(tool=tool, rule=rule, severity=severity, message="m")


def test_the_most_specific_override_wins() -> None:
    apply = overrides(
        [
            ("ruff", "low"),
            ("ruff/S*", "medium"),
            ("ruff/S1*", "high"),
            ("ruff/S105", "critical"),
            ("CodeQL/py/sql-injection", "critical"),
        ]
    )
    assert [
        apply(_finding(tool, rule)).severity
        for tool, rule in [
            ("ruff", "S105"),  # exact
            ("ruff", "S106"),  # the longer glob
            ("ruff", "S307"),  # the shorter glob
            ("ruff", "F401"),  # the tool
            ("Ruff", "F401"),  # tool names in any case
            ("codeql", "py/sql-injection"),  # a rule id with '/' in it
            ("codeql", "py/xss"),  # no key: as reported
            ("mypy", "S105"),  # another tool: as reported
        ]
    ] == ["critical", "high", "medium", "low", "low", "critical", "medium", "medium"]


def test_the_severity_table() -> None:
    assert [from_score(s) for s in ("9.0", 8.9, "7", "4.0", "0.1", 0, "n/a", "nan")] == [
        "critical",
        "high",
        "high",
        "medium",
        "low",
        "note",
        None,
        None,
    ]
    levels = ("error", "warning", "recommendation", "note", "none", "unheard-of")
    assert [from_level(lv, security=True) for lv in levels] == [
        "high",
        "medium",
        "low",
        "low",
        "note",
        "medium",
    ]
    assert [from_level(lv, security=False) for lv in levels] == [
        "medium",
        "low",
        "note",
        "note",
        "note",
        "low",
    ]


def test_fingerprints_of_the_first_scheme_are_told_apart() -> None:
    assert is_current("0123456789abcdef0123456789abcdef:12")
    assert not is_current("0123456789abcdef" * 4)  # scheme 1: a bare SHA-256
    assert not is_current("abc:1")
