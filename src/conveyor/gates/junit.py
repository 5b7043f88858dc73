"""The gates of a run as JUnit XML, one test case per gate, so hosted CI (GitLab's test
reports, GitHub's test-reporter actions, Jenkins) shows them beside the tests.

Written with the standard library's ElementTree: the few elements are plain to build,
and importing junitparser (which reads the jobs' reports) cost every gated run 20 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.fsutil import atomic_file
from conveyor.model import CheckResult, GateResult


def write(path: str, gates: Sequence[GateResult], checks: Sequence[CheckResult] = ()) -> None:
    """Write the gates (and checks) to `path` atomically: a `testsuites` document with
    one suite; a failing `error` gate or check is a failure, a failing `warn` one is
    skipped (shown, not failing the build)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="conveyor")
    suite = ET.SubElement(root, "testsuite", name="conveyor gates")
    failures = skipped = 0
    for g in gates:
        case = ET.SubElement(
            suite, "testcase", name=f"{g.gate} [{g.scope}]", classname=f"gates.{g.scope}"
        )
        text = f"measured {g.measured}, wanted {g.threshold}"
        if not g.passed and g.blocking:
            failure = ET.SubElement(case, "failure", message=f"{g.gate} failed: {text}")
            failure.text = g.detail or text
            failures += 1
        elif not g.passed:
            ET.SubElement(case, "skipped", message=f"warning only: {g.gate}: {text}")
            skipped += 1
        ET.SubElement(case, "system-out").text = text + (f"\n{g.detail}" if g.detail else "")
    for c in checks:
        case = ET.SubElement(suite, "testcase", name=c.check, classname="checks")
        if not c.ok:
            message = f"expected {c.expected}, found {c.found}"
            if c.blocking:
                ET.SubElement(case, "failure", message=message).text = c.hint
                failures += 1
            else:
                ET.SubElement(case, "skipped", message=f"warning only: {message}")
                skipped += 1
    counts = {
        "tests": str(len(gates) + len(checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
    }
    for element in (root, suite):
        element.attrib.update(counts)
    with atomic_file(path) as fh:
        ET.ElementTree(root).write(fh, encoding="utf-8", xml_declaration=True)
