"""PHP: the packages Composer's composer.lock pins.

`packages` are what the project needs to run, `packages-dev` what only its development
needs (require-dev, and what only those require). Each entry is the package's own
composer.json as released, so it carries its license and its `require` (the edges);
`dist.shasum` is the SHA-1 of the archive when the repository gives one (Packagist's
GitHub archives have none). Which packages are direct is in the composer.json beside
the lockfile (its require and require-dev), read when it is there.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.positions import json_lines
from conveyor.deps.syntax import ParseError, parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_SECTIONS = (("packages", Scope.PROD), ("packages-dev", Scope.DEV))
# What `require` may name that is not a package: PHP itself, its extensions and
# libraries, and Composer's own APIs.
_PLATFORM = re.compile(
    r"php(-64bit|-ipv6|-zts|-debug)?|hhvm|ext-.+|lib-.+|composer(-plugin-api|-runtime-api)?"
)
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")


def read_composer_lock(source: LockSource) -> list[Component]:
    """composer.lock's packages then its dev packages, in the file's order; licenses as
    one SPDX expression (several are a choice: joined with OR)."""
    data = parse_text(source.text, "JSON")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object at the top level", 1, 1)
    lines = json_lines(source.text, 2)
    direct = _declared(source)
    entries: list[tuple[Mapping[str, Any], Scope, int | None]] = []
    for section, scope in _SECTIONS:
        listed = data.get(section, [])
        if not isinstance(listed, list):
            raise ParseError(f"'{section}' must be an array", lines.get((section,)), 1)
        for i, entry in enumerate(listed):
            line = lines.get((section, i))
            if not isinstance(entry, dict):
                raise ParseError(f"{section}[{i}] must be an object", line, 1)
            for key in ("name", "version"):
                if not isinstance(entry.get(key), str):
                    raise ParseError(f"{section}[{i}] has no {key} (a string)", line, 1)
            entries.append((entry, scope, line))
    manifest = posixpath.join(posixpath.dirname(source.path), "composer.json")
    components = [
        _component(entry, scope, line, source.path, direct, manifest)
        for entry, scope, line in entries
    ]
    # A name `require` may use: each package's own, and those it replaces or provides.
    by_name: dict[str, str] = {}
    for (entry, _, _), component in zip(entries, components, strict=True):
        by_name.setdefault(entry["name"].lower(), component.ref)
    for (entry, _, _), component in zip(entries, components, strict=True):
        for key in ("replace", "provide"):
            others = entry.get(key)
            if isinstance(others, dict):
                for other in others:
                    by_name.setdefault(str(other).lower(), component.ref)
    out = []
    for (entry, _, _), component in zip(entries, components, strict=True):
        requires = entry.get("require")
        edges: list[str] = []
        if isinstance(requires, dict):
            for name in requires:
                if _PLATFORM.fullmatch(str(name)):
                    continue  # ext-mbstring may be PHP's or a polyfill's: not an edge
                ref = by_name.get(str(name).lower())
                if ref is not None and ref != component.ref and ref not in edges:
                    edges.append(ref)
        out.append(replace(component, dependencies=tuple(edges)))
    return out


def _component(
    entry: Mapping[str, Any],
    scope: Scope,
    line: int | None,
    lockfile: str,
    direct: set[str] | None,
    manifest: str,
) -> Component:
    name = entry["name"]
    dist = entry.get("dist")
    dist = dist if isinstance(dist, dict) else {}
    shasum = dist.get("shasum")
    is_direct = None if direct is None else name.lower() in direct
    return Component(
        name,
        entry["version"],
        Ecosystem.PACKAGIST,
        lockfile,
        direct=is_direct,
        declared=manifest if is_direct else None,
        # A path repository's package is the workspace's own code.
        local=dist.get("type") == "path",
        line=line,
        scope=scope,
        hashes=(f"sha1:{shasum.lower()}",)
        if isinstance(shasum, str) and _SHA1.fullmatch(shasum)
        else (),
        license=license_expression(entry.get("license")),
    )


def license_expression(licenses: object) -> str | None:
    """composer.json's license (a string, or a list meaning the user may choose any)
    as one SPDX expression: ['MIT', 'GPL-2.0-or-later'] -> 'MIT OR GPL-2.0-or-later'."""
    if isinstance(licenses, str):
        licenses = [licenses]
    if not isinstance(licenses, list):
        return None
    names = [item.strip() for item in licenses if isinstance(item, str) and item.strip()]
    if len(names) > 1:
        names = [f"({n})" if " " in n and not n.startswith("(") else n for n in names]
    return " OR ".join(names) or None


def _declared(source: LockSource) -> set[str] | None:
    """The package names the composer.json beside the lockfile requires (require and
    require-dev), lowercase; None when there is none or it does not parse."""
    text = source.read_sibling("composer.json")
    if text is None:
        return None
    try:
        manifest = parse_text(text, "JSON")
    except ParseError:
        return None
    if not isinstance(manifest, dict):
        return None
    names: set[str] = set()
    for key in ("require", "require-dev"):
        section = manifest.get(key)
        if isinstance(section, dict):
            names.update(str(n).lower() for n in section if not _PLATFORM.fullmatch(str(n)))
    return names
