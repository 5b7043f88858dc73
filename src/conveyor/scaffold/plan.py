"""`conveyor plan`: a requirements hand-off mapped onto the pipeline of the workspace.

The workspace's own projects come first (what `conveyor init` finds); a language the
requirements name that the workspace does not have yet gets the jobs its ecosystem
usually has, to be filled in. Then each requirement is mapped (performance targets to
time gates, quality gates to tests/coverage/vulnerabilities/sizes gates, environments
to promotions of the package artifacts through channels) or reported, with why not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from conveyor.scaffold.detect import Detection, Project, Tool
from conveyor.scaffold.jobs import JobSpec
from conveyor.scaffold.pipeline import Draft, draft
from conveyor.scaffold.requirements import Item, Requirements, duration, percentage, size

LANGUAGES = {
    "python": "python",
    "javascript": "node",
    "typescript": "node",
    "node": "node",
    "nodejs": "node",
    "node.js": "node",
    "go": "go",
    "golang": "go",
    "rust": "rust",
    "java": "java",
    "kotlin": "java",
    "scala": "java",
    "c#": "dotnet",
    "csharp": "dotnet",
    ".net": "dotnet",
    "dotnet": "dotnet",
    "f#": "dotnet",
    "ruby": "ruby",
    "php": "php",
}
FRAMEWORKS = {
    "django": "python",
    "flask": "python",
    "fastapi": "python",
    "react": "node",
    "vue": "node",
    "angular": "node",
    "next.js": "node",
    "nextjs": "node",
    "express": "node",
    "nestjs": "node",
    "svelte": "node",
    "spring": "java",
    "spring boot": "java",
    "rails": "ruby",
    "ruby on rails": "ruby",
    "laravel": "php",
    "symfony": "php",
    "asp.net": "dotnet",
    "asp.net core": "dotnet",
    "gin": "go",
    "echo": "go",
    "actix": "rust",
    "axum": "rust",
    "rocket": "rust",
}
_SEVERITIES = ("critical", "high", "medium", "low")
_CHANNELS = {"development": "dev", "production": "prod", "live": "prod"}
_SKELETONS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "python": ("pyproject.toml", "pip", [("pytest", "test"), ("ruff", "lint")]),
    "node": ("package.json", "npm", []),
    "go": ("go.mod", "go", [("gofmt", "format"), ("go vet", "lint"), ("go test", "test")]),
    "rust": (
        "Cargo.toml",
        "cargo",
        [("clippy", "lint"), ("rustfmt", "format"), ("cargo test", "test")],
    ),
    "java": ("pom.xml", "maven", [("surefire", "test")]),
    "dotnet": ("app.csproj", "dotnet", [("dotnet test", "test")]),
    "ruby": ("Gemfile", "bundler", [("rspec", "test")]),
    "php": ("composer.json", "composer", [("phpunit", "test")]),
}


@dataclass
class Outcome:
    """What each requirement became: (where and what, how) and (where and what, why not)."""

    mapped: list[tuple[str, str]] = field(default_factory=list)
    unmapped: list[tuple[str, str]] = field(default_factory=list)


def plan(req: Requirements, detection: Detection, *, ci: bool = False) -> tuple[Draft, Outcome]:
    """The pipeline the requirements imply for this workspace, and the report."""
    done = Outcome()
    wanted = _ecosystems(req, done)
    have = {p.ecosystem for p in detection.projects}
    extra = [_skeleton(eco, source) for eco, source in wanted.items() if eco not in have]
    whole = Detection(
        root=detection.root,
        name=req.project or detection.name,
        projects=(*detection.projects, *extra),
        files=detection.files,
    )
    out = draft(whole, ci=ci)
    for project in extra:
        out.notes.append(
            f"{project.manifest} is not in the workspace yet: its jobs are the usual "
            f"{project.ecosystem} ones, asked for by {project.manager_source}"
        )
    if req.project_type is not None:
        _project_type(req, req.project_type, detection, done)
    for name, item in req.performance.items():
        _performance(req, out, name, item, done)
    for name, item in req.quality.items():
        _quality(req, out, name, item, done)
    _targets(req, out, detection, done)
    _environments(req, out, done)
    out.notes += [f"requirement not mapped: {what}: {why}" for what, why in done.unmapped]
    return out, done


def _ecosystems(req: Requirements, done: Outcome) -> dict[str, str]:
    """The ecosystems the stack names -> the first requirement that named it."""
    wanted: dict[str, str] = {}
    for item in [*req.languages, *req.frameworks, *req.tools]:
        word = item.value.lower().strip()
        eco = LANGUAGES.get(word) or FRAMEWORKS.get(word)
        where = req.where(item.path)
        if eco is not None:
            wanted.setdefault(eco, f"{where} ({item.value})")
            kind = "language" if word in LANGUAGES else "framework"
            done.mapped.append((f"{where}: {item.value}", f"{kind}: the {eco} jobs"))
        elif word in ("docker", "container", "containers", "kubernetes", "k8s", "helm"):
            continue  # a target: `_targets` decides
        else:
            done.unmapped.append(
                (
                    f"{where}: {item.value}",
                    "no recipe knows it: not a language or framework "
                    "Conveyor sets up (a service such as a database is started by the test job "
                    "itself, e.g. with docker compose)",
                )
            )
    return wanted


def _skeleton(ecosystem: str, source: str) -> Project:
    manifest, manager, tools = _SKELETONS[ecosystem]
    project = Project(ecosystem, ".", manifest, manager, f"the requirements {source}")
    for name, role in tools:
        project.tools.append(Tool(name, role, "the requirements"))
    if ecosystem == "node":
        project.scripts = {"lint": "eslint .", "test": "npm test", "build": "build"}
        project.facts["private"] = "yes"
    return project


def _project_type(req: Requirements, item: Item, detection: Detection, done: Outcome) -> None:
    where = req.where(item.path)
    kind = item.value
    if kind == "mobile":
        done.unmapped.append(
            (
                f"{where}: project_type mobile",
                "mobile builds need the platform SDKs (Xcode, Android SDK): no recipe sets them up",
            )
        )
    elif kind == "microservices" and len(detection.projects) < 2:
        done.unmapped.append(
            (
                f"{where}: project_type microservices",
                "the workspace has "
                f"{len(detection.projects)} project(s): each service's jobs come "
                "from its own manifest, so add the services and run plan again",
            )
        )
    else:
        done.mapped.append((f"{where}: project_type {kind}", "the jobs of the projects found"))


def _performance(req: Requirements, out: Draft, name: str, item: Item, done: Outcome) -> None:
    where = req.where(item.path)
    if name in ("build_time", "pipeline_time", "total_time"):
        limit = duration(item)
        out.gates["time"] = {"max": limit}
        out.gate_notes["time"] = f"performance_targets.{name} ({item.value})"
        done.mapped.append(
            (f"{where}: {name} {item.value}", f"the pipeline's time gate, max {limit}")
        )
    elif name in ("test_time", "lint_time"):
        kind = name.split("_")[0]
        jobs = out.of_kind(kind)
        limit = duration(item)
        if not jobs:
            done.unmapped.append((f"{where}: {name}", f"no {kind} job: nothing to time"))
            return
        for job in jobs:
            job.gates["time"] = {"max": limit}
        names = ", ".join(j.name for j in jobs)
        done.mapped.append((f"{where}: {name} {item.value}", f"time gate max {limit} on {names}"))
    else:
        done.unmapped.append(
            (
                f"{where}: {name}",
                "no gate measures it (Conveyor times "
                "jobs and runs: build_time, test_time, lint_time)",
            )
        )


def _quality(req: Requirements, out: Draft, name: str, item: Item, done: Outcome) -> None:
    where = req.where(item.path)
    label = f"{where}: {name} {item.value}"
    key = name.lower()
    if key in ("test_coverage", "coverage", "code_coverage", "line_coverage"):
        _coverage(out, percentage(item), label, done)
    elif key in ("security_scan", "vulnerabilities", "security", "vulnerability_scan"):
        limits = _severity_limits(item)
        if limits is None:
            done.unmapped.append(
                (
                    label,
                    "cannot tell which severities it allows: say "
                    "e.g. 'no critical vulnerabilities' or 'no high or critical'",
                )
            )
            return
        out.gates["vulnerabilities"] = {"max": limits}
        out.gate_notes["vulnerabilities"] = f"quality_gates.{name}"
        done.mapped.append((label, f"the pipeline's vulnerabilities gate, max {limits}"))
    elif key in ("test_pass_rate", "tests", "test_success"):
        rate = percentage(item)
        jobs = [j for j in out.of_kind("test") if "junit" in j.reports]
        if rate < 100 or not jobs:
            why = (
                "a pass rate below 100% is not a count of failures"
                if jobs
                else "no test job writes a JUnit report"
            )
            done.unmapped.append((label, why))
            return
        done.mapped.append(
            (label, "tests gate max_failures 0 on " + ", ".join(j.name for j in jobs))
        )
    elif key in ("bundle_size", "artifact_size", "max_size"):
        _sizes(out, item, label, done)
    elif key in ("lint", "linting", "code_quality", "static_analysis"):
        jobs = out.of_kind("lint")
        if jobs:
            done.mapped.append(
                (label, "the lint jobs fail on any finding: " + ", ".join(j.name for j in jobs))
            )
        else:
            done.unmapped.append((label, "no linter is configured in the workspace"))
    else:
        done.unmapped.append(
            (
                label,
                "no Conveyor gate measures it (gates: tests, coverage, "
                "findings, sizes, time, vulnerabilities, licenses)",
            )
        )


def _coverage(out: Draft, minimum: float, label: str, done: Outcome) -> None:
    value: float | int = int(minimum) if minimum.is_integer() else minimum
    measured = [j for j in out.of_kind("test") if "coverage" in j.reports]
    for job in measured:
        job.gates["coverage"] = {"line": value}
        job.why = re.sub(r"; gate: .*$", f"; gate: the requirements' minimum, {value}%.", job.why)
    if measured:
        done.mapped.append(
            (
                label,
                "coverage gate line >= " + f"{value}% on " + ", ".join(j.name for j in measured),
            )
        )
    others = [j for j in out.of_kind("test") if "coverage" not in j.reports]
    if others or not measured:
        out.gates["coverage"] = {"line": value}
        out.gate_notes["coverage"] = "fails until a test job writes a coverage report"
        names = ", ".join(j.name for j in others) or "no test job"
        done.unmapped.append(
            (
                label,
                f"no coverage tool is configured for {names}: the "
                "pipeline's coverage gate is written and fails until one is "
                "(pytest-cov, c8, vitest --coverage...)",
            )
        )


def _severity_limits(item: Item) -> dict[str, int] | None:
    text = str(item.value).lower()
    named = [s for s in _SEVERITIES if s in text]
    if not named or not re.search(r"\b(no|zero|0|none)\b", text):
        return None
    worst = max(_SEVERITIES.index(s) for s in named)
    return dict.fromkeys(_SEVERITIES[: worst + 1], 0)


def _sizes(out: Draft, item: Item, label: str, done: Outcome) -> None:
    jobs = [j for j in out.jobs if j.outputs and j.stage in ("build", "package")]
    limit = size(item)
    if not jobs:
        done.unmapped.append((label, "no job declares outputs to measure"))
        return
    for job in jobs:
        job.gates["sizes"] = {"total": limit}
    done.mapped.append(
        (label, f"sizes gate total <= {limit} on " + ", ".join(j.name for j in jobs))
    )


def _targets(req: Requirements, out: Draft, detection: Detection, done: Outcome) -> None:
    items = list(req.targets) + [t for t in req.tools if t.value.lower() in ("docker", "container")]
    for item in items:
        where = req.where(item.path)
        word = item.value.lower()
        if word in ("docker", "container", "containers", "image", "oci"):
            if "Dockerfile" not in detection.files:
                done.unmapped.append(
                    (f"{where}: {item.value}", "no Dockerfile at the top of the workspace")
                )
                continue
            if out.job("image") is None:
                needs = [j.name for j in out.jobs if j.stage == "build"] or [
                    j.name for j in out.of_kind("test")
                ]
                out.jobs.append(
                    JobSpec(
                        "image",
                        "package",
                        ['docker build -t "$IMAGE" .'],
                        f"The container image (targets: {item.value}), from the Dockerfile.",
                        needs=needs,
                        env={"IMAGE": f"{out.name.lower()}:dev"},
                    )
                )
            done.mapped.append((f"{where}: {item.value}", "the image job (docker build)"))
        else:
            done.unmapped.append(
                (
                    f"{where}: {item.value}",
                    "every job runs on this machine "
                    "(or a remote worker with its platform): building for another "
                    "platform takes the toolchain's own target flags",
                )
            )


def _environments(req: Requirements, out: Draft, done: Outcome) -> None:
    if not req.environments:
        return
    producers = [j for j in out.jobs if j.artifacts]
    first = req.environments[0]
    if not producers:
        for item in req.environments:
            done.unmapped.append(
                (
                    f"{req.where(item.path)}: environment {item.value}",
                    "no job produces an artifact to promote",
                )
            )
        return
    for job in producers:
        assert job.artifacts is not None
        job.artifacts.setdefault("name", re.sub(r"[^A-Za-z0-9._-]+", "-", job.name))
    previous: list[str] = [j.name for j in producers]
    last = req.environments[-1]
    for item in req.environments:
        channel = _CHANNELS.get(item.value.lower(), item.value.lower())
        run = [
            f"conveyor artifacts promote {j.artifacts['name']}@${{{{ run.number }}}} --to {channel}"
            for j in producers
            if j.artifacts
        ]
        job = JobSpec(
            f"deploy:{item.value}",
            "deploy",
            run,
            f"Environment {item.value} ({req.where(item.path)}): this run's artifacts promoted "
            f"to the {channel} channel. Add the command that deploys them after the promotion.",
            needs=previous,
            cache=False,
        )
        if item is last and item is not first:
            job.when = "manual"
            job.notes["when"] = "the last environment: only when asked (conveyor run --manual ...)"
        else:
            job.condition = "event != 'pull_request'"
        out.jobs.append(job)
        previous = [job.name]
        done.mapped.append(
            (
                f"{req.where(item.path)}: environment {item.value}",
                f"job {job.name}: promotion to channel {channel}",
            )
        )
