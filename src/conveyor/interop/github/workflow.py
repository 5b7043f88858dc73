"""A GitHub Actions workflow as a Conveyor pipeline: each job of the workflow that the
event triggers becomes a job of conveyor.yml (`needs`, `strategy.matrix`, `if`,
`timeout-minutes`, `continue-on-error` carried over), whose command is the step runner
(`conveyor.interop.github.steps`) given the job's steps.

Evaluated here, before the run, as GitHub does when it plans a workflow: which
workflows and jobs the event triggers, the static parts of each job's `if:` (github,
inputs, vars, matrix), and what cannot run on this machine (other repositories'
actions, `services:`, `container:`), reported with the jobs' names.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConfigError
from conveyor.interop.github import expr
from conveyor.interop.github.actions import standin_of
from conveyor.interop.github.steps import DEFAULT_STRATEGY, runtime_github

SPEC_ENV = "CONVEYOR_GHA_JOB"
"""The step runner's instructions (JSON), in the job's environment."""


@dataclass
class Options:
    """How the workflow is to be run: the event, its inputs, and what is done with jobs
    this machine cannot run."""

    event: str = "push"
    inputs: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    on_unsupported: str = "skip"  # skip | fail
    env: Mapping[str, str] = field(default_factory=dict)
    """`--env-file`: the env context's outermost values."""
    secrets: tuple[str, ...] = ()
    """`--secret-file`'s names (their values are in the run's environment)."""
    branch: str | None = None
    sha: str | None = None
    event_payload: Mapping[str, Any] | None = None


@dataclass
class Translation:
    data: dict[str, Any]
    """conveyor.yml's data."""
    root: str
    notes: list[str]
    """What the user must know before the run (jobs not runnable here, and why)."""


def looks_like_workflow(path: str, data: Any) -> bool:
    """A GitHub workflow: under .github/workflows, or `on:` beside jobs with steps."""
    norm = path.replace(os.sep, "/")
    if "/.github/workflows/" in f"/{norm}":
        return True
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        return False
    if "on" not in data and True not in data:  # YAML 1.1 reads a bare `on` as true
        return False
    return any(
        isinstance(j, dict) and ("runs-on" in j or "steps" in j or "uses" in j)
        for j in data["jobs"].values()
    )


def workspace_root(path: str) -> str:
    """The repository a workflow belongs to: above `.github/workflows`, else the git
    checkout the file is in, else its directory."""
    absolute = os.path.abspath(path)
    parts = absolute.replace(os.sep, "/").split("/")
    if len(parts) >= 3 and parts[-3:-1] == [".github", "workflows"]:
        return "/".join(parts[:-3]) or "/"
    here = os.path.dirname(absolute)
    cur = here
    while True:
        if os.path.exists(os.path.join(cur, ".git")):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return here
        cur = parent


def _triggers(data: dict[Any, Any]) -> dict[str, Any]:
    on = data.get("on", data.get(True))  # `on:` is YAML 1.1's boolean to some loaders
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {str(e): {} for e in on}
    if isinstance(on, dict):
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in on.items()}
    raise ConfigError("the workflow has no `on:` (the events that trigger it)", path=("on",))


def _branch_matches(patterns: Sequence[str], branch: str) -> bool:
    from conveyor.workspace.globs import glob_regex

    ok = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if glob_regex(pattern[1:] if negate else pattern).fullmatch(branch):
            ok = not negate
    return ok


def triggered(data: dict[str, Any], opts: Options) -> str | None:
    """None when the event triggers the workflow, else why not."""
    on = _triggers(data)
    if opts.event not in on:
        return f"`on:` does not list {opts.event} (it lists {', '.join(on) or 'nothing'})"
    spec = on[opts.event] or {}
    branch = opts.branch or ""
    if opts.event in ("push", "pull_request", "pull_request_target") and branch:
        if "branches" in spec and not _branch_matches(_strs(spec["branches"]), branch):
            return f"branch {branch!r} is not in on.{opts.event}.branches"
        if "branches-ignore" in spec and _branch_matches(_strs(spec["branches-ignore"]), branch):
            return f"branch {branch!r} is in on.{opts.event}.branches-ignore"
    return None


