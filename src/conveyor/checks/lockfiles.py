"""Lockfiles against their manifests: does each lockfile still match what its manifest
asks for? (npm names and ranges; Poetry, uv, Pipenv and Cargo names; Go modules with
their exact versions in go.sum.) A dependency added to Cargo.toml without updating
Cargo.lock otherwise surfaces minutes into the build, or as a build that silently
resolves other versions. Nothing here runs a package manager or needs the network: the
files are compared as committed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conveyor.checks.manifests import (
    MAX_PROBLEMS,
    NPM_SECTIONS,
    ParseError,
    clean_path,
    location_of,
    parse_text,
    read_text,
)
from conveyor.model import CheckResult, GateLevel
from conveyor.units import first_few

_NPM_LOCKS = ("npm-shrinkwrap.json", "package-lock.json")
# Lockfiles of other JavaScript package managers: present means "locked", but their
# formats are not compared here.
_OTHER_JS_LOCKS = ("yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock")
_PIPFILE_NOT_PACKAGES = {"source", "requires", "pipenv", "scripts", "packages", "dev-packages"}


def check_lockfiles(root: str, files: Sequence[str]) -> list[CheckResult]:
    """One CheckResult per manifest whose lockfile can be compared with it (npm, Poetry,
    uv, Cargo, Go modules, Pipenv), plus a warning for a package.json with dependencies
    and no lockfile. `files` are the workspace-relative tracked files. A manifest that
    does not parse is skipped: check_manifests() reports it."""
    tracked = {clean_path(f) for f in files}
    checkers: dict[str, Callable[[str, set[str], str], list[CheckResult]]] = {
        "package.json": _check_npm,
        "pyproject.toml": _check_python,
        "Cargo.toml": _check_cargo,
        "go.mod": _check_go,
        "Pipfile": _check_pipfile,
    }
    results: list[CheckResult] = []
    for path in sorted(tracked):
        if "node_modules/" in path or path.startswith("node_modules"):
            continue
        checker = checkers.get(posixpath.basename(path))
        if checker is not None:
            results.extend(checker(root, tracked, path))
    return results


class _Unreadable(Exception):
    """A lockfile that cannot be read or parsed (already a failed CheckResult)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.found)
        self.result = result


def _load_manifest(root: str, path: str, fmt: str) -> Any:
    """The parsed manifest, or None (check_manifests reports why it does not parse)."""
    try:
        return parse_text(read_text(root, path), fmt)
    except ParseError:
        return None


def _load_lock(root: str, lock: str, fmt: str, hint: str) -> Any:
    try:
        return parse_text(read_text(root, lock), fmt)
    except ParseError as exc:
        raise _Unreadable(
            CheckResult(
                check=f"lockfile {lock}",
                ok=False,
                expected=f"valid {fmt}",
                found=exc.message,
                hint=hint,
                location=location_of(lock, exc),
            )
        ) from None


def _sibling(manifest: str, name: str) -> str:
    return posixpath.join(posixpath.dirname(manifest), name)


def _pair_result(
    manifest: str, lock: str, problems: Sequence[str], checked: int, hint: str
) -> CheckResult:
    name = posixpath.basename(lock)
    expected = f"{name} consistent with {manifest}"
    if not problems:
        found = f"{checked} dependenc{'y' if checked == 1 else 'ies'} recorded"
        return CheckResult(f"lockfile {lock}", True, expected, found)
    shown = first_few(problems, MAX_PROBLEMS, "; ")
    return CheckResult(f"lockfile {lock}", False, expected, shown, hint, location=lock)


# npm ---------------------------------------------------------------------------------


