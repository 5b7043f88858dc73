"""A detection turned into conveyor.yml: each project's recipe, its jobs named (with the
project's prefix in a monorepo of several), wired for parallelism (lint and test side by
side after setup, build after both, package after build, the audit beside everything),
`requires:` from the toolchain versions found, and the text with a comment on each
choice. `plan` edits the `Draft` before it is rendered."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import UserError
from conveyor.scaffold import recipes, recipes_more
from conveyor.scaffold.detect import Detection, Project, is_lockfile
from conveyor.scaffold.jobs import STAGES, JobSpec, comment, flow, render, scalar

RECIPES: dict[str, Callable[[Project], recipes.Recipe]] = {
    "python": recipes.python,
    "node": recipes.node,
    "go": recipes_more.go,
    "rust": recipes_more.rust,
    "java": recipes_more.java,
    "dotnet": recipes_more.dotnet,
    "ruby": recipes_more.ruby,
    "php": recipes_more.php,
}

MANIFEST_NAMES = (
    "package.json, pyproject.toml, setup.py, requirements.txt, Pipfile, go.mod, Cargo.toml, "
    "pom.xml, build.gradle(.kts), *.csproj/*.sln, Gemfile, composer.json"
)


@dataclass
class Requirement:
    spec: str
    source: str


@dataclass
class Draft:
    """The pipeline before it is text: what `plan` may still change."""

    name: str
    summary: list[str]
    jobs: list[JobSpec]
    requires: dict[str, Requirement] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    gate_notes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    projects: dict[str, list[JobSpec]] = field(default_factory=dict)
    """Each project's label -> its jobs."""

    def job(self, name: str) -> JobSpec | None:
        return next((j for j in self.jobs if j.name == name), None)

    def of_kind(self, kind: str) -> list[JobSpec]:
        """The jobs of one kind ('test', 'build', ...) across the projects."""
        return [j for j in self.jobs if j.name.rsplit(":", 1)[-1] == kind]


def draft(detection: Detection, *, audit: bool = True, ci: bool = False) -> Draft:
    """The pipeline for every project detected; UserError when there is none."""
    if not detection.projects:
        raise UserError(
            f"found no project to build in {detection.root}: none of {MANIFEST_NAMES}",
            hint="run `conveyor init` in the project's directory, or write conveyor.yml "
            "yourself (`conveyor docs`)",
        )
    out = Draft(name=detection.name, summary=[], jobs=[])
    labels = _labels(detection.projects)
    for project, label in zip(detection.projects, labels, strict=True):
        recipe = RECIPES[project.ecosystem](project)
        jobs = _wire(recipe, project, label, ci=ci)
        out.jobs += jobs
        out.projects[label or project.ecosystem] = jobs
        out.summary.append(_summary(project))
        out.notes += [f"{project.manifest}: {n}" for n in project.notes + recipe.notes]
        for chain in project.toolchains:
            _require(out, chain.tool, chain.spec, chain.source)
    if audit and any(is_lockfile(f) for f in detection.files):
        out.jobs.append(
            JobSpec(
                "audit",
                "security",
                ["conveyor deps audit"],
                "Known vulnerabilities in what the lockfiles pin (needs an advisory database: "
                "`conveyor deps db import PATH`). Allowed to fail: it informs; a "
                "`vulnerabilities` gate decides. Not cached: the database changes, not the inputs.",
                needs=[],
                allow_failure=True,
                cache=False,
            )
        )
    unignored = _not_ignored(detection, out.jobs)
    if unignored:
        out.notes.append(
            "the jobs write " + ", ".join(unignored) + ", which .gitignore does not list: "
            "add them, so they are not committed"
        )
    return out


def _not_ignored(detection: Detection, jobs: list[JobSpec]) -> list[str]:
    """What the jobs write into the workspace (the top directory or file of each cache
    path, output and report) that the top .gitignore has no line for."""
    import fnmatch
    import os

    written: dict[str, None] = {}
    for job in jobs:
        paths = [p for c in job.caches for p in c["paths"]] + job.outputs
        paths += [p for v in job.reports.values() for p in (v if isinstance(v, list) else [v])]
        for path in paths:
            if path.startswith("~") or is_lockfile(path) or path.endswith(".lock"):
                continue
            full = path if job.dir == "." else f"{job.dir}/{path}"
            written[full.split("/")[0] + ("/" if "/" in full else "")] = None
    try:
        with open(os.path.join(detection.root, ".gitignore"), encoding="utf-8") as f:
            lines = [ln.strip().strip("/") for ln in f if ln.strip() and not ln.startswith("#")]
    except OSError:
        lines = []
    return [
        w
        for w in written
        if not any(fnmatch.fnmatchcase(w.rstrip("/"), pat) or pat == w.rstrip("/") for pat in lines)
    ]


