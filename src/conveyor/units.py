"""Durations ('1h30m', '90s', '500ms', 42), sizes ('5MB', '1.5GiB', 1024) and version
ranges ('>=18', '3.11') as users write them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

MAX_DURATION = 3650 * 86400.0
"""Ten years, in seconds: longer is a typo (or hostile), and past it timers overflow."""
MAX_SIZE = 2**63 - 1
"""Bytes: what a file size can be (a signed 64-bit offset)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as '1h30m', '90s', '2.5m', '500ms'."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '90s', '10m' or '1h30m'")
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("expected a duration such as '90s', '10m' or '1h30m', got NaN")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded_duration(value, value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '90s', '10m' or '1h30m'")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            raise ValueError(
                f"invalid duration {value!r}: expected a number with a unit "
                "(ms, s, m, h, d), such as '90s', '10m' or '1h30m'"
            )
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration: expected such as '90s', '10m' or '1h30m'")
    return _bounded_duration(total, value)


def _bounded_duration(seconds: float, written: object) -> float:
    if seconds > MAX_DURATION:  # also inf, and integers too large for a float
        raise ValueError(
            f"duration {_shown(written)} is too long: at most 3650d (ten years), "
            "such as '90s' or '2h'"
        )
    return float(seconds)


def parse_size(value: object) -> int:
    """Bytes from a number or a string such as '5MB', '1.5GiB', '200 KB'."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as '500KB', '5MB' or '1GiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return _bounded_size(value, value)
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m:
            unit = (m.group(2) or "B").lower()
            size = float(m.group(1)) * _SIZE_UNITS[unit]
            return _bounded_size(int(size) if math.isfinite(size) else MAX_SIZE + 1, value)
    raise ValueError(
        f"invalid size {value!r}: expected a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), "
        "such as '500KB' or '5MB'"
    )


def _bounded_size(size: int, written: object) -> int:
    if size > MAX_SIZE:
        raise ValueError(f"size {_shown(written)} is too large: at most 8EiB (2**63-1 bytes)")
    return size


def _shown(written: object) -> str:
    """A value as written, shortened: a 400-digit number is not worth repeating whole."""
    text = f"{written:g}" if isinstance(written, float) else str(written)
    return text if len(text) <= 32 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


_BARE_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")


def version_spec(text: str) -> str:
    """A version range as PEP 440 writes it: a bare version ("18", "4.3", "v20") means at
    least that version; "" and "*" mean any version (""). Not checked: see
    packaging.specifiers.SpecifierSet."""
    text = text.strip()
    if text in ("", "*"):
        return ""
    bare = _BARE_VERSION.fullmatch(text)
    if bare:
        return f">={bare.group(1)}"
    return text


def first_few(items: Sequence[str], n: int = 5, sep: str = ", ") -> str:
    """The first `n` items and how many more: 'a, b, c, and 4 more'."""
    shown = list(items[:n])
    if len(items) > n:
        shown.append(f"and {len(items) - n} more")
    return sep.join(shown)


_SI_UNITS = ("kB", "MB", "GB", "TB", "PB", "EB")


def format_size(size: int) -> str:
    """Bytes as `df -H` shows them (powers of 1000, as limits are written: '500KB'):
    '512 B', '1.5 kB', '5.0 GB'."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in _SI_UNITS:
        value /= 1000
        if value < 999.95 or unit == _SI_UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Short human form: '850ms', '12.3s', '4m05s', '1h02m'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
