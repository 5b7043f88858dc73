"""Ruby: the gems Bundler's Gemfile.lock (or gems.locked) pins.

The file is sections of indented lines (Bundler's LockfileParser): source sections (GEM,
GIT, PATH, PLUGIN SOURCE) list their gems under `specs:`, four spaces in, each with its
dependencies six spaces in; DEPENDENCIES lists what the Gemfile asks for (so those are
the direct gems; '!' marks one pinned to a GIT or PATH source); CHECKSUMS (Bundler 2.5+)
has each gem file's SHA-256. A gem locked for several platforms ('nokogiri (1.16.7)',
'nokogiri (1.16.7-x86_64-linux)') is one component with each variant's checksum.

Gemfile groups (`group :test do`) are not written to the lockfile, so its gems have no
scope: telling dev from prod would take evaluating the Gemfile, which is Ruby code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.syntax import ParseError

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_SOURCES = frozenset({"GEM", "GIT", "PATH", "PLUGIN SOURCE"})
_HEADER = re.compile(r"[A-Z][A-Z ]*")
# Bundler's NAME_VERSION: the version ends at the first '-', a platform follows it.
_SPEC = re.compile(r"(?P<name>[^\s(]+) \((?P<version>[^-)\s]+)(?:-(?P<platform>[^)]+))?\)")
_SPEC_DEPENDENCY = re.compile(r"(?P<name>[^\s(]+)(?: \((?P<requirement>[^)]*)\))?")
_DEPENDENCY = re.compile(r"(?P<name>[^\s(!]+)(?: \((?P<requirement>[^)]*)\))?(?P<pinned>!)?")
_CHECKSUM = re.compile(
    r"(?P<name>[^\s(]+) \((?P<version>[^-)\s]+)(?:-(?P<platform>[^)]+))?\)(?: (?P<sums>\S+))?"
)


@dataclass
class _Gem:
    name: str
    version: str
    line: int
    local: bool
    requires: list[str] = field(default_factory=list)


def read_gemfile_lock(source: LockSource) -> list[Component]:
    """Gemfile.lock's gems in the file's order: direct when DEPENDENCIES names them,
    local when a PATH source holds them, each gem's dependencies at their locked
    versions, CHECKSUMS' digests as 'sha256:<hex>'."""
    gems: dict[tuple[str, str], _Gem] = {}
    direct: set[str] | None = None
    checksums: dict[tuple[str, str], list[str]] = {}
    section: str | None = None
    in_specs = False
    current: _Gem | None = None
    for number, raw in enumerate(source.text.splitlines(), 1):
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0:
            if not _HEADER.fullmatch(line):
                raise ParseError(
                    "expected a section name (GEM, GIT, PATH, PLATFORMS, DEPENDENCIES, ...)",
                    number,
                    1,
                )
            section, in_specs, current = line, False, None
            if section == "DEPENDENCIES":
                direct = set() if direct is None else direct
            continue
        if section is None:
            raise ParseError("an indented line before the first section", number, indent + 1)
        if section in _SOURCES:
            if indent == 2:  # 'remote: …', 'revision: …', 'specs:'
                in_specs, current = line == "specs:", None
            else:
                current = _source_line(line, number, indent, section, in_specs, current, gems)
        elif section == "DEPENDENCIES":
            match = _DEPENDENCY.fullmatch(line) if indent == 2 else None
            if match is None:
                raise ParseError("expected '  name', '  name (requirement)'", number, indent + 1)
            assert direct is not None
            direct.add(match["name"])
        elif section == "CHECKSUMS":
            match = _CHECKSUM.fullmatch(line) if indent == 2 else None
            if match is None:
                raise ParseError("expected '  name (version) sha256=<hex>'", number, indent + 1)
            if match["sums"]:
                digests = checksums.setdefault((match["name"], match["version"]), [])
                for item in match["sums"].split(","):
                    algorithm, _, digest = item.partition("=")
                    if algorithm and digest:
                        digests.append(f"{algorithm}:{digest.lower()}")
        # PLATFORMS, RUBY VERSION, BUNDLED WITH and sections of later Bundlers: not gems.
    return _components(gems, direct, checksums, source.path)


def _source_line(
    line: str,
    number: int,
    indent: int,
    section: str,
    in_specs: bool,
    current: _Gem | None,
    gems: dict[tuple[str, str], _Gem],
) -> _Gem:
    """A line of a source section's specs: a gem four spaces in, one of its dependencies
    six; the gem now being read."""
    if indent == 4 and in_specs:
        match = _SPEC.fullmatch(line)
        if match is None:
            raise ParseError("expected '    name (version)' under specs:", number, 5)
        key = (match["name"], match["version"])
        gem = gems.get(key)  # the same gem for another platform: one component
        if gem is None:
            gem = gems[key] = _Gem(key[0], key[1], number, section == "PATH")
        return gem
    if indent == 6 and current is not None:
        match = _SPEC_DEPENDENCY.fullmatch(line)
        if match is None:
            raise ParseError("expected '      name (requirement)'", number, 7)
        if match["name"] not in current.requires:
            current.requires.append(match["name"])
        return current
    raise ParseError(
        "unexpected indentation in a source section (2 spaces for its options, 4 for "
        "specs, 6 for their dependencies)",
        number,
        indent + 1,
    )


def _components(
    gems: dict[tuple[str, str], _Gem],
    direct: set[str] | None,
    checksums: dict[tuple[str, str], list[str]],
    lockfile: str,
) -> list[Component]:
    # A Gemfile.lock resolves one version of each gem (its platform variants aside).
    refs = {
        gem.name: Component(gem.name, gem.version, Ecosystem.RUBYGEMS, lockfile).ref
        for gem in gems.values()
    }
    return [
        Component(
            gem.name,
            gem.version,
            Ecosystem.RUBYGEMS,
            lockfile,
            direct=None if direct is None else gem.name in direct,
            local=gem.local,
            line=gem.line,
            # Bundler's checksums are each gem file's SHA-256, one per platform variant.
            hashes=tuple(checksums.get((gem.name, gem.version), ())),
            dependencies=tuple(refs[name] for name in gem.requires if name in refs),
        )
        for gem in gems.values()
    ]