def _labels(projects: tuple[Project, ...]) -> list[str]:
    if len(projects) == 1:
        return [""]
    labels: list[str] = []
    for p in projects:
        base = p.ecosystem if p.dir == "." else re.sub(r"[^A-Za-z0-9_.-]+", "-", p.dir)
        label, n = base, 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels


def _wire(recipe: recipes.Recipe, project: Project, label: str, *, ci: bool) -> list[JobSpec]:
    """Names and needs: setup first; checks and test side by side after it; build after
    them; package after build. For a hosted CI, where each job starts on a fresh
    machine, every job after setup restores the dependency cache itself."""

    def name(job: JobSpec) -> str:
        return f"{label}:{job.name}" if label else job.name

    for job in recipe.jobs():
        job.name = name(job)
        job.dir = project.dir
    setup = [recipe.setup.name] if recipe.setup else []
    middle = [*recipe.checks, *([recipe.test] if recipe.test else [])]
    if recipe.setup:
        recipe.setup.needs = []
    for job in middle:
        job.needs = list(setup)
    if ci and recipe.setup and recipe.setup.caches:
        for job in [*middle, *([recipe.build] if recipe.build else [])]:
            job.caches = [dict(c) for c in recipe.setup.caches]
            job.notes["caches"] = "setup's: on a hosted CI each job starts on a fresh machine"
    after = [j.name for j in middle] or setup
    if recipe.build:
        recipe.build.needs = list(after)
    if recipe.package:
        recipe.package.needs = [recipe.build.name] if recipe.build else list(after)
    return recipe.jobs()


def _summary(project: Project) -> str:
    where = "the top" if project.dir == "." else project.dir
    text = f"{project.ecosystem} at {where}: {project.manager} ({project.manager_source})"
    if project.lockfile:
        text += f", lockfile {project.lockfile}"
    if project.members:
        text += f"; workspace members ({project.members_source}): {', '.join(project.members)}"
    if project.tools:
        text += "; " + ", ".join(f"{t.name} ({t.source})" for t in project.tools)
    return text + "."


def _require(out: Draft, tool: str, spec: str, source: str) -> None:
    from conveyor.units import version_spec

    try:
        version_spec(spec)
    except ValueError:
        out.notes.append(f"{source}: {tool} {spec!r} is not a range `requires:` can check")
        return
    known = out.requires.get(tool)
    if known is None:
        out.requires[tool] = Requirement(spec, source)
    elif known.spec != spec:
        out.notes.append(
            f"{source} asks {tool} {spec}, {known.source} {known.spec}: kept the first"
        )


def text(out: Draft, *, origin: str) -> str:
    """The conveyor.yml text, with its comments."""
    lines = [f"# conveyor.yml for {out.name}, written by {origin}."]
    lines += comment("What was found:", "")
    for s in out.summary:
        lines += comment(f"- {s}", "")
    lines += comment(
        "Every job lists its `needs`: the checks and the tests run side by side once the "
        "dependencies are installed, the build after both, the audit beside everything. "
        "Jobs are cached on their inputs (by default every tracked file under their dir); "
        "`conveyor run --dry-run` shows the plan, `conveyor why JOB` what a job is keyed on.",
        "",
    )
    for note in out.notes:
        lines += comment(f"Note: {note}", "")
    lines += ["version: 1", f"name: {scalar(out.name)}"]
    used = [s for s in STAGES if any(j.stage == s for j in out.jobs)]
    lines.append(f"stages: {flow(used)}")
    if out.requires:
        lines += comment(
            "Toolchain versions the project asks for, checked before the first job.", ""
        )
        lines.append("requires:")
        for tool, req in out.requires.items():
            lines.append(f"  {scalar(tool)}: {scalar(req.spec)}  # {req.source}")
    if out.gates:
        lines += comment("The pipeline's gates, judged over the whole run.", "")
        lines.append("gates:")
        for gate, value in out.gates.items():
            why = out.gate_notes.get(gate)
            lines.append(f"  {gate}: {flow(value)}" + (f"  # {why}" if why else ""))
    lines.append("jobs:")
    for i, job in enumerate(out.jobs):
        if i:
            lines.append("")
        lines += render(job)
    return "\n".join(lines) + "\n"
