"""How the pages write times, durations, rates and sizes (Jinja filters)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from conveyor.units import format_duration


def when(stamp: float | None) -> str:
    """A time in UTC, to the second."""
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def iso(stamp: float | None) -> str:
    """A time for a <time datetime=...> attribute."""
    return "" if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def day(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d", time.gmtime(stamp))


def dur(seconds: float | None) -> str:
    """A duration as `conveyor show` writes it."""
    return "-" if seconds is None else format_duration(seconds)


def pct(rate: float | None) -> str:
    """A rate as `conveyor stats` writes it."""
    return "-" if rate is None else f"{rate * 100:.1f}%"


def signed_pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:+.0f}%"


def mib(size: float | None) -> str:
    """Bytes in MiB, as `conveyor stats` writes memory."""
    return "-" if not size else f"{size / 2**20:.0f} MiB"


def size(n: float | None) -> str:
    """Bytes in the nearest binary unit."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def short(commit: str | None) -> str:
    return "-" if not commit else commit[:10]


def plain(value: Any) -> Any:
    """Dataclasses (and the tuples and dicts holding them) as JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "iso": iso,
    "day": day,
    "dur": dur,
    "pct": pct,
    "signed_pct": signed_pct,
    "mib": mib,
    "size": size,
    "short": short,
    "plain": plain,
}
