"""JUnit XML (pytest, JUnit/Surefire, Jest's jest-junit, go-junit-report, Node's
`--test-reporter=junit`) as test cases.

Parsed with defusedxml (no entity expansion, no external entities: a report is input
written by whatever a job ran) and read through junitparser.
"""

from __future__ import annotations

import glob
import os
from typing import Any


class ReportError(Exception):
    """A report file that cannot be read as JUnit XML."""


def read_cases(path: str) -> list[dict[str, Any]]:
    """Every test case of one JUnit XML file: suite, name, status (passed, failed,
    error, skipped), duration in seconds (None when not given), message."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException
    from junitparser import Error, Failure, JUnitXml, JUnitXmlError, Skipped

    try:
        root = SafeET.parse(path).getroot()
        if root is None:
            raise ReportError(f"{path}: empty")
        _adopt_loose_cases(root)
        xml = JUnitXml.fromroot(root)  # type: ignore[arg-type]  # an ElementTree element
    except (OSError, SafeET.ParseError, DefusedXmlException, JUnitXmlError) as exc:
        raise ReportError(f"{path}: not JUnit XML ({exc})") from None
    cases = []
    for suite in xml:
        for case in suite:
            status, message = "passed", ""
            for result in case.result:
                if isinstance(result, Failure):
                    status, message = "failed", result.message or result.text or ""
                elif isinstance(result, Error):
                    status, message = "error", result.message or result.text or ""
                elif isinstance(result, Skipped) and status == "passed":
                    status, message = "skipped", result.message or ""
            name = f"{case.classname}.{case.name}" if case.classname else case.name
            cases.append(
                {
                    "suite": suite.name or "",
                    "name": name or "",
                    "status": status,
                    "duration": float(case.time) if case.time is not None else None,
                    "message": (message or "").strip()[:2000],
                }
            )
    return cases


def _adopt_loose_cases(root: Any) -> None:
    """Test cases written straight under <testsuites>, as Node's test runner writes the
    tests that are in no `describe`, put in a suite of their own (junitparser reads
    cases only inside suites, so they would not count)."""
    if root.tag != "testsuites":
        return
    loose = [child for child in root if child.tag == "testcase"]
    if not loose:
        return
    from xml.etree.ElementTree import Element

    suite = Element("testsuite", {"name": ""})
    for case in loose:
        root.remove(case)
        suite.append(case)
    root.append(suite)


def report_files(workspace: str, job_dir: str, patterns: tuple[str, ...]) -> list[str]:
    """The files a job's report globs (relative to its `dir`) match now."""
    base = os.path.normpath(os.path.join(workspace, job_dir))
    found: dict[str, None] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(base, pattern), recursive=True)):
            if os.path.isfile(path):
                found[path] = None
    return list(found)
