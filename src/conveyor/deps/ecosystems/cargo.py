"""Rust: the dependencies Cargo.toml declares (renames resolved to the crate's name) and
the packages Cargo.lock pins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Requirement
from conveyor.deps.syntax import parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_KINDS = ("dependencies", "dev-dependencies", "build-dependencies")


def crate_key(name: str) -> str:
    """Cargo treats '-' and '_' in a crate's name as one; case is not significant."""
    return name.replace("_", "-").lower()


def manifest_requirements(data: Mapping[str, Any], manifest: str) -> list[Requirement]:
    """The dependencies of a parsed Cargo.toml: [dependencies], [dev-dependencies],
    [build-dependencies] and their [target.'cfg(...)'] forms. A renamed dependency
    (`foo = { package = "bar" }`, or `foo = { workspace = true }` whose
    [workspace.dependencies] entry renames it) is named by its crate."""
    tables: list[tuple[str, Any]] = [(kind, data.get(kind)) for kind in _KINDS]
    targets = data.get("target")
    if isinstance(targets, dict):
        for target, table in targets.items():
            if isinstance(table, dict):
                tables += [(f"target.{target}.{kind}", table.get(kind)) for kind in _KINDS]
    workspace = data.get("workspace")
    inherited = workspace.get("dependencies") if isinstance(workspace, dict) else None
    inherited = inherited if isinstance(inherited, dict) else {}
    found = []
    for section, table in tables:
        if not isinstance(table, dict):
            continue
        for key, spec in table.items():
            name, version = key, spec
            if isinstance(spec, dict):
                source = inherited.get(key) if spec.get("workspace") is True else spec
                if isinstance(source, dict) and isinstance(source.get("package"), str):
                    name = source["package"]
                if isinstance(spec.get("package"), str):
                    name = spec["package"]
                version = source.get("version") if isinstance(source, dict) else source
            found.append(
                Requirement(
                    name,
                    version if isinstance(version, str) else "",
                    section,
                    manifest,
                    Ecosystem.CARGO,
                )
            )
    return found


def lock_components(data: Mapping[str, Any], lockfile: str) -> list[Component]:
    """The [[package]] entries of a parsed Cargo.lock. A package without a `source` is one
    of the workspace's own crates (local); the crates they list in `dependencies` are the
    direct ones."""
    packages = data.get("package")
    packages = [p for p in packages if isinstance(p, dict)] if isinstance(packages, list) else []
    direct: set[tuple[str, str | None]] = set()
    for package in packages:
        if "source" in package or not isinstance(package.get("dependencies"), list):
            continue
        for entry in package["dependencies"]:
            if isinstance(entry, str):
                # 'name', 'name version' or 'name version (source)': the version is given
                # only when two versions of the crate are in the lockfile.
                fields = entry.split()
                direct.add((fields[0], fields[1] if len(fields) > 1 else None))
    components = []
    for package in packages:
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str):
            continue
        version = version if isinstance(version, str) else None
        local = "source" not in package
        components.append(
            Component(
                name,
                version,
                Ecosystem.CARGO,
                lockfile,
                direct=(name, version) in direct or (name, None) in direct,
                local=local,
            )
        )
    return components


def read_cargo_lock(source: LockSource) -> list[Component]:
    """Cargo.lock's packages, the workspace's own crates marked local."""
    return lock_components(parse_text(source.text, "TOML"), source.path)
