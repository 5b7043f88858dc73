"""An artifact's version, as the job's `artifacts.version` says, from the run's facts.

    version: "1.4.0"                          a literal
    version: "1.4.{{ run_number }}"           a template (conveyor.config.versions.FIELDS)
    version: {from: git}                      `git describe --tags --always`
    version: {from: pyproject.toml}           the project's version ([project], else
                                              [tool.poetry]); package.json's `version`;
                                              Cargo.toml's [package] (or its workspace's)
    version: {from: package.json, template: "{{ version }}-{{ short_commit }}"}

Without `version:`, a version is the build number. A field's value is made safe for a
version (`feature/login` -> `feature-login`); what comes out must be a version
(`ALLOWED`), else the job's artifacts are not stored and the job says why.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from dataclasses import dataclass
from typing import Any

from conveyor.artifacts.store import ArtifactError
from conveyor.config.versions import ALLOWED, describe_allowed, parse
from conveyor.model import ArtifactSpec


class VersionError(ArtifactError):
    """The version could not be made: a source without one, a field without a value."""


@dataclass(frozen=True)
class Facts:
    """What the run knows when a job's artifacts are stored."""

    pipeline: str
    job: str
    run_id: str = ""
    build_number: int | None = None
    commit: str | None = None
    branch: str | None = None
    tag: str | None = None
    when: float = 0.0
    """When the version is made (seconds since the epoch)."""

    def fields(self) -> dict[str, str | None]:
        when = self.when or time.time()
        number = None if self.build_number is None else str(self.build_number)
        return {
            "run_number": number,
            "build_number": number,
            "commit": self.commit,
            "short_commit": self.commit[:12] if self.commit else None,
            "branch": self.branch,
            "tag": self.tag,
            "date": time.strftime("%Y%m%d", time.gmtime(when)),
            "timestamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when)),
            "pipeline": self.pipeline,
            "job": self.job,
        }


def safe(value: str) -> str:
    """A value made fit for a version: each run of other characters one '-'."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", value)


def make_version(spec: ArtifactSpec, facts: Facts, job_dir: str) -> tuple[str, str]:
    """(the version, where it came from: 'literal', 'template ...', 'git describe',
    'pyproject.toml', 'build number'). `job_dir`: the job's directory, absolute."""
    values = facts.fields()
    template = spec.version
    source: str
    if spec.version_from is not None:
        values["version"] = from_source(spec.version_from, job_dir)
        source = "git describe" if spec.version_from == "git" else spec.version_from
        template = template or "{{ version }}"
    elif template is None:
        if facts.build_number is None:
            raise VersionError("no build number to version the artifact with")
        template = "{{ run_number }}"
        source = "build number"
    else:
        source = "literal" if "{{" not in template else f"template {template}"
    try:
        parts = parse(template, with_version="version" in values)
    except ValueError as exc:
        raise VersionError(str(exc)) from None
    out = []
    for is_field, text in parts:
        if not is_field:
            out.append(text)
            continue
        value = values.get(text)
        if not value:
            raise VersionError(
                f"the version template {template!r} names {{{{ {text} }}}}, which this run "
                f"has no value for ({_why_none(text)})"
            )
        out.append(safe(value))
    version = "".join(out)
    if not ALLOWED.fullmatch(version):
        raise VersionError(f"the version {version!r} is not one: {describe_allowed()}")
    return version, source


def _why_none(field: str) -> str:
    return {
        "tag": "the commit has no tag",
        "branch": "HEAD is detached",
        "commit": "not a git checkout, or no commit yet",
        "short_commit": "not a git checkout, or no commit yet",
    }.get(field, "not known")


def from_source(source: str, job_dir: str) -> str:
    """The version a source states: git describe, or a manifest's version field."""
    if source == "git":
        from conveyor.workspace.git import GitError, describe

        try:
            return describe(job_dir)
        except GitError as exc:
            raise VersionError(f"git describe found no version: {exc}") from None
        except OSError as exc:
            raise VersionError(f"git describe could not run: {exc}") from None
    path = os.path.join(job_dir, source)
    kind = os.path.basename(source)
    try:
        if kind == "package.json":
            with open(path, encoding="utf-8") as fh:
                data: Any = json.load(fh)
            version = data.get("version") if isinstance(data, dict) else None
            where = "its 'version'"
        else:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            if kind == "pyproject.toml":
                version, where = _pyproject(data)
            else:
                version, where = _cargo(data, path)
    except FileNotFoundError:
        raise VersionError(f"{source} not found (in {job_dir})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise VersionError(f"{source} cannot be read: {exc}") from None
    if not isinstance(version, str) or not version.strip():
        raise VersionError(f"{source} states no version ({where})")
    return version.strip()


def _pyproject(data: dict[str, Any]) -> tuple[Any, str]:
    project = data.get("project")
    if isinstance(project, dict):
        if "version" in (project.get("dynamic") or []):
            return None, "[project] version is dynamic: set by the build backend, not the file"
        if "version" in project:
            return project["version"], "[project] version"
    poetry = data.get("tool", {}).get("poetry")
    if isinstance(poetry, dict) and "version" in poetry:
        return poetry["version"], "[tool.poetry] version"
    return None, "no [project] or [tool.poetry] version"


def _cargo(data: dict[str, Any], path: str) -> tuple[Any, str]:
    package = data.get("package")
    version = package.get("version") if isinstance(package, dict) else None
    if isinstance(version, dict) and version.get("workspace") is True:
        # `version.workspace = true`: the workspace's [workspace.package] version, in
        # this file or the nearest Cargo.toml above that has a [workspace].
        here = os.path.dirname(os.path.abspath(path))
        while True:
            found = _workspace_version(os.path.join(here, "Cargo.toml"))
            if found is not None:
                return found, "[workspace.package] version"
            parent = os.path.dirname(here)
            if parent == here:
                return None, "version.workspace = true, and no [workspace.package] version"
            here = parent
    return version, "[package] version"


def _workspace_version(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError):
        return None
    version = data.get("workspace", {}).get("package", {}).get("version")
    return version if isinstance(version, str) else None
