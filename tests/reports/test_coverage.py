"""Coverage (Cobertura, LCOV) and SARIF reports, read from what the real tools write."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor.model import Finding
from conveyor.reports.coverage import Coverage, FileCoverage, read_coverage
from conveyor.reports.junit import ReportError
from conveyor.reports.sarif import read_sarif, write_sarif

CALC = """\
def sign(x):
    if x > 0:
        return "positive"
    else:
        return "not positive"


def unused():
    return 42
"""

TEST_CALC = """\
from calc import sign


def test_sign():
    assert sign(3) == "positive"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def tool_env() -> dict[str, str]:
    """The environment for a real tool run: no coverage of this test session leaking into
    the child (pytest-cov's subprocess hooks), no third-party pytest plugins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def python(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=tool_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def missing(f: FileCoverage) -> list[int]:
    return [line for line, hits in f.lines.items() if hits == 0]


# -- coverage ---------------------------------------------------------------------------


def test_coverage_py_xml_and_lcov_agree_with_its_own_json(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    write(proj / "calc.py", CALC)
    write(proj / "test_calc.py", TEST_CALC)
    python(
        proj, "-m", "coverage", "run", "--branch", "-m", "pytest", "-q", "-p", "no:cacheprovider"
    )
    python(proj, "-m", "coverage", "xml", "-o", "cov.xml")
    python(proj, "-m", "coverage", "lcov", "-o", "cov.info")
    python(proj, "-m", "coverage", "json", "-o", "cov.json")
    truth = json.loads((proj / "cov.json").read_text())
    totals = truth["totals"]

    xml = read_coverage(str(proj / "cov.xml"), str(tmp_path), str(proj))
    lcov = read_coverage(str(proj / "cov.info"), str(tmp_path), str(proj))
    for report in (xml, lcov):
        assert sorted(report.files) == sorted(f"proj/{name}" for name in truth["files"])
        assert report.lines_total == totals["num_statements"]
        assert report.lines_covered == totals["covered_lines"]
        assert report.branches_total == totals["num_branches"]
        assert report.branches_covered == totals["covered_branches"]
        for name, data in truth["files"].items():
            assert missing(report.files[f"proj/{name}"]) == data["missing_lines"]
    # The run itself: the else branch and unused() never ran, one of two branches taken.
    calc = xml.files["proj/calc.py"]
    assert missing(calc) == [5, 9]
    assert (calc.branches_covered, calc.branches_total) == (1, 2)
    assert xml.branch_rate == 50.0
    assert xml.line_rate == pytest.approx(100 * 7 / 9)
    assert xml == lcov


def test_coverage_paths_outside_the_workspace_stay_absolute(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    write(proj / "calc.py", CALC)
    write(proj / "test_calc.py", TEST_CALC)
    python(proj, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    python(proj, "-m", "coverage", "lcov", "-o", "cov.info")
    other = tmp_path / "elsewhere"
    other.mkdir()
    report = read_coverage(str(proj / "cov.info"), str(other), str(proj))
    assert os.path.realpath(proj / "calc.py") in {os.path.realpath(p) for p in report.files}
    assert all(os.path.isabs(p) for p in report.files)
    assert report.branch_rate is None  # measured without --branch


def test_cobertura_merges_classes_of_one_file_and_resolves_sources(tmp_path: Path) -> None:
    write(tmp_path / "src/pkg/a.py", "x = 1\n")
    report = write(
        tmp_path / "job/coverage.xml",
        f"""\
        <?xml version="1.0" ?>
        <!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">
        <coverage line-rate="0.5" branch-rate="0.5" version="1.9">
          <sources>
            <source>{tmp_path}/gone</source>
            <source>{tmp_path}/src</source>
          </sources>
          <packages><package name="pkg"><classes>
            <class name="pkg.A" filename="pkg/a.py">
              <methods><method name="f" signature="()V"><lines>
                <line number="2" hits="4" branch="true" condition-coverage="50% (1/2)"/>
              </lines></method></methods>
              <lines>
                <line number="1" hits="1"/>
                <line number="2" hits="4" branch="true" condition-coverage="50% (1/2)"/>
                <line number="3" hits="0"/>
              </lines>
            </class>
            <class name="pkg.A$Inner" filename="pkg/a.py">
              <lines>
                <line number="2" hits="4" branch="true" condition-coverage="50% (1/2)"/>
                <line number="5" hits="2" branch="true" condition-coverage="100% (2/2)"/>
                <line number="6" hits="0"/>
              </lines>
            </class>
            <class name="pkg.B" filename="pkg/b.py">
              <lines><line number="1" hits="3"/></lines>
            </class>
          </classes></package></packages>
        </coverage>
        """,
    )
    cov = read_coverage(str(report), str(tmp_path), str(tmp_path / "job"))
    # One run counts a line once, however many <class> elements list it (and <methods>
    # repeat lines of their class). a.py exists under the second source only; b.py under
    # none: it is taken as under the first.
    assert cov.files == {
        "src/pkg/a.py": FileCoverage("src/pkg/a.py", {1: 1, 2: 4, 3: 0, 5: 2, 6: 0}, 3, 4),
        "gone/pkg/b.py": FileCoverage("gone/pkg/b.py", {1: 3}, 0, 0),
    }
    assert (cov.lines_total, cov.lines_covered) == (6, 4)
    assert (cov.branches_total, cov.branches_covered) == (4, 3)
    assert cov.branch_rate == 75.0


def test_cobertura_without_sources_resolves_against_the_job_dir(tmp_path: Path) -> None:
    report = write(
        tmp_path / "job/cov.xml",
        """\
        <coverage><packages><package><classes>
          <class filename="m.py"><lines><line number="1" hits="0"/></lines></class>
        </classes></package></packages></coverage>
        """,
    )
    cov = read_coverage(str(report), str(tmp_path), str(tmp_path / "job"))
    assert cov.files == {"job/m.py": FileCoverage("job/m.py", {1: 0})}
    assert cov.line_rate == 0.0
    assert cov.branch_rate is None


def test_lcov_branches_and_records_of_the_same_file_add_up(tmp_path: Path) -> None:
    report = write(
        tmp_path / "web/lcov.info",
        """\
        TN:
        SF:src/app.js
        FN:1,main
        FNDA:1,main
        DA:1,1
        DA:2,0,abc123
        BRDA:1,0,0,1
        BRDA:1,0,1,-
        LF:2
        LH:1
        BRF:2
        BRH:1
        end_of_record
        SF:src/app.js
        DA:2,3
        BRDA:1,0,1,2
        end_of_record
        SF:/opt/vendor/lib.js
        DA:7,1
        end_of_record
        SF:src/never.js
        DA:1,0
        BRDA:1,0,0,-
        BRDA:1,0,1,-
        end_of_record
        """,
    )
    cov = read_coverage(str(report), str(tmp_path), str(tmp_path / "web"))
    assert cov.files == {
        "web/src/app.js": FileCoverage("web/src/app.js", {1: 1, 2: 3}, 2, 2),
        "/opt/vendor/lib.js": FileCoverage("/opt/vendor/lib.js", {7: 1}, 0, 0),
        "web/src/never.js": FileCoverage("web/src/never.js", {1: 0}, 0, 2),
    }


def test_merged_sums_hits_and_keeps_the_larger_branch_count() -> None:
    unit = Coverage(
        {
            "a.py": FileCoverage("a.py", {1: 1, 2: 0, 3: 0}, 1, 4),
            "b.py": FileCoverage("b.py", {1: 0}, 1, 2),
            "only_unit.py": FileCoverage("only_unit.py", {1: 5}),
        }
    )
    integration = Coverage(
        {
            "a.py": FileCoverage("a.py", {2: 2, 3: 0, 4: 1}, 3, 4),
            "b.py": FileCoverage("b.py", {1: 1}, 0, 4),
            "only_integration.py": FileCoverage("only_integration.py", {9: 0}),
        }
    )
    both = unit.merged(integration)
    assert both.files == {
        "a.py": FileCoverage("a.py", {1: 1, 2: 2, 3: 0, 4: 1}, 3, 4),
        "b.py": FileCoverage("b.py", {1: 1}, 0, 4),
        "only_integration.py": FileCoverage("only_integration.py", {9: 0}),
        "only_unit.py": FileCoverage("only_unit.py", {1: 5}),
    }
    assert (both.lines_total, both.lines_covered) == (7, 5)
    # Merging does not change its operands.
    assert unit.files["a.py"].lines == {1: 1, 2: 0, 3: 0}
    assert integration.files["b.py"].lines == {1: 1}


def test_coverage_json_round_trips() -> None:
    cov = Coverage(
        {
            "src/a.py": FileCoverage("src/a.py", {1: 1, 10: 0, 200: 7}, 1, 2),
            "/abs/b.py": FileCoverage("/abs/b.py", {}, 0, 0),
        }
    )
    data = json.loads(json.dumps(cov.to_json()))
    back = Coverage.from_json(data)
    assert back == cov
    assert all(isinstance(line, int) for line in back.files["src/a.py"].lines)


def test_xml_declaring_entities_is_refused(tmp_path: Path) -> None:
    bomb = write(
        tmp_path / "cov.xml",
        """\
        <?xml version="1.0"?>
        <!DOCTYPE coverage [
          <!ENTITY lol "lol">
          <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
          <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
          <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
        ]>
        <coverage><sources><source>&lol4;</source></sources></coverage>
        """,
    )
    with pytest.raises(ReportError, match="entities") as info:
        read_coverage(str(bomb), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{bomb}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello, world\n", "neither Cobertura XML nor LCOV"),
        ("", "neither Cobertura XML nor LCOV"),
        ("<coverage><unclosed></coverage>", "not XML"),
        ('<testsuites><testsuite name="x"/></testsuites>', "root element is <testsuites>"),
        (
            '<coverage><packages><package><classes><class filename="a.py"><lines>'
            '<line number="1" hits="many"/></lines></class></classes></package></packages>'
            "</coverage>",
            "expected a line number and a hit count",
        ),
    ],
)
def test_what_is_not_a_coverage_report_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    report = tmp_path / "report.out"
    report.write_text(text)
    with pytest.raises(ReportError, match=problem) as info:
        read_coverage(str(report), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{report}: ")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("DA:x,1", "'x' is not a valid number"),
        ("DA:3", "expected DA:<line>,<hits>"),
        ("DA:3,-2", "'-2' is not a valid number"),
        ("BRDA:3,0,0,lots", "'lots' is not a valid number"),
    ],
)
def test_malformed_lcov_names_the_line(tmp_path: Path, record: str, problem: str) -> None:
    report = write(tmp_path / "lcov.info", f"TN:\nSF:a.py\nDA:1,1\n{record}\nend_of_record\n")
    with pytest.raises(ReportError, match=problem) as info:
        read_coverage(str(report), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{report}:4: ")


def test_an_unreadable_coverage_report_names_the_path(tmp_path: Path) -> None:
    gone = tmp_path / "nope.xml"
    with pytest.raises(ReportError, match="cannot read") as info:
        read_coverage(str(gone), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{gone}: ")


# -- SARIF ------------------------------------------------------------------------------

APP = """\
import os

