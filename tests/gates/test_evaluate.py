"""Quality gates, end to end: real pytest, coverage.py and ruff reports read from real
jobs, the gate table and exit codes a user sees, `conveyor gates` on a past run, and the
JUnit XML that hosted CI shows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

PY = sys.executable

CALC = """
def add(a, b):
    return a + b


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("b")
    return a / b
"""

TESTS = """
import sys
sys.path.insert(0, "src")
from calc import add, div


def test_add():
    assert add(1, 2) == 3


def test_div():
    assert div(4, 2) == 2
"""

# coverage.py measures only src/ (so the figures are the module's alone): 6 statements,
# 5 run (the raise is not), 1 of 2 branches of the `if`.
RUN_TESTS = (
    f"{PY} -m coverage run --branch --source=src -m pytest -q -p no:cacheprovider "
    f"--junitxml=reports/junit.xml && {PY} -m coverage xml -o reports/coverage.xml"
)


def _project(
    project: Project,
    gates: dict[str, Any],
    pipeline_gates: dict[str, Any] | None = None,
    inputs: str = "",
) -> None:
    """calc: `test` (pytest under coverage.py, its reports declared, these gates) and
    `deploy`, which needs it. Gates are written as YAML flow mappings (JSON)."""
    project.write("src/calc.py", CALC)
    project.write("tests/test_calc.py", TESTS)
    project.write(".gitignore", ".coverage\n")  # coverage.py's data file is no output
    text = (
        "name: calc\n"
        "jobs:\n"
        "  test:\n"
        f"    run: {json.dumps(RUN_TESTS)}\n"
        "    reports: {junit: reports/junit.xml, coverage: reports/coverage.xml}\n"
        f"    gates: {json.dumps(gates)}\n"
        + (f"    inputs: {inputs}\n" if inputs else "")
        + "  deploy:\n"
        "    needs: [test]\n"
        "    run: echo deploying\n"
    )
    if pipeline_gates:
        text += f"gates: {json.dumps(pipeline_gates)}\n"
    (project.root / "conveyor.yml").write_text(text)


def _table(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GATE "))
    end = next(
        (
            i
            for i in range(start, len(lines))
            if not lines[i] or lines[i].startswith(("Run ", "  "))
        ),
        len(lines),
    )
    return [" ".join(line.split()) for line in lines[start:end]]


def test_a_failing_gate_fails_the_job_and_blocks_what_needs_it(project: Project) -> None:
    _project(
        project,
        {"tests": {"max_failures": 0}, "coverage": {"line": 80, "branch": 80}},
        {"time": {"max": "10m"}, "coverage": {"line": 50}},
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    assert _table(result.out) == [
        "GATE SCOPE MEASURED THRESHOLD RESULT",
        "tests test 0 failed of 2 <= 0 failures passed",
        "coverage.line test 83.3% (5/6 lines) >= 80.0% passed",
        "coverage.branch test 50.0% (1/2 branches) >= 80.0% FAILED",
        "coverage.line pipeline 83.3% (5/6 lines) >= 50.0% passed",
        f"time pipeline {_table(result.out)[-1].split()[2]} <= 10m00s passed",
    ]
    assert "✘ test failed in" in result.out
    assert "gate coverage.branch failed: 50.0% (1/2 branches) (wanted >= 80.0%)" in result.out
    assert "○ deploy skipped: not started: 'test' failed" in result.out
    assert "4 of 5 gates passed; failed: coverage.branch (test)" in result.out

    # The same run, judged by gates as they are after an edit: nothing re-runs.
    project.pipeline(
        (project.root / "conveyor.yml").read_text().replace('"branch": 80', '"branch": 50')
    )
    again = project.run("gates", "--json")
    assert again.code == 0, again.out
    gates = json.loads(again.out)["gates"]
    assert [(g["gate"], g["scope"], g["passed"]) for g in gates] == [
        ("tests", "test", True),
        ("coverage.line", "test", True),
        ("coverage.branch", "test", True),
        ("coverage.line", "pipeline", True),
        ("time", "pipeline", True),
    ]
    ok = project.run("run", "--plain")
    assert ok.code == 0, ok.out
    assert "5 of 5 gates passed" in ok.out
    assert "✔ deploy" in ok.out


def test_a_cache_hit_is_judged_again_from_its_restored_reports(project: Project) -> None:
    # Its inputs leave conveyor.yml out: editing a gate does not change the job's key.
    _project(project, {"coverage": {"line": 80}}, inputs="['src/*.py', 'tests/*.py']")
    project.commit()
    assert project.run("run", "--plain").code == 0
    (project.root / "reports" / "coverage.xml").unlink()  # restored by the cache
    hit = project.run("run", "--plain")
    assert hit.code == 0
    assert "test cached" in hit.out
    assert "coverage.line test 83.3% (5/6 lines) >= 80.0% passed" in _table(hit.out)
    # A stricter gate fails the cached result without running the job again.
    stricter = (project.root / "conveyor.yml").read_text().replace('"line": 80', '"line": 90')
    project.pipeline(stricter)
    project.commit()
    failed = project.run("run", "--plain", "test")
    assert failed.code == 1
    assert "✘ test cached (gate coverage.line failed: 83.3% (5/6 lines)" in failed.out
    assert "coverage.line test 83.3% (5/6 lines) >= 90.0% FAILED" in _table(failed.out)


def test_gates_are_written_as_junit_for_hosted_ci(project: Project, tmp_path: Path) -> None:
    from junitparser import Failure, JUnitXml

    _project(project, {"coverage": {"line": 95, "level": "warn"}, "tests": {}})
    project.commit()
    out = tmp_path / "gates.xml"
    result = project.run("run", "--plain", "--gates-junit", str(out))
    assert result.code == 0, "a warn gate reports, never fails"
    assert "coverage.line test 83.3% (5/6 lines) >= 95.0% failed (warn)" in _table(result.out)
    [suite] = list(JUnitXml.fromfile(str(out)))
    assert (suite.tests, suite.failures, suite.skipped) == (2, 0, 1)
    cases = {case.name: case for suite in JUnitXml.fromfile(str(out)) for case in suite}
    assert sorted(cases) == ["coverage.line [test]", "tests [test]"]
    assert cases["tests [test]"].is_passed
    assert cases["coverage.line [test]"].is_skipped, "a warning: shown, not failing CI"
    assert not any(isinstance(r, Failure) for r in cases["coverage.line [test]"].result)
    run_dir = project.runs()[-1]
    assert (run_dir / "gates.xml").read_text() == out.read_text()


FLAKY_TESTS = """
def test_fine():
    assert True


