"""Go: the modules go.mod requires (with their exact versions: go.mod is where Go
records the versions it selected) and replaces, and the checksums go.sum holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem, Requirement

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

    def components(self) -> list[Component]:
        """The required modules as components, replacements applied: a module replaced
        by another module is that module at its version; one replaced by a local
        directory is local. Requirements marked `// indirect` are transitive."""
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
            found.append(
                Component(
                    name,
                    version,
                    Ecosystem.GO,
                    required.manifest,
                    direct=direct,
                    declared=required.declared if direct else None,
                    local=local,
                )
            )
        return found


def parse_go_mod(text: str, manifest: str) -> GoMod:
    """go.mod's requirements and replacements, single-line and block forms. A requirement
    marked `// indirect` is still a requirement (its section is 'require (indirect)')."""
    requires: list[Requirement] = []
    replaces: dict[Module, Module] = {}
    block: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line, _, comment = raw.partition("//")
        line = line.strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            verb, rest = block, line
        else:
            verb, _, rest = line.partition(" ")
            rest = rest.strip()
            if verb.endswith("("):
                verb, rest = verb[:-1], "("
            if rest == "(":
                block = verb
                continue
        fields = [f.strip('"`') for f in rest.split()]
        if verb == "require" and len(fields) >= 2:
            indirect = comment.strip().split(";")[0].strip() == "indirect"
            section = "require (indirect)" if indirect else "require"
            requires.append(
                Requirement(fields[0], fields[1], section, manifest, Ecosystem.GO, number)
            )
        elif verb == "replace" and "=>" in fields:
            arrow = fields.index("=>")
            old, new = fields[:arrow], fields[arrow + 1 :]
            if old and new:
                old_version = old[1] if len(old) > 1 else None
                new_version = new[1] if len(new) > 1 else None
                replaces[(old[0], old_version)] = (new[0], new_version)
    return GoMod(tuple(requires), replaces)


def parse_go_sum(text: str) -> frozenset[tuple[str, str]]:
    """The (module, version) pairs go.sum holds a checksum for; a version ending in
    '/go.mod' is the checksum of that version's go.mod alone."""
    sums = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            sums.add((fields[0], fields[1]))
    return frozenset(sums)


def read_go_mod(source: LockSource) -> list[Component]:
    """The modules a go.mod requires, at the versions Go selected."""
    return parse_go_mod(source.text, source.path).components()