def _check_npm(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    data = _load_manifest(root, manifest, "JSON")
    if not isinstance(data, dict):
        return []
    wanted = {
        section: {str(k): str(v) for k, v in data[section].items()}
        for section in NPM_SECTIONS
        if isinstance(data.get(section), dict)
    }
    count = sum(len(v) for v in wanted.values())
    directory = posixpath.dirname(manifest)

    # The lockfile beside it; else, for a workspace member, the workspace root's lockfile
    # when it records this directory.
    ancestors = [directory]
    while ancestors[-1]:
        ancestors.append(posixpath.dirname(ancestors[-1]))
    for i, folder in enumerate(ancestors):
        for lock_name in _NPM_LOCKS:
            lock = posixpath.join(folder, lock_name)
            if lock not in tracked:
                continue
            hint = f"run npm install and commit {lock_name}"
            try:
                lock_data = _load_lock(root, lock, "JSON", hint)
            except _Unreadable as exc:
                return [exc.result]
            key = posixpath.relpath(directory, folder) if folder else directory
            key = "" if key == "." else key
            if i > 0 and key not in (lock_data.get("packages") or {}):
                continue
            problems = _npm_problems(wanted, lock_data, key, lock_name)
            return [_pair_result(manifest, lock, problems, count, hint)]
        for other in _OTHER_JS_LOCKS:
            lock = posixpath.join(folder, other)
            if lock in tracked:
                return [
                    CheckResult(
                        f"lockfile {lock}",
                        True,
                        f"a lockfile for {manifest}",
                        f"{other} (its consistency with package.json is not checked)",
                    )
                ]
    if not count:
        return []
    lock = _sibling(manifest, "package-lock.json")
    return [
        CheckResult(
            check=f"lockfile {lock}",
            ok=False,
            expected=f"a committed lockfile for the {count} dependencies of {manifest}",
            found=f"no package-lock.json (nor yarn.lock or pnpm-lock.yaml) beside {manifest}",
            hint="commit a lockfile (npm install writes package-lock.json) so builds are "
            "reproducible",
            location=manifest,
            level=GateLevel.WARN,
        )
    ]


def _npm_problems(
    wanted: Mapping[str, Mapping[str, str]], lock: Any, key: str, lock_name: str
) -> list[str]:
    if not isinstance(lock, dict):
        return [f"{lock_name} is not a JSON object"]
    packages = lock.get("packages")
    problems: list[str] = []
    if not isinstance(packages, dict):
        # lockfileVersion 1 records what was installed, not the ranges asked for.
        installed = lock.get("dependencies")
        installed = installed if isinstance(installed, dict) else {}
        for ranges in wanted.values():
            for name, wanted_range in ranges.items():
                if name not in installed:
                    problems.append(
                        f"package.json wants {name} {wanted_range}, {lock_name} does not record it"
                    )
        return problems
    entry = packages.get(key)
    entry = entry if isinstance(entry, dict) else {}
    # Where Node would find the package from this directory: its own node_modules, then
    # each parent's (a workspace's dependencies are hoisted to the root).
    prefixes = []
    folder = key
    while True:
        prefixes.append(f"{folder}/node_modules/" if folder else "node_modules/")
        if not folder:
            break
        folder = posixpath.dirname(folder)
    for section in NPM_SECTIONS:
        want = wanted.get(section, {})
        recorded = entry.get(section)
        recorded = recorded if isinstance(recorded, dict) else {}
        for name, wanted_range in want.items():
            have = recorded.get(name)
            if have is None:
                problems.append(
                    f"package.json wants {name} {wanted_range} in {section}, {lock_name} "
                    "does not record it"
                )
            elif have != wanted_range:
                problems.append(
                    f"package.json wants {name} {wanted_range}, {lock_name} records {have}"
                )
            elif not any(prefix + name in packages for prefix in prefixes):
                problems.append(f"{lock_name} has no node_modules/{name} entry")
        for name, have in recorded.items():
            if name not in want:
                problems.append(
                    f"{lock_name} records {name} {have} in {section}, which package.json "
                    "no longer lists there"
                )
    return problems


# Python ------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    """PEP 503: 'Foo_Bar.baz' and 'foo-bar-baz' are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_python(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    locks = [
        (_sibling(manifest, "poetry.lock"), "run poetry lock and commit poetry.lock"),
        (_sibling(manifest, "uv.lock"), "run uv lock and commit uv.lock"),
    ]
    locks = [(lock, hint) for lock, hint in locks if lock in tracked]
    if not locks:
        return []
    data = _load_manifest(root, manifest, "TOML")
    if not isinstance(data, dict):
        return []
    wanted, bad = _python_requirements(data)
    results = []
    for lock, hint in locks:
        try:
            lock_data = _load_lock(root, lock, "TOML", hint)
        except _Unreadable as exc:
            results.append(exc.result)
            continue
        locked = {
            _normalise(str(package.get("name", "")))
            for package in lock_data.get("package", [])
            if isinstance(package, dict)
        }
        problems = [f"invalid requirement {text!r} in {manifest}" for text in bad]
        lock_name = posixpath.basename(lock)
        problems += [
            f"pyproject.toml requires {name}, {lock_name} has no [[package]] for it"
            for name in sorted(wanted)
            if name not in locked
        ]
        results.append(_pair_result(manifest, lock, problems, len(wanted), hint))
    return results


