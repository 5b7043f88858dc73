"""What each ecosystem's jobs run: a `Recipe` (setup, checks, test, build, package) for a
detected project. Python and Node are here, the others in `recipes_more`. The jobs are
named without the project's prefix; `pipeline` adds it and wires the `needs`."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from conveyor.scaffold.detect import Project
from conveyor.scaffold.jobs import JobSpec

JUNIT = "reports/junit.xml"
COVERAGE = "reports/coverage.xml"
DEFAULT_COVERAGE = 80


@dataclass
class Recipe:
    """A project's jobs by role; `checks` run beside `test`, after `setup`."""

    setup: JobSpec | None = None
    checks: list[JobSpec] = field(default_factory=list)
    test: JobSpec | None = None
    build: JobSpec | None = None
    package: JobSpec | None = None
    notes: list[str] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        found = [self.setup, *self.checks, self.test, self.build, self.package]
        return [j for j in found if j is not None]


def rel(project: Project, source: str) -> str:
    """A workspace-relative file (a tool's source, 'pyproject.toml [tool.ruff]' too) as a
    path relative to the project's directory."""
    path = source.split(" ")[0]
    return path if project.dir == "." else posixpath.relpath(path, project.dir)


def key_files(project: Project, *extra: str) -> list[str]:
    """The files a dependency cache is keyed on: the lockfile, else the manifest."""
    names = [project.lockfile or project.manifest, *extra]
    return sorted({rel(project, n) for n in names if n})


def hash_key(prefix: str, files: list[str]) -> str:
    quoted = ", ".join(f"'{f}'" for f in files)
    return f"{prefix}-{{{{ os }}}}-{{{{ arch }}}}-{{{{ hashFiles({quoted}) }}}}"


def coverage_gate(project: Project) -> tuple[dict[str, object], str]:
    """The coverage gate and why: the project's own minimum when it has one, else a
    warning at 80% (no threshold is invented as an error)."""
    minimum = project.facts.get("coverage_min")
    if minimum is not None:
        value = float(minimum)
        return {"line": int(value) if value.is_integer() else value}, "the project's own minimum"
    return {"line": DEFAULT_COVERAGE, "level": "warn"}, (
        "no minimum configured: a warning below 80% until you choose one"
    )


def tests_gate(job: JobSpec) -> None:
    job.gates["tests"] = {"max_failures": 0}
    job.notes["gates"] = "every test must pass"


# -- Python ------------------------------------------------------------------------

_PY_INDEX_VARS = [
    "PIP_CONFIG_FILE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
]
_VENV_PY = ".venv/bin/python"
_PIP = "python3 -m pip --python .venv/bin/python"


def python(project: Project) -> Recipe:
    """A virtual environment in .venv made by the project's manager, cached on its lockfile;
    every tool run as `.venv/bin/python -m TOOL`, which keeps working wherever the cache
    restores the environment (a script's `#!` holds the path it was made at)."""
    recipe = Recipe()
    recipe.setup = _python_setup(project)
    lint = [
        _python_lint_command(project, t.name) for t in project.role("lint") + project.role("format")
    ]
    commands = [c for c in lint if c]
    if commands:
        recipe.checks.append(
            JobSpec(
                "lint",
                "lint",
                commands,
                "Lint and format checks: "
                + ", ".join(
                    f"{t.name} ({t.source})" for t in project.role("lint") + project.role("format")
                ),
                inputs=_py_inputs(project),
            )
        )
    for tool in project.role("typecheck"):
        if tool.name == "mypy":
            recipe.checks.append(
                JobSpec(
                    "typecheck",
                    "lint",
                    [f"{_VENV_PY} -m mypy --exclude '^\\.venv/' ."],
                    f"Type check: mypy ({tool.source})",
                    inputs=_py_inputs(project),
                )
            )
            break
    recipe.test = _python_test(project)
    if project.facts.get("installable"):
        recipe.package = _python_package(project)
    return recipe


