"""OSV records read and matched: each ecosystem's version order, ranges (unordered events,
`last_affected`, `limit`), `versions` lists, severity from CVSS v3 and v4 vectors; on
the test data's advisories (tests/deps/data/README.md says where each comes from)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.deps.osv import RecordError, affected_entry, parse_record, severity_of
from conveyor.deps.versions import package_key, version_key
from tests.deps.osvdata import record


def affects(ident: str, version: str, name: str | None = None) -> bool:
    """Whether the record `ident` affects `version` of its (first, or `name`)
    package."""
    advisory = parse_record(record(ident))
    entries = [a for a in advisory.affected if name is None or a.name == name]
    assert entries, f"{ident} names no {name}"
    return any(a.affects(version) for a in entries)


# -- versions -------------------------------------------------------------------------


def ordered(ecosystem: str, *versions: str) -> bool:
    keys = [key(ecosystem, v) for v in versions]
    return all(a < b for a, b in itertools.pairwise(keys))


def key(ecosystem: str, version: str) -> Any:
    found = version_key(ecosystem, version)
    assert found is not None, version
    return found


def test_each_ecosystem_orders_versions_its_own_way() -> None:
    assert ordered("PyPI", "2.9", "2.10", "2.10.1", "3.0rc1", "3.0", "3.0.post1")
    assert version_key("PyPI", "1.0") == version_key("PyPI", "1.0.0")
    assert ordered("npm", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-rc.1", "1.0.0")
    assert version_key("npm", "1.2.3+build.7") == version_key("npm", "1.2.3")
    assert ordered("crates.io", "0.9.9", "0.10.0", "1.0.0")
    # Go: OSV writes 1.2.3, go.mod v1.2.3; a pseudo-version precedes its release.
    assert version_key("Go", "v1.2.3") == version_key("Go", "1.2.3")
    assert ordered("Go", "v0.0.0-20200101000000-abcdefabcdef", "v0.0.1", "v2.0.0+incompatible")
    assert ordered("Maven", "1.0-alpha-1", "1.0-SNAPSHOT", "1.0", "1.0.1", "1.10")
    assert ordered("RubyGems", "1.0.0.pre", "1.0.0", "1.0.1")
    assert ordered("NuGet", "1.0.0-rc1", "1.0.0", "1.0.1")
    # "0" is OSV's "from the first version": below any, even 0.0.0-0.
    first = affected_entry(
        "npm",
        "x",
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.0.0-1"}]}]},
    )
    assert first.affects("0.0.0-0")
    assert version_key("PyPI", "not a version") is None


_IDENT = st.one_of(
    st.integers(0, 20).map(str), st.sampled_from(["alpha", "beta", "rc", "x-y", "a1"])
)
_SEMVER = st.builds(
    lambda major, minor, patch, pre: (
        f"{major}.{minor}.{patch}" + ("-" + ".".join(pre) if pre else "")
    ),
    st.integers(0, 3),
    st.integers(0, 12),
    st.integers(0, 12),
    st.lists(_IDENT, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(_SEMVER, _SEMVER)
def test_the_semver_order_is_univers_order(a: str, b: str) -> None:
    """npm's and Cargo's order is written here for speed: it agrees with univers'."""
    from univers.versions import SemverVersion

    ka, kb = key("npm", a), key("npm", b)
    ua, ub = SemverVersion(a), SemverVersion(b)
    assert (ka < kb) == (ua < ub)
    assert (ka == kb) == (ua == ub)