def _strs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _inputs(data: dict[str, Any], opts: Options) -> dict[str, Any]:
    """The `inputs` context: workflow_dispatch's (or workflow_call's) declared inputs,
    given ones first, then defaults; booleans as booleans."""
    on = _triggers(data)
    declared = (on.get(opts.event) or {}).get("inputs") or {}
    given = dict(opts.inputs)
    payload = (opts.event_payload or {}).get("inputs") or {}
    out: dict[str, Any] = {}
    for name, spec in declared.items() if isinstance(declared, dict) else ():
        spec = spec if isinstance(spec, dict) else {}
        value = given.pop(name, payload.get(name, spec.get("default")))
        if value is None and spec.get("required"):
            raise ConfigError(
                f"the workflow's input '{name}' is required",
                path=("on", opts.event, "inputs", name),
                hint=f"give it with --input {name}=VALUE",
            )
        if spec.get("type") == "boolean":
            value = value is True or str(value).lower() == "true"
        out[name] = "" if value is None else value
    for name, value in given.items():
        out[name] = value
    return out


def _with_git_facts(opts: Options, root: str) -> Options:
    """The branch and commit the run is for, from the checkout (as GitHub would have
    them for a push of it)."""
    import dataclasses

    from conveyor.workspace import git

    def one(running: git.Running) -> str | None:
        out = running.output(timeout=10)
        return out.decode().strip() or None if out else None

    try:
        branch = opts.branch or one(git.start_branch(root))
        sha = opts.sha or one(git.start_head(root))
    except OSError:  # no git: the facts stay unknown
        return opts
    return dataclasses.replace(opts, branch=branch, sha=sha)


def github_context(root: str, opts: Options, workflow: str) -> dict[str, Any]:
    """The `github` context as the translation knows it (for a job's `if:`): the one
    the step runner builds as the job starts (`steps.runtime_github`), from this run's
    options instead of the job's environment."""
    payload = dict(opts.event_payload or {})
    if opts.event == "workflow_dispatch":
        payload.setdefault("inputs", dict(opts.inputs))
    facts = {
        "CONVEYOR_BRANCH": opts.branch or "",
        "CONVEYOR_COMMIT": opts.sha or "",
        "CONVEYOR_RUN_ID": time.strftime("%Y%m%d-%H%M%S") + "-0",
        "USER": os.environ.get("USER", "local"),
    }
    given = {"event_name": opts.event, "event": payload, "workflow": workflow}
    return runtime_github(given, facts, root)


def _unsupported(job: dict[str, Any], root: str) -> list[str]:
    """What in the job cannot run on this machine."""
    why = []
    if "services" in job:
        why.append("`services:` (containers)")
    if "container" in job:
        why.append("`container:`")
    if "uses" in job:
        why.append(f"the reusable workflow {job['uses']} (another repository's)")
    for step in job.get("steps") or []:
        if isinstance(step, dict) and "uses" in step:
            target = str(step["uses"])
            if target.startswith("docker://"):
                why.append(f"the container action {target}")
            elif target.startswith("./"):
                # A local action's problems fail its step when it runs (it may never).
                continue
            elif standin_of(target) is None:
                why.append(f"the action {target} (no local stand-in; runs only on GitHub)")
    return why


def _matrix(strategy: Any, env: expr.Env, where: tuple[str | int, ...]) -> dict[str, Any] | None:
    if not isinstance(strategy, dict) or "matrix" not in strategy:
        return None
    matrix = expr.render_value(strategy["matrix"], env)
    if not isinstance(matrix, dict):
        raise ConfigError("strategy.matrix must be a mapping", path=(*where, "strategy", "matrix"))
    out: dict[str, Any] = {}
    for key, values in matrix.items():
        if key in ("include", "exclude"):
            out[key] = [
                {k: _scalar(v, (*where, "strategy", "matrix", key)) for k, v in entry.items()}
                for entry in values or []
            ]
        else:
            if not isinstance(values, list):
                values = [values]
            out[key] = [_scalar(v, (*where, "strategy", "matrix", key)) for v in values]
    return out


def _scalar(value: Any, where: tuple[str | int, ...]) -> Any:
    """A matrix value as Conveyor's matrix takes it."""
    if isinstance(value, dict | list):
        # Conveyor's matrix values are scalars: a mapping or a list travels as its JSON
        # text, which the step runner reads back (`matrix.platform.os` works in steps).
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _secrets_used(value: Any) -> set[str]:

    found: set[str] = set()
    text = json.dumps(value)
    for m in re.finditer(r"secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)", text):
        if m.group(1) != "GITHUB_TOKEN":
            found.add(m.group(1))
    for m in re.finditer(r"secrets\s*\[\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\]", text):
        found.add(m.group(1))
    return found


