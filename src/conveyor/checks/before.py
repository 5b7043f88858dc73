"""The checks before the first job, from `requires:` and `checks:`: tool versions, free
disk, environment variables, manifests that parse, lockfiles that match their manifests,
and secrets committed to the repository."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.model import CheckResult, Finding, GateLevel, Job, Pipeline
from conveyor.workspace.listing import workspace_files

if TYPE_CHECKING:
    from conveyor.executor.interface import Executor
    from conveyor.workspace.files import GitScan


@dataclass
class Before:
    results: list[CheckResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    """What the secret scan found (for the findings gates and SARIF)."""
    scanned: bool = False


def requirements(pipeline: Pipeline, jobs: Sequence[Job]) -> dict[str, str]:
    """Every tool the pipeline and the jobs about to run require; one range per tool
    (the pipeline's, joined with each job's)."""
    wanted: dict[str, list[str]] = {}
    for tool, spec in (*pipeline.requires, *(p for job in jobs for p in job.requires)):
        specs = wanted.setdefault(tool, [])
        if spec not in specs:
            specs.append(spec)
    return {tool: ",".join(specs) for tool, specs in wanted.items()}


def run_before(
    pipeline: Pipeline,
    jobs: Sequence[Job],
    environ: Mapping[str, str],
    *,
    cache_dir: str | None = None,
    defaults: bool = False,
    scan: GitScan | None = None,
    executor: Executor | None = None,
) -> Before:
    """Every configured check before the build. `defaults`: also the checks worth running
    unconfigured (`conveyor check` on a pipeline without `checks:`): manifests,
    lockfiles, secrets. `executor`: the run's, which asks the tools their versions."""
    from conveyor.checks.disk import check_disk
    from conveyor.checks.environment import check_env
    from conveyor.checks.tools import check_tools

    checks = pipeline.checks
    out = Before()
    wanted = requirements(pipeline, jobs)
    if wanted:
        out.results += check_tools(wanted, environ, executor=executor)
    if checks.disk is not None:
        places = {"workspace": pipeline.root}
        if cache_dir:
            places["cache"] = cache_dir
        out.results += check_disk(places, checks.disk)
    if checks.env:
        secret_names = sorted({s for job in jobs for s in job.secrets})
        out.results += check_env(checks.env, environ, secret_names=secret_names)
    manifests = checks.manifests
    lockfiles = checks.lockfiles
    secrets = checks.secrets
    if defaults and not checks.before:
        from conveyor.model import SecretsCheck

        manifests, lockfiles, secrets = (), True, SecretsCheck()
    if manifests is None and not lockfiles and secrets is None:
        return out
    known = workspace_files(pipeline.root, scan)
    files = sorted(known)
    if manifests is not None:
        from conveyor.checks.manifests import MANIFEST_PATTERNS, check_manifests, select_manifests

        chosen = select_manifests(files, manifests or MANIFEST_PATTERNS)
        out.results += check_manifests(pipeline.root, chosen)
    if lockfiles:
        from conveyor.checks.lockfiles import check_lockfiles

        out.results += check_lockfiles(pipeline.root, files)
    if secrets is not None:
        from conveyor.checks.secrets import conveyor_files, scan_secrets, secrets_check

        try:
            found = scan_secrets(
                pipeline.root,
                files,
                baseline=secrets.baseline,
                exclude=(*secrets.exclude, *conveyor_files(pipeline)),
                cache_file=os.path.join(pipeline.root, ".conveyor", "cache", "secrets.json"),
                identities=known,
            )
        except ValueError as exc:
            out.results.append(
                CheckResult(
                    check="secrets",
                    ok=False,
                    expected="a readable secrets baseline",
                    found=str(exc),
                    hint="write one with `detect-secrets scan > .secrets.baseline`, or remove "
                    "checks.secrets.baseline",
                    location=secrets.baseline,
                    level=GateLevel.ERROR,
                )
            )
        else:
            out.findings = found
            out.scanned = True
            out.results.append(secrets_check(found, secrets.level))
    return out
