"""The rules for `.gitlab-ci.yml`: a download piped into a shell, jobs without a
timeout, installs without a cache, artifacts kept for the default time, secrets written
as variables, unpinned images. A job's keys are its own over those of the templates it
`extends` (one level of merge: enough for the keys these rules read)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from conveyor.interop.audit.model import Finding, finding
from conveyor.interop.audit.shell import CURL_PIPE_SHELL, INSTALL, image_problem
from conveyor.interop.audit.source import Source
from conveyor.interop.gitlab.source import GLOBAL_KEYS

# Top-level keys that are not jobs: GitLab's reserved keywords, as the importer reads
# them, and the long-deprecated `types` (an old name of `stages`).
_KEYWORDS = GLOBAL_KEYS | {"types"}
_SCRIPTS = ("before_script", "script", "after_script")
_SECRET_NAME = re.compile(
    r"(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)

Rule = Callable[[Source], Iterator[Finding]]


def _document(src: Source) -> dict[str, Any]:
    return src.data if isinstance(src.data, dict) else {}


def jobs(src: Source) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, the job's own mapping, the job merged over what it extends), real jobs
    only (no hidden `.template`s)."""
    doc = _document(src)
    for name, job in doc.items():
        if not isinstance(name, str) or name in _KEYWORDS or name.startswith("."):
            continue
        if not isinstance(job, dict):
            continue
        merged: dict[str, Any] = {}
        parents = job.get("extends")
        for parent in [parents] if isinstance(parents, str) else parents or []:
            template = doc.get(parent)
            if isinstance(template, dict):
                merged.update(template)
        merged.update(job)
        yield name, job, merged


def _default(src: Source, key: str) -> Any:
    doc = _document(src)
    default = doc.get("default")
    if isinstance(default, dict) and key in default:
        return default[key]
    return doc.get(key)


def curl_pipe_shell(src: Source) -> Iterator[Finding]:
    doc = _document(src)
    holders: list[Any] = [doc, doc.get("default")] + [job for _, job, _ in jobs(src)]
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        for key in _SCRIPTS:
            lines = holder.get(key)
            items = [lines] if isinstance(lines, str) else lines if isinstance(lines, list) else []
            for index, line in enumerate(items):
                if isinstance(line, str) and CURL_PIPE_SHELL.search(line):
                    start = (
                        src.value(lines, index)
                        if isinstance(lines, list)
                        else src.value(holder, key)
                    )
                    yield finding(
                        "curl-pipe-shell",
                        src.path,
                        src.find_re(start, CURL_PIPE_SHELL),
                        "a script from the network runs unverified",
                    )


def no_timeout(src: Source) -> Iterator[Finding]:
    if _default(src, "timeout") is not None:
        return
    doc = _document(src)
    for name, _, merged in jobs(src):
        if "timeout" not in merged and "trigger" not in merged:
            yield finding(
                "no-timeout",
                src.path,
                src.key(doc, name),
                f"job '{name}' has no timeout (the project's default, 1 h, applies)",
            )


def _script_text(job: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in _SCRIPTS:
        value = job.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    return "\n".join(parts)


def no_dependency_cache(src: Source) -> Iterator[Finding]:
    if _default(src, "cache") is not None:
        return
    for name, job, merged in jobs(src):
        if "cache" in merged:
            continue
        text = _script_text(merged)
        if INSTALL.search(text):
            yield finding(
                "no-dependency-cache",
                src.path,
                src.find_re(src.start(job), INSTALL),
                f"job '{name}' installs dependencies without `cache:`",
            )


def no_artifact_retention(src: Source) -> Iterator[Finding]:
    default = _default(src, "artifacts")
    if isinstance(default, dict) and "expire_in" in default:
        return
    for name, job, merged in jobs(src):
        artifacts = merged.get("artifacts")
        if isinstance(artifacts, dict) and "expire_in" not in artifacts:
            holder = job if "artifacts" in job else merged
            yield finding(
                "no-artifact-retention",
                src.path,
                src.key(holder, "artifacts"),
                f"job '{name}' keeps its artifacts for the instance default (30 days)",
            )


def hardcoded_credentials(src: Source) -> Iterator[Finding]:
    """Variables named like a secret with a literal value: CI variables hold values
    (masked, protected); the file holds only references."""
    doc = _document(src)
    holders: list[Any] = [doc.get("variables")] + [j.get("variables") for _, j, _ in jobs(src)]
    for variables in holders:
        if not isinstance(variables, dict):
            continue
        for name, value in variables.items():
            if isinstance(value, dict):
                value = value.get("value")
            if (
                isinstance(name, str)
                and _SECRET_NAME.search(name)
                and isinstance(value, str)
                and len(value) >= 4
                and "$" not in value
            ):
                yield finding(
                    "hardcoded-credentials",
                    src.path,
                    src.value(variables, name),
                    f"variable '{name}' holds a secret-looking literal",
                )


def unpinned_image(src: Source) -> Iterator[Finding]:
    doc = _document(src)
    holders: list[tuple[str, Any]] = [("the default", doc), ("the default", doc.get("default"))]
    holders += [(f"job '{name}'", job) for name, job, _ in jobs(src)]
    for who, holder in holders:
        if not isinstance(holder, dict):
            continue
        where: tuple[Any, str] = (holder, "image")
        image = holder.get("image")
        if isinstance(image, dict):
            image, where = image.get("name"), (image, "name")
        problem = image_problem(image) if isinstance(image, str) else None
        if problem:
            yield finding("unpinned-image", src.path, src.value(*where), f"{who}: {problem}")


RULES: tuple[Rule, ...] = (
    curl_pipe_shell,
    no_timeout,
    no_dependency_cache,
    no_artifact_retention,
    hardcoded_credentials,
    unpinned_image,
)
