"""GitLab Code Quality reports read as findings: what the linters that write the format
give (ruff's, for real), what Conveyor's own writer gives back, and bad files refused
with where and what."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.export import codequality as writer
from conveyor.model import Finding
from conveyor.reports.codequality import read_codequality
from conveyor.reports.junit import ReportError
from tests.reports.conftest import tool_env, write


def report(at: Path, issues: Any) -> str:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.write_text(json.dumps(issues))
    return str(at)


def issue(
    path: str = "a.py",
    line: int = 1,
    check: str = "R1",
    severity: str = "major",
    text: str = "m",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "description": text,
        "check_name": check,
        "fingerprint": "the tool's own",
        "severity": severity,
        "location": {"path": path, "lines": {"begin": line}},
        **extra,
    }


def test_severities_names_locations_and_paths(tmp_path: Path) -> None:
    ws, job = tmp_path / "ws", tmp_path / "ws/web"
    positions = {"path": "src/b.js", "positions": {"begin": {"line": 4, "column": 9}}}
    issues = [
        issue("src/a.js", 2, "no-eval", "blocker", "eval", engine_name="eslint"),
        {**issue(check="pylint/W0611", severity="critical"), "location": positions},
        issue("src/a.js", 3, "F401", "major", "unused", categories=["Style"], type="issue"),
        issue(str(ws / "lib/c.py"), 5, "golangci/errcheck/sub", "minor"),
        issue(str(tmp_path / "elsewhere.py"), 6, "", "info"),
    ]
    found = read_codequality(report(job / "gl-code-quality.json", issues), str(ws), str(job))
    assert [(f.tool, f.rule, f.severity, f.path, f.line) for f in found] == [
        ("eslint", "no-eval", "critical", "web/src/a.js", 2),
        ("pylint", "W0611", "high", "web/src/b.js", 4),
        ("codequality", "F401", "medium", "web/src/a.js", 3),
        ("golangci", "errcheck/sub", "low", "lib/c.py", 5),
        ("codequality", "", "note", str(tmp_path / "elsewhere.py"), 6),
    ]
    assert [f.message for f in found[:3]] == ["eval", "m", "unused"]


def test_an_empty_report_is_no_findings(tmp_path: Path) -> None:
    assert read_codequality(report(tmp_path / "cq.json", []), str(tmp_path), str(tmp_path)) == []


def test_fingerprints_are_conveyors_own_with_an_index(tmp_path: Path) -> None:
    def read(*issues: dict[str, Any]) -> list[Finding]:
        return read_codequality(report(tmp_path / "cq.json", issues), str(tmp_path), str(tmp_path))

    # No such file: the message stands in for the line, and the line number is left out.
    [one] = read(issue(line=1))
    [moved] = read(issue(line=90))
    digest = hashlib.sha256(b"codequality\0R1\0a.py\0m").hexdigest()[:32]
    assert one.fingerprint == moved.fingerprint == f"{digest}:0"
    # Identical issues in one file (the tool's fingerprint the same for both): told
    # apart by their order in the file, whatever order the tool wrote them in.
    twice = read(issue(line=7), issue(line=3))
    assert [f.fingerprint for f in twice] == [f"{digest}:1", f"{digest}:0"]
    # Conveyor's own scheme is kept as written (its --codequality output).
    ours = read(issue(line=1, fingerprint=f"{'0' * 32}:4"))
    assert ours[0].fingerprint == f"{'0' * 32}:4"
    # With the source at hand, the line (whitespace aside) is what is hashed: lines
    # inserted above leave a finding known.
    (tmp_path / "a.py").write_text("x = 1\n    y  =  2\nx = 1\n")
    lines = read(issue(line=1, text="first"), issue(line=2), issue(line=3, text="third"))
    assert lines[0].fingerprint.split(":")[0] == lines[2].fingerprint.split(":")[0]
    assert [f.fingerprint[-2:] for f in lines] == [":0", ":0", ":1"]
    (tmp_path / "a.py").write_text("# new\n# lines\n\nx = 1\n    y  =  2\nx = 1\n")
    later = read(issue(line=4, text="first"), issue(line=5), issue(line=6, text="third"))
    assert [f.fingerprint for f in later] == [f.fingerprint for f in lines]


def test_conveyors_own_report_reads_back_the_same_findings(tmp_path: Path) -> None:
    fp = [f"{n:032x}:0" for n in range(1, 5)]
    findings = [
        Finding("conveyor-secrets", "AWSKeyDetector", "critical", "AWS key", "src/a.py", 3, fp[0]),
        Finding("CodeQL", "py/sql-injection", "high", "SQL", "src/db.py", 9, fp[1]),
        Finding("ruff", "F401", "medium", "unused", "src/c.py", 1, fp[2]),
        Finding("semgrep", "x", "low", "hm", "src/d.py", 2, fp[3]),
    ]
    out = tmp_path / "gl-code-quality.json"
    writer.write(str(out), findings)
    assert read_codequality(str(out), str(tmp_path), str(tmp_path)) == findings
    # A finding without a file is written as "." at line 1 (GitLab wants both).
    nowhere = Finding("t", "r", "note", "somewhere", None, None, f"{'9' * 32}:0")
    writer.write(str(out), [nowhere])
    assert read_codequality(str(out), str(tmp_path), str(tmp_path)) == [nowhere._replace(line=1)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", r": not JSON \("),
        ('{"issues": []}', r": not a Code Quality report \(a JSON dict, not an array\)"),
        ('[{"description": "d"}, 3]', r": issue \[0\] has no location.path"),
        ("[3]", r": issue \[0\] is a JSON int, not an object"),
        ('[{"location": {"path": "a.py"}}]', r": issue \[0\] has no description"),
        (
            '[{"description": "d", "severity": "info", "location": {"lines": {"begin": 1}}}]',
            r": issue \[0\] has no location.path",
        ),
        (
            '[{"description": "d", "check_name": 7, "location": {"path": "a.py"}}]',
            r": issue \[0\]: check_name is a JSON int, not a string",
        ),
        (
            '[{"description": "d", "severity": "warning", "location": {"path": "a.py"}}]',
            r": issue \[0\]: severity 'warning' is not one of info, minor, major, critical, "
            r"blocker$",
        ),
        (
            '[{"description": "d", "location": {"path": "a.py"}}]',
            r": issue \[0\] has no severity \(expected one of info, minor, major, critical, "
            r"blocker\)$",
        ),
    ],
)
def test_what_is_not_a_code_quality_report_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ReportError, match=problem) as info:
        read_codequality(str(path), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{path}: ")


def test_a_second_bad_issue_is_named_by_its_index(tmp_path: Path) -> None:
    path = report(tmp_path / "cq.json", [issue(), issue(severity="Blocker"), issue(severity="")])
    with pytest.raises(ReportError, match=r"issue \[2\]: severity '' is not one of"):
        read_codequality(path, str(tmp_path), str(tmp_path))


APP = """\
import os
import sys