def _python_setup(project: Project) -> JobSpec:
    manager = project.manager
    run: list[str]
    env: dict[str, str] = {}
    if manager == "uv":
        run = ["uv sync --frozen" if project.lockfile else "uv sync"]
        if project.members:  # every member's dependencies, not only the root's
            run[0] += " --all-packages"
    elif manager == "poetry":
        env["POETRY_VIRTUALENVS_IN_PROJECT"] = "true"
        run = ["poetry install --no-interaction"]
    elif manager == "pipenv":
        env["PIPENV_VENV_IN_PROJECT"] = "1"
        run = ["pipenv install --dev --deploy" if project.lockfile else "pipenv install --dev"]
    elif manager == "pdm":
        run = ["pdm install --frozen-lockfile" if project.lockfile else "pdm install"]
    else:
        # A venv without its own pip, filled by the host's (pip >= 22.3, --python): made
        # in a fraction of the time, and pip's thousand files are not cached with it.
        run = ["python3 -m venv --without-pip .venv"]
        for req in project.facts.get("requirements", "").split():
            run.append(f"{_PIP} install -r {req}")
        if project.facts.get("installable"):
            extras = project.facts.get("extras", "")
            target = f"'.[{extras}]'" if extras else "."
            run.append(f"{_PIP} install -e {target}")
    missing = sorted({t.name.split()[0] for t in project.tools if _undeclared(project, t.name)})
    if missing and manager in ("pip", "uv"):
        installer = f"{_PIP} install" if manager == "pip" else "uv pip install --python .venv"
        run.append(f"{installer} {' '.join(missing)}")
    files = key_files(
        project, *[project.path(r) for r in project.facts.get("requirements", "").split()]
    )
    if project.lockfile is None and project.manifest.endswith("pyproject.toml") is False:
        files = sorted({*files, *(rel(project, p) for p in [project.manifest])})
    job = JobSpec(
        "setup",
        "setup",
        run,
        f"Dependencies with {manager} ({project.manager_source}) into .venv, cached on "
        + ", ".join(files)
        + ": a hit restores .venv without running the install.",
        env=env,
        pass_env=list(_PY_INDEX_VARS),
        inputs=files,
        caches=[{"key": hash_key(f"venv-{manager}", files), "paths": [".venv"]}],
    )
    if project.facts.get("setuptools") and manager == "pip":
        job.outputs = _egg_info(project)
        job.why += " An editable install with setuptools writes the .egg-info directory."
    if manager == "pip":
        job.why += (
            " The venv has no pip of its own: the host's pip (22.3 or later) installs into"
            " it, much faster, and pip's files stay out of the cache."
        )
    locks = {"uv": "uv.lock", "poetry": "poetry.lock", "pipenv": "Pipfile.lock", "pdm": "pdm.lock"}
    if project.lockfile is None and manager in locks:
        job.outputs.append(locks[manager])
        job.why += f" Without a lockfile the install writes {locks[manager]}: commit it."
    if missing and manager not in ("pip", "uv"):
        job.why += f" Configured but not among the dependencies: {', '.join(missing)}; add them."
    return job


def _undeclared(project: Project, name: str) -> bool:
    """A tool found only by its configuration (no dependency installs it)."""
    if project.tool(name) is None or name == "coverage":
        return False
    return name.split()[0] not in project.facts.get("declared", "").split()


def _python_lint_command(project: Project, name: str) -> str | None:
    commands = {
        "ruff": f"{_VENV_PY} -m ruff check .",
        "ruff format": f"{_VENV_PY} -m ruff format --check .",
        "flake8": f"{_VENV_PY} -m flake8 --extend-exclude .venv",
        "pylint": f"{_VENV_PY} -m pylint --recursive=y --ignore=.venv .",
        "black": f"{_VENV_PY} -m black --check .",
        "isort": f"{_VENV_PY} -m isort --check-only .",
    }
    return commands.get(name)


def _py_inputs(project: Project) -> list[str]:
    configs = sorted({rel(project, t.source) for t in project.tools} - {"*_test.go"})
    # .venv's own modules are not the project's, even where git does not ignore it.
    return ["**/*.py", "!.venv/**", *(c for c in configs if not c.endswith(".py"))]


