"""Version ranges as projects write them, as the PEP 440 ranges `requires:` checks."""

from __future__ import annotations

import pytest

from conveyor.scaffold import versions


@pytest.mark.parametrize(
    ("written", "spec"),
    [
        (">=18", ">=18"),
        ("^18.2", ">=18.2,<19"),
        ("^0.4.1", ">=0.4.1,<0.5"),
        ("~3.11", ">=3.11,<3.12"),
        ("18.x", ">=18,<19"),
        ("3.11", ">=3.11,<3.12"),
        (">=3.8,<4", ">=3.8,<4"),
        (">=14 <21", ">=14,<21"),
        ("^16 || ^18 || >=20", ">=16"),
        ("<16 || >=18", None),
        ("*", None),
        ("lts/*", None),
        ("latest", None),
    ],
)
def test_ranges(written: str, spec: str | None) -> None:
    assert versions.from_range(written) == spec


@pytest.mark.parametrize(
    ("pinned", "spec"),
    [
        ("3.12.1\n", ">=3.12,<3.13"),
        ("v20.11.1", ">=20.11,<20.12"),
        ("20", ">=20,<21"),
        ("ruby-3.2.2", ">=3.2,<3.3"),
        ("lts/hydrogen", None),
        ("", None),
    ],
)
def test_pins(pinned: str, spec: str | None) -> None:
    assert versions.from_pin(pinned) == spec


def test_floors() -> None:
    assert versions.floor("1.22") == ">=1.22"
    assert versions.floor("1.22.3") == ">=1.22.3"
    assert versions.floor("stable") is None