_PEP440 = st.builds(
    lambda epoch, release, pre, post, dev, local: (
        (f"{epoch}!" if epoch else "")
        + ".".join(map(str, release))
        + (f"{pre[0]}{pre[1]}" if pre else "")
        + (f".post{post}" if post is not None else "")
        + (f".dev{dev}" if dev is not None else "")
        + ("+" + ".".join(local) if local else "")
    ),
    st.integers(0, 1),
    st.lists(st.integers(0, 3), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc", "c", "alpha"]), st.integers(0, 2)),
    st.none() | st.integers(0, 2),
    st.none() | st.integers(0, 2),
    st.lists(st.sampled_from(["0", "1", "10", "abc", "ubuntu", "Ab"]), max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(_PEP440, _PEP440)
def test_the_pep440_order_is_packagings_order(a: str, b: str) -> None:
    """PyPI's keys are tuples for speed: they order as packaging's Version objects do."""
    from packaging.version import Version

    ka, kb = key("PyPI", a), key("PyPI", b)
    assert (ka < kb) == (Version(a) < Version(b)), (a, b)
    assert (ka == kb) == (Version(a) == Version(b)), (a, b)


def test_package_names_compare_as_each_ecosystem_compares_them() -> None:
    assert package_key("PyPI", "Jinja2") == package_key("PyPI", "jinja2")
    assert package_key("PyPI", "zope.interface") == package_key("PyPI", "Zope_Interface")
    assert package_key("crates.io", "serde_json") == package_key("crates.io", "serde-json")
    assert package_key("npm", "JSONStream") != package_key("npm", "jsonstream")


# -- ranges -------------------------------------------------------------------------------


def test_a_range_is_fixed_at_its_fixed_version() -> None:
    assert affects("PYSEC-2019-217", "2.10")  # jinja2, fixed in 2.10.1
    assert not affects("PYSEC-2019-217", "2.10.1")
    assert not affects("PYSEC-2019-217", "2.11.0")
    assert affects("PYSEC-2019-217", "2.9.6")


def test_events_are_sorted_before_they_are_walked() -> None:
    """Django's PYSEC-2023-100 lists 4.2, then 4.0, then 3.2."""
    events = record("PYSEC-2023-100")["affected"][0]["ranges"][0]["events"]
    assert [e.get("introduced") for e in events[::2]] == ["4.2", "4.0", "3.2"]
    for version, expected in [
        ("3.1", False),
        ("3.2", True),
        ("3.2.19", True),
        ("3.2.20", False),
        ("4.0", True),
        ("4.1.9", True),
        ("4.1.10", False),
        ("4.2.2", True),
        ("4.2.3", False),
    ]:
        assert affects("PYSEC-2023-100", version) is expected, version


def test_last_affected_includes_that_version_and_no_later_one() -> None:
    # py: "The py library through 1.11.0" (PYSEC-2022-42969: last_affected 1.11.0)
    assert affects("PYSEC-2022-42969", "1.11.0")
    assert affects("PYSEC-2022-42969", "1.4.34")
    assert not affects("PYSEC-2022-42969", "1.11.1")
    # npm: lodash.trim is affected through 4.5.1 (GHSA-29mw-wpgm-hmr9)
    assert affects("GHSA-29mw-wpgm-hmr9", "4.5.1", name="lodash.trim")
    assert not affects("GHSA-29mw-wpgm-hmr9", "4.5.2", name="lodash.trim")
    advisory = parse_record(record("PYSEC-2022-42969"))
    assert advisory.affected[0].fixed == []


def test_a_limit_bounds_a_range() -> None:
    """No record of the test data has a `limit` (the schema keeps it for GIT
    ranges' branches): this one is GHSA-29mw-wpgm-hmr9's lodash.trim entry with a
    limit event added, as the schema writes it."""
    affected = record("GHSA-29mw-wpgm-hmr9")["affected"]
    entry = next(a for a in affected if a["package"]["name"] == "lodash.trim")
    entry["ranges"][0]["events"] = [{"introduced": "0"}, {"limit": "4.0.0"}]
    limited = affected_entry("npm", "lodash.trim", entry)
    assert limited.affects("3.9.9")
    assert not limited.affects("4.0.0")
    assert not limited.affects("4.5.1")
    entry["ranges"][0]["events"] = [{"introduced": "0"}, {"limit": "*"}]
    assert affected_entry("npm", "lodash.trim", entry).affects("9.0.0")


def test_semver_ranges_use_semver_whatever_the_ecosystem() -> None:
    """A SEMVER range on a PyPI package: "1.0.0-rc.1" is SemVer, before 1.0.0."""
    entry = {
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0-rc.1"}, {"fixed": "1.0.1"}]}]
    }
    ranged = affected_entry("PyPI", "example", entry)
    assert ranged.affects("1.0.0")
    assert not ranged.affects("1.0.1")
    assert not ranged.affects("0.9.0")


def test_the_versions_list_matches_without_a_range() -> None:
    data = record("PYSEC-2014-8")  # jinja2; its versions list is written out
    entry = data["affected"][0]
    listed = entry["versions"]
    entry.pop("ranges")
    only = affected_entry("PyPI", "jinja2", entry)
    assert only.affects(listed[0])
    assert not only.affects("2.7.2")
    # A PEP 440 spelling of a listed version is the same version.
    assert "2.7" in listed
    assert only.affects("2.7.0") or only.affects("2.7")


def test_git_ranges_are_left_out() -> None:
    data = record("PYSEC-2018-28")  # requests: a GIT range, then an ECOSYSTEM one
    kinds = {r["type"] for r in data["affected"][0]["ranges"]}
    assert "GIT" in kinds
    parsed = parse_record(data)
    assert all(not r.semver for r in parsed.affected[0].ranges)
    assert len(parsed.affected[0].ranges) == 1


def test_records_that_are_not_osv_are_refused() -> None:
    with pytest.raises(RecordError, match='no "id"'):
        parse_record({"affected": []})
    with pytest.raises(RecordError, match="modified"):
        parse_record({"id": "X-1"})
    with pytest.raises(RecordError, match="not a list"):
        parse_record({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": {}})


# -- severity -------------------------------------------------------------------------------


def test_severity_from_a_cvss_v3_vector() -> None:
    advisory = parse_record(record("PYSEC-2023-192"))  # urllib3, Cookie header
    assert advisory.severity.rating == "high"
    assert advisory.severity.score == 8.1
    assert advisory.severity.vector == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"
    lodash = parse_record(record("GHSA-29mw-wpgm-hmr9"))
    assert (lodash.severity.rating, lodash.severity.score) == ("medium", 5.3)


def test_severity_from_a_cvss_v4_vector_which_wins_over_v3() -> None:
    body_parser = parse_record(record("GHSA-qwcr-r2fm-qrc7"))
    assert body_parser.severity.vector is not None
    assert body_parser.severity.vector.startswith("CVSS:4.0/")
    assert (body_parser.severity.rating, body_parser.severity.score) == ("high", 8.7)
    # send: CVSS v3 says 5.0 (medium), v4 says 2.3 (low): the newer assessment is used.
    send = parse_record(record("GHSA-m6fv-jmcg-4jfg"))
    assert (send.severity.rating, send.severity.score) == ("low", 2.3)
    assert severity_of([v for v in send.vectors if v.startswith("CVSS:3")]).score == 5.0


def test_severity_falls_back_to_ghsa_words_then_unknown() -> None:
    data = record("GHSA-vh95-rmgr-6w4m")
    data.pop("severity")
    assert parse_record(data).severity.rating == "medium"  # "MODERATE"
    assert parse_record(record("PYSEC-2019-217")).severity.rating == "unknown"
    assert severity_of(["CVSS:3.1/not a vector"], "HIGH").rating == "high"


def test_withdrawn_records_say_so() -> None:
    assert parse_record(record("PYSEC-2022-43055")).withdrawn == "2023-08-22T06:18:00+00:00"
    assert parse_record(record("PYSEC-2019-217")).withdrawn is None


_VERSION = st.builds(lambda a, b: f"{a}.{b}.0", st.integers(0, 4), st.integers(0, 4))
_EVENT = st.one_of(
    st.just({"introduced": "0"}),
    _VERSION.map(lambda v: {"introduced": v}),
    _VERSION.map(lambda v: {"fixed": v}),
    _VERSION.map(lambda v: {"last_affected": v}),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_EVENT, min_size=1, max_size=6), _VERSION)
def test_the_binary_search_walks_the_events_as_the_schema_does(
    events: list[dict[str, str]], version: str
) -> None:
    """The schema's evaluation, written as it is there, against the search the matching
    uses instead."""
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": events}]}
    v = key("npm", version)

    def at(e: dict[str, str]) -> tuple[int, Any]:
        value = next(iter(e.values()))
        return (0, None) if value == "0" else (1, key("npm", value))

    ordered = sorted(enumerate(events), key=lambda p: (at(p[1]), p[0]))
    affected = False
    for _i, e in ordered:
        (kind, value), (_rank, k) = next(iter(e.items())), at(e)
        if kind == "introduced" and (value == "0" or v >= k):
            affected = True
        elif (kind == "fixed" and v >= k) or (kind == "last_affected" and v > k):
            affected = False
    assert affected_entry("npm", "x", entry).affects(version) is affected