def _python_requirements(data: Mapping[str, Any]) -> tuple[set[str], list[str]]:
    """Normalised names of every dependency pyproject.toml declares (PEP 621, PEP 735
    groups, Poetry's tables, uv's dev-dependencies), and the requirement strings that do
    not parse. The project's own name (a self-reference such as 'app[test]') is left
    out."""
    from packaging.requirements import InvalidRequirement, Requirement

    strings: list[str] = []
    names: set[str] = set()
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    assert isinstance(project, dict)
    strings += _str_list(project.get("dependencies"))
    optional = project.get("optional-dependencies")
    if isinstance(optional, dict):
        for group in optional.values():
            strings += _str_list(group)
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for group in groups.values():
            strings += _str_list(group)  # {include-group = ...} entries are not strings
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    assert isinstance(tool, dict)
    uv = tool.get("uv")
    if isinstance(uv, dict):
        strings += _str_list(uv.get("dev-dependencies"))
    poetry = tool.get("poetry")
    if isinstance(poetry, dict):
        tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
        poetry_groups = poetry.get("group")
        if isinstance(poetry_groups, dict):
            tables += [g.get("dependencies") for g in poetry_groups.values() if isinstance(g, dict)]
        for table in tables:
            if isinstance(table, dict):
                names.update(_normalise(k) for k in table if k.lower() != "python")
    bad: list[str] = []
    for text in strings:
        try:
            names.add(_normalise(Requirement(text).name))
        except InvalidRequirement:
            bad.append(text)
    own = project.get("name")
    if not isinstance(own, str) and isinstance(poetry, dict):
        own = poetry.get("name")
    if isinstance(own, str):
        names.discard(_normalise(own))
    return names, bad