password = "hunter2"


def check(x: int) -> int:
    assert x > 0
    return x
"""


def ruff_sarif(workspace: Path, out: Path) -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    select = ["--select", "F,E,S", "--exit-zero", "--no-cache", "--isolated"]
    with out.open("w") as fh:
        subprocess.run(
            [*command, "check", "--output-format", "sarif", *select, "src"],
            cwd=workspace,
            env=tool_env(),
            stdout=fh,
            check=True,
        )


def test_ruff_findings_keep_their_fingerprints_when_lines_move(tmp_path: Path) -> None:
    app = write(tmp_path / "src/app.py", APP)
    ruff_sarif(tmp_path, tmp_path / "ruff.sarif")
    before = read_sarif(str(tmp_path / "ruff.sarif"), str(tmp_path), str(tmp_path))
    assert sorted((f.tool, f.rule, f.path, f.line) for f in before) == [
        ("ruff", "F401", "src/app.py", 1),
        ("ruff", "S101", "src/app.py", 7),
        ("ruff", "S105", "src/app.py", 3),
    ]
    by_rule = {f.rule: f for f in before}
    assert by_rule["F401"].message == "`os` imported but unused"
    assert len({f.fingerprint for f in before}) == 3

    app.write_text("\n\n\n" + APP)
    ruff_sarif(tmp_path, tmp_path / "ruff.sarif")
    after = read_sarif(str(tmp_path / "ruff.sarif"), str(tmp_path), str(tmp_path))
    assert sorted((f.rule, f.line) for f in after) == [("F401", 4), ("S101", 10), ("S105", 6)]
    assert {f.rule: f.fingerprint for f in after} == {f.rule: f.fingerprint for f in before}


def sarif_log(tmp_path: Path, log: dict[str, Any]) -> str:
    path = tmp_path / "report.sarif"
    path.write_text(json.dumps(log))
    return str(path)


def test_sarif_severities_rules_messages_and_paths(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    log = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "scanner",
                        "rules": [
                            {
                                "id": "SEC001",
                                "shortDescription": {"text": "Command injection"},
                                "properties": {"security-severity": "9.8"},
                            },
                            {"id": "SEC002", "properties": {"security-severity": 7.5}},
                            {"id": "SEC003", "properties": {"security-severity": "5"}},
                            {"id": "SEC004", "properties": {"security-severity": 2}},
                            {
                                "id": "STY001",
                                "defaultConfiguration": {"level": "note"},
                                "messageStrings": {"short": {"text": "Name {0} is too short"}},
                            },
                            {"id": "STY002"},
                        ],
                    }
                },
                "originalUriBaseIds": {
                    "SRC": {"uri": "src/", "uriBaseId": "ROOT"},
                    "ROOT": {"uri": f"file://{ws}/"},
                },
                "results": [
                    {
                        "ruleId": "SEC001",
                        "level": "note",  # security-severity wins
                        "message": {"id": "absent"},
                        "locations": [_loc(f"file://{ws}/app/main%20file.py", 10)],
                    },
                    {
                        "ruleIndex": 1,
                        "message": {"text": "Secret in code"},
                        "locations": [_loc("lib/x.py", 3, base="SRC")],
                    },
                    {
                        "ruleId": "SEC003",
                        "message": {"text": "Weak hash"},
                        "locations": [_loc("rel.py", 4, base="UNKNOWN")],
                    },
                    {
                        "ruleId": "SEC004",
                        "message": {"text": "Debug on"},
                        "locations": [_loc("/elsewhere/abs.py", 1)],
                    },
                    {
                        "ruleId": "STY001",
                        "message": {"id": "short", "arguments": ["x"]},
                        "locations": [_loc("style.py", 2)],
                    },
                    {"ruleId": "STY002", "level": "error", "message": {"text": "Bad"}},
                    {"ruleId": "STY002", "message": {"text": "Default level"}},
                    {
                        "ruleId": "STY002",
                        "level": "error",
                        "message": {"text": "Scored zero"},
                        "properties": {"security-severity": "0.0"},
                    },
                    {"ruleId": "STY002", "kind": "pass", "message": {"text": "Fine"}},
                    {
                        "ruleId": "STY002",
                        "message": {"text": "Suppressed"},
                        "suppressions": [{"kind": "inSource"}],
                    },
                ],
            },
            {
                "tool": {
                    "driver": {"name": "CodeQL"},
                    "extensions": [
                        {
                            "name": "js-queries",
                            "rules": [{"id": "js/xss", "properties": {"security-severity": "6.1"}}],
                        }
                    ],
                },
                "results": [
                    {
                        "ruleId": "js/xss",
                        "rule": {"id": "js/xss", "index": 0, "toolComponent": {"index": 0}},
                        "message": {"text": "XSS"},
                        "locations": [_loc("web/a.js", 8, base="%SRCROOT%")],
                    },
                    {"ruleId": "js/other", "level": "none", "message": {"text": "FYI"}},
                ],
            },
        ],
    }
    findings = read_sarif(sarif_log(tmp_path, log), str(ws), str(ws / "job"))
    plain = [(f.tool, f.rule, f.severity, f.message, f.path, f.line) for f in findings]
    assert plain == [
        ("scanner", "SEC001", "critical", "Command injection", "app/main file.py", 10),
        ("scanner", "SEC002", "high", "Secret in code", "src/lib/x.py", 3),
        ("scanner", "SEC003", "medium", "Weak hash", "job/rel.py", 4),
        ("scanner", "SEC004", "low", "Debug on", "/elsewhere/abs.py", 1),
        ("scanner", "STY001", "low", "Name x is too short", "job/style.py", 2),
        ("scanner", "STY002", "high", "Bad", None, None),
        ("scanner", "STY002", "medium", "Default level", None, None),
        ("scanner", "STY002", "note", "Scored zero", None, None),
        ("CodeQL", "js/xss", "medium", "XSS", "web/a.js", 8),
        ("CodeQL", "js/other", "note", "FYI", None, None),
    ]


def _loc(uri: str, line: int, base: str | None = None) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line}}}


def test_sarif_fingerprints_ignore_lines_and_prefer_the_tools_own(tmp_path: Path) -> None:
    def finding(line: int, **extra: Any) -> Finding:
        result = {"ruleId": "R1", "message": {"text": "m"}, "locations": [_loc("a.py", line)]}
        log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": []}]}
        log["runs"][0]["results"] = [{**result, **extra}]  # type: ignore[index]
        return read_sarif(sarif_log(tmp_path, log), str(tmp_path), str(tmp_path))[0]

    assert finding(1).fingerprint == finding(90).fingerprint
    assert finding(1).fingerprint == hashlib.sha256(b'["t", "R1", "a.py", "m"]').hexdigest()
    own = {"partialFingerprints": {"primaryLocationLineHash": "abc:1"}}
    assert finding(1, **own).fingerprint == finding(90, **own).fingerprint
    assert finding(1, **own).fingerprint != finding(1).fingerprint
    other = {"partialFingerprints": {"primaryLocationLineHash": "def:1"}}
    assert finding(1, **other).fingerprint != finding(1, **own).fingerprint


def test_write_sarif_reads_back_the_same_findings(tmp_path: Path) -> None:
    findings = [
        Finding("conveyor", "secrets/aws", "critical", "AWS key", "src/a b.py", 3, "fp1"),
        Finding("conveyor", "secrets/aws", "high", "AWS key again", "src/c.py", 9, "fp2"),
        Finding("conveyor", "deps/cve", "medium", "CVE-2024-1", "requirements.txt", 1, "fp3"),
        Finding("conveyor", "deps/cve", "low", "CVE-2024-2", "/opt/outside.py", 2, "fp4"),
        Finding("conveyor", "size", "note", "Large file", None, None, "fp5"),
    ]
    out = tmp_path / "ws/out/conveyor.sarif"
    out.parent.mkdir(parents=True)
    write_sarif(findings, "conveyor", "1.2.3", str(out), "https://example.com/conveyor")
    assert os.listdir(out.parent) == ["conveyor.sarif"]  # no .tmp left behind

    back = read_sarif(str(out), str(tmp_path / "ws"), str(tmp_path / "ws/out"))
    assert back == findings

    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("conveyor", "1.2.3")
    assert driver["informationUri"] == "https://example.com/conveyor"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["secrets/aws", "deps/cve", "size"]
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note", "none")
        assert isinstance(result["message"]["text"], str)


def test_sarif_of_another_version_is_refused(tmp_path: Path) -> None:
    path = sarif_log(tmp_path, {"version": "2.0.0", "runs": []})
    with pytest.raises(ReportError, match=r"'2\.0\.0', expected 2\.1\.0") as info:
        read_sarif(path, str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"runs": []}', "no version, expected 2.1.0"),
        ('{"version": "2.1.0"}', "no 'runs' list"),
        ('{"version": "2.1.0", "runs": [{"results": []}]}', r"runs\[0\] has no tool.driver.name"),
    ],
)
def test_what_is_not_a_sarif_log_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.sarif"
    path.write_text(text)
    with pytest.raises(ReportError, match=problem) as info:
        read_sarif(str(path), str(tmp_path), str(tmp_path))
    assert str(info.value).startswith(f"{path}: ")