def test_broken():
    assert 1 == 2, "one is not two"
"""


def test_a_tests_gate_tolerates_what_it_allows_and_quarantined_tests(project: Project) -> None:
    project.write("tests/test_mixed.py", FLAKY_TESTS)
    pipeline = (
        "name: mixed\n"
        "jobs:\n"
        "  test:\n"
        f"    run: {PY} -m pytest -q -p no:cacheprovider --junitxml=junit.xml tests\n"
        "    reports: {junit: junit.xml}\n"
        "    gates: {tests: {max_failures: MAX}}\n"
        "  deploy:\n"
        "    needs: [test]\n"
        "    run: echo deploying\n"
    )
    (project.root / "conveyor.yml").write_text(pipeline.replace("MAX", "0"))
    project.commit()
    strict = project.run("run", "--plain")
    assert strict.code == 1
    assert "tests test 1 failed of 2 <= 0 failures FAILED" in _table(strict.out)
    assert "tests (test): failed: tests.test_mixed.test_broken" in strict.out
    assert "○ deploy skipped" in strict.out

    (project.root / "conveyor.yml").write_text(pipeline.replace("MAX", "1"))
    project.commit()
    tolerant = project.run("run", "--plain")
    assert tolerant.code == 0, tolerant.out
    assert "tests test 1 failed of 2 <= 1 failure passed" in _table(tolerant.out)
    assert "✔ deploy" in tolerant.out, "pytest exited 1, but within the gate: the job passed"
    summary = json.loads((project.runs()[-1] / "summary.json").read_text())
    [test] = [j for j in summary["jobs"] if j["name"] == "test"]
    assert test["status"] == "success"
    assert test["reason"] == "exit code 1, tolerated by its tests gate: 1 failed of 2"

    # `conveyor flaky --quarantine` wrote this: the failure is reported, not counted.
    (project.root / "conveyor.yml").write_text(pipeline.replace("MAX", "0"))
    project.commit()
    (project.root / ".conveyor" / "quarantine.json").write_text(
        json.dumps({"tests": [{"job": "test", "test": "tests.test_mixed.test_broken"}]})
    )
    quarantined = project.run("run", "--plain")
    assert quarantined.code == 0, quarantined.out
    assert "tests test 0 failed of 2 (1 quarantined) <= 0 failures passed" in _table(
        quarantined.out
    )
    # That was the old place, in the state directory nobody commits: still read, and the
    # user told where it goes now.
    assert (
        "the quarantine list was read from .conveyor/quarantine.json, which is not "
        "committed: move it to conveyor.quarantine.json"
    ) in " ".join((quarantined.out + quarantined.err).split())

    # Where conveyor.yml says, committed with the code; the old file no longer read.
    (project.root / ".conveyor" / "quarantine.json").rename(project.root / "ci-quarantine.json")
    (project.root / "conveyor.yml").write_text(
        pipeline.replace("MAX", "0") + "gates: {quarantine: ci-quarantine.json}\n"
    )
    project.commit()
    moved = project.run("run", "--plain")
    assert moved.code == 0, moved.out
    assert "(1 quarantined)" in moved.out
    assert "quarantine" not in moved.err


def test_diff_coverage_counts_only_the_lines_the_branch_changed(project: Project) -> None:
    _project(project, {"coverage": {"diff": 75, "diff_base": "main"}})
    project.commit("calc")
    project.git("checkout", "-q", "-b", "feature")
    # The branch adds a function no test calls (its `def` runs on import, its body does
    # not) and changes a covered line: 2 of 3 changed executable lines covered.
    changed = CALC.replace("return a + b", "return b + a") + (
        "\n\ndef mul(a, b):\n    return a * b\n"
    )
    project.write("src/calc.py", changed)
    result = project.run("run", "--plain", "test")
    assert result.code == 1
    assert "coverage.diff test 66.7% (2/3 changed lines) >= 75.0% FAILED" in _table(result.out)
    assert "coverage.diff (test): not covered: src/calc.py:12" in result.out
    # On main itself nothing changed: nothing to cover.
    project.commit("mul")
    project.git("checkout", "-q", "main")
    on_main = project.run("run", "--plain", "test")
    assert on_main.code == 0
    assert "coverage.diff test no changed lines to cover >= 75.0% passed" in _table(on_main.out)
    project.pipeline(
        (project.root / "conveyor.yml").read_text().replace('"main"', '"no-such-branch"')
    )
    unknown = project.run("run", "--plain", "test")
    assert unknown.code == 1
    assert "cannot compare with 'no-such-branch'" in unknown.out
    assert "set gates.coverage.diff_base to a branch or commit that exists here" in unknown.out


def test_findings_from_a_real_scanner_with_a_baseline(project: Project) -> None:
    project.write("app.py", "import os\n\nprint('hello')\n")
    project.pipeline(
        f"""
        name: scan
        jobs:
          lint:
            run: >-
              {PY} -m ruff check --no-cache --isolated --select F401 --exit-zero
              --output-format sarif -o reports/ruff.sarif .
            reports: {{sarif: reports/ruff.sarif}}
            inputs: ['*.py']
            gates:
              findings: {{max: {{medium: 0}}, baseline: findings-baseline.json}}
        """
    )
    project.commit()
    first = project.run("run", "--plain")
    assert first.code == 1
    assert "findings.medium lint 1 <= 0 FAILED" in _table(first.out)
    assert (
        "findings.medium (lint): F401 at app.py:1; "
        "no baseline at findings-baseline.json yet: every finding counts"
    ) in first.out

    accepted = project.run("gates", "--write-baseline")
    assert accepted.code == 0, accepted.out
    assert "1 finding(s) written to findings-baseline.json" in accepted.err
    assert "findings.medium lint 0 new <= 0 passed" in _table(accepted.out)
    known = project.run("run", "--plain")
    assert known.code == 0, known.out
    assert "lint cached" in known.out, "the scan itself is reused; only the gate changed"

    project.write("more.py", "import sys\n")
    project.commit()
    quality = project.root.parent / "gl-code-quality.json"
    new = project.run("run", "--plain", "--codequality", str(quality))
    issues = json.loads(quality.read_text())
    assert sorted((i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues) == [
        ("app.py", 1),
        ("more.py", 1),
    ], "every finding, known or new: GitLab compares them with the target branch itself"
    assert {i["check_name"] for i in issues} == {"ruff/F401"}
    assert new.code == 1
    assert "findings.medium lint 1 new <= 0 FAILED" in _table(new.out)
    assert "findings.medium (lint): F401 at more.py:1" in new.out


LINTED = """\
import os