def _str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _check_pipfile(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    lock = _sibling(manifest, "Pipfile.lock")
    if lock not in tracked:
        return []
    data = _load_manifest(root, manifest, "TOML")
    if not isinstance(data, dict):
        return []
    hint = "run pipenv lock and commit Pipfile.lock"
    try:
        lock_data = _load_lock(root, lock, "JSON", hint)
    except _Unreadable as exc:
        return [exc.result]
    # Pipfile section -> Pipfile.lock category (custom categories keep their name).
    categories = {"packages": "default", "dev-packages": "develop"}
    for key, value in data.items():
        if key not in _PIPFILE_NOT_PACKAGES and isinstance(value, dict):
            categories[key] = key
    problems: list[str] = []
    count = 0
    for section, category in categories.items():
        table = data.get(section)
        if not isinstance(table, dict):
            continue
        recorded = lock_data.get(category) if isinstance(lock_data, dict) else None
        locked = {_normalise(k) for k in recorded} if isinstance(recorded, dict) else set()
        for name in table:
            count += 1
            if _normalise(name) not in locked:
                problems.append(
                    f"Pipfile [{section}] lists {name}, Pipfile.lock has no entry for it in "
                    f'"{category}"'
                )
    return [_pair_result(manifest, lock, problems, count, hint)]


# Cargo -------------------------------------------------------------------------------


def _check_cargo(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    lock = _sibling(manifest, "Cargo.lock")
    if lock not in tracked:
        return []
    data = _load_manifest(root, manifest, "TOML")
    if not isinstance(data, dict):
        return []
    hint = "run cargo update --workspace (or cargo build) and commit Cargo.lock"
    try:
        lock_data = _load_lock(root, lock, "TOML", hint)
    except _Unreadable as exc:
        return [exc.result]
    kinds = ("dependencies", "dev-dependencies", "build-dependencies")
    tables = [data.get(kind) for kind in kinds]
    targets = data.get("target")
    if isinstance(targets, dict):
        for target in targets.values():
            if isinstance(target, dict):
                tables += [target.get(kind) for kind in kinds]
    workspace = data.get("workspace")
    inherited = workspace.get("dependencies") if isinstance(workspace, dict) else None
    inherited = inherited if isinstance(inherited, dict) else {}
    names: set[str] = set()
    for table in tables:
        if not isinstance(table, dict):
            continue
        for key, spec in table.items():
            name = key
            if isinstance(spec, dict):
                # `foo = { workspace = true }` takes its rename from [workspace.dependencies].
                source = inherited.get(key) if spec.get("workspace") is True else spec
                if isinstance(source, dict) and isinstance(source.get("package"), str):
                    name = source["package"]
                if isinstance(spec.get("package"), str):
                    name = spec["package"]
            names.add(name)

    def crate(name: str) -> str:
        return name.replace("_", "-").lower()

    locked = {
        crate(str(package.get("name", "")))
        for package in lock_data.get("package", [])
        if isinstance(package, dict)
    }
    problems = [
        f"Cargo.toml depends on {name}, Cargo.lock has no [[package]] for it"
        for name in sorted(names)
        if crate(name) not in locked
    ]
    return [_pair_result(manifest, lock, problems, len(names), hint)]


# Go ----------------------------------------------------------------------------------


def _check_go(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    try:
        text = read_text(root, manifest)
    except ParseError:
        return []
    requires, replaces = _parse_go_mod(text)
    lock = _sibling(manifest, "go.sum")
    hint = "run go mod tidy and commit go.sum"
    if lock not in tracked:
        if not requires:
            return []
        return [
            CheckResult(
                check=f"lockfile {lock}",
                ok=False,
                expected=f"go.sum beside {manifest} with the checksums of its "
                f"{len(requires)} required modules",
                found="no go.sum in the repository",
                hint=hint,
                location=manifest,
            )
        ]
    try:
        sums_text = read_text(root, lock)
    except ParseError as exc:
        return [CheckResult(f"lockfile {lock}", False, "a readable go.sum", exc.message, hint)]
    sums = set()
    for line in sums_text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            sums.add((fields[0], fields[1]))
    problems = []
    for module, version in requires:
        target = replaces.get((module, version)) or replaces.get((module, None))
        shown = f"{module} {version}"
        if target is not None:
            if target[1] is None:
                continue  # replaced by a local directory: nothing to checksum
            module, version = target[0], target[1]
            shown += f" (replaced by {module} {version})"
        if (module, version) not in sums and (module, f"{version}/go.mod") not in sums:
            problems.append(f"go.sum has no entry for {shown}")
    return [_pair_result(manifest, lock, problems, len(requires), hint)]


def _parse_go_mod(
    text: str,
) -> tuple[list[tuple[str, str]], dict[tuple[str, str | None], tuple[str, str | None]]]:
    """(required (module, version) pairs, replacements) from go.mod: single-line and
    block forms; `// indirect` requirements are still requirements."""
    requires: list[tuple[str, str]] = []
    replaces: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
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
            requires.append((fields[0], fields[1]))
        elif verb == "replace" and "=>" in fields:
            arrow = fields.index("=>")
            old, new = fields[:arrow], fields[arrow + 1 :]
            if old and new:
                old_version = old[1] if len(old) > 1 else None
                new_version = new[1] if len(new) > 1 else None
                replaces[(old[0], old_version)] = (new[0], new_version)
    return requires, replaces
