"""Package manifests and config files: do they parse? A merge that leaves a stray comma
in package.json otherwise surfaces minutes into the build as a package manager's error.
Parse errors point at file:line:col; values are never quoted in messages (a config file
may hold a secret). The lockfile comparisons built on these parsers are in lockfiles.py.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from conveyor.deps.ecosystems import npm
from conveyor.deps.syntax import ParseError, format_of, location_of, parse_text, read_text
from conveyor.model import CheckResult, GateLevel

MANIFEST_PATTERNS: tuple[str, ...] = (
    # JSON
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "composer.json",
    "composer.lock",
    "Pipfile.lock",
    "tsconfig.json",
    "tsconfig.*.json",
    "jsconfig.json",
    # TOML
    "pyproject.toml",
    "Pipfile",
    "poetry.lock",
    "uv.lock",
    "Cargo.toml",
    "Cargo.lock",
    # YAML
    "pnpm-lock.yaml",
    "pnpm-workspace.yaml",
    ".gitlab-ci.yml",
    ".github/workflows/*.yml",
    ".github/workflows/*.yaml",
    # INI
    "setup.cfg",
)
"""The files checked by default. A pattern without '/' matches a file's name in any
directory, one with '/' the whole workspace-relative path. Only formats this module can
parse are listed (go.mod, yarn.lock and the like are not), and no broad globs such as
'*.json': fixtures and generated files are not manifests."""


_JSON_OBJECT_NAMES = {"package.json", "composer.json", "package-lock.json", "npm-shrinkwrap.json"}
MAX_PROBLEMS = 5


def select_manifests(
    files: Iterable[str], patterns: Sequence[str] = MANIFEST_PATTERNS
) -> list[str]:
    """The files (workspace-relative, e.g. from `git ls-files`) that match the patterns."""
    selected = []
    for path in files:
        path = clean_path(path)
        name = posixpath.basename(path)
        for pattern in patterns:
            target = path if "/" in pattern else name
            if fnmatchcase(target, pattern.removeprefix("./")):
                selected.append(path)
                break
    return selected


# --- parsing -------------------------------------------------------------------------


def clean_path(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


# --- manifests -----------------------------------------------------------------------


def check_manifests(root: str, files: Sequence[str]) -> list[CheckResult]:
    """One CheckResult per file: it parses (and the few structural rules a package manager
    would reject hold). `files` are workspace-relative; see select_manifests()."""
    results: list[CheckResult] = []
    for path in files:
        path = clean_path(path)
        check = f"manifest {path}"
        fmt = format_of(path)
        if fmt is None:
            results.append(
                CheckResult(
                    check=check,
                    ok=False,
                    expected="a JSON, TOML, YAML or INI file",
                    found="a file type Conveyor cannot parse",
                    hint="remove it from the manifest patterns",
                    location=path,
                    level=GateLevel.WARN,
                )
            )
            continue
        kind = "JSON" if fmt == "JSONC" else fmt
        expected = f"valid {kind}"
        try:
            data = parse_text(read_text(root, path), fmt)
        except ParseError as exc:
            results.append(
                CheckResult(
                    check=check,
                    ok=False,
                    expected=expected,
                    found=exc.message,
                    hint=f"fix the {kind} syntax at {location_of(path, exc)}",
                    location=location_of(path, exc),
                )
            )
            continue
        problem = _structure_problem(posixpath.basename(path), data)
        if problem is not None:
            want, found, hint = problem
            results.append(
                CheckResult(
                    check=check, ok=False, expected=want, found=found, hint=hint, location=path
                )
            )
            continue
        results.append(CheckResult(check=check, ok=True, expected=expected, found=expected))
    return results


def _structure_problem(name: str, data: Any) -> tuple[str, str, str] | None:
    """(expected, found, hint) when a parsed manifest breaks a rule its tool enforces."""
    if name in _JSON_OBJECT_NAMES and not isinstance(data, dict):
        return (
            "a JSON object ({...}) at the top level",
            f"a JSON {_json_type(data)}",
            f'make {name} one object, e.g. {{"name": "app", "dependencies": {{}}}}',
        )
    if name == "package.json":
        for section in (*npm.SECTIONS, "peerDependencies"):
            value = data.get(section)
            if value is not None and not isinstance(value, dict):
                return (
                    f'"{section}" as an object of name: version range',
                    f'"{section}" is a JSON {_json_type(value)}',
                    f'write "{section}": {{"lodash": "^4.17.21"}}',
                )
    if name == "pyproject.toml" and "project" in data:
        project = data["project"]
        if not isinstance(project, dict):
            return ("[project] as a table", "project is not a table", "write [project] as a table")
        if not isinstance(project.get("name"), str) or not project["name"]:
            return (
                "[project] with a string `name`",
                "no `name` in [project]" if "name" not in project else "`name` is not a string",
                'add name = "your-package" to [project]',
            )
        dynamic = project.get("dynamic", [])
        if "version" not in project and not (isinstance(dynamic, list) and "version" in dynamic):
            return (
                "[project] with a `version` (or `version` listed in `dynamic`)",
                "no `version` in [project]",
                'add version = "0.1.0" to [project], or dynamic = ["version"] if the build '
                "backend sets it",
            )
    package = data.get("package") if name == "Cargo.toml" else None
    if isinstance(package, dict) and not isinstance(package.get("name"), str):
        return (
            "[package] with a string `name`",
            "no string `name` in [package]",
            'add name = "your-crate" to [package]',
        )
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
