"""A `.gitlab-ci.yml` as a Conveyor pipeline: the file is read as GitLab reads it
(`source`: includes, extends, `!reference`), the predefined `CI_*` variables come from
git, `workflow:rules`, each job's `rules` and `only`/`except` are evaluated before the
run (`rules`), and each job that GitLab would create becomes a job of conveyor.yml
(`jobs`), which `conveyor.config.build.build_pipeline` then validates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConfigError
from conveyor.interop.gitlab import rules
from conveyor.interop.gitlab.source import GLOBAL_KEYS, Source

DEFAULT_STAGES = ["build", "test", "deploy"]

_EVENT_SOURCE = {
    "push": "push",
    "tag": "push",
    "pull_request": "merge_request_event",
    "schedule": "schedule",
    "manual": "web",
}


@dataclass
class Options:
    """How the pipeline is to be run: the event, `--var` values, and what is done with
    jobs this machine cannot run."""

    event: str = "push"
    variables: Mapping[str, str] = field(default_factory=dict)
    on_unsupported: str = "skip"  # skip | fail


@dataclass
class Translation:
    data: dict[str, Any]
    """conveyor.yml's data."""
    root: str
    notes: list[str]
    source: Source
    names: dict[str, str] = field(default_factory=dict)
    """GitLab job name: the Conveyor job name (they differ where GitLab allows spaces...)."""


def looks_like_gitlab(path: str, data: Any) -> bool:
    """A GitLab pipeline: named `.gitlab-ci.yml`, or jobs with `script:` beside
    GitLab's keywords and no GitHub `on:`/`jobs:`."""
    if os.path.basename(path).endswith(".gitlab-ci.yml"):
        return True
    if not isinstance(data, dict) or "jobs" in data or "on" in data or True in data:
        return False
    return any(isinstance(v, dict) and "script" in v for v in data.values()) or (
        "stages" in data and "include" in data
    )


