"""Durations and sizes as users write them."""

from __future__ import annotations

import pytest

from conveyor.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2.5m", 150.0),
        ("1d", 86400.0),
        (42, 42.0),
        (1.5, 1.5),
        ("1h 5m", 3900.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["10 minutes", "5x", "", "-1s", True, [1], -3])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [("5MB", 5_000_000), ("1.5GiB", 1610612736), ("200 KB", 200_000), (1024, 1024), ("12", 12)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["5 parsecs", "MB", True, -1])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.0123, 12.34, 245, 3725)] == [
        "12ms",
        "12.3s",
        "4m05s",
        "1h02m",
    ]


def test_first_few_lists_some_and_counts_the_rest() -> None:
    from conveyor.units import first_few

    assert first_few([]) == ""
    assert first_few(["a", "b"], 2) == "a, b"
    assert first_few(["a", "b", "c", "d"], 2) == "a, b, and 2 more"
    assert first_few(["x; y", "z", "w"], 1, "; ") == "x; y; and 2 more"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e300, "duration 1e+300 is too long: at most 3650d"),
        (float("inf"), "duration inf is too long"),
        (float("nan"), "got NaN"),
        (10**400, "duration 100000000000...000000 (401 characters) is too long"),
        ("99999999999999999999d", "duration 99999999999999999999d is too long"),
        ("3651d", "duration 3651d is too long"),
    ],
)
def test_absurd_durations_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration(value)
    assert message in str(info.value)


def test_ten_years_is_the_longest_duration() -> None:
    assert parse_duration("3650d") == 3650 * 86400.0


@pytest.mark.parametrize("value", [2**63, "9" * 400 + "TB", "99999999999999999999999TB"])
def test_absurd_sizes_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="too large: at most 8EiB"):
        parse_size(value)
