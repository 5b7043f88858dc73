"""The pipeline rules for GitHub Actions workflows: the seed specification's
anti-patterns (no caching, sequential jobs, no limits, artifacts kept forever) and
reproducibility (unpinned images). Slow or wasteful, not exploitable: low severity."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from conveyor.interop.audit.model import Finding, finding
from conveyor.interop.audit.shell import INSTALL, image_problem
from conveyor.interop.audit.source import strings
from conveyor.interop.audit.workflow import Workflow

_CACHING_SETUP = (
    "actions/setup-node",
    "actions/setup-python",
    "actions/setup-java",
    "actions/setup-dotnet",
    "ruby/setup-ruby",
    "astral-sh/setup-uv",
)
# These cache by default unless told not to.
_CACHING_BY_DEFAULT = ("actions/setup-go", "swatinem/rust-cache")
_CACHE_INPUTS = ("cache", "bundler-cache", "enable-cache", "cache-dependency-path")
_DEPLOYISH = re.compile(r"deploy|release|publish|promote|rollout", re.IGNORECASE)


def no_timeout(wf: Workflow) -> Iterator[Finding]:
    """A job without `timeout-minutes` runs for up to 6 hours when it hangs."""
    for job_id, job in wf.jobs():
        if "uses" in job or "timeout-minutes" in job:
            continue
        yield finding(
            "no-timeout",
            wf.source.path,
            wf.source.key(wf.data["jobs"], job_id),
            f"job '{job_id}' has no timeout-minutes (a hang holds a runner for 6 h)",
        )


def _caches(wf: Workflow, job_id: str, job: dict[str, Any]) -> bool:
    for step in wf.steps(job_id, job):
        opted_out = step.with_().get("cache") in (False, "false", "")
        if step.action in ("actions/cache", "actions/cache/restore"):
            return True
        if step.action in _CACHING_BY_DEFAULT and not opted_out:
            return True
        has_input = any(k in step.with_() for k in _CACHE_INPUTS)
        if step.action in _CACHING_SETUP and has_input and not opted_out:
            return True
    return False


def no_dependency_cache(wf: Workflow) -> Iterator[Finding]:
    """A job that installs dependencies with no cache downloads them all on every run."""
    for job_id, job in wf.jobs():
        installs = [s for s in wf.steps(job_id, job) if s.run and INSTALL.search(s.run)]
        if installs and not _caches(wf, job_id, job):
            step = installs[0]
            at = wf.source.find_re(wf.source.value(step.node, "run"), INSTALL)
            yield finding(
                "no-dependency-cache",
                wf.source.path,
                at,
                f"job '{job_id}' installs dependencies without a cache",
            )


def no_artifact_retention(wf: Workflow) -> Iterator[Finding]:
    for step in wf.all_steps():
        if step.action == "actions/upload-artifact" and "retention-days" not in step.with_():
            yield finding(
                "no-artifact-retention",
                wf.source.path,
                wf.source.value(step.node, "uses"),
                "upload-artifact without retention-days keeps it 90 days",
            )


def _needs(job: dict[str, Any]) -> list[tuple[Any, Any, str]]:
    """(holder, key, job id) of each `needs:` entry, to locate it."""
    needs = job.get("needs")
    if isinstance(needs, str):
        return [(job, "needs", needs)]
    if isinstance(needs, list):
        return [(needs, i, n) for i, n in enumerate(needs) if isinstance(n, str)]
    return []


def needless_needs(wf: Workflow) -> Iterator[Finding]:
    """`needs: X` in a job that never reads `needs.X` (outputs, result) nor downloads an
    artifact: the jobs could run in parallel. A deployment's `needs` is a gate, not an
    order for speed's sake, so jobs with `environment:` or a deploy-like name are exempt."""
    for job_id, job in wf.jobs():
        if "environment" in job or _DEPLOYISH.search(f"{job_id} {job.get('name', '')}"):
            continue
        mentions = " ".join(s for key, s in _job_strings(job))
        downloads = any(s.action == "actions/download-artifact" for s in wf.steps(job_id, job))
        # A job that runs on how its needs ended (`if: failure()`, `always()`) uses
        # their results: a notification, a cleanup.
        status = re.search(r"\b(failure|always|cancelled|success)\s*\(", str(job.get("if", "")))
        if downloads or "uses" in job or status:
            continue
        for holder, key, needed in _needs(job):
            used = re.search(
                rf"\bneeds\s*(?:\.\s*{re.escape(needed)}\b|\[\s*['\"]{re.escape(needed)}['\"])",
                mentions,
            )
            if not used:
                yield finding(
                    "needless-needs",
                    wf.source.path,
                    wf.source.value(holder, key),
                    f"job '{job_id}' waits for '{needed}' but uses nothing of it",
                )


def _job_strings(job: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in job.items():
        if key != "needs":
            for text in strings(value):
                yield str(key), text


def unpinned_image(wf: Workflow) -> Iterator[Finding]:
    for job_id, job in wf.jobs():
        holders: list[tuple[Any, Any]] = []
        container = job.get("container")
        if isinstance(container, str):
            holders.append((job, "container"))
        elif isinstance(container, dict):
            holders.append((container, "image"))
        services = job.get("services")
        if isinstance(services, dict):
            holders += [(svc, "image") for svc in services.values() if isinstance(svc, dict)]
        for holder, key in holders:
            image = holder.get(key)
            problem = image_problem(image) if isinstance(image, str) else None
            if problem:
                yield finding(
                    "unpinned-image",
                    wf.source.path,
                    wf.source.value(holder, key),
                    f"job '{job_id}': {problem}",
                )


RULES: tuple[Callable[[Workflow], Iterator[Finding]], ...] = (
    no_timeout,
    no_dependency_cache,
    no_artifact_retention,
    needless_needs,
    unpinned_image,
)
