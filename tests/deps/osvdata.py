"""The advisories and lockfiles of tests/deps/data (their sources: its README)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
OSV = DATA / "osv"
LOCKFILES = DATA / "lockfiles"
SHARED_PYPI = Path("/work/shared/data/osv/PyPI.zip")


@cache
def _all() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(OSV.rglob("*.json")):
        data = json.loads(path.read_text())
        out[data["id"]] = data
    return out


def record(ident: str) -> dict[str, Any]:
    """A copy of one OSV record of the test data."""
    copy: dict[str, Any] = json.loads(json.dumps(_all()[ident]))
    return copy


def records() -> list[dict[str, Any]]:
    """Copies of every OSV record of the test data."""
    return [record(i) for i in _all()]
