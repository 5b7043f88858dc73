"""JUnit reports as the test runners write them."""

from __future__ import annotations

from pathlib import Path

from conveyor.reports.junit import read_cases


def test_node_test_runner_cases_outside_any_suite_count(tmp_path: Path) -> None:
    """Node's `--test-reporter=junit` writes a test that is in no `describe` straight
    under <testsuites>; it is a test like any other."""
    report = tmp_path / "junit.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<testsuites>\n"
        '\t<testcase name="slugify" time="0.002771" classname="test"/>\n'
        '\t<testcase name="trims" time="0.001" classname="test">\n'
        '\t\t<failure type="testCodeFailure" message="expected 1"/>\n'
        "\t</testcase>\n"
        '\t<testsuite name="nested"><testcase name="inner" classname="test"/></testsuite>\n'
        "\t<!-- tests 3 -->\n"
        "</testsuites>\n"
    )
    cases = read_cases(str(report))
    assert [(c["suite"], c["name"], c["status"]) for c in cases] == [
        ("nested", "test.inner", "passed"),
        ("", "test.slugify", "passed"),
        ("", "test.trims", "failed"),
    ]
    assert cases[2]["message"] == "expected 1"
