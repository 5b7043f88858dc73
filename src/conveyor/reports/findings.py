"""What makes a finding the same finding from one run to the next (its fingerprint), and
how severe it is (the severity table, and a pipeline's overrides): one definition for
every report reader, the baselines, SARIF and GitLab Code Quality.

Fingerprints, scheme 2 ("<hash>:<index>", as GitHub code scanning's
`primaryLocationLineHash`):

- the hash is the first 32 hex digits of a SHA-256 of the tool, the rule, the path and
  the flagged source line with all its whitespace removed (re-indenting a block keeps
  it); when the line cannot be read (no path, no line, a file outside the workspace or
  gone), the finding's message stands in for it;
- the index counts the findings of the same report before it (by line, then column) in
  the same file with the same hash, so two identical findings in one file differ, and
  lines inserted above them change neither.

No line number and no neighbouring line goes into the hash: a line inserted or edited
next to a finding leaves it known. Identical lines are told apart by their order only,
so adding one more above the others shifts which index each has, never how many there
are: a baseline still counts exactly one new finding.

Scheme 1 (before issue 13) hashed the tool, rule, path and message with no index, and
gave every identical finding in a file one fingerprint; its fingerprints are 64 hex
digits with no ':', which is how an old baseline is recognised.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from conveyor.model import Finding

SCHEME = 2
"""The fingerprint scheme this module computes (a baseline's `version` says which)."""

_HASH_DIGITS = 32
_CURRENT = re.compile(rf"^[0-9a-f]{{{_HASH_DIGITS}}}:\d+$")
_WHITESPACE = re.compile(r"\s+")
_MAX_SOURCE = 16 * 1024 * 1024
"""Larger files are not read for their lines (a minified bundle): the message stands in."""


def is_current(fingerprint: str) -> bool:
    """Whether a fingerprint is of this scheme (else an older one, or a foreign string)."""
    return bool(_CURRENT.match(fingerprint))


def line_hash(tool: str, rule: str, path: str | None, text: str) -> str:
    """The hash part of a fingerprint: `text` is the flagged line (or the message)."""
    normal = _WHITESPACE.sub("", text)
    key = "\0".join((tool, rule, path or "", normal))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]


def with_index(hashes: Iterable[tuple[str | None, str]]) -> list[str]:
    """Fingerprints for (path, hash) pairs given in the file's order (line, then column):
    each hash with the number of earlier pairs of the same path and hash."""
    seen: dict[tuple[str | None, str], int] = {}
    out = []
    for path, digest in hashes:
        n = seen.get((path, digest), 0)
        seen[(path, digest)] = n + 1
        out.append(f"{digest}:{n}")
    return out


class SourceLines:
    """The lines of the workspace's files, each file read once (for a report's findings)."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self._files: dict[str, list[str] | None] = {}

    def line(self, path: str | None, line: int | None) -> str | None:
        """The text of `line` (1-based) of `path` (workspace-relative or absolute), or None
        when it cannot be read."""
        if not path or line is None or line < 1:
            return None
        lines = self._files.get(path)
        if path not in self._files:
            lines = self._files[path] = self._read(path)
        if lines is None or line > len(lines):
            return None
        return lines[line - 1]

    def _read(self, path: str) -> list[str] | None:
        full = path if os.path.isabs(path) else os.path.join(self.workspace, path)
        try:
            if os.path.getsize(full) > _MAX_SOURCE:
                return None
            with open(full, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        # Decoded leniently: a finding in a Latin-1 file still gets its own line's hash.
        return data.decode("utf-8", "replace").splitlines()


def fingerprinted(
    found: Sequence[tuple[Finding, int | None, object]], sources: SourceLines
) -> list[Finding]:
    """A report's findings with their fingerprints: for each (finding, its column, the
    fingerprint the report carries), the carried one when it is of this scheme (a
    report Conveyor wrote reads back the same), else the hash of the flagged source
    line (the message when the line cannot be read) with the occurrence index, counted
    in each file's order whatever order the tool wrote."""
    out: list[Finding] = []
    order: list[tuple[str, int, int, int]] = []  # (path, line, column, position)
    for finding, column, own in found:
        if isinstance(own, str) and is_current(own):
            out.append(finding._replace(fingerprint=own))
            continue
        text = sources.line(finding.path, finding.line)
        digest = line_hash(
            finding.tool, finding.rule, finding.path, finding.message if text is None else text
        )
        order.append((finding.path or "", finding.line or 0, column or 0, len(out)))
        out.append(finding._replace(fingerprint=digest))
    order.sort()
    positions = [at for *_, at in order]
    prints = with_index((out[i].path, out[i].fingerprint) for i in positions)
    for at, fingerprint in zip(positions, prints, strict=True):
        out[at] = out[at]._replace(fingerprint=fingerprint)
    return out


# -- severity --------------------------------------------------------------------------

LEVEL_SEVERITY: dict[str, tuple[str, str]] = {
    "error": ("high", "medium"),
    "warning": ("medium", "low"),
    "recommendation": ("low", "note"),
    "note": ("low", "note"),
    "none": ("note", "note"),
}
"""A level (SARIF's, or CodeQL's `problem.severity`) as (a security finding's severity,
another finding's). A linter's "error" is a defect worth fixing, not a vulnerability:
without this split every ruff finding was "high"."""


def from_score(value: Any) -> str | None:
    """A CVSS-like `security-severity` score as a severity (GitHub's bands), or None when
    it is not a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    if not math.isfinite(score):
        return None
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "note"


def from_level(level: str, security: bool) -> str:
    """A level as a severity (an unknown level is a warning)."""
    pair = LEVEL_SEVERITY.get(level.lower(), LEVEL_SEVERITY["warning"])
    return pair[0] if security else pair[1]


def overrides(table: Sequence[tuple[str, str]]) -> Callable[[Finding], Finding]:
    """A function giving a finding the severity `table` (`gates.findings.severity`) sets
    for it, else leaving it as reported. Keys are a tool ("ruff"), or a tool and a rule
    ("ruff/S105"), the rule possibly a glob ("ruff/S*"); the tool matches in any case.
    The most specific key wins: an exact rule, then the longest glob, then the tool."""
    exact: dict[tuple[str, str], str] = {}
    globs: list[tuple[str, str, str]] = []
    tools: dict[str, str] = {}
    for key, severity in table:
        tool, sep, rule = key.partition("/")
        if not sep:
            tools[tool.lower()] = severity
        elif any(c in rule for c in "*?["):
            globs.append((tool.lower(), rule, severity))
        else:
            exact[(tool.lower(), rule)] = severity
    globs.sort(key=lambda g: -len(g[1]))

    def apply(finding: Finding) -> Finding:
        tool = finding.tool.lower()
        severity = exact.get((tool, finding.rule))
        if severity is None:
            severity = next(
                (
                    s
                    for t, pattern, s in globs
                    if t == tool and fnmatch.fnmatchcase(finding.rule, pattern)
                ),
                None,
            )
        if severity is None:
            severity = tools.get(tool)
        if severity is None or severity == finding.severity:
            return finding
        return finding._replace(severity=severity)

    return apply


def with_severities(findings: Iterable[Finding], table: Sequence[tuple[str, str]]) -> list[Finding]:
    """The findings with `table`'s overrides applied."""
    if not table:
        return list(findings)
    apply = overrides(table)
    return [apply(f) for f in findings]