def _python_test(project: Project) -> JobSpec | None:
    pytest = project.tool("pytest")
    if pytest is None:
        return None
    command = f"{_VENV_PY} -m pytest --junitxml={JUNIT}"
    job = JobSpec(
        "test",
        "test",
        [command],
        f"Tests: pytest ({pytest.source}), JUnit report read by the tests gate.",
    )
    job.reports["junit"] = JUNIT
    tests_gate(job)
    plugin, coverage = project.tool("pytest-cov"), project.tool("coverage")
    if plugin is not None:
        job.run[0] += f" --cov --cov-report=xml:{COVERAGE}"
        used = f"pytest-cov ({plugin.source})"
    elif coverage is not None and "coverage" in project.facts.get("declared", "").split():
        # coverage.py itself, as the project configures it ([tool.coverage], .coveragerc)
        # One command keeping pytest's status (jobs run under `sh -e`, hence `|| status=`):
        # the report is written when tests fail too
        # (the gates then say what failed and what the coverage was, not "no report").
        # `combine` for a project that runs coverage in parallel mode.
        job.run = [
            f"status=0; {_VENV_PY} -m coverage run -m pytest --junitxml={JUNIT} || status=$?; "
            f"{_VENV_PY} -m coverage combine 2>/dev/null || true; "
            f"{_VENV_PY} -m coverage xml -o {COVERAGE}; exit $status"
        ]
        used = f"coverage.py ({coverage.source})"
    else:
        return job
    job.reports["coverage"] = COVERAGE
    gate, why = coverage_gate(project)
    job.gates["coverage"] = gate
    job.why += f" Coverage by {used}; gate: {why}."
    return job


