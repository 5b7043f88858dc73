"""Coverage reports (Cobertura, LCOV), read from what the real tools write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.reports.coverage import Coverage, FileCoverage, read_coverage
from conveyor.reports.junit import ReportError
from tests.reports.conftest import tool_env, write

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


def python(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=tool_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def missing(f: FileCoverage) -> list[int]:
    return [line for line, hits in f.lines.items() if hits == 0]


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
