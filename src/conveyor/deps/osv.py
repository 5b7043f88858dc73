"""Advisories in the OSV schema (ossf.github.io/osv-schema): a record read into what
matching needs, whether a version is affected, and how severe an advisory is.

Matching follows the schema's evaluation rules. A version is affected by an `affected[]`
entry when it is listed in its `versions`, or falls in one of its `ranges` of type
ECOSYSTEM (the ecosystem's own order, `conveyor.deps.versions`) or SEMVER (SemVer 2.0
whatever the ecosystem); GIT ranges name commits, not releases, and are left out. In a
range the events are sorted by version and walked: `introduced` opens (with "0" below
every version), `fixed` closes at that version, `last_affected` closes after it; a
range with `limit` events only holds below one of them. A `withdrawn` record is no
advisory at all.

Severity comes from the record's `severity[]` CVSS vectors, scored with the `cvss`
library (the newest CVSS version given wins: v4, then v3, then v2), else the GitHub
Advisory Database's word (`database_specific.severity`: CRITICAL, HIGH, MODERATE, LOW),
else it is "unknown". Ratings are CVSS's: critical, high, medium, low, none.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.deps.versions import Key, package_key, version_key

RATINGS = ("critical", "high", "medium", "low", "none", "unknown")
"""Severity ratings, most severe first: CVSS's five, and "unknown" for an advisory that
gives none (most PYSEC records)."""

_GHSA_WORDS = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "LOW": "low"}


class RecordError(ValueError):
    """A file that is not an OSV record (what is missing or wrong)."""


@dataclass(frozen=True)
class Severity:
    """How severe an advisory is: a rating, and the CVSS score and vector it came from."""

    rating: str
    """One of RATINGS."""
    score: float | None = None
    vector: str | None = None
    """The CVSS vector scored ('CVSS:3.1/AV:N/...'), None for a word or no severity."""

    @property
    def rank(self) -> int:
        """0 for critical ... 5 for unknown (lower is worse)."""
        return RATINGS.index(self.rating)

    def label(self) -> str:
        """'high 7.5', 'medium', 'unknown'."""
        return self.rating if self.score is None else f"{self.rating} {self.score:.1f}"


UNKNOWN = Severity("unknown")


@dataclass(frozen=True)
class Range:
    """One `ranges[]` entry of type ECOSYSTEM or SEMVER: its events sorted by version
    (each `(kind, key)`, kind 'introduced', 'fixed', 'last_affected'), its limits, and
    the fixed versions as written (the candidates for an upgrade)."""

    semver: bool
    events: tuple[tuple[str, Key], ...]
    keys: tuple[Key, ...]
    """The events' versions after the leading "0"s, for a binary search."""
    zeros: int
    """How many events are `introduced: "0"` (first, as sorted)."""
    limits: tuple[Key, ...]
    fixed: tuple[str, ...]
    open_ended: bool
    """Whether a version above every event is still affected (no fix known)."""


@dataclass(frozen=True)
class Affected:
    """One `affected[]` entry: a package, and which of its versions are affected."""

    ecosystem: str
    name: str
    ranges: tuple[Range, ...]
    versions: frozenset[str]
    """`versions[]` as written."""
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    """Answers already given: finding the lowest fix asks about each candidate version
    once per advisory group and once more for all of them together."""

    def affects(self, version: str) -> bool:
        """Whether `version` (as the lockfile pins it) is affected."""
        known = self._seen.get(version)
        if known is None:
            known = self._seen[version] = self._affects(version)
        return known

    def _affects(self, version: str) -> bool:
        if self.versions and (
            version in self.versions or normal_version(self.ecosystem, version) in self.versions
        ):
            return True
        for r in self.ranges:
            v = version_key("npm" if r.semver else self.ecosystem, version)
            if v is not None and _in_range(v, r):
                return True
        return False

    @property
    def fixed(self) -> list[str]:
        """Every version a range says fixes it, as written."""
        return [f for r in self.ranges for f in r.fixed]

    @property
    def unfixed(self) -> bool:
        """Whether no version is known to fix it: a range open at the top, or only a
        `versions` list whose newest entry may not be the last affected."""
        return any(r.open_ended for r in self.ranges)