def check(x):
    if x == None:
        return os.sep
    return x
"""


def ruff_command() -> list[str]:
    """ruff, from PATH or beside this interpreter (the dev extras install it there)."""
    found = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("ruff is not installed (it comes with the dev extras)")
    return [found]


def ruff_gitlab(workspace: Path, out: Path) -> list[dict[str, Any]]:
    select = ["--select", "F,E", "--exit-zero", "--no-cache", "--isolated"]
    env = {k: v for k, v in tool_env().items() if k != "CI_PROJECT_DIR"}
    with out.open("w") as fh:
        subprocess.run(
            [*ruff_command(), "check", "--output-format", "gitlab", *select, "src"],
            cwd=workspace,
            env=env,
            stdout=fh,
            check=True,
        )
    issues: list[dict[str, Any]] = json.loads(out.read_text())
    return issues


def test_ruffs_gitlab_report_as_findings_that_survive_moved_lines(tmp_path: Path) -> None:
    app = write(tmp_path / "src/app.py", APP)
    issues = ruff_gitlab(tmp_path, tmp_path / "ruff.json")
    found = read_codequality(str(tmp_path / "ruff.json"), str(tmp_path), str(tmp_path))
    wrote = sorted(
        (i["check_name"], i["location"]["path"], i["location"]["positions"]["begin"]["line"])
        for i in issues
    )
    assert wrote == [("E711", "src/app.py", 6), ("F401", "src/app.py", 2)]
    assert sorted((f.rule, f.path, f.line) for f in found) == wrote
    assert {(f.tool, f.severity) for f in found} == {("codequality", "medium")}, "major"
    assert {f.message for f in found} == {i["description"] for i in issues}

    app.write_text("# one\n# two\n" + APP)
    ruff_gitlab(tmp_path, tmp_path / "ruff.json")
    after = read_codequality(str(tmp_path / "ruff.json"), str(tmp_path), str(tmp_path))
    assert sorted((f.rule, f.line) for f in after) == [("E711", 8), ("F401", 4)]
    assert {f.rule: f.fingerprint for f in after} == {f.rule: f.fingerprint for f in found}
