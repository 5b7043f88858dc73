"""Where a job may write and what it may read: the paths of `conveyor.yml`, checked once.

A cache hit writes a job's outputs, report files and dependency caches back to the
paths the file names, so a path outside the workspace, in `.git` or in `.conveyor/`,
or the workspace itself, lets a cached result overwrite what is not the job's (issue
10: an absolute output was overwritten outside the workspace, and `.git` replaced in a
clone). Such paths are config errors, located like every other. The one exception is a
dependency cache under the home directory written `~/...` (`~/.cache/pip`), where
package managers keep theirs, as `actions/cache` allows. Inputs are only read, but one
outside the workspace is not a file Conveyor can list or hash like the others, so it is
an error too; `../x` from a `dir:` stays allowed while it remains inside.
"""

from __future__ import annotations

import posixpath
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.errors import ConfigError, ConfigPath
from conveyor.fsutil import STATE_DIR

if TYPE_CHECKING:  # the schema pulls in pydantic; a run that fills in values does not need it
    from conveyor.config import schema

_GLOB = frozenset("*?[")


class Written(NamedTuple):
    """One kind of path a job writes: how messages name it and a path that would do."""

    noun: str
    example: str
    home_ok: bool = False


OUTPUT = Written("output", "dist/")
REPORT = Written("report", "reports/junit.xml")
ARTIFACT = Written("artifact path", "dist/")
CACHE = Written("cache path", ".venv", home_ok=True)


def check_job_paths(
    spec: schema.JobFile, job_dir: str, where: ConfigPath, artifacts_raw: Any = None
) -> None:
    """Raise a ConfigError for the first path of the job (once in `job_dir`, the normalised
    `dir:` of one instance) that it must not write or read. `artifacts_raw` is the
    `artifacts:` value as written, whose short forms put the paths elsewhere in the file."""
    for i, value in enumerate(spec.outputs):
        check_written(value, job_dir, (*where, "outputs", i), OUTPUT)
    if spec.reports is not None:
        for kind, values in (
            ("junit", spec.reports.junit),
            ("coverage", spec.reports.coverage),
            ("sarif", spec.reports.sarif),
            ("codequality", spec.reports.codequality),
        ):
            for i, value in enumerate(values):
                check_written(value, job_dir, (*where, "reports", kind, i), REPORT)
    if spec.artifacts is not None:
        for i, value in enumerate(spec.artifacts.paths):
            if isinstance(artifacts_raw, list):
                at: ConfigPath = (*where, "artifacts", i)
            elif isinstance(artifacts_raw, str):
                at = (*where, "artifacts")
            else:
                at = (*where, "artifacts", "paths", i)
            check_written(value, job_dir, at, ARTIFACT)
    for i, cache in enumerate(spec.caches):
        for j, value in enumerate(cache.paths):
            check_written(value, job_dir, (*where, "caches", i, "paths", j), CACHE)
    for i, value in enumerate(spec.inputs):
        check_input(value, job_dir, (*where, "inputs", i))


def check_written(value: str, job_dir: str, path: ConfigPath, kind: Written) -> None:
    """A path the job writes (a glob is judged by its literal part) must be inside the
    workspace, outside `.git` and `.conveyor/`, and not the workspace itself."""
    noun = kind.noun
    if not value:
        raise ConfigError(
            f"{noun} must not be empty: name what the job writes, e.g. {kind.example!r}",
            path=path,
        )
    if value.startswith("~"):
        _check_home(value, path, kind)
        return
    if value.startswith("/"):
        home = ", or '~/...' under the home directory" if kind.home_ok else ""
        raise ConfigError(
            f"{noun} {value!r} is an absolute path: give a path relative to the job's dir, "
            f"inside the workspace{home}",
            path=path,
            hint=_restored(kind),
        )
    joined = posixpath.normpath(posixpath.join(job_dir, value))
    if joined == ".." or joined.startswith("../"):
        raise ConfigError(
            f"{noun} {value!r} leads outside the workspace{_from_dir(job_dir)}: give a path "
            "inside it, relative to the job's dir",
            path=path,
            hint=_restored(kind),
        )
    if joined == ".":
        raise ConfigError(
            f"{noun} {value!r} is the whole workspace{_from_dir(job_dir)}: name the files or "
            f"directories the job writes, e.g. {kind.example!r}",
            path=path,
        )
    parts = joined.split("/")
    git = next((i for i, part in enumerate(parts) if _may_be(part, ".git")), None)
    if git is not None:
        raise ConfigError(
            f"{noun} {value!r} {_is_in(parts, git, '.git')}, git's own files, which a cache "
            "hit would overwrite: give a path outside it",
            path=path,
        )
    if _may_be(parts[0], STATE_DIR):
        raise ConfigError(
            f"{noun} {value!r} {_is_in(parts, 0, STATE_DIR + '/')}, Conveyor's own state: "
            f"give a path outside it, e.g. {kind.example!r}",
            path=path,
        )


