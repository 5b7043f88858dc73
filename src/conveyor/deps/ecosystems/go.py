"""Go: the modules go.mod requires (with their exact versions: go.mod is where Go
records the versions it selected, every module the build needs since Go 1.17) and
replaces, and the checksums go.sum holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem, Requirement
from conveyor.deps.syntax import ParseError

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

Module = tuple[str, str | None]
"""(module path, version); the version None for 'every version' on the left of a
replace, and for a local directory on its right."""


@dataclass(frozen=True)
class GoMod:
    """A parsed go.mod."""

    requirements: tuple[Requirement, ...]
    """Each `require`d module; `spec` is its exact version."""
    replaces: Mapping[Module, Module]

    def replacement(self, module: str, version: str) -> Module | None:
        """What a `replace` directive swaps module@version for, if any."""
        return self.replaces.get((module, version)) or self.replaces.get((module, None))

    def components(self, sums: Mapping[Module, str] | None = None) -> list[Component]:
        """The required modules as components, replacements applied: a module replaced
        by another module is that module at its version; one replaced by a local
        directory is local. Requirements marked `// indirect` are transitive. `sums`
        (go_sum_hashes): each module's go.sum hash, kept as Go writes it."""
        found = []
        for required in self.requirements:
            name, version, local = required.name, required.spec, False
            target = self.replacement(name, version)
            if target is not None:
                if target[1] is None:
                    local = True
                else:
                    name, version = target[0], target[1]
            direct = required.section == "require"
            digest = None if local or sums is None else sums.get((name, version))
            found.append(
                Component(
                    name,
                    version,
                    Ecosystem.GO,
                    required.manifest,
                    direct=direct,
                    declared=required.declared if direct else None,
                    local=local,
                    line=required.line,
                    hashes=(digest,) if digest else (),
                )
            )
        return found


# go.mod's directives (those that may open a block first).
_BLOCKS = frozenset({"godebug", "require", "exclude", "replace", "retract", "tool", "ignore"})
_DIRECTIVES = _BLOCKS | {"module", "go", "toolchain"}


def parse_go_mod(text: str, manifest: str) -> GoMod:
    """go.mod's requirements and replacements, single-line and block forms. A requirement
    marked `// indirect` is still a requirement (its section is 'require (indirect)').
    ParseError, located, for what `go` itself would refuse to read: an unknown
    directive, a requirement without a version, a block never closed."""
    requires: list[Requirement] = []
    replaces: dict[Module, Module] = {}
    block: tuple[str, int] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line, _, comment = raw.partition("//")
        line = line.strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            verb, rest = block[0], line
        else:
            verb, _, rest = line.partition(" ")
            rest = rest.strip()
            if verb.endswith("("):
                verb, rest = verb[:-1], "("
            if verb not in _DIRECTIVES:
                raise ParseError(f"unknown directive: {verb}", number, raw.find(verb) + 1)
            if rest == "(" and verb in _BLOCKS:
                block = (verb, number)
                continue
        fields = [f.strip('"`') for f in rest.split()]
        if verb == "require":
            if len(fields) != 2:
                raise ParseError(
                    "a requirement is a module path and a version", number, _col(raw, rest)
                )
            if not fields[1].startswith("v"):
                col = raw.find(fields[1], raw.find(fields[0]) + len(fields[0])) + 1
                raise ParseError(f"version must start with 'v': {fields[1]}", number, col)
            indirect = comment.strip().split(";")[0].strip() == "indirect"
            section = "require (indirect)" if indirect else "require"
            requires.append(
                Requirement(fields[0], fields[1], section, manifest, Ecosystem.GO, number)
            )
        elif verb == "replace":
            if "=>" not in fields or fields.index("=>") not in (1, 2):
                raise ParseError(
                    "a replacement is 'module [version] => module version' or "
                    "'module [version] => directory'",
                    number,
                    _col(raw, rest),
                )
            arrow = fields.index("=>")
            old, new = fields[:arrow], fields[arrow + 1 :]
            if len(new) not in (1, 2):
                raise ParseError("nothing, or too much, after '=>'", number, _col(raw, rest))
            old_version = old[1] if len(old) > 1 else None
            new_version = new[1] if len(new) > 1 else None
            replaces[(old[0], old_version)] = (new[0], new_version)
    if block is not None:
        raise ParseError(f"the {block[0]} block is never closed with ')'", block[1], 1)
    return GoMod(tuple(requires), replaces)


def _col(raw: str, rest: str) -> int:
    return raw.find(rest) + 1 if rest and rest in raw else 1


def parse_go_sum(text: str) -> frozenset[tuple[str, str]]:
    """The (module, version) pairs go.sum holds a checksum for; a version ending in
    '/go.mod' is the checksum of that version's go.mod alone."""
    sums = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            sums.add((fields[0], fields[1]))
    return frozenset(sums)


def go_sum_hashes(text: str) -> dict[Module, str]:
    """(module, version) -> go.sum's hash of the module's content ('h1:<base64>'), the
    lines for a version's go.mod alone left out.

    'h1' is Go's dirhash (golang.org/x/mod/sumdb/dirhash Hash1): the SHA-256 of a list
    of the SHA-256 of every file in the module with its path, not a digest of one file,
    so it cannot be written as 'sha256:<hex>' of anything one downloads. It is kept as
    Go's own token, which `go mod verify` and the checksum database compare."""
    found: dict[Module, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and not fields[1].endswith("/go.mod"):
            found.setdefault((fields[0], fields[1]), fields[2])
    return found


def read_go_mod(source: LockSource) -> list[Component]:
    """The modules a go.mod requires, at the versions Go selected, each with go.sum's
    hash when the go.sum beside it has one (a go.mod without go.sum is still read).
    go.mod keeps no edges between modules, nor whether one serves only tests."""
    sums = source.read_sibling("go.sum")
    hashes = go_sum_hashes(sums) if sums is not None else None
    return parse_go_mod(source.text, source.path).components(hashes)