@dataclass(frozen=True)
class Advisory:
    """One OSV record, as matching and reporting need it."""

    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    modified: str = ""
    published: str | None = None
    withdrawn: str | None = None
    severity: Severity = UNKNOWN
    vectors: tuple[str, ...] = ()
    """Every CVSS vector the record gives (v3 and v4 may both be there)."""
    affected: tuple[Affected, ...] = ()
    url: str = ""
    """Where to read it: the record's ADVISORY reference, else osv.dev's page."""
    details: str = field(default="", compare=False)

    @property
    def ids(self) -> tuple[str, ...]:
        """Its id and aliases."""
        return (self.id, *self.aliases)


ZERO = None
_NORMAL_RELEASE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
"""A plain release without leading zeros: PEP 440's normal form already."""
"""The key of OSV's `introduced: "0"`: below every version."""


def _in_range(v: Key, r: Range) -> bool:
    """The schema's walk over the sorted events (introduced: v >= it opens; fixed: v >=
    it closes; last_affected: v > it closes), as a binary search: the events that apply
    are those at or below v, and the last of them decides."""
    if r.limits and not any(v < limit for limit in r.limits):
        return False
    try:
        i = r.zeros + bisect.bisect_right(r.keys, v)
    except TypeError:  # a version of another kind than the range's: walked one by one
        i = r.zeros + sum(1 for k in r.keys if not v < k)
    while i > 0:
        kind, at = r.events[i - 1]
        if kind == "last_affected" and not v > at:
            i -= 1  # at it exactly: still affected, the event before decides
            continue
        return kind == "introduced"
    return False


@functools.lru_cache(maxsize=16384)
def normal_version(ecosystem: str, version: str) -> str:
    """A version in its normal form: PEP 440's on PyPI ('2.0.0-rc.1' is '2.0.0rc1'),
    without Go's 'v' (OSV writes Go's versions without it); else as written."""
    if ecosystem == "PyPI":
        if _NORMAL_RELEASE.fullmatch(version):
            return version  # '2.31.0' is its own normal form: no parse needed
        from packaging.version import InvalidVersion, Version

        try:
            return str(Version(version))
        except InvalidVersion:
            return version
    if ecosystem == "Go":
        return version.removeprefix("v")
    return version


SCORED = "x-conveyor-severity"
"""The key under which the index keeps a record's severity as scored at import
([rating, score, vector]); a record that has it is not scored again."""


def parse_record(data: Any, *, affected: bool = True, indexed: bool = False) -> Advisory:
    """An OSV record (the decoded JSON of one file); without `affected`, only what a
    report shows of it (the index reads each entry of `affected[]` on its own);
    `indexed` for a record as the index keeps it, its severity already scored (a
    record from elsewhere never decides its own severity that way). Raises
    RecordError for something that is not one (no `id`, `affected` not a list, ...)."""
    if not isinstance(data, dict):
        raise RecordError("not an OSV record (expected a JSON object)")
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise RecordError('not an OSV record (no "id")')
    modified = data.get("modified")
    if not isinstance(modified, str):
        raise RecordError(f'{ident}: no "modified" time')
    entries = data.get("affected", [])
    if not isinstance(entries, list):
        raise RecordError(f'{ident}: "affected" is not a list')
    vectors = tuple(
        s["score"]
        for s in _dicts(data.get("severity"))
        if isinstance(s.get("score"), str) and str(s.get("type", "")).startswith("CVSS_")
    )
    specific = data.get("database_specific")
    word = specific.get("severity") if isinstance(specific, dict) else None
    return Advisory(
        id=ident,
        aliases=tuple(a for a in _list(data.get("aliases")) if isinstance(a, str) and a != ident),
        summary=_text(data.get("summary")) or _first_line(_text(data.get("details"))),
        modified=modified,
        published=_text(data.get("published")) or None,
        withdrawn=_text(data.get("withdrawn")) or None,
        severity=_severity(
            data if indexed else {}, vectors, word if isinstance(word, str) else None
        ),
        vectors=vectors,
        affected=tuple(_affected(a) for a in _dicts(entries) if _package(a) is not None)
        if affected
        else (),
        url=_url(ident, data.get("references")),
        details=_text(data.get("details")),
    )