def translate(path: str, data: Any, opts: Options) -> Translation:
    """The workflow in `data` (parsed from `path`) as conveyor.yml's data."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise ConfigError("a workflow needs a `jobs:` mapping", path=("jobs",))
    root = workspace_root(path)
    name = str(data.get("name") or os.path.relpath(path, root))
    notes: list[str] = []
    why_not = triggered(data, opts)
    if why_not is not None:
        raise ConfigError(
            f"the workflow does not run on {opts.event}: {why_not}",
            path=("on",),
            hint="pick the event with --event",
        )
    inputs = _inputs(data, opts)
    if opts.branch is None or opts.sha is None:
        opts = _with_git_facts(opts, root)
    github = github_context(root, opts, name)
    vars_ = dict(opts.vars)
    static = expr.Env(
        {"github": github, "inputs": inputs, "vars": vars_, "env": {}, "secrets": {}},
        root=root,
    )
    jobs: dict[str, Any] = {}
    from conveyor.interop.github.reusable import outputs_of as outputs_by_job

    outputs_of = outputs_by_job(data, root)
    python = shlex.quote(sys.executable)
    for jid, job in data["jobs"].items():
        where: tuple[str | int, ...] = ("jobs", str(jid))
        try:
            translate_job(
                jid, job, where, data, opts, static, outputs_of, python, root, notes, jobs
            )
        except expr.ExprError as exc:
            raise ConfigError(f"not supported here: {exc.message}", path=where) from None
    result = {"name": name, "jobs": jobs}
    return Translation(result, root, notes)


def translate_job(
    jid: Any,
    job: Any,
    where: tuple[str | int, ...],
    data: dict[str, Any],
    opts: Options,
    static: expr.Env,
    outputs_of: Mapping[str, Sequence[str]],
    python: str,
    root: str,
    notes: list[str],
    jobs: dict[str, Any],
    prefix: str = "",
    after: Sequence[str] = (),
    depth: int = 0,
) -> None:
    """One job of the workflow into `jobs` (conveyor.yml's). A job of a reusable workflow
    is named `prefix` + its id (`caller.job`) and also waits for `after` (the calling
    job's needs)."""
    if not isinstance(job, dict):
        raise ConfigError("a job must be a mapping", path=where)
    needs = job.get("needs") or []
    needs = [needs] if isinstance(needs, str) else [str(n) for n in needs]
    for need in needs:
        if need not in data["jobs"]:
            raise ConfigError(
                f"needs '{need}', which is not a job of the workflow", path=(*where, "needs")
            )
    if isinstance(job.get("uses"), str) and job["uses"].startswith("./"):
        from conveyor.interop.github.reusable import called

        called(
            jid,
            job,
            where,
            needs,
            opts,
            static,
            python,
            root,
            notes,
            jobs,
            prefix,
            after,
            depth,
        )
        return
    problems = _unsupported(job, root)
    out: dict[str, Any] = {"needs": [prefix + n for n in needs] + list(after), "cache": False}
    if problems:
        notes.append(f"job '{prefix}{jid}' cannot run on this machine: {'; '.join(problems)}")
        if opts.on_unsupported == "fail":
            out["run"] = [
                f"echo {shlex.quote('not runnable locally: ' + '; '.join(problems))} >&2; exit 1"
            ]
        else:
            out["run"] = ["true"]
            out["if"] = "false"
        jobs[prefix + str(jid)] = out
        return
    try:
        matrix = _matrix(job.get("strategy"), static, where)
    except expr.ExprError as exc:
        if "'needs'" in exc.message:
            raise ConfigError(
                "not supported: a matrix computed from a needed job's outputs",
                path=(*where, "strategy", "matrix"),
                hint="run it on GitHub, or write the matrix out (Conveyor's own "
                "conveyor.yml has matrices computed by a job)",
            ) from None
        raise ConfigError(f"strategy.matrix: {exc.message}", path=(*where, "strategy")) from None
    if matrix:
        out["matrix"] = matrix
    if "if" in job:
        cond = job["if"]
        if isinstance(cond, bool):
            cond = "true" if cond else "false"
        try:
            residual = expr.residual(str(cond), static, outputs_of, prefix)
        except expr.ExprError as exc:
            raise ConfigError(f"if: {exc.message}", path=(*where, "if")) from None
        if residual is not None:
            out["if"] = residual
    if "timeout-minutes" in job:
        try:
            minutes = expr.number(expr.render_value(job["timeout-minutes"], static))
        except expr.ExprError:  # per matrix instance, say: not known before the run
            minutes = math.nan
            notes.append(f"job '{jid}': timeout-minutes is not known before the run: none")
        if not math.isnan(minutes):
            out["timeout"] = f"{minutes * 60:g}s"
    coe = job.get("continue-on-error")
    try:
        allowed = coe is True or (
            isinstance(coe, str) and expr.truthy(expr.render_value(coe, static))
        )
    except expr.ExprError:  # per matrix instance: Conveyor's allow_failure is per job
        allowed = False
        notes.append(f"job '{jid}': continue-on-error is not known before the run: false")
    if allowed:
        out["allow_failure"] = True
    secrets = sorted(_secrets_used(job) | _secrets_used(data.get("env") or {}))
    aliased = static.contexts.get("__secret_from", {})
    if aliased:  # a called workflow's: read from the caller's variables
        secrets = sorted(
            ({s for s in secrets if s not in aliased})
            | {v for kind, v in aliased.values() if kind == "env"}
        )
    if opts.secrets:  # a secret file's: offered to every job (the runner masks them)
        secrets = sorted(set(secrets) | set(opts.secrets))
    if secrets:
        # Passed when set (an unset secret is '' on GitHub too), masked by the runner.
        out["pass_env"] = secrets
    env: dict[str, str] = {}
    needs_spec: dict[str, Any] = {}
    for i, need in enumerate(needs):
        result_var = f"CONVEYOR_GHA_N{i}"
        env[result_var] = f"${{{{ needs.{prefix}{need}.result }}}}"
        outs = {}
        for j, key in enumerate(outputs_of.get(need, [])):
            var = f"CONVEYOR_GHA_N{i}_{j}"
            env[var] = f"${{{{ needs.{prefix}{need}.values.{key} }}}}"
            outs[key] = var
        needs_spec[need] = {"result": result_var, "outputs": outs}
    # Each instance's values reach the job as CONVEYOR_MATRIX_<KEY> (a key only some
    # `include` entries add is absent from the others).
    matrix_spec = {
        key: f"CONVEYOR_MATRIX_{key.upper().replace('-', '_')}" for key in _matrix_keys(matrix)
    }
    spec = {
        "job": str(jid),
        "steps": job.get("steps") or [],
        "workflow_env": {**opts.env, **(data.get("env") or {})},
        "env": job.get("env") or {},
        "defaults": _defaults(data, job),
        "outputs": job.get("outputs") or {},
        "github": given_github(static.contexts["github"]),
        "inputs": static.contexts["inputs"],
        "vars": static.contexts["vars"],
        "secrets": secrets,
        "needs": needs_spec,
        "matrix": matrix_spec,
        "strategy": _strategy(job.get("strategy")),
        "on_unsupported": opts.on_unsupported,
        "secret_from": static.contexts.get("__secret_from", {}),
    }
    from conveyor.interop.github.caching import caches_of

    caches = caches_of(job, static, jid, notes)
    if caches:
        out["caches"] = caches
    env[SPEC_ENV] = spec_text(spec)
    out["env"] = env
    out["run"] = [f"{python} -m conveyor.interop.github.steps"]
    jobs[prefix + str(jid)] = out


def given_github(github: dict[str, Any]) -> dict[str, Any]:
    """What the step runner is told of the `github` context: what the run's facts do
    not give it as the job starts (`steps.runtime_github`)."""
    told = {"event_name": github["event_name"], "workflow": github["workflow"]}
    if github.get("event"):
        told["event"] = github["event"]
    return told


_RUNNER_DEFAULTS = [("on_unsupported", "skip"), ("strategy", DEFAULT_STRATEGY)]


def spec_text(spec: dict[str, Any]) -> str:
    """A job's instructions for the step runner as its JSON, what is empty left out
    (the runner's defaults), so that `conveyor import` shows what matters."""
    lean = {
        k: v
        for k, v in spec.items()
        if k in ("job", "steps") or (v not in ({}, [], "", None) and (k, v) not in _RUNNER_DEFAULTS)
    }
    # Conveyor fills `${{ }}` in env values: the runner's own are kept from it
    # (`\u007b` is `{` to JSON).
    return json.dumps(lean, sort_keys=True, indent=1, default=str).replace("${{", "$\\u007b{")


def _matrix_keys(matrix: dict[str, Any] | None) -> list[str]:
    if not matrix:
        return []
    keys = [k for k in matrix if k not in ("include", "exclude")]
    for entry in matrix.get("include") or []:
        keys.extend(k for k in entry if k not in keys)
    return keys


def _strategy(strategy: Any) -> dict[str, Any]:
    strategy = strategy if isinstance(strategy, dict) else {}
    return {
        "fail-fast": strategy.get("fail-fast", True),
        "max-parallel": strategy.get("max-parallel", ""),
        "job-index": 0,
        "job-total": 1,
    }


def _defaults(data: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for level in (data, job):
        defaults = (level.get("defaults") or {}).get("run") or {}
        if isinstance(defaults, dict):
            run.update(defaults)
    return run


__all__ = ["Options", "Translation", "looks_like_workflow", "translate"]
