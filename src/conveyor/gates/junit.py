"""The gates of a run as JUnit XML, one test case per gate, so hosted CI (GitLab's test
reports, GitHub's test-reporter actions, Jenkins) shows them beside the tests."""

from __future__ import annotations

import os
from collections.abc import Sequence

from conveyor.model import CheckResult, GateResult


def write(path: str, gates: Sequence[GateResult], checks: Sequence[CheckResult] = ()) -> None:
    """Write the gates (and failed checks) to `path` atomically."""
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

    suite = TestSuite("conveyor gates")
    cases = []  # added at once: add_testcase recounts the whole suite each time
    for g in gates:
        case = TestCase(f"{g.gate} [{g.scope}]", classname=f"gates.{g.scope}")
        text = f"measured {g.measured}, wanted {g.threshold}"
        if not g.passed and g.blocking:
            failure = Failure(f"{g.gate} failed: {text}")
            failure.text = g.detail or text
            case.result = [failure]
        elif not g.passed:  # level warn: reported, not failing the build
            case.result = [Skipped(f"warning only: {g.gate}: {text}")]
        case.system_out = text + (f"\n{g.detail}" if g.detail else "")
        cases.append(case)
    for c in checks:
        case = TestCase(c.check, classname="checks")
        if not c.ok:
            message = f"expected {c.expected}, found {c.found}"
            if c.blocking:
                failure = Failure(message)
                failure.text = c.hint
                case.result = [failure]
            else:
                case.result = [Skipped(f"warning only: {message}")]
        cases.append(case)
    suite.add_testcases(cases)
    xml = JUnitXml("conveyor")
    xml.add_testsuite(suite)
    xml.write(f"{path}.tmp", pretty=False)  # pretty-printing (minidom) cost 50 ms a run
    os.replace(f"{path}.tmp", path)
