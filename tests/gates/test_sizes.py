"""Size gates at their edge: a limit is the largest size allowed, not the first refused."""

from __future__ import annotations

import pytest

from tests.conftest import Project

PIPELINE = """
jobs:
  build:
    run: >-
      mkdir -p dist && head -c {a} /dev/zero > dist/a.bin && head -c {b} /dev/zero > dist/b.bin
    outputs: [dist/]
    gates:
      sizes: {{files: {{"*.bin": 1000}}, total: 1500}}
"""


def gate_results(out: str) -> dict[str, str]:
    """gate name -> its result word, from the table printed at the end of a run."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GATE "))
    found = {}
    for line in lines[start + 1 :]:
        words = line.split()
        if not words or line[0].isspace() or words[0] == "Run":  # the end of the table
            break
        found[words[0]] = words[-1]
    return found


@pytest.mark.parametrize(
    ("a", "b", "each", "total", "code"),
    [
        (1000, 500, "passed", "passed", 0),  # both exactly at their limit
        (999, 500, "passed", "passed", 0),
        (1001, 499, "FAILED", "passed", 1),  # one byte over the per-file limit
        (1000, 501, "passed", "FAILED", 1),  # one byte over the total
        (1001, 500, "FAILED", "FAILED", 1),
    ],
)
def test_size_limits_are_inclusive(
    project: Project, a: int, b: int, each: str, total: str, code: int
) -> None:
    project.pipeline(PIPELINE.format(a=a, b=b))
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == code, result.out
    assert gate_results(result.out) == {"sizes[*.bin]": each, "sizes.total": total}
    if each == "FAILED":
        assert "sizes[*.bin] (build): over: dist/a.bin" in result.out