def predefined(root: str, opts: Options) -> dict[str, str]:
    """GitLab's predefined variables for a pipeline of this checkout."""
    from conveyor.workspace import git

    def ask(run: git.Running) -> str:
        out = run.output(timeout=10)
        return out.decode(errors="replace").strip() if out else ""

    branch = ask(git.start_branch(root))
    sha = ask(git.start_head(root))
    tags = ask(git.start_tags_at_head(root)).split()
    default = next((b for b in ("main", "master") if git.is_commit(root, b)), branch or "main")
    name = os.path.basename(os.path.abspath(root))
    env: dict[str, str] = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_SERVER": "yes",
        "CI_PIPELINE_SOURCE": _EVENT_SOURCE.get(opts.event, opts.event),
        "CI_PIPELINE_ID": "1",
        "CI_PIPELINE_IID": "1",
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_SHORT_SHA": sha[:8],
        "CI_COMMIT_BEFORE_SHA": "0" * 40,
        "CI_DEFAULT_BRANCH": default,
        "CI_PROJECT_DIR": root,
        "CI_BUILDS_DIR": os.path.dirname(root),
        "CI_PROJECT_NAME": name,
        "CI_PROJECT_PATH": f"local/{name}",
        "CI_PROJECT_NAMESPACE": "local",
        "CI_PROJECT_PATH_SLUG": f"local-{_slug(name)}",
        "CI_SERVER_HOST": "gitlab.com",
        "CI_SERVER_URL": "https://gitlab.com",
        "GITLAB_USER_LOGIN": os.environ.get("USER", "local"),
    }
    if opts.event == "tag" and tags:
        env["CI_COMMIT_TAG"] = tags[0]
        env["CI_COMMIT_REF_NAME"] = tags[0]
    else:
        env["CI_COMMIT_BRANCH"] = branch
        env["CI_COMMIT_REF_NAME"] = branch
        if opts.event == "pull_request":
            env["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] = branch
            env["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] = default
            env["CI_MERGE_REQUEST_IID"] = "1"
            del env["CI_COMMIT_BRANCH"]
    env["CI_COMMIT_REF_SLUG"] = _slug(env["CI_COMMIT_REF_NAME"])
    return env


def _slug(text: str) -> str:
    # GitLab's slug: lower case, [^a-z0-9] to '-', at most 63 characters, no '-' at the ends.
    return re.sub(r"[^a-z0-9]", "-", text.lower())[:63].strip("-")


def variables_of(spec: Any, where: tuple[str | int, ...]) -> dict[str, str]:
    """A `variables:` mapping as strings (a `{value: ...}` entry gives its value)."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError("variables: must be a mapping of names to values", path=where)
    out: dict[str, str] = {}
    for name, value in spec.items():
        if isinstance(value, dict):
            value = value.get("value", "")
        if isinstance(value, dict | list):
            raise ConfigError(
                f"variables: {name}: a value must be a string or a number", path=(*where, name)
            )
        out[str(name)] = "" if value is None else _text(value)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expand_all(values: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """`values` with `$VAR` references to `known` and to one another filled in."""
    out = dict(values)
    for _ in range(3):  # a reference to a reference, a few levels deep
        scope = {**known, **out}
        out = {k: rules.expand(v, scope) for k, v in out.items()}
    return out


def translate(path: str, opts: Options) -> Translation:
    """The pipeline in `path` as conveyor.yml's data."""
    from conveyor.interop.gitlab import jobs as jobs_mod
    from conveyor.interop.gitlab import source as source_mod

    root = os.path.dirname(os.path.abspath(path))
    context = predefined(root, opts)
    src = source_mod.load(path, root, {**context, **opts.variables})
    data = src.data
    notes: list[str] = []
    stages = data.get("stages", DEFAULT_STAGES)
    if isinstance(stages, str) or not isinstance(stages, list):
        raise ConfigError("stages: must be an array", path=("stages",))
    stages = [".pre", *[str(s) for s in stages if s not in (".pre", ".post")], ".post"]
    given = dict(opts.variables)
    globals_ = expand_all(variables_of(data.get("variables"), ("variables",)), context)
    scope = {**context, **globals_, **given}
    workflow = data.get("workflow")
    if isinstance(workflow, dict) and workflow.get("rules") is not None:
        outcome = jobs_mod.rules_outcome(workflow["rules"], scope, root, ("workflow", "rules"))
        if outcome is None or outcome.when == "never":
            raise ConfigError(
                "the pipeline does not run: no `workflow:rules` entry lets it (for "
                f"{scope.get('CI_PIPELINE_SOURCE')} on {scope.get('CI_COMMIT_REF_NAME')})",
                path=("workflow", "rules"),
                hint="pick the event with --event, or set variables with --var NAME=VALUE",
            )
        globals_.update(expand_all(outcome.variables, scope))
        scope = {**context, **globals_, **given}
    names = jobs_mod.conveyor_names([k for k in data if _is_job(k, data[k])])
    renamed = [f"'{g}' -> {c}" for g, c in names.items() if g != c]
    if renamed:
        notes.append(
            "jobs renamed (Conveyor's names are letters, digits and _ . : / -): "
            + ", ".join(renamed)
        )
    ctx = jobs_mod.Context(
        data=data,
        root=root,
        stages=stages,
        predefined=context,
        globals=globals_,
        given=given,
        names=names,
        opts=opts,
        notes=notes,
    )
    out_jobs = jobs_mod.translate_jobs(ctx)
    used = {str(j.get("stage")) for j in out_jobs.values()}
    result: dict[str, Any] = {
        "name": context["CI_PROJECT_NAME"],
        "stages": [s for s in stages if s in used] or ["test"],
        "jobs": out_jobs,
    }
    if given:  # declared, so that `conveyor run --var` accepts them
        result["vars"] = dict(given)
    return Translation(result, root, notes, src, names)


def _is_job(name: str, value: Any) -> bool:
    return name not in GLOBAL_KEYS and not name.startswith(".") and isinstance(value, dict)
