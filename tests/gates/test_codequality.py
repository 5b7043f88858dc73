"""GitLab Code Quality reports (`reports: {codequality: ...}`) through a real run: a job
writes one, its findings gate judges it, a baseline accepts what is known, Conveyor's
own `--codequality` output reads back the same, and ruff's `--output-format gitlab`
gives the findings ruff reported."""

from __future__ import annotations

import json
import sys
from typing import Any

from conveyor.reports.codequality import read_codequality
from tests.conftest import Project
from tests.reports.test_codequality import ruff_command

PY = sys.executable

# A stand-in linter writing GitLab's format: eval() is critical (Conveyor's high), a
# TODO is info (note). Paths relative to its directory, lines as `lines.begin`.
LINT = """
import json
import sys

issues = []
for n, text in enumerate(open("app.py").read().splitlines(), 1):
    if "eval(" in text:
        issues.append({"check_name": "no-eval", "severity": "critical", "line": n})
    if "TODO" in text:
        issues.append({"check_name": "todo", "severity": "info", "line": n})
report = [
    {
        "description": f"{i['check_name']} here",
        "check_name": i["check_name"],
        "engine_name": "evil-lint",
        "fingerprint": "same-for-all",
        "severity": i["severity"],
        "location": {"path": "app.py", "lines": {"begin": i["line"]}},
    }
    for i in issues
]
json.dump(report, open(sys.argv[1], "w"))
"""

APP = """\
x = eval("1")  # TODO: no eval
y = 2
"""


def _table(out: str) -> list[str]:
    """The gate table's rows, blanks squeezed (what the assertions compare)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GATE "))
    rows = []
    for line in lines[start + 1 :]:
        if not line or line.startswith(("Run ", "  ")):
            break
        rows.append(" ".join(line.split()))
    return rows


def _findings(project: Project) -> list[dict[str, Any]]:
    """The findings the latest run measured, as its run directory keeps them."""
    run_dir = project.runs()[-1]
    lines = (run_dir / "reports.jsonl").read_text().splitlines()
    return [f for line in lines for f in json.loads(line)["findings"]]


def test_a_code_quality_report_judged_by_a_findings_gate_and_a_baseline(
    project: Project,
) -> None:
    project.write("tools/lint.py", LINT)
    project.write("app.py", APP)
    project.pipeline(
        f"""
        name: cq
        jobs:
          lint:
            run: mkdir -p reports && {PY} tools/lint.py reports/gl-code-quality.json
            inputs: ['*.py', 'tools/*.py']
            reports: {{codequality: reports/gl-code-quality.json}}
            gates:
              findings: {{max: {{high: 0, note: 5}}, baseline: findings-baseline.json}}
        """
    )
    project.commit()
    quality = project.root.parent / "gl-code-quality.json"
    first = project.run("run", "--plain", "--codequality", str(quality))
    assert first.code == 1, first.out
    table = _table(first.out)
    assert "findings.high lint 1 <= 0 FAILED" in table
    assert "findings.note lint 1 <= 5 passed" in table
    assert "findings.high (lint): no-eval at app.py:1" in first.out

    # Conveyor's own Code Quality output reads back as the very findings it measured.
    measured = _findings(project)
    back = read_codequality(str(quality), str(project.root), str(project.root))
    assert sorted((f.tool, f.rule, f.severity, f.path, f.line, f.fingerprint) for f in back) == (
        sorted(
            (f["tool"], f["rule"], f["severity"], f["path"], f["line"], f["fingerprint"])
            for f in measured
        )
    )
    assert {f.tool for f in back} == {"evil-lint"}

    accepted = project.run("gates", "--write-baseline")
    assert accepted.code == 0, accepted.out
    assert "2 finding(s) written to findings-baseline.json" in accepted.err
    assert "findings.high lint 0 new <= 0 passed" in _table(accepted.out)
    baseline = json.loads((project.root / "findings-baseline.json").read_text())
    assert {e["fingerprint"] for e in baseline["findings"]} == {f.fingerprint for f in back}
    known = project.run("run", "--plain")
    assert known.code == 0, known.out
    assert "lint cached" in known.out

    # The flagged line edited, the report byte for byte the same: a new finding (what
    # was read from a report is remembered by its digest, but not across source lines).
    project.write("app.py", APP.replace('eval("1")', 'eval("4")'))
    project.commit()
    edited = project.run("run", "--plain")
    assert edited.code == 1, edited.out
    assert "findings.high lint 1 new <= 0 FAILED" in _table(edited.out)

    # Lines above the known finding, and a new one: only the new one counts.
    project.write("app.py", "# header\n\nz = eval('3')\n" + APP)
    project.commit()
    later = project.run("run", "--plain")
    assert later.code == 1
    assert "findings.high lint 1 new <= 0 FAILED" in _table(later.out)
    assert "findings.high (lint): no-eval at app.py:3" in later.out


def test_a_findings_gate_without_either_report_names_both_kinds(project: Project) -> None:
    project.pipeline(
        """
        name: none
        jobs:
          lint:
            run: >-
              mkdir -p r && echo '{"not": "an array"}' > r/cq.json
            reports: {codequality: r/cq.json}
            gates: {findings: {max: {high: 0}}}
          other:
            run: "true"
            gates: {findings: {max: {high: 0}}}
        """
    )
    project.commit()
    result = project.run("run", "--plain", "-k")
    assert result.code == 1
    table = _table(result.out)
    assert "findings lint no findings a SARIF or Code Quality report FAILED" in table
    details = [line for line in result.out.splitlines() if line.startswith("  findings (")]
    assert details[0].startswith(
        "  findings (lint): no sarif or codequality report was read: declare "
        "`reports: {sarif: ...}` or `reports: {codequality: ...}` on the job; "
        "lint: codequality report "
    )
    assert "r/cq.json: not a Code Quality report (a JSON dict, not an array)" in details[0]
    assert details[1] == (
        "  findings (other): no sarif or codequality report was read: declare "
        "`reports: {sarif: ...}` or `reports: {codequality: ...}` on the job"
    )
    assert "warning: a report was not read: lint: codequality report " in result.err


RUFFED = """\
import os
import sys


