"""Version ranges as projects write them (npm's semver ranges, Poetry's carets, a pinned
`.python-version`), turned into the PEP 440 ranges `requires:` takes; None when a range
cannot be said that way, so nothing wrong is ever written."""

from __future__ import annotations

import re

_VERSION = re.compile(r"v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?")


def _parts(text: str) -> list[str] | None:
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        return None
    return [p for p in m.groups() if p is not None and p not in ("x", "*")]


def from_range(text: str) -> str | None:
    """'>=18', '^18.2', '~3.11', '18.x', '>=3.8,<4', '^16 || ^18' (the lowest
    alternative's floor) as a PEP 440 range; None for anything else."""
    text = text.strip()
    if not text or text in ("*", "latest"):
        return None
    if "||" in text:
        alternatives = [from_range(alt) for alt in text.split("||")]
        lows = [f.split(",")[0] for f in alternatives if f is not None]
        # A union cannot be one PEP 440 range: its floor is what `requires:` can check.
        if len(lows) != len(alternatives) or not all(f.startswith(">=") for f in lows):
            return None
        return min(lows, key=lambda f: _key(f[2:]))
    if "," in text or " " in text.strip():
        pieces = [p for p in re.split(r"[,\s]+", text) if p]
        out = [_one(p) for p in pieces]
        return None if any(o is None for o in out) else ",".join(o for o in out if o)
    return _one(text)


def _one(text: str) -> str | None:
    op = re.match(r"(>=|<=|==|!=|~=|>|<|\^|~|=)?\s*(.*)", text)
    assert op is not None
    symbol, rest = op.group(1) or "", op.group(2)
    parts = _parts(rest)
    if not parts:
        return None
    version = ".".join(parts)
    if symbol in (">=", ">", "<", "<=", "!=", "~="):
        return f"{symbol}{version}"
    if symbol == "^":
        major = int(parts[0])
        if major == 0 and len(parts) > 1:
            return f">={version},<0.{int(parts[1]) + 1}"
        return f">={version},<{major + 1}"
    if symbol == "~" and len(parts) > 1:
        return f">={version},<{parts[0]}.{int(parts[1]) + 1}"
    # A bare or `=`/`==` version: npm's "18", "18.x" and Poetry's "3.11" mean that
    # release line; pinning a patch release here would refuse the next one.
    return _line(parts)


def _line(parts: list[str]) -> str:
    if len(parts) == 1:
        return f">={parts[0]},<{int(parts[0]) + 1}"
    return f">={parts[0]}.{parts[1]},<{parts[0]}.{int(parts[1]) + 1}"


def from_pin(text: str) -> str | None:
    """A pinned version ('3.12.1', '20.11.0', 'v18', 'ruby-3.2.2', '1.22') as its
    minor release line ('>=3.12,<3.13'), or its major line when only that is given."""
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not text or text.startswith("lts/"):  # nvm's 'lts/hydrogen' names no number
        return None
    text = re.sub(r"^(ruby-|python-|go)", "", text)
    parts = _parts(text.split("-")[0])
    if not parts:
        return None
    return _line(parts[:2])


def floor(text: str) -> str | None:
    """A version given as a minimum (`go 1.22`, `rust-version = "1.70"`) as '>=1.22'."""
    parts = _parts(text.strip())
    return f">={'.'.join(parts)}" if parts else None


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)