def check_input(value: str, job_dir: str, path: ConfigPath) -> None:
    """An input glob (or a '!' exclude) must stay inside the workspace; `../x` may leave
    the job's dir."""
    pattern = value[1:] if value.startswith("!") else value
    if pattern.startswith("/"):
        raise ConfigError(
            f"input {value!r} is an absolute path: inputs are files of the workspace, so give "
            "a glob relative to the job's dir",
            path=path,
            hint="a tool or file outside the workspace belongs in `tools:` (its version is "
            "part of the key) or in the workspace",
        )
    joined = posixpath.normpath(posixpath.join(job_dir, pattern))
    if joined == ".." or joined.startswith("../"):
        raise ConfigError(
            f"input {value!r} leads outside the workspace{_from_dir(job_dir)}: give a glob "
            "inside it, relative to the job's dir ('../x' may leave the dir, not the workspace)",
            path=path,
        )


def _check_home(value: str, path: ConfigPath, kind: Written) -> None:
    """`~/...`: allowed for dependency caches only, and only below the home directory."""
    if not kind.home_ok:
        raise ConfigError(
            f"{kind.noun} {value!r} is in the home directory: give a path inside the "
            "workspace, relative to the job's dir (only `caches:` paths may be '~/...')",
            path=path,
        )
    rest = posixpath.normpath(value[2:]) if value.startswith("~/") or value == "~" else None
    if rest is None:
        raise ConfigError(
            f"{kind.noun} {value!r} is not under your home directory: write '~/...' for a "
            "path under it, or a path inside the workspace",
            path=path,
        )
    if rest == ".":
        raise ConfigError(
            f"{kind.noun} {value!r} is the whole home directory: name the directory to cache, "
            "e.g. '~/.cache/pip'",
            path=path,
        )
    if rest == ".." or rest.startswith(("../", "/")):
        raise ConfigError(
            f"{kind.noun} {value!r} leads outside the home directory: give a path under it, "
            "e.g. '~/.cache/pip', or inside the workspace",
            path=path,
        )


def _restored(kind: Written) -> str:
    where = "inside the workspace" + (" or under '~/'" if kind.home_ok else "")
    return f"a cache hit writes what a job wrote back to the same paths, so they must be {where}"


def _is_in(parts: list[str], i: int, name: str) -> str:
    """'is .git', 'is in .git', 'is in a .git' (a nested one, a submodule's), or for a
    glob that may match it 'may be in .git'."""
    if parts[i] != name.rstrip("/"):
        return f"may be in {name}"
    named = name if i == 0 else f"a {name}"
    return f"is {named}" if i == len(parts) - 1 else f"is in {named}"


def _from_dir(job_dir: str) -> str:
    return "" if job_dir == "." else f" (from the job's dir {job_dir!r})"


def _may_be(part: str, name: str) -> bool:
    """Whether a path component is `name`, or a glob that may match it (glob matches a
    hidden name only with a leading '.', so `*` and `**` do not)."""
    if part == name:
        return True
    return part.startswith(".") and any(c in _GLOB for c in part) and fnmatchcase(name, part)
