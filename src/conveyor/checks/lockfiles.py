"""Lockfiles against their manifests: does each lockfile still match what its manifest
asks for? (npm names and ranges; Poetry, uv, Pipenv and Cargo names; Go modules with
their exact versions in go.sum.) A dependency added to Cargo.toml without updating
Cargo.lock otherwise surfaces minutes into the build, or as a build that silently
resolves other versions. Nothing here runs a package manager or needs the network: the
files are compared as committed. What the files say is read by conveyor.deps.ecosystems;
this module finds each manifest's lockfile and judges the two against each other.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conveyor.checks.manifests import MAX_PROBLEMS, clean_path
from conveyor.deps.ecosystems import cargo, go, npm, pypi
from conveyor.deps.syntax import ParseError, location_of, parse_text, read_text
from conveyor.model import CheckResult, GateLevel
from conveyor.units import first_few

_NPM_LOCKS = ("npm-shrinkwrap.json", "package-lock.json")
# Lockfiles of other JavaScript package managers: present means "locked", but their
# formats are not compared here.
_OTHER_JS_LOCKS = ("yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock")


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
        return CheckResult(check=f"lockfile {lock}", ok=True, expected=expected, found=found)
    shown = first_few(problems, MAX_PROBLEMS, "; ")
    return CheckResult(
        check=f"lockfile {lock}", ok=False, expected=expected, found=shown, hint=hint, location=lock
    )


# npm ---------------------------------------------------------------------------------


def _check_npm(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    data = _load_manifest(root, manifest, "JSON")
    if not isinstance(data, dict):
        return []
    wanted: dict[str, dict[str, str]] = {}
    for requirement in npm.manifest_requirements(data, manifest):
        wanted.setdefault(requirement.section, {})[requirement.name] = requirement.spec
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
            parsed = npm.parse_lock(lock_data, lock) if isinstance(lock_data, dict) else None
            key = posixpath.relpath(directory, folder) if folder else directory
            key = "" if key == "." else key
            if i > 0 and (parsed is None or parsed.members is None or key not in parsed.paths):
                continue
            if parsed is None:
                problems = [f"{lock_name} is not a JSON object"]
            else:
                problems = _npm_problems(wanted, parsed, key, lock_name)
            return [_pair_result(manifest, lock, problems, count, hint)]
        for other in _OTHER_JS_LOCKS:
            lock = posixpath.join(folder, other)
            if lock in tracked:
                return [
                    CheckResult(
                        check=f"lockfile {lock}",
                        ok=True,
                        expected=f"a lockfile for {manifest}",
                        found=f"{other} (its consistency with package.json is not checked)",
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
    wanted: Mapping[str, Mapping[str, str]], lock: npm.NpmLock, key: str, lock_name: str
) -> list[str]:
    problems: list[str] = []
    if lock.members is None:
        # lockfileVersion 1 records what was installed, not the ranges asked for.
        for ranges in wanted.values():
            for name, wanted_range in ranges.items():
                if name not in lock.installed:
                    problems.append(
                        f"package.json wants {name} {wanted_range}, {lock_name} does not record it"
                    )
        return problems
    entry = lock.members.get(key, {})
    for section in npm.SECTIONS:
        want = wanted.get(section, {})
        recorded = entry.get(section, {})
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
            elif lock.where_found(key, name) is None:
                problems.append(f"{lock_name} has no node_modules/{name} entry")
        for name, have in recorded.items():
            if name not in want:
                problems.append(
                    f"{lock_name} records {name} {have} in {section}, which package.json "
                    "no longer lists there"
                )
    return problems


# Python ------------------------------------------------------------------------------


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
    declared = pypi.pyproject_requirements(data, manifest)
    wanted = {pypi.normalise(r.name) for r in declared.requirements}
    results = []
    for lock, hint in locks:
        try:
            lock_data = _load_lock(root, lock, "TOML", hint)
        except _Unreadable as exc:
            results.append(exc.result)
            continue
        locked = {pypi.normalise(c.name) for c in pypi.lock_components(lock_data, lock)}
        problems = [f"invalid requirement {text!r} in {manifest}" for text in declared.invalid]
        lock_name = posixpath.basename(lock)
        problems += [
            f"pyproject.toml requires {name}, {lock_name} has no [[package]] for it"
            for name in sorted(wanted)
            if name not in locked
        ]
        results.append(_pair_result(manifest, lock, problems, len(wanted), hint))
    return results


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
    categories = pypi.pipfile_lock_components(lock_data, lock)
    requirements = pypi.pipfile_requirements(data, manifest)
    problems: list[str] = []
    for requirement in requirements:
        category = pypi.pipfile_category(requirement.section)
        locked = {pypi.normalise(c.name) for c in categories.get(category, [])}
        if pypi.normalise(requirement.name) not in locked:
            problems.append(
                f"Pipfile [{requirement.section}] lists {requirement.name}, Pipfile.lock has "
                f'no entry for it in "{category}"'
            )
    return [_pair_result(manifest, lock, problems, len(requirements), hint)]


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
    names = {r.name for r in cargo.manifest_requirements(data, manifest)}
    locked = {cargo.crate_key(c.name) for c in cargo.lock_components(lock_data, lock)}
    problems = [
        f"Cargo.toml depends on {name}, Cargo.lock has no [[package]] for it"
        for name in sorted(names)
        if cargo.crate_key(name) not in locked
    ]
    return [_pair_result(manifest, lock, problems, len(names), hint)]


# Go ----------------------------------------------------------------------------------


def _check_go(root: str, tracked: set[str], manifest: str) -> list[CheckResult]:
    try:
        text = read_text(root, manifest)
    except ParseError:
        return []
    try:
        mod = go.parse_go_mod(text, manifest)
    except ParseError as exc:
        return [
            CheckResult(
                check=f"manifest {manifest}",
                ok=False,
                expected="a go.mod that go can read",
                found=exc.message,
                hint=f"fix {location_of(manifest, exc)}, or run go mod tidy",
                location=location_of(manifest, exc),
            )
        ]
    requires = mod.requirements
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
        sums = go.parse_go_sum(read_text(root, lock))
    except ParseError as exc:
        return [
            CheckResult(
                check=f"lockfile {lock}",
                ok=False,
                expected="a readable go.sum",
                found=exc.message,
                hint=hint,
            )
        ]
    problems = []
    for required in requires:
        module, version = required.name, required.spec
        shown = f"{module} {version}"
        target = mod.replacement(module, version)
        if target is not None:
            if target[1] is None:
                continue  # replaced by a local directory: nothing to checksum
            module, version = target[0], target[1]
            shown += f" (replaced by {module} {version})"
        if (module, version) not in sums and (module, f"{version}/go.mod") not in sums:
            problems.append(f"go.sum has no entry for {shown}")
    return [_pair_result(manifest, lock, problems, len(requires), hint)]
