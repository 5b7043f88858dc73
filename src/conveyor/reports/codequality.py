"""GitLab Code Quality reports (`artifacts: reports: codequality`, the Code Climate JSON
subset) read as findings for the findings gate and its baseline: what
eslint-formatter-gitlab, phpcs, golangci-lint (`--out-format code-climate`),
pylint-gitlab and ruff (`--output-format gitlab`) write. Conveyor's own writer is
`conveyor.export.codequality`.

A report is a JSON array of issues, each an object with `description`, `check_name`,
`severity` (info, minor, major, critical, blocker), `fingerprint` and `location`:
`{path, lines: {begin}}` or `{path, positions: {begin: {line, column}}}`; `engine_name`,
`categories` and `type` are optional (`categories` and `type` are not used).

- Severity: the writer's table inverted, one for one: blocker -> critical, critical ->
  high, major -> medium, minor -> low, info -> note. Another value is an error: guessing
  one would let a findings gate pass or fail on a word it does not know.
- Tool and rule: the tool is `engine_name`, else the part of `check_name` before its
  first "/" (Conveyor writes "tool/rule"), else "codequality" (ruff writes the bare
  code, "F401"); the rule is the rest of `check_name`, or all of it.
- Path: relative paths resolve against the directory of the job (as SARIF's do),
  absolute ones as they are; made workspace-relative when inside it. "." (what Conveyor
  writes for a finding without a file) is no path.
- Fingerprint: Conveyor's own, as `conveyor.reports.sarif` computes it (the flagged
  source line's hash and an occurrence index), not the tool's `fingerprint`, for the
  reasons given there (tools differ, change between versions, and ruff's, for one, is
  an opaque per-version hash). One that is of Conveyor's scheme (what its writer wrote)
  is kept as it is, so `conveyor run --codequality` output reads back the same.
"""

from __future__ import annotations

import json
import os
from typing import Any

from conveyor.export.codequality import SEVERITY as WRITTEN_SEVERITY
from conveyor.model import Finding
from conveyor.reports import findings as identity
from conveyor.reports.coverage import _workspace_path
from conveyor.reports.junit import ReportError

SEVERITY = {gitlab: ours for ours, gitlab in WRITTEN_SEVERITY.items()}
"""GitLab's severities as Conveyor's: the writer's table, inverted."""

DEFAULT_TOOL = "codequality"
"""The tool of an issue that names none (no engine_name, no "/" in its check_name)."""

_ALLOWED = ", ".join(reversed(SEVERITY))  # least severe first, as GitLab's docs list them


def read_codequality(path: str, workspace: str, base_dir: str) -> list[Finding]:
    """Every issue of one Code Quality report as a finding. `base_dir` is the absolute
    directory of the job that wrote it (relative paths resolve against it)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            issues = json.load(fh)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(issues, list):
        raise ReportError(
            f"{path}: not a Code Quality report (a JSON {type(issues).__name__}, not an array)"
        )
    found: list[tuple[Finding, int | None, object]] = []
    for index, issue in enumerate(issues):
        where = f"{path}: issue [{index}]"
        if not isinstance(issue, dict):
            raise ReportError(f"{where} is a JSON {type(issue).__name__}, not an object")
        message = issue.get("description")
        if not isinstance(message, str):
            raise ReportError(f"{where} has no description")
        file, line, column = _location(issue, where, workspace, base_dir)
        tool, rule = _names(issue, where)
        severity = _severity(issue, where)
        finding = Finding(tool, rule, severity, message, file, line)
        found.append((finding, column, issue.get("fingerprint")))
    return identity.fingerprinted(found, identity.SourceLines(workspace))


def _names(issue: dict[str, Any], where: str) -> tuple[str, str]:
    """The tool and the rule of an issue."""
    check = issue.get("check_name", "")
    if not isinstance(check, str):
        raise ReportError(f"{where}: check_name is a JSON {type(check).__name__}, not a string")
    engine = issue.get("engine_name")
    if isinstance(engine, str) and engine:
        return engine, check
    tool, sep, rule = check.partition("/")
    if sep and tool:
        return tool, rule
    return DEFAULT_TOOL, check


def _severity(issue: dict[str, Any], where: str) -> str:
    value = issue.get("severity")
    if value is None:
        raise ReportError(f"{where} has no severity (expected one of {_ALLOWED})")
    severity = SEVERITY.get(value.lower()) if isinstance(value, str) else None
    if severity is None:
        raise ReportError(f"{where}: severity {value!r} is not one of {_ALLOWED}")
    return severity


def _location(
    issue: dict[str, Any], where: str, workspace: str, base_dir: str
) -> tuple[str | None, int | None, int | None]:
    location = issue.get("location")
    if not isinstance(location, dict):
        raise ReportError(f"{where} has no location.path")
    raw = location.get("path")
    if not isinstance(raw, str) or not raw:
        raise ReportError(f"{where} has no location.path")
    line = _int(_obj(location, "lines").get("begin"))
    begin = _obj(_obj(location, "positions"), "begin")
    if line is None:
        line = _int(begin.get("line"))
    column = _int(begin.get("column"))
    if raw in (".", "./"):
        return None, line, column
    full = os.path.normpath(os.path.join(base_dir, raw))  # an absolute `raw` stays as is
    return _workspace_path(full, workspace), line, column


def _obj(value: dict[str, Any], key: str) -> dict[str, Any]:
    item = value.get(key)
    return item if isinstance(item, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