def indexed_record(data: Mapping[str, Any]) -> Advisory:
    """A record as the index keeps it (`conveyor.deps.advisories` wrote it, its severity
    scored): read without `parse_record`'s checks, which cost an audit a quarter of its
    lookups; a record not in that shape is read by `parse_record`."""
    try:
        rating, score, vector = data[SCORED]
        return Advisory(
            id=data["id"],
            aliases=tuple(data["aliases"]),
            summary=data["summary"],
            modified=data["modified"],
            published=data.get("published"),
            withdrawn=data.get("withdrawn"),
            severity=Severity(rating, None if score is None else float(score), vector),
            vectors=tuple(
                s["score"]
                for s in data["severity"]
                if isinstance(s.get("score"), str) and str(s.get("type", "")).startswith("CVSS_")
            ),
            url=data["references"][0]["url"],
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return parse_record(data, affected=False, indexed=True)


def affected_entry(ecosystem: str, name: str, data: Mapping[str, Any]) -> Affected:
    """An `affected[]` entry from its JSON (the index keeps each entry as written, less
    its GIT ranges)."""
    ranges = []
    for r in _dicts(data.get("ranges")):
        kind = r.get("type")
        if kind not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT: commits, not releases
        ranges.append(_range(ecosystem, kind == "SEMVER", _dicts(r.get("events"))))
    # As written: the lists hold the registry's release strings, which lockfiles pin as
    # they are (the component's version is also tried in its normal form).
    listed = data.get("versions")
    versions = frozenset(listed) if isinstance(listed, list) and listed else frozenset()
    return Affected(ecosystem, name, tuple(ranges), versions)


def _range(ecosystem: str, semver: bool, events: Iterable[Mapping[str, Any]]) -> Range:
    scheme = "npm" if semver else ecosystem
    # (0 for "0" else 1, key, order written, kind): "0" sorts first, then by version
    # (keys of one scheme compare with each other), ties in the order written.
    keyed: list[tuple[int, Key, int, str]] = []
    limits: list[Key] = []
    fixed: list[str] = []
    unlimited = False
    for order, event in enumerate(events):
        # An event is one of these four keys (the schema allows no other): its items
        # are walked rather than each kind asked for, the index holds tens of
        # thousands of events.
        for kind, value in event.items():
            if not isinstance(value, str) or kind not in _EVENT_KINDS:
                continue
            if kind == "limit" and value == "*":
                unlimited = True
                continue
            if kind == "introduced" and value == "0":
                keyed.append((0, ZERO, order, kind))
                continue
            key = version_key(scheme, value)
            if key is None:
                continue  # not a version this ecosystem can order: left out
            if kind == "limit":
                limits.append(key)
            else:
                keyed.append((1, key, order, kind))
                if kind == "fixed":
                    fixed.append(value)
    try:
        keyed.sort()
    except TypeError:  # keys a library cannot compare as tuples: one pair at a time
        keyed.sort(key=functools.cmp_to_key(_compare))
    events_sorted = tuple((kind, key) for _rank, key, _order, kind in keyed)
    last = events_sorted[-1][0] if events_sorted else None
    zeros = sum(1 for _kind, key in events_sorted if key is ZERO)
    return Range(
        semver=semver,
        events=events_sorted,
        keys=tuple(key for _kind, key in events_sorted[zeros:]),
        zeros=zeros,
        limits=() if unlimited else tuple(limits),
        fixed=tuple(fixed),
        open_ended=last == "introduced" and not limits and not unlimited,
    )


_EVENT_KINDS = frozenset(("introduced", "fixed", "last_affected", "limit"))


def _compare(a: tuple[int, Key, int, str], b: tuple[int, Key, int, str]) -> int:
    if a[0] != b[0]:
        return a[0] - b[0]
    if a[1] is not ZERO and b[1] is not ZERO:
        if a[1] < b[1]:
            return -1
        if b[1] < a[1]:
            return 1
    return a[2] - b[2]


def _severity(data: Mapping[str, Any], vectors: Sequence[str], word: str | None) -> Severity:
    scored = data.get(SCORED)
    if (
        isinstance(scored, list)
        and len(scored) == 3
        and scored[0] in RATINGS
        and (scored[1] is None or isinstance(scored[1], (int, float)))
        and (scored[2] is None or isinstance(scored[2], str))
    ):
        rating, score, vector = scored
        return Severity(rating, None if score is None else float(score), vector)
    return severity_of(vectors, word)


def severity_of(vectors: Sequence[str], word: str | None = None) -> Severity:
    """The severity of CVSS `vectors` (the newest CVSS version among them), else of the
    GitHub Advisory Database's `word`, else unknown. A vector the library cannot read
    is passed over."""

    def version(vector: str) -> int:
        if vector.startswith("CVSS:4"):
            return 4
        return 3 if vector.startswith("CVSS:3") else 2

    for vector in sorted(vectors, key=version, reverse=True):
        scored = _scored(vector)
        if scored is not None:
            return scored
    if word and word.upper() in _GHSA_WORDS:
        return Severity(_GHSA_WORDS[word.upper()])
    return UNKNOWN


@functools.lru_cache(maxsize=4096)
def _scored(vector: str) -> Severity | None:
    """A CVSS vector's score and rating (None when the library cannot read it)."""
    from cvss import CVSS2, CVSS3, CVSS4, CVSSError  # type: ignore[import-untyped]

    try:
        if vector.startswith("CVSS:4"):
            v4 = CVSS4(vector)
            score, rating = float(v4.base_score), str(v4.severity)
        elif vector.startswith("CVSS:3"):
            v3 = CVSS3(vector)
            score, rating = float(v3.base_score), str(v3.severities()[0])
        else:
            v2 = CVSS2(vector.removeprefix("CVSS:2.0/"))
            score = float(v2.base_score)
            rating = "High" if score >= 7 else "Medium" if score >= 4 else "Low"
    except (CVSSError, ValueError, KeyError):
        return None
    return Severity(rating.lower(), score, vector)


def _affected(data: Mapping[str, Any]) -> Affected:
    package = _package(data)
    assert package is not None
    ecosystem, name = package
    return affected_entry(ecosystem, name, data)


def _package(data: Mapping[str, Any]) -> tuple[str, str] | None:
    package = data.get("package")
    if not isinstance(package, dict):
        return None
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str) or not name:
        return None
    return ecosystem, name


def packages(data: Mapping[str, Any]) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """(ecosystem, name as written, name as the ecosystem compares it, the entry) for
    each `affected[]` entry of a record's JSON that names a package."""
    out: list[tuple[str, str, str, Mapping[str, Any]]] = []
    for entry in _dicts(data.get("affected")):
        package = _package(entry)
        if package is not None:
            ecosystem, name = package
            out.append((ecosystem, name, package_key(_base(ecosystem), name), entry))
    return out


def _base(ecosystem: str) -> str:
    """'Debian:11' -> 'Debian': the ecosystem's name without its release."""
    return ecosystem.split(":", 1)[0]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _first_line(text: str) -> str:
    line = text.split("\n", 1)[0].strip()
    return line if len(line) <= 160 else line[:157] + "..."


def _url(ident: str, references: Any) -> str:
    for ref in _dicts(references):
        if ref.get("type") == "ADVISORY" and isinstance(ref.get("url"), str):
            url: str = ref["url"]
            if ident in url:
                return url
    return f"https://osv.dev/vulnerability/{ident}"
