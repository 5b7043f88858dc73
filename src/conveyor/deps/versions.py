"""Each ecosystem's own version order, and its package-name rules, as the vulnerability
database needs them: whether 2.10 is before 2.9 (PEP 440: no), 1.0.0-rc.1 before 1.0.0
(SemVer: yes), v1.2.3 the same as 1.2.3 (Go: yes), 1.0-SNAPSHOT before 1.0 (Maven: yes).

`version_key(ecosystem, text)` is a value that sorts as the ecosystem orders versions
(None for a string the ecosystem cannot read as a version); keys are cached, since one
audit compares the same few hundred strings again and again. `package_key(ecosystem,
name)` is the name as the ecosystem compares names: PEP 503 for PyPI, case and '-'/'_'
folded for crates.io, case folded for NuGet and Packagist, exact elsewhere (npm, Go,
Maven and RubyGems names are case-sensitive)."""

from __future__ import annotations

import functools
import re
from typing import Any

# A key compares with every other key of its ecosystem; a version the ecosystem cannot
# read has none.
Key = Any

_PEP503 = re.compile(r"[-_.]+")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def package_key(ecosystem: str, name: str) -> str:
    """`name` as `ecosystem` compares package names (the index is keyed by this)."""
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    if ecosystem == "crates.io":
        return name.replace("_", "-").lower()
    if ecosystem in ("NuGet", "Packagist"):
        return name.lower()
    return name


@functools.lru_cache(maxsize=65536)
def version_key(ecosystem: str, text: str) -> Key | None:
    """A sortable key for `text` in `ecosystem`'s order (keys of one ecosystem compare
    with each other, not with another's), or None when it is not a version there.
    OSV's "0" ("from the first version") is no version: `conveyor.deps.osv` reads it."""
    parse = _PARSERS.get(ecosystem, _semver)
    try:
        return parse(text)
    except Exception:  # every library raises its own kind for a string it cannot read
        return None


def _pep440(text: str) -> Key:
    """PEP 440's order (packaging parses), as a tuple of ints and strings: packaging's
    own Version objects compare through Python methods and its Infinity sentinels, and
    an audit's binary searches compare them tens of thousands of times; tuples compare
    in C. The tuple mirrors packaging's comparison key, each sentinel a leading 0 or 2
    (tests/deps compare the two orders)."""
    if _PLAIN.fullmatch(text):
        # Most versions are a plain release ('2.31.0'): their key without the parser.
        plain = tuple(map(int, text.split(".")))
        while len(plain) > 1 and plain[-1] == 0:
            plain = plain[:-1]
        return (0, plain, (2, "", 0), (0, 0), (2, 0), 0, ())
    from packaging.version import Version

    v = Version(text)
    release = v.release
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]  # 1.0 == 1.0.0
    if v.pre is not None:
        pre: tuple[int, str, int] = (1, v.pre[0], v.pre[1])  # a < b < rc, as letters sort
    elif v.post is None and v.dev is not None:
        pre = (0, "", 0)  # 1.0.dev0 is below 1.0a0
    else:
        pre = (2, "", 0)  # a release is above its pre-releases
    post = (0, 0) if v.post is None else (1, v.post)
    dev = (2, 0) if v.dev is None else (1, v.dev)
    # A local label sorts above none; in it, numbers above words.
    local = (
        ()
        if v.local is None
        else tuple(
            (1, int(p), "") if p.isdigit() else (0, 0, p.lower()) for p in v.local.split(".")
        )
    )
    return (v.epoch, release, pre, post, dev, 0 if v.local is None else 1, local)


def _semver(text: str) -> Key:
    """SemVer 2.0 precedence (npm, crates.io and anything unknown): build metadata
    ignored, a pre-release below its release, pre-release identifiers numeric below
    alphanumeric. A leading 'v' or '=' is tolerated (npm accepts both). Written here
    rather than univers' SemverVersion, which took 68 us a version against 2 us, and
    whose keys compare in Python rather than as tuples: an audit parses and compares
    thousands (tests/deps compare the two orders)."""
    match = _SEMVER.fullmatch(text.strip().lstrip("=v"))
    if match is None:
        raise ValueError(text)
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    release = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        return (release, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (release, 0, parts)


_SEMVER = re.compile(
    r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)


def _go(text: str) -> Key:
    """Go module versions: SemVer with a 'v' (OSV writes them without), pseudo-versions
    (v0.0.0-20200101000000-abcdef123456, pre-releases of the release they precede) and
    '+incompatible' (build metadata, ignored)."""
    return _semver(text.removeprefix("v"))


def _univers(kind: str) -> Any:
    def parse(text: str) -> Key:
        from univers import versions

        return getattr(versions, kind)(text)

    return parse


_PARSERS = {
    "PyPI": _pep440,
    "npm": _semver,
    "crates.io": _semver,
    "Go": _go,
    "Maven": _univers("MavenVersion"),
    "RubyGems": _univers("RubygemsVersion"),
    "NuGet": _univers("NugetVersion"),
    "Packagist": _univers("ComposerVersion"),
}
"""Which order each ecosystem's versions follow: PEP 440 (packaging), SemVer 2.0 for npm
and Cargo (and Go's module versions), Maven's ComparableVersion, RubyGems' Gem::Version,
NuGet's and Composer's own (univers)."""
