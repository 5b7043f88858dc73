"""Query parameters read and checked: a bad one is the user's mistake, said in one line
(HTTP 400), never a traceback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from conveyor.errors import UsageError
from conveyor.units import parse_duration


class BadParameter(UsageError):
    """A query parameter the dashboard cannot use (HTTP 400)."""


def text(query: Mapping[str, str], name: str, *, limit: int = 512) -> str | None:
    """A text parameter; None when absent or empty."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise BadParameter(f"{name}: at most {limit} characters")
    return value


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed`."""
    value = text(query, name) or default
    if value not in allowed:
        raise BadParameter(f"{name}: '{value}' is not one of {', '.join(allowed)}")
    return value


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    value = text(query, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(f"{name}: '{value}' is not a whole number") from None
    if not low <= number <= high:
        raise BadParameter(f"{name}: {number} is not between {low} and {high}")
    return number


def when(query: Mapping[str, str], name: str, *, end_of_day: bool = False) -> float | None:
    """A date (YYYY-MM-DD, a whole day in UTC) or an ISO 8601 time, as unix seconds."""
    value = text(query, name, limit=40)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(
            f"{name}: '{value}' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    stamp = parsed.timestamp()
    if end_of_day and len(value) == 10:
        stamp += 86400 - 0.001
    return stamp


def window(query: Mapping[str, str], default: str = "30d") -> tuple[str, float]:
    """The `since` window (a duration: 7d, 12h) as given, and in seconds."""
    value = text(query, "since", limit=20) or default
    try:
        return value, parse_duration(value)
    except ValueError as exc:
        raise BadParameter(f"since: {exc}") from None