def first():
    password = "hunter2"
    return None


def second():
    password = "hunter2"
    return None
"""

LINTED_LATER = """\
\"\"\"A docstring and comments inserted above every known finding.\"\"\"
# one
# two
import os
import sys


def first():
    # a comment right above a known finding
    password = "hunter2"
    return None


def added(x):
    password = "hunter2"
    return x == None


def second():
    password = "hunter2"
    return None
"""


def test_a_baseline_tells_identical_findings_apart_and_survives_moved_lines(
    project: Project,
) -> None:
    """Issue 13: a baseline said "0 new" of 4 new ruff findings, and most Code Quality
    issues shared a fingerprint, when identical findings in a file had one."""
    project.write("app.py", LINTED)
    project.pipeline(
        f"""
        name: scan
        jobs:
          lint:
            run: >-
              {PY} -m ruff check --no-cache --isolated --select F401,F841,E711,S105
              --exit-zero --output-format sarif -o reports/ruff.sarif .
            reports: {{sarif: reports/ruff.sarif}}
            inputs: ['*.py']
            gates:
              findings: {{max: {{medium: 0}}, baseline: findings-baseline.json}}
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 1
    accepted = project.run("gates", "--write-baseline")
    assert accepted.code == 0, accepted.out
    assert "5 finding(s) written to findings-baseline.json" in accepted.err
    baseline = json.loads((project.root / "findings-baseline.json").read_text())
    assert baseline["version"] == 2
    assert sorted((e["rule"], e["fingerprint"][-2:]) for e in baseline["findings"]) == [
        ("F401", ":0"),
        ("F841", ":0"),
        ("F841", ":1"),
        ("S105", ":0"),
        ("S105", ":1"),
    ], "the two identical lines' findings are two, told apart by their order"
    text = (project.root / "findings-baseline.json").read_text()
    assert text.count("\n") == 5 + 5, "a finding a line, for a diff a finding a line"

    # Lines inserted above (and right above) every known finding, and four new ones:
    # `import sys`, and a third identical password line with its unused variable, and
    # a comparison to None.
    project.write("app.py", LINTED_LATER)
    project.commit()
    quality = project.root.parent / "gl-code-quality.json"
    later = project.run("run", "--plain", "--codequality", str(quality))
    assert later.code == 1
    assert "findings.medium lint 4 new <= 0 FAILED" in _table(later.out)
    detail = next(line for line in later.out.splitlines() if "findings.medium (lint):" in line)
    # Of three identical lines, the last is named new: they are told apart by order.
    assert detail.endswith(
        "F401 at app.py:5, E711 at app.py:16, F841 at app.py:20, S105 at app.py:20"
    )

    issues = json.loads(quality.read_text())
    assert len(issues) == 9
    assert len({i["fingerprint"] for i in issues}) == 9, "GitLab requires them unique"
    assert {i["severity"] for i in issues} == {"major"}, "a linter's error: medium"

    # Severities as the team decides, in conveyor.yml, for a past run too: a tool's
    # findings, and one rule of it.
    conf = (project.root / "conveyor.yml").read_text()
    project.pipeline(
        conf.replace("max: {medium: 0}", "max: {medium: 0, high: 0}")
        + 'gates:\n  findings:\n    severity: {ruff: low, "ruff/S1*": high}\n'
    )
    project.commit()
    judged = project.run("gates")
    assert judged.code == 1
    table = _table(judged.out)
    assert "findings.high lint 1 new <= 0 FAILED" in table
    assert "findings.medium lint 0 new <= 0 passed" in table
    again = project.run("run", "--plain", "--codequality", str(quality))
    assert "lint cached" in again.out
    severities = sorted((i["check_name"], i["severity"]) for i in json.loads(quality.read_text()))
    assert severities == [
        ("ruff/E711", "minor"),
        ("ruff/F401", "minor"),
        ("ruff/F401", "minor"),
        *[("ruff/F841", "minor")] * 3,
        *[("ruff/S105", "critical")] * 3,
    ]