def check(x):
    if x == None:
        return 1
    return sys.argv
"""


def test_ruffs_gitlab_output_gives_the_findings_ruff_reported(project: Project) -> None:
    ruff = " ".join(ruff_command())
    project.write("src/app.py", RUFFED)
    project.pipeline(
        f"""
        name: ruffed
        jobs:
          lint:
            dir: src
            run: >-
              {ruff} check --no-cache --isolated --select F,E --exit-zero
              --output-format gitlab -o ../reports/ruff.json .
            inputs: ['*.py']
            reports: {{codequality: ../reports/ruff.json}}
            gates:
              findings: {{max: {{medium: 0}}}}
        """
    )
    project.commit()
    quality = project.root.parent / "gl-code-quality.json"
    ran = project.run("run", "--plain", "--codequality", str(quality))
    assert ran.code == 1, ran.out
    assert "findings.medium lint 2 <= 0 FAILED" in _table(ran.out)
    assert "findings.medium (lint): F401 at src/app.py:1, E711 at src/app.py:6" in ran.out

    ruffs = json.loads((project.root / "reports/ruff.json").read_text())
    root = project.root.resolve()

    def in_workspace(path: str) -> str:
        # Relative to where ruff ran (its `dir`), or absolute (under GitLab CI, ruff
        # makes them relative to $CI_PROJECT_DIR, which is not this workspace).
        return (project.root / "src" / path).resolve().relative_to(root).as_posix()

    said = sorted(
        (
            i["check_name"],
            in_workspace(i["location"]["path"]),
            i["location"]["positions"]["begin"]["line"],
        )
        for i in ruffs
    )
    assert said == [("E711", "src/app.py", 6), ("F401", "src/app.py", 1)]
    measured = _findings(project)
    assert sorted((f["rule"], f["path"], f["line"]) for f in measured) == said
    assert {(f["tool"], f["severity"]) for f in measured} == {("codequality", "medium")}
    ours = json.loads(quality.read_text())
    assert sorted(
        (i["check_name"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in ours
    ) == [(f"codequality/{rule}", path, line) for rule, path, line in said]
