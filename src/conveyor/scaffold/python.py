"""A Python project: pip (requirements files, pyproject.toml, setup.py), Poetry, uv (and
its workspaces), Pipenv or PDM; pytest, ruff, flake8, mypy, black, isort, pylint and
coverage as configured; the Python version it asks for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conveyor.scaffold import versions
from conveyor.scaffold.detect import Files, Project, Toolchain, first_existing, mentions

MANIFESTS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile")

# Tools known by the dependency that installs them: (name, role).
_BY_DEPENDENCY = {
    "pytest": ("pytest", "test"),
    "ruff": ("ruff", "lint"),
    "flake8": ("flake8", "lint"),
    "pylint": ("pylint", "lint"),
    "mypy": ("mypy", "typecheck"),
    "pyright": ("pyright", "typecheck"),
    "black": ("black", "format"),
    "isort": ("isort", "format"),
    "pytest-cov": ("pytest-cov", "coverage"),
    "coverage": ("coverage", "coverage"),
}
_EXTRAS = ("test", "tests", "testing", "dev", "lint")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read(files: Files, directory: str) -> Project | None:
    """The Python project rooted at `directory`."""
    pyproject_path = first_existing(files, directory, ("pyproject.toml",))
    pyproject = files.data(pyproject_path) if pyproject_path else {}
    tool = _table(pyproject, "tool")
    manifest = first_existing(files, directory, MANIFESTS)
    assert manifest is not None
    project = Project("python", directory, manifest, "pip", manifest)
    _manager(files, project, tool, pyproject_path)
    project.facts["requirements"] = " ".join(_requirement_files(files, directory))
    installable = bool(_table(pyproject, "project")) or "poetry" in tool
    installable = installable or bool(first_existing(files, directory, ("setup.py", "setup.cfg")))
    if installable:
        project.facts["installable"] = "yes"
        backend = _table(pyproject, "build-system").get("build-backend")
        legacy = first_existing(files, directory, ("setup.py", "setup.cfg"))
        if legacy or (isinstance(backend, str) and backend.startswith("setuptools")):
            # setuptools writes NAME.egg-info/ (and build/) into the tree as it installs
            project.facts["setuptools"] = "src" if files.under(project.path("src")) else "."
        name = _table(pyproject, "project").get("name")
        if isinstance(name, str):
            project.facts["name"] = name
    _tools_from_config(files, project, tool, pyproject_path)
    declared = _dependencies(files, project, pyproject, pyproject_path)
    if installable:
        configured = {t.name.split()[0] for t in project.tools}
        extras = _extras(pyproject, configured)
        project.facts["extras"] = ",".join(extras)
        if project.manager == "pip":
            # What `pip install -e .[extras]` installs: an extra not chosen declares
            # nothing the jobs can use.
            declared = [
                (name, source)
                for name, source, extra in _with_extras(declared, pyproject, pyproject_path)
                if extra is None or extra in _reached(pyproject, extras)
            ]
    project.facts["declared"] = " ".join(sorted({name for name, _ in declared}))
    for name, source in declared:
        known = _BY_DEPENDENCY.get(name)
        if known is not None:
            project.add(known[0], known[1], source)
    if project.tool("pytest") is None and first_existing(files, directory, ("conftest.py",)):
        project.add("pytest", "test", project.path("conftest.py"))
    if project.tool("pytest-cov") is not None and project.tool("pytest") is None:
        project.notes.append("pytest-cov is a dependency but pytest is not configured")
    _python_version(files, project, pyproject, pyproject_path)
    return project


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _manager(files: Files, project: Project, tool: dict[str, Any], pyproject: str | None) -> None:
    d = project.dir
    for lock, manager in (
        ("uv.lock", "uv"),
        ("poetry.lock", "poetry"),
        ("Pipfile.lock", "pipenv"),
        ("pdm.lock", "pdm"),
    ):
        path = first_existing(files, d, (lock,))
        if path is not None:
            project.manager, project.manager_source, project.lockfile = manager, path, path
            break
    else:
        if pyproject and "poetry" in tool:
            project.manager, project.manager_source = "poetry", pyproject
        elif pyproject and "uv" in tool:
            project.manager, project.manager_source = "uv", pyproject
        elif (pipfile := first_existing(files, d, ("Pipfile",))) is not None:
            project.manager, project.manager_source = "pipenv", pipfile
    uv = tool.get("uv")
    if isinstance(uv, dict) and isinstance(uv.get("workspace"), dict) and pyproject:
        members = uv["workspace"].get("members")
        if isinstance(members, list):
            for pattern in members:
                if isinstance(pattern, str):
                    project.members += [
                        m[len(d) + 1 :] if d != "." else m for m in files.glob_dirs(d, pattern)
                    ]
            project.members_source = pyproject


def _requirement_files(files: Files, directory: str) -> list[str]:
    """requirements*.txt beside the manifest and requirements/*.txt, the plain one
    first; constraints files are pins, not things to install."""
    prefix = "" if directory == "." else directory + "/"
    found = [
        p[len(prefix) :]
        for p in files.under(directory)
        if re.fullmatch(r"requirements[\w.-]*\.txt|requirements/[\w.-]+\.txt", p[len(prefix) :])
        and "constraint" not in p
    ]
    return sorted(found, key=lambda p: (p != "requirements.txt", p))


def _optional(pyproject: Mapping[str, Any]) -> dict[str, list[tuple[str, set[str]]]]:
    """Each extra's requirements: (normalised name, the extras each asks for)."""
    from packaging.requirements import InvalidRequirement, Requirement

    from conveyor.deps.ecosystems.pypi import normalise

    out: dict[str, list[tuple[str, set[str]]]] = {}
    optional = _table(_table(pyproject, "project"), "optional-dependencies")
    for extra, group in optional.items():
        out[extra] = []
        for line in group if isinstance(group, list) else []:
            try:
                req = Requirement(str(line))
            except InvalidRequirement:
                continue
            out[extra].append((normalise(req.name), set(req.extras)))
    return out


def _reached(pyproject: Mapping[str, Any], extras: list[str]) -> set[str]:
    """The extras installing `extras` brings in, following the project's references
    to its own extras ('attrs[tests]' in attrs' `dev`)."""
    from conveyor.deps.ecosystems.pypi import normalise

    own = normalise(str(_table(pyproject, "project").get("name", "")))
    optional = _optional(pyproject)
    seen: set[str] = set()
    todo = [e for e in extras if e in optional]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for name, asked in optional.get(extra, []):
            if name == own:
                todo += [e for e in asked if e in optional]
    return seen


def _extras(pyproject: Mapping[str, Any], configured: set[str]) -> list[str]:
    """The extras setup installs: those for testing and development, and any other
    that declares a tool the project configures and those do not bring (attrs'
    coverage is in `cov`, its mypy in `tests-mypy`)."""
    optional = _optional(pyproject)
    chosen = [e for e in _EXTRAS if e in optional]
    brought = {name for e in _reached(pyproject, chosen) for name, _ in optional[e]}
    for extra in sorted(optional):
        if extra in chosen:
            continue
        names = {name for name, _ in optional[extra]}
        if names & (configured - brought):
            chosen.append(extra)
            brought |= {name for e in _reached(pyproject, [extra]) for name, _ in optional[e]}
    return chosen


def _with_extras(
    declared: list[tuple[str, str]], pyproject: Mapping[str, Any], pyproject_path: str | None
) -> list[tuple[str, str, str | None]]:
    """`declared` with the extra of pyproject.toml each comes from (None: not an extra:
    a dependency, or declared in another file)."""
    optional = _optional(pyproject)
    by_name: dict[str, set[str]] = {}
    for extra, reqs in optional.items():
        for name, _ in reqs:
            by_name.setdefault(name, set()).add(extra)
    base = set()
    from conveyor.deps.ecosystems.pypi import normalise

    for line in _table(pyproject, "project").get("dependencies", []) or []:
        match = _REQUIREMENT_NAME.match(str(line))
        if match:
            base.add(normalise(match.group(1)))
    out: list[tuple[str, str, str | None]] = []
    for name, source in declared:
        if source != pyproject_path or name in base or name not in by_name:
            out.append((name, source, None))
        else:
            out += [(name, source, extra) for extra in sorted(by_name[name])]
    return out


def _tools_from_config(
    files: Files, project: Project, tool: dict[str, Any], pyproject: str | None
) -> None:
    """Tools configured by their own sections or files (the strongest evidence)."""
    if pyproject:
        for section, name, role in (
            ("pytest", "pytest", "test"),
            ("ruff", "ruff", "lint"),
            ("mypy", "mypy", "typecheck"),
            ("black", "black", "format"),
            ("isort", "isort", "format"),
            ("pylint", "pylint", "lint"),
            ("pyright", "pyright", "typecheck"),
            ("coverage", "coverage", "coverage"),
        ):
            if section in tool:
                project.add(name, role, f"{pyproject} [tool.{section}]")
        if isinstance(_table(tool, "ruff").get("format"), dict):
            project.add("ruff format", "format", f"{pyproject} [tool.ruff.format]")
        fail_under = _table(_table(tool, "coverage"), "report").get("fail_under")
        if isinstance(fail_under, int | float):
            project.facts["coverage_min"] = str(fail_under)
    d = project.dir
    for names, name, role in (
        (("pytest.ini",), "pytest", "test"),
        (("ruff.toml", ".ruff.toml"), "ruff", "lint"),
        ((".flake8",), "flake8", "lint"),
        (("mypy.ini", ".mypy.ini"), "mypy", "typecheck"),
        ((".pylintrc", "pylintrc"), "pylint", "lint"),
        ((".coveragerc",), "coverage", "coverage"),
    ):
        path = first_existing(files, d, names)
        if path is not None:
            project.add(name, role, path)
    for ini in ("setup.cfg", "tox.ini"):
        path = first_existing(files, d, (ini,))
        if path is None:
            continue
        for section, name, role in (
            ("[tool:pytest]", "pytest", "test"),
            ("[pytest]", "pytest", "test"),
            ("[flake8]", "flake8", "lint"),
            ("[mypy]", "mypy", "typecheck"),
            ("[coverage:", "coverage", "coverage"),
        ):
            if mentions(files, path, section):
                project.add(name, role, f"{path} {section.rstrip(':')}")
    for path in (pyproject, first_existing(files, d, ("pytest.ini", "setup.cfg", "tox.ini"))):
        text = files.text(path) if path else None
        m = re.search(r"--cov-fail-under[= ](\d+(?:\.\d+)?)", text or "")
        if m and path:
            project.facts.setdefault("coverage_min", m.group(1))
            project.add("pytest-cov", "coverage", f"{path} --cov-fail-under")


def _dependencies(
    files: Files, project: Project, pyproject: Mapping[str, Any], pyproject_path: str | None
) -> list[tuple[str, str]]:
    """(normalised name, the file that declares it) of every declared dependency."""
    from conveyor.deps.ecosystems.pypi import normalise, pyproject_requirements

    found: list[tuple[str, str]] = []
    if pyproject_path:
        declared = pyproject_requirements(pyproject, pyproject_path).requirements
        found += [(normalise(r.name), pyproject_path) for r in declared]
    for rel in project.facts.get("requirements", "").split():
        path = project.path(rel)
        for line in (files.text(path) or "").splitlines():
            m = _REQUIREMENT_NAME.match(line)
            if m and not line.lstrip().startswith(("-", "#")):
                found.append((normalise(m.group(1)), path))
    pipfile = first_existing(files, project.dir, ("Pipfile",))
    if pipfile:
        data = files.data(pipfile)
        for section in ("packages", "dev-packages"):
            found += [(normalise(n), pipfile) for n in _table(data, section)]
    return found


def _python_version(
    files: Files, project: Project, pyproject: Mapping[str, Any], pyproject_path: str | None
) -> None:
    pinned = first_existing(files, project.dir, (".python-version",)) or first_existing(
        files, ".", (".python-version",)
    )
    if pinned:
        spec = versions.from_pin(files.text(pinned) or "")
        if spec:
            project.toolchains.append(Toolchain("python3", spec, pinned))
            return
    requires = _table(pyproject, "project").get("requires-python")
    if not isinstance(requires, str):
        deps = _table(_table(_table(pyproject, "tool"), "poetry"), "dependencies")
        requires = deps.get("python") if isinstance(deps.get("python"), str) else None
    if isinstance(requires, str) and pyproject_path:
        spec = versions.from_range(requires)
        if spec:
            project.toolchains.append(Toolchain("python3", spec, pyproject_path))