def test_a_baseline_of_the_first_fingerprint_scheme_asks_to_be_rewritten(
    project: Project,
) -> None:
    project.write("app.py", "import os\n")
    project.write("findings-baseline.json", json.dumps({"version": 1, "fingerprints": ["0" * 64]}))
    project.pipeline(
        f"""
        name: scan
        jobs:
          lint:
            run: >-
              {PY} -m ruff check --no-cache --isolated --select F401 --exit-zero
              --output-format sarif -o reports/ruff.sarif .
            reports: {{sarif: reports/ruff.sarif}}
            gates:
              findings: {{max: {{medium: 0}}, baseline: findings-baseline.json}}
        """
    )
    project.commit()
    old = project.run("run", "--plain")
    assert old.code == 1
    assert "findings lint outdated baseline a findings baseline FAILED" in _table(old.out)
    assert (
        "findings-baseline.json lists fingerprints of Conveyor's first scheme, which gave "
        "identical findings in one file one fingerprint: rewrite it"
    ) in " ".join(old.out.split())
    assert "conveyor gates --write-baseline" in old.out
    rewritten = project.run("gates", "--write-baseline")
    assert rewritten.code == 0, rewritten.out
    assert json.loads((project.root / "findings-baseline.json").read_text())["version"] == 2


def test_sizes_time_and_command_gates(project: Project) -> None:
    project.pipeline(
        """
        name: bundle
        jobs:
          build:
            run: >-
              mkdir -p dist && head -c 3000 /dev/zero > dist/app.js &&
              head -c 100 /dev/zero > dist/vendor.js && sleep 0.3
            outputs: [dist/]
            gates:
              sizes: {files: {"*.js": 2KB}, total: 10KB}
              time: {max: 100ms, level: warn}
              commands:
                has-app: {run: test -f dist/app.js}
                no-maps: {run: "! ls dist/*.map 2>/dev/null && echo no maps; test -z yes"}
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    table = _table(result.out)
    assert table[1] == "sizes[*.js] build largest dist/app.js 3.0 kB <= 2.0 kB each FAILED"
    assert table[2] == "sizes.total build 3.1 kB in 2 files <= 10.0 kB passed"
    assert table[3].startswith("time build ")
    assert table[3].endswith("<= 100ms failed (warn)")
    assert table[4] == "command:has-app build exit 0 exit 0 passed"
    assert table[5] == "command:no-maps build exit 1 exit 0 FAILED"
    assert "sizes[*.js] (build): over: dist/app.js 3.0 kB" in result.out
    assert "command:no-maps (build): no maps" in result.out
    assert "failed: sizes[*.js] (build), command:no-maps (build)" in result.out


# -- checks before and after the build ---------------------------------------------------

AWS_KEY = "AKIA" + "Q3EGRTW7JZ4NX2LM"  # the shape detect-secrets flags; no real account
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAx4UbaDzY5OqW3rL0T7S0pvUgxK1bWc9sBcbE9uQkW3m1qB2c\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def test_checks_before_the_build_stop_every_job(project: Project) -> None:
    project.pipeline(
        """
        name: pre
        requires: {python3: ">=3.8", git: ">=99"}
        checks:
          env: [DEPLOY_REGION]
          disk: 1B
        jobs:
          build:
            run: touch built
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    assert not (project.root / "built").exists(), "no job started"
    lines = [" ".join(line.split()) for line in result.out.splitlines()]
    at = lines.index("checks before the build:")
    assert lines[at + 1].startswith("✔ tool python3 python3 3.")
    assert lines[at + 2].startswith("✘ tool git git 2.")
    assert lines[at + 3] == "expected git >=99"
    assert lines[at + 4].startswith("fix: ")
    assert any(line.startswith("✘ env DEPLOY_REGION not set") for line in lines)
    assert any(line.startswith("✔ disk ") for line in lines)
    assert "○ build skipped: not started: checks before the build failed: tool git, env " in (
        result.out
    )
    assert "checks failed: tool git, env DEPLOY_REGION" in result.out

    checked = project.run("check", "--json")
    assert checked.code == 1
    by_name = {c["check"]: c for c in json.loads(checked.out)}
    assert by_name["tool git"]["ok"] is False
    assert by_name["tool git"]["expected"] == "git >=99"
    assert by_name["env DEPLOY_REGION"]["found"] == "not set"


def test_committed_secrets_are_found_never_printed_and_block(
    project: Project, tmp_path: Path
) -> None:
    project.write("config/settings.py", f'aws_access_key_id = "{AWS_KEY}"\n')
    project.write("deploy/id_rsa", PRIVATE_KEY)
    project.write("README.md", "nothing to see\n")
    project.pipeline(
        """
        name: leaky
        checks:
          secrets: true
        gates:
          findings: {max: {critical: 0, high: 0}}
        jobs:
          build:
            run: touch built
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    assert not (project.root / "built").exists()
    assert (
        "✘ secrets 2 secrets: AWS Access Key in config/settings.py:1, "
        "Private Key in deploy/id_rsa:1"
    ) in " ".join(result.out.split())
    table = _table(result.out)
    assert "findings.critical pipeline 1 <= 0 FAILED" in table, "the private key"
    assert "findings.high pipeline 1 <= 0 FAILED" in table, "the AWS key"
    for leaked in (AWS_KEY, "MIIEowIBAAKCAQEA"):
        assert leaked not in result.out + result.err
        assert leaked not in (project.runs()[-1] / "summary.json").read_text()
    run_dir = project.runs()[-1]
    sarif = json.loads((run_dir / "secrets.sarif").read_text())
    results = sarif["runs"][0]["results"]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)
    assert uris == ["config/settings.py", "deploy/id_rsa"]

    quality = json.loads((run_dir / "codequality.json").read_text())
    assert sorted((i["location"]["path"], i["severity"], i["check_name"]) for i in quality) == [
        ("config/settings.py", "critical", "conveyor-secrets/AWS Access Key"),
        ("deploy/id_rsa", "blocker", "conveyor-secrets/Private Key"),
    ]
    assert AWS_KEY not in (run_dir / "codequality.json").read_text()

    out = tmp_path / "secrets.sarif"
    checked = project.run("check", "--sarif", str(out))
    assert checked.code == 1
    assert len(json.loads(out.read_text())["runs"][0]["results"]) == 2
    assert AWS_KEY not in out.read_text()

    # Reviewed and accepted: an allowlist comment, and the key file's path excluded.
    project.write(
        "config/settings.py", f'aws_access_key_id = "{AWS_KEY}"  # pragma: allowlist secret\n'
    )
    project.pipeline(
        (project.root / "conveyor.yml")
        .read_text()
        .replace("secrets: true", "secrets: {exclude: ['deploy/*']}")
    )
    project.commit()
    clean = project.run("run", "--plain")
    assert clean.code == 0, clean.out
    assert "✔ secrets" in clean.out
    assert "findings.high pipeline 0 <= 0 passed" in _table(clean.out)


def test_checks_after_the_build_and_its_report(project: Project) -> None:
    project.pipeline(
        """
        name: post
        checks:
          after:
            required: [dist/index.html, dist/*.js]
            forbidden: ["dist/**/*.map"]
            max_size: {"dist/*.js": 1KB}
            report: dist/build-report.json
        jobs:
          build:
            run: >-
              mkdir -p dist/js && echo '<html>' > dist/index.html &&
              echo 'x()' > dist/app.js && echo '{}' > dist/js/app.js.map
            outputs: [dist/]
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1, "a source map in the build"
    lines = [" ".join(line.split()) for line in result.out.splitlines()]
    at = lines.index("checks after the build:")
    assert lines[at + 1] == "✔ required dist/index.html 1 file(s), 7 B"
    assert lines[at + 2] == "✔ required dist/*.js 1 file(s), 4 B"
    assert lines[at + 3] == "✘ forbidden dist/**/*.map dist/js/app.js.map [dist/**/*.map]"
    assert lines[at + 4] == "expected absent"
    assert lines[at + 6] == "✔ size dist/*.js largest dist/app.js 4 B"
    assert lines[at + 7].startswith("✔ build report 3 files, ")
    report = json.loads((project.root / "dist" / "build-report.json").read_text())
    assert report["commit"] == project.git("rev-parse", "HEAD")
    assert report["file_count"] == 3
    assert {f["path"] for f in report["files"]} == {
        "dist/index.html",
        "dist/app.js",
        "dist/js/app.js.map",
    }
    assert "checks failed: forbidden dist/**/*.map" in result.out


def test_on_github_actions_failures_are_annotations_and_gates_a_step_summary(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.write("package.json", '{\n  "name": "x",\n  "version": 1,,\n}\n')
    project.pipeline(
        """
        name: gh
        checks: {manifests: true}
        gates:
          commands: {lint: {run: "echo 'bad: 100%' && exit 1", level: warn}}
        jobs:
          build:
            run: "true"
        """
    )
    project.commit()
    result = project.run("run")
    assert result.code == 1
    lines = result.out.splitlines()
    [check] = [line for line in lines if line.startswith("::error ")]
    assert check.startswith("::error file=package.json,line=3,col=16,title=check manifest ")
    assert "expected valid JSON, found " in check
    project.pipeline((project.root / "conveyor.yml").read_text().replace("true}", "false}"))
    project.write("package.json", '{"name": "x"}\n')
    project.commit()
    passed = project.run("run")
    assert passed.code == 0, "a warn gate annotates, never fails"
    [warning] = [line for line in passed.out.splitlines() if line.startswith("::warning ")]
    assert warning == (
        "::warning title=gate command%3Alint (pipeline)::measured exit 1, wanted exit 0. "
        "bad: 100%25"
    )
    text = summary.read_text()
    assert "| command:lint | pipeline | exit 1 | exit 0 | ⚠️ warning |" in text
    assert "| manifest package.json | valid JSON |" in text, "the first run's failure"


def test_running_part_of_the_pipeline_leaves_its_gates_on_other_jobs_unjudged(
    project: Project,
) -> None:
    _project(project, {}, {"tests": {}, "time": {"max": "10m"}})
    text = (project.root / "conveyor.yml").read_text().replace("    gates: {}\n", "")
    project.pipeline(text.replace("  deploy:\n", "  lint:\n    run: 'true'\n  deploy:\n"))
    project.commit()
    lint = project.run("run", "--plain", "lint")
    assert lint.code == 0, lint.out
    assert "warning: the pipeline's gate tests was not evaluated: no junit report was read" in (
        lint.err
    )
    assert _table(lint.out)[1:] == [
        f"time pipeline {_table(lint.out)[1].split()[2]} <= 10m00s passed"
    ]
    again = project.run("gates", "--json")
    assert again.code == 0
    assert [g["gate"] for g in json.loads(again.out)["gates"]] == ["time"]
    assert "the pipeline's gate tests was not evaluated" in again.err
    whole = project.run("run", "--plain")
    assert whole.code == 0, whole.out
    assert "tests pipeline 0 failed of 2 <= 0 failures passed" in _table(whole.out)
    assert "not evaluated" not in whole.err


def test_the_secrets_check_sees_every_edit_committed_or_not(project: Project) -> None:
    project.write("app/settings.py", "DEBUG = False\n")
    project.pipeline("name: s\nchecks: {secrets: true}\njobs:\n  a:\n    run: 'true'\n")
    project.commit()
    assert project.run("check").code == 0
    assert project.run("check").code == 0, "unchanged: every file's result reused"
    leaked = f'DEBUG = False\naws_access_key_id = "{AWS_KEY}"\n'
    project.write("app/settings.py", leaked)  # edited, not staged: git says it changed
    unstaged = project.run("check", "--json")
    assert unstaged.code == 1
    [secrets] = [c for c in json.loads(unstaged.out) if c["check"] == "secrets"]
    assert secrets["found"] == "1 secret: AWS Access Key in app/settings.py:2"
    project.git("add", "app/settings.py")  # staged: a new blob id
    assert project.run("check").code == 1
    project.write("app/settings.py", "DEBUG = False\n")  # fixed in the worktree only
    assert project.run("check").code == 0
    project.write("notes.txt", leaked)  # untracked, not ignored: scanned too
    assert project.run("check").code == 1


def test_an_unreadable_report_fails_its_gate_and_says_why(project: Project) -> None:
    project.pipeline(
        """
        name: broken
        jobs:
          test:
            run: mkdir -p r && echo 'not xml at all' > r/cov.xml
            reports: {coverage: r/cov.xml, sarif: r/none.sarif}
            gates: {coverage: {line: 50}}
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    assert "coverage.line test no coverage >= 50.0% FAILED" in _table(result.out)
    detail = next(line for line in result.out.splitlines() if "coverage.line (test):" in line)
    assert "no coverage report was read: declare `reports: {coverage: ...}` on the job" in detail
    assert "test: coverage report " in detail
    assert "r/cov.xml" in detail
    assert "sarif" not in detail, "only the problem of its own kind"
    assert "warning: a report was not read: test: coverage report " in result.err
    assert "warning: a report was not read: test: no sarif report matches r/none.sarif" in (
        result.err
    )
