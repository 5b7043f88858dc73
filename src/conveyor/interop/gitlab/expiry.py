"""How long GitLab keeps a job's artifacts, as Conveyor's retention says it.

GitLab reads `artifacts:expire_in` as a human duration (`30 days`, `1 week and 2 days`,
`3 mins 4 sec`, `6 mos`, a bare number of seconds, or `never`), and keeps artifacts 30
days when a job says nothing (the instance default). It also keeps the artifacts of
each ref's most recent successful job whatever their age (keep-latest-artifact, on by
default). An imported job therefore gets `expire_in` (30 days unless it says otherwise)
and `keep: {latest: true}`.
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.units import MAX_DURATION

DEFAULT_DAYS = 30
"""GitLab's default artifact expiry (Admin > CI/CD > Default artifacts expiration)."""

# chronic_duration's units, which GitLab uses: a month is 30 days, a year 365.25.
_UNITS = (
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "wks", "week", "weeks"), 604800.0),
    (("mo", "mos", "month", "months"), 30 * 86400.0),
    (("y", "yr", "yrs", "year", "years"), 365.25 * 86400.0),
)
_SECONDS = {word: seconds for words, seconds in _UNITS for word in words}
_TERM = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")


def seconds(text: Any) -> float | None:
    """`expire_in` in seconds; None for `never`; ValueError when GitLab would not read
    it either."""
    words = str(text).strip().lower()
    if words == "never":
        return None
    words = re.sub(r"\band\b|,", " ", words)
    total, pos, found = 0.0, 0, False
    while pos < len(words):
        m = _TERM.match(words, pos)
        if m is None or m.end() == pos or (m.group(2) and m.group(2) not in _SECONDS):
            raise ValueError(
                f"cannot read {text!r} as a duration (such as '30 days', '1 week', "
                "'2 hrs 20 min' or 'never')"
            )
        total += float(m.group(1)) * _SECONDS[m.group(2) or "s"]
        pos, found = m.end(), True
    if not found:
        raise ValueError(f"cannot read {text!r} as a duration")
    return min(total, MAX_DURATION)


def retention(spec: dict[str, Any]) -> dict[str, Any]:
    """What conveyor.yml's `artifacts:` says for a GitLab job's `artifacts:` mapping:
    `expire_in` (GitLab's default when it has none; left out for `never`) and
    `keep: {latest: true}`."""
    given = spec.get("expire_in")
    after = DEFAULT_DAYS * 86400.0 if given is None else seconds(given)
    out: dict[str, Any] = {"keep": {"latest": True}}
    if after is not None:
        out["expire_in"] = _written(after)
    return out


def _written(after: float) -> str:
    """Seconds as conveyor.yml writes a duration: in the largest unit that divides them."""
    whole = round(after)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{max(whole, 1)}s"
