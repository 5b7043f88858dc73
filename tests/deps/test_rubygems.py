"""Gemfile.lock read into components: two lockfiles written by hand in Bundler's
documented format, one with GIT and PATH sources (as Bundler 2.5 writes them), one with
CHECKSUMS, gems for several platforms and RUBY VERSION (Bundler 2.6);
tests/deps/data/SOURCES.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.deps.components import Ecosystem
from conveyor.deps.ecosystems.rubygems import read_gemfile_lock
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import by_name, line_of, source, text

SOURCES = text("handwritten.Gemfile.lock")
FEATURES = text("bundler-features.Gemfile.lock")


def test_gems_of_every_source_with_their_lines() -> None:
    components = read_gemfile_lock(source("Gemfile.lock", SOURCES))
    assert [(c.name, c.version, c.line) for c in components] == [
        ("rack-attack", "6.7.0", 6),  # GIT
        ("ledger", "0.4.0", 12),  # PATH
        ("bigdecimal", "3.1.8", 23),
        ("concurrent-ruby", "1.3.4", 24),
        ("i18n", "1.14.6", 25),
        ("minitest", "5.25.1", 27),
        ("money", "6.19.0", 28),
        ("rack", "3.1.8", 30),
        ("rake", "13.2.1", 31),
        ("tzinfo", "2.0.6", 32),
        ("zeitwerk", "2.7.1", 34),
    ]
    for component in components:
        assert line_of(SOURCES, component) == f"    {component.name} ({component.version})"
        assert component.ecosystem is Ecosystem.RUBYGEMS
        assert component.scope is None  # Gemfile groups are not in the lockfile
    found = by_name(components)
    assert found["ledger"].local is True  # a PATH source: the workspace's own
    assert found["rack-attack"].local is False  # a GIT source
    assert found["i18n"].purl == "pkg:gem/i18n@1.14.6"


def test_direct_gems_are_those_dependencies_lists() -> None:
    components = read_gemfile_lock(source("Gemfile.lock", SOURCES))
    # 'tzinfo-data' is listed but resolved for no platform here: no component.
    assert {c.name for c in components if c.direct} == {
        "ledger",  # 'ledger!': pinned to its PATH source
        "minitest",
        "rack-attack",  # 'rack-attack!': pinned to its GIT source
        "rake",
    }
    assert by_name(components)["tzinfo"].direct is False


def test_edges_are_the_dependencies_at_their_locked_versions() -> None:
    found = by_name(read_gemfile_lock(source("Gemfile.lock", SOURCES)))
    assert found["rack-attack"].dependencies == ("pkg:gem/rack@3.1.8",)
    assert found["ledger"].dependencies == (
        "pkg:gem/bigdecimal@3.1.8",
        "pkg:gem/concurrent-ruby@1.3.4",
        "pkg:gem/i18n@1.14.6",
        "pkg:gem/money@6.19.0",
        "pkg:gem/tzinfo@2.0.6",
        "pkg:gem/zeitwerk@2.7.1",
    )
    assert found["money"].dependencies == ("pkg:gem/i18n@1.14.6",)
    assert found["tzinfo"].dependencies == ("pkg:gem/concurrent-ruby@1.3.4",)
    assert found["bigdecimal"].dependencies == ()


def test_checksums_and_platform_variants() -> None:
    components = read_gemfile_lock(source("Gemfile.lock", FEATURES))
    assert len(components) == 10
    nokogiri = by_name(components)["nokogiri"]
    # Three platforms' gems, one component at the line of the first.
    assert (nokogiri.version, nokogiri.line) == ("1.18.3", 15)
    assert nokogiri.hashes == (
        "sha256:3a2cc9e3f4611aa5ea81dc2143b7168a244be45386743f3b53fa6443de39e84d",
        "sha256:e9cd14126b57c9231d35b6fb4d88e373e851998988a395f5b5063a69aed182bf",
        "sha256:213f64ed4edfb44b6a065c340a90e34cce20188cf6919912e150fb8d8ddf0951",
    )
    assert nokogiri.dependencies == ("pkg:gem/mini_portile2@2.8.8", "pkg:gem/racc@1.8.1")
    assert nokogiri.direct is False
    loofah = by_name(components)["loofah"]
    assert loofah.hashes == (
        "sha256:2b8fa4434641a9737e72be1584956b2104f40a624c46a919b9214a61d7db8dad",
    )
    assert (loofah.direct, loofah.line) == (True, 6)
    assert loofah.dependencies == ("pkg:gem/crass@1.0.6", "pkg:gem/nokogiri@1.18.3")
    assert {c.name for c in components if c.direct} == {"loofah", "net-imap", "zlib"}
    assert all(len(c.hashes) >= 1 for c in components)


def test_a_gem_without_a_checksum() -> None:
    # Bundler writes a gem of a PATH or GIT source into CHECKSUMS without one.
    line = "  zlib (3.2.1) sha256=68b948731e55dfec1af231b6f66dd885e3944adba27949c6b8c7e1cdc1c6db9f"
    assert line in FEATURES.splitlines()
    body = FEATURES.replace(line, "  zlib (3.2.1)")
    assert by_name(read_gemfile_lock(source("Gemfile.lock", body)))["zlib"].hashes == ()


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        # a merge left unresolved
        ("GEM\n  specs:\n<<<<<<< HEAD\n    rake (13.1.0)\n", "expected a section name", 3, 1),
        ("GEM\n  specs:\n    rake 13.1.0\n", "under specs:", 3, 5),
        ("GEM\n  specs:\n    rake (13.1.0)\n     racc\n", "unexpected indentation", 4, 6),
        ("GEM\n  specs:\n      racc\n", "unexpected indentation", 3, 7),
        ("DEPENDENCIES\n  rake (>= 1\n", "expected '  name'", 2, 3),
        ("  rake (13.1.0)\n", "before the first section", 1, 3),
    ],
)
def test_a_malformed_gemfile_lock_is_one_located_error(
    body: str, message: str, line: int, col: int
) -> None:
    with pytest.raises(ParseError) as caught:
        read_gemfile_lock(source("Gemfile.lock", body))
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)


_BUNDLER_READS = """\
require "bundler"
require "json"
lock = Bundler::LockfileParser.new(File.read("Gemfile.lock"))
specs = lock.specs.map { |s| [s.name, s.version.to_s, s.dependencies.map(&:name)] }
puts JSON.generate({"specs" => specs, "direct" => lock.dependencies.keys})
"""


@pytest.mark.parametrize("name", ["handwritten.Gemfile.lock", "bundler-features.Gemfile.lock"])
def test_bundler_reads_the_same_gems_edges_and_direct_ones(name: str, tmp_path: Path) -> None:
    """Bundler's own LockfileParser (Ruby's bundler, where installed) against ours."""
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed")
    body = text(name)
    (tmp_path / "Gemfile.lock").write_text(body)
    (tmp_path / "Gemfile").write_text("")
    done = subprocess.run(
        ["ruby", "-e", _BUNDLER_READS],
        cwd=tmp_path,
        env={**os.environ, "BUNDLE_GEMFILE": str(tmp_path / "Gemfile")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    bundler = json.loads(done.stdout)
    components = read_gemfile_lock(source("Gemfile.lock", body))
    names = {c.name for c in components}
    expected: dict[tuple[str, str], set[str]] = {}
    for gem, version, needs in bundler["specs"]:  # one per platform: merged
        expected.setdefault((gem, version), set()).update(n for n in needs if n in names)
    refs = {c.ref: c.name for c in components}
    assert {(c.name, c.version): {refs[r] for r in c.dependencies or ()} for c in components} == (
        expected
    )
    assert {c.name for c in components if c.direct} == set(bundler["direct"]) & names
