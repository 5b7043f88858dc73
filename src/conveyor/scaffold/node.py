"""A JavaScript/TypeScript project: npm, Yarn (1 and Berry) or pnpm, their workspaces;
the package.json scripts; jest, vitest, mocha, eslint, prettier, TypeScript and coverage
tools as configured; the Node version it asks for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.scaffold import versions
from conveyor.scaffold.detect import Files, Project, Toolchain, first_existing

MANIFESTS = ("package.json",)

_BY_DEPENDENCY = {
    "jest": ("jest", "test"),
    "vitest": ("vitest", "test"),
    "mocha": ("mocha", "test"),
    "eslint": ("eslint", "lint"),
    "prettier": ("prettier", "format"),
    "typescript": ("typescript", "typecheck"),
    "c8": ("c8", "coverage"),
    "nyc": ("nyc", "coverage"),
    "@vitest/coverage-v8": ("vitest-coverage", "coverage"),
    "@vitest/coverage-istanbul": ("vitest-coverage", "coverage"),
    "jest-junit": ("jest-junit", "test"),
}
_CONFIGS = (
    (
        (
            "eslint.config.js",
            "eslint.config.mjs",
            "eslint.config.cjs",
            "eslint.config.ts",
            ".eslintrc",
            ".eslintrc.js",
            ".eslintrc.cjs",
            ".eslintrc.json",
            ".eslintrc.yml",
            ".eslintrc.yaml",
        ),
        "eslint",
        "lint",
    ),
    (
        (
            ".prettierrc",
            ".prettierrc.json",
            ".prettierrc.yml",
            ".prettierrc.yaml",
            ".prettierrc.js",
            ".prettierrc.cjs",
            "prettier.config.js",
            "prettier.config.mjs",
        ),
        "prettier",
        "format",
    ),
    (("jest.config.js", "jest.config.ts", "jest.config.mjs", "jest.config.cjs"), "jest", "test"),
    (("vitest.config.ts", "vitest.config.js", "vitest.config.mts"), "vitest", "test"),
    ((".mocharc.yml", ".mocharc.json", ".mocharc.js"), "mocha", "test"),
    (("tsconfig.json",), "typescript", "typecheck"),
    ((".nycrc", ".nycrc.json", ".c8rc.json"), "c8", "coverage"),
)


def read(files: Files, directory: str) -> Project | None:
    """The Node project rooted at `directory`."""
    manifest = first_existing(files, directory, ("package.json",))
    assert manifest is not None
    data = files.data(manifest)
    project = Project("node", directory, manifest, "npm", manifest)
    _manager(files, project, data)
    _workspaces(files, project, data)
    if data.get("private") is True:
        project.facts["private"] = "yes"
    scripts = data.get("scripts")
    if isinstance(scripts, dict):
        project.scripts = {k: v for k, v in scripts.items() if isinstance(v, str)}
    for names, name, role in _CONFIGS:
        path = first_existing(files, directory, names)
        if path is not None:
            project.add(name, role, path)
    for section in ("devDependencies", "dependencies"):
        deps = data.get(section)
        if isinstance(deps, dict):
            for dep in deps:
                known = _BY_DEPENDENCY.get(dep)
                # prettier in devDependencies often only formats staged files (a
                # pre-commit hook): a check that the tree is formatted needs its config.
                if known is not None and dep != "prettier":
                    project.add(known[0], known[1], f"{manifest} {section}")
    if "prettier" in data:
        project.add("prettier", "format", f"{manifest} prettier")
    if isinstance(data.get("jest"), dict):
        project.add("jest", "test", f"{manifest} jest")
        if "coverageThreshold" in data["jest"]:
            project.add("jest-coverage", "coverage", f"{manifest} jest.coverageThreshold")
    test = project.scripts.get("test", "")
    if "node --test" in test:
        project.add("node-test", "test", f"{manifest} scripts.test")
    if "--coverage" in test and project.tool("jest") is not None:
        project.add("jest-coverage", "coverage", f"{manifest} scripts.test")
    _node_version(files, project, data)
    return project


def _manager(files: Files, project: Project, data: Mapping[str, Any]) -> None:
    d = project.dir
    declared = data.get("packageManager")
    for lock, manager in (
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("package-lock.json", "npm"),
        ("npm-shrinkwrap.json", "npm"),
    ):
        path = first_existing(files, d, (lock,)) or (
            first_existing(files, ".", (lock,)) if d != "." else None
        )
        if path is not None and (d == "." or path.startswith(d + "/")):
            project.manager, project.manager_source, project.lockfile = manager, path, path
            break
    else:
        if isinstance(declared, str) and "@" in declared:
            project.manager, project.manager_source = declared.split("@")[0], project.manifest
    if project.manager == "yarn" and first_existing(files, d, (".yarnrc.yml",)):
        project.facts["yarn"] = "berry"
    if isinstance(declared, str) and "@" in declared:
        name, _, version = declared.partition("@")
        spec = versions.floor(version.split("+")[0])
        if spec and name in ("npm", "pnpm", "yarn"):
            project.toolchains.append(Toolchain(name, spec, f"{project.manifest} packageManager"))


def _workspaces(files: Files, project: Project, data: Mapping[str, Any]) -> None:
    patterns: list[str] = []
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    if isinstance(workspaces, list):
        patterns = [p for p in workspaces if isinstance(p, str)]
        project.members_source = project.manifest
    pnpm = first_existing(files, project.dir, ("pnpm-workspace.yaml",))
    if pnpm is not None:
        listed = files.data(pnpm).get("packages")
        if isinstance(listed, list):
            patterns += [p for p in listed if isinstance(p, str)]
            project.members_source = pnpm
    d = project.dir
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        for member in files.glob_dirs(d, pattern):
            if files.has(f"{member}/package.json"):
                rel = member if d == "." else member[len(d) + 1 :]
                if rel not in project.members:
                    project.members.append(rel)


def _node_version(files: Files, project: Project, data: Mapping[str, Any]) -> None:
    for name in (".nvmrc", ".node-version"):
        path = first_existing(files, project.dir, (name,)) or first_existing(files, ".", (name,))
        if path is not None:
            spec = versions.from_pin(files.text(path) or "")
            if spec:
                project.toolchains.insert(0, Toolchain("node", spec, path))
                return
    engines = data.get("engines")
    node = engines.get("node") if isinstance(engines, dict) else None
    if isinstance(node, str):
        spec = versions.from_range(node)
        if spec:
            project.toolchains.insert(
                0, Toolchain("node", spec, f"{project.manifest} engines.node")
            )
        else:
            project.notes.append(f"engines.node {node!r} is not a range requires: can check")
