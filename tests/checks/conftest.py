"""Helpers shared by the tests of the checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conveyor.model import CheckResult


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def only(results: list[CheckResult]) -> CheckResult:
    assert len(results) == 1, results
    return results[0]
