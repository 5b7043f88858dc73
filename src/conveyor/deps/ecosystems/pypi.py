"""Python: the dependencies pyproject.toml declares (PEP 621, PEP 735 groups, Poetry's
tables, uv's dev-dependencies) and Pipfile's, and the names poetry.lock, uv.lock and
Pipfile.lock pin, as the lockfile check compares them. The inventory's readers of
Python's lockfiles are conveyor.deps.ecosystems.pylocks and .requirements."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.deps.components import Component, Ecosystem, Requirement

_PIPFILE_NOT_PACKAGES = {"source", "requires", "pipenv", "scripts", "packages", "dev-packages"}
# uv.lock marks the project itself (and workspace members) by a local source.
_UV_LOCAL_SOURCES = ("editable", "virtual")


def normalise(name: str) -> str:
    """PEP 503: 'Foo_Bar.baz' and 'foo-bar-baz' are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PyprojectRequirements:
    requirements: tuple[Requirement, ...]
    """Every dependency declared, in the file's order; the project's own name (a
    self-reference such as 'app[test]') left out."""
    invalid: tuple[str, ...]
    """The PEP 508 requirement strings that do not parse."""


def pyproject_requirements(data: Mapping[str, Any], manifest: str) -> PyprojectRequirements:
    """The dependencies of a parsed pyproject.toml."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as Pep508

    strings: list[tuple[str, str]] = []  # (section, PEP 508 string)
    found: list[Requirement] = []
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    assert isinstance(project, dict)
    strings += _strings("project.dependencies", project.get("dependencies"))
    optional = project.get("optional-dependencies")
    if isinstance(optional, dict):
        for extra, group in optional.items():
            strings += _strings(f"project.optional-dependencies.{extra}", group)
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for name, group in groups.items():
            # {include-group = ...} entries are not strings
            strings += _strings(f"dependency-groups.{name}", group)
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    assert isinstance(tool, dict)
    uv = tool.get("uv")
    if isinstance(uv, dict):
        strings += _strings("tool.uv.dev-dependencies", uv.get("dev-dependencies"))
    poetry = tool.get("poetry")
    if isinstance(poetry, dict):
        tables = [
            ("tool.poetry.dependencies", poetry.get("dependencies")),
            ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies")),
        ]
        poetry_groups = poetry.get("group")
        if isinstance(poetry_groups, dict):
            tables += [
                (f"tool.poetry.group.{name}.dependencies", g.get("dependencies"))
                for name, g in poetry_groups.items()
                if isinstance(g, dict)
            ]
        for section, table in tables:
            if isinstance(table, dict):
                found += [
                    Requirement(name, _poetry_spec(spec), section, manifest, Ecosystem.PYPI)
                    for name, spec in table.items()
                    if name.lower() != "python"
                ]
    invalid: list[str] = []
    for section, text in strings:
        try:
            parsed = Pep508(text)
        except InvalidRequirement:
            invalid.append(text)
            continue
        found.append(
            Requirement(parsed.name, str(parsed.specifier), section, manifest, Ecosystem.PYPI)
        )
    own = project.get("name")
    if not isinstance(own, str) and isinstance(poetry, dict):
        own = poetry.get("name")
    if isinstance(own, str):
        found = [r for r in found if normalise(r.name) != normalise(own)]
    return PyprojectRequirements(tuple(found), tuple(invalid))


def _strings(section: str, value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [(section, v) for v in value if isinstance(v, str)]


def _poetry_spec(spec: Any) -> str:
    """'^2.31' from `requests = "^2.31"` or `requests = {version = "^2.31", ...}`."""
    if isinstance(spec, dict):
        spec = spec.get("version")
    return spec if isinstance(spec, str) else ""


def lock_components(data: Mapping[str, Any], lockfile: str) -> list[Component]:
    """The [[package]] entries of a parsed poetry.lock or uv.lock. uv.lock says which are
    direct (those the project's own entry depends on); poetry.lock does not."""
    packages = data.get("package")
    packages = [p for p in packages if isinstance(p, dict)] if isinstance(packages, list) else []
    local = [p for p in packages if _uv_local(p)]
    direct: set[str] | None = None
    if local:
        direct = set()
        for project in local:
            lists = [project.get("dependencies")]
            for table in ("optional-dependencies", "dev-dependencies"):
                groups = project.get(table)
                if isinstance(groups, dict):
                    lists += groups.values()
            for listed in lists:
                if isinstance(listed, list):
                    direct.update(
                        normalise(d["name"])
                        for d in listed
                        if isinstance(d, dict) and isinstance(d.get("name"), str)
                    )
    components = []
    for package in packages:
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str):
            continue
        is_local = _uv_local(package)
        components.append(
            Component(
                name,
                version if isinstance(version, str) else None,
                Ecosystem.PYPI,
                lockfile,
                direct=None if direct is None else normalise(name) in direct,
                local=is_local,
            )
        )
    return components


def _uv_local(package: Mapping[str, Any]) -> bool:
    source = package.get("source")
    return isinstance(source, dict) and any(k in source for k in _UV_LOCAL_SOURCES)


# Pipenv ------------------------------------------------------------------------------


def pipfile_requirements(data: Mapping[str, Any], manifest: str) -> list[Requirement]:
    """The packages a parsed Pipfile lists: [packages], [dev-packages], then any custom
    category, in the file's order; `section` is the Pipfile section."""
    sections = ["packages", "dev-packages"]
    sections += [
        k for k, v in data.items() if k not in _PIPFILE_NOT_PACKAGES and isinstance(v, dict)
    ]
    found = []
    for section in sections:
        table = data.get(section)
        if isinstance(table, dict):
            found += [
                Requirement(name, _pipfile_spec(spec), section, manifest, Ecosystem.PYPI)
                for name, spec in table.items()
            ]
    return found


def _pipfile_spec(spec: Any) -> str:
    if isinstance(spec, dict):
        spec = spec.get("version")
    return "" if not isinstance(spec, str) or spec == "*" else spec


def pipfile_category(section: str) -> str:
    """The Pipfile.lock category a Pipfile section is locked in (custom categories keep
    their name)."""
    return {"packages": "default", "dev-packages": "develop"}.get(section, section)


def pipfile_lock_components(data: Any, lockfile: str) -> dict[str, list[Component]]:
    """A parsed Pipfile.lock: category ('default', 'develop', custom) -> its packages,
    with the version pinned ('==2.31.0' read as 2.31.0; None for a VCS or path entry)."""
    if not isinstance(data, dict):
        return {}
    categories: dict[str, list[Component]] = {}
    for category, table in data.items():
        if category == "_meta" or not isinstance(table, dict):
            continue
        components = []
        for name, entry in table.items():
            version = entry.get("version") if isinstance(entry, dict) else None
            if isinstance(version, str):
                version = version.removeprefix("==").removeprefix("=")
            components.append(
                Component(
                    name, version if isinstance(version, str) else None, Ecosystem.PYPI, lockfile
                )
            )
        categories[category] = components
    return categories