def _python_package(project: Project) -> JobSpec:
    command = {
        "uv": "uv build",
        "poetry": "poetry build",
        "pdm": "pdm build",
    }.get(project.manager, "python3 -m pip wheel --no-deps --wheel-dir dist .")
    name = project.facts.get("name") or (
        posixpath.basename(project.dir) if project.dir != "." else "package"
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    job = JobSpec(
        "package",
        "package",
        [command],
        "The distribution (wheel) in dist/, kept as a versioned artifact.",
        outputs=["dist/"],
        artifacts={"name": name, "paths": ["dist/"], "type": "package"},
    )
    if project.facts.get("setuptools"):
        job.outputs += ["build/", *_egg_info(project)]
        job.why += " setuptools also writes build/ and the .egg-info directory."
    return job


def _egg_info(project: Project) -> list[str]:
    where = project.facts.get("setuptools")
    return ["src/*.egg-info/"] if where == "src" else ["*.egg-info/"]


# -- Node ------------------------------------------------------------------------


def node(project: Project) -> Recipe:
    """node_modules installed from the lockfile and cached on it; the package.json
    scripts run where they exist (they are what the project's developers run)."""
    recipe = Recipe()
    run_script = {"npm": "npm run", "yarn": "yarn run", "pnpm": "pnpm run"}.get(
        project.manager, "npm run"
    )
    npx = {"npm": "npx --no-install", "yarn": "yarn", "pnpm": "pnpm exec"}.get(
        project.manager, "npx --no-install"
    )
    recipe.setup = _node_setup(project)
    recipe.checks = _node_checks(project, run_script, npx)
    recipe.test = _node_test(project, run_script, npx)
    if "build" in project.scripts:
        recipe.build = JobSpec(
            "build",
            "build",
            [f"{run_script} build"],
            f"The build script ({project.manifest}); dist/ is its output (change it if the "
            "bundler writes elsewhere).",
            outputs=["dist/"],
        )
    if project.facts.get("private") != "yes" and not project.members:
        recipe.package = JobSpec(
            "package",
            "package",
            [{"pnpm": "pnpm pack", "yarn": "yarn pack"}.get(project.manager, "npm pack")],
            "The package tarball (`npm pack`), kept as a versioned artifact.",
            outputs=["*.tgz"],
            artifacts={"paths": ["*.tgz"], "type": "package"},
        )
    return recipe


_SCRIPTS = {
    "lint": ("lint", "check:lint", "lint:check", "lint:js", "eslint"),
    "format": ("format:check", "check:format", "fmt:check", "prettier:check", "lint:format"),
    "typecheck": ("typecheck", "type-check", "check:type", "check:types", "types", "tsc"),
}
"""The package.json scripts that do each check, by the names projects give them."""


def _script(project: Project, role: str) -> str | None:
    return next((name for name in _SCRIPTS[role] if name in project.scripts), None)


def _node_checks(project: Project, run_script: str, npx: str) -> list[JobSpec]:
    """Lint and format in one job, the type check in another: the project's own scripts
    where it has them, else the tools its configuration names."""
    lint: list[str] = []
    why: list[str] = []
    for role, tool, command in (
        ("lint", "eslint", f"{npx} eslint ."),
        ("format", "prettier", f"{npx} prettier --check ."),
    ):
        script = _script(project, role)
        found = project.tool(tool)
        if script is not None:
            lint.append(f"{run_script} {script}")
            why.append(f"the {script} script ({project.manifest})")
        elif found is not None:
            lint.append(command)
            why.append(f"{tool} ({found.source})")
    jobs = []
    if lint:
        jobs.append(
            JobSpec("lint", "lint", lint, "Lint and format checks: " + ", ".join(why) + ".")
        )
    script = _script(project, "typecheck")
    tsc = project.tool("typescript")
    if script is not None:
        why_type = f"Type check: the {script} script ({project.manifest})."
        jobs.append(JobSpec("typecheck", "lint", [f"{run_script} {script}"], why_type))
    elif tsc is not None and tsc.source.endswith("tsconfig.json"):
        why_type = f"Type check: tsc ({tsc.source})."
        jobs.append(JobSpec("typecheck", "lint", [f"{npx} tsc --noEmit"], why_type))
    return jobs


def _node_setup(project: Project) -> JobSpec:
    lock = project.lockfile is not None
    install = {
        "npm": "npm ci --no-audit --no-fund" if lock else "npm install --no-audit --no-fund",
        "pnpm": "pnpm install --frozen-lockfile" if lock else "pnpm install",
        "yarn": (
            "yarn install --immutable"
            if project.facts.get("yarn") == "berry"
            else "yarn install --frozen-lockfile"
        )
        if lock
        else "yarn install",
    }.get(project.manager, "npm install --no-audit --no-fund")
    files = key_files(project, project.manifest)
    paths = ["node_modules"] + [f"{m}/node_modules" for m in project.members]
    written = {"npm": "package-lock.json", "yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml"}
    job = JobSpec(
        "setup",
        "setup",
        [install],
        f"Dependencies with {project.manager} ({project.manager_source}), cached on "
        + ", ".join(files)
        + ": a hit restores node_modules without running the install.",
        pass_env=["NPM_CONFIG_REGISTRY", "npm_config_registry", "NODE_AUTH_TOKEN"],
        inputs=files + [f"{m}/package.json" for m in project.members],
        caches=[{"key": hash_key(f"node-{project.manager}", files), "paths": paths}],
    )
    if not lock and project.manager in written:
        job.outputs = [written[project.manager]]
        job.why += f" Without a lockfile the install writes {written[project.manager]}: commit it."
    return job


def _node_test(project: Project, run_script: str, npx: str) -> JobSpec | None:
    test = project.scripts.get("test", "")
    if not test or "no test specified" in test:
        return None
    job = JobSpec(
        "test", "test", [f"{run_script} test"], f"Tests: the test script ({project.manifest})."
    )
    if re.search(r"&&|\|\||;|\|", test):
        job.why += " It chains commands, so it runs as it is, without a JUnit report."
        return job
    if (vitest := project.tool("vitest")) is not None and "vitest" in test:
        job.run = [f"{npx} vitest run --reporter=default --reporter=junit --outputFile={JUNIT}"]
        job.why = f"Tests: vitest ({vitest.source}), JUnit report read by the tests gate."
    elif "node --test" in test:
        job.run = [
            "mkdir -p reports",
            "node --test --test-reporter=spec --test-reporter-destination=stdout"
            f" --test-reporter=junit --test-reporter-destination={JUNIT}",
        ]
        job.why = "Tests: node --test (the test script), JUnit report read by the tests gate."
    elif project.tool("jest-junit") is not None and "jest" in test:
        job.env["JEST_JUNIT_OUTPUT_DIR"] = "reports"
        job.env["JEST_JUNIT_OUTPUT_NAME"] = "junit.xml"
        job.run = [f"{npx} jest --ci --reporters=default --reporters=jest-junit"]
        job.why = "Tests: jest with jest-junit, JUnit report read by the tests gate."
    else:
        return job
    job.reports["junit"] = JUNIT
    tests_gate(job)
    return job
