"""conveyor.yml as a `.gitlab-ci.yml` (`conveyor export gitlab`).

Jobs keep their names and stages (one `build` stage when the file has none: `needs`
then orders the jobs, as Conveyor does); `needs: []` for a job that needs nothing, so
it starts at once. A matrix becomes `parallel: matrix` listing each instance Conveyor
expands (include and exclude applied: GitLab has neither), its values as variables
(`${{ matrix.python }}` is `$python`). `if:` becomes `rules:` in GitLab's expression
syntax; how the run goes (`when: on_failure|always|manual`) stays `when:`. Values a
job writes to $CONVEYOR_OUTPUT become a dotenv report, read by the jobs after it as
variables. Caches key on files, artifacts and reports keep their retention, retries
are GitLab's (at most 2), gates are a last job.
"""

from __future__ import annotations

import math
import re
from typing import Any

from conveyor import expressions, model
from conveyor.errors import ConfigError
from conveyor.interop.export import bases, has_gates

VALUES_FILE = "conveyor-values.env"
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_SOURCE = {
    "push": "push",
    "pull_request": "merge_request_event",
    "schedule": "schedule",
    "manual": "web",
}


def rule(source: str) -> str:
    """A Conveyor `if:` in GitLab's `rules: if:` syntax."""
    node = expressions.parse(source.strip().removeprefix("${{").removesuffix("}}").strip())
    return _expr(node)


def _quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _expr(node: expressions.Node) -> str:
    if isinstance(node, expressions.Literal):
        if node.value is None:
            return "null"
        if isinstance(node.value, bool | tuple):
            raise ConfigError("a boolean or a list in `if:` cannot be written for GitLab's rules")
        return _quote(node.value)
    if isinstance(node, expressions.Name):
        return _name(node)
    if isinstance(node, expressions.BoolOp):
        op = "&&" if node.op == "and" else "||"
        return f"({_expr(node.left)} {op} {_expr(node.right)})"
    if isinstance(node, expressions.Compare):
        if node.op in ("==", "!="):
            if isinstance(node.left, expressions.Name) and isinstance(
                node.right, expressions.Literal
            ):
                value = node.right.value
                if isinstance(node.left, expressions.Name) and _is_event(node.left):
                    value = _SOURCE.get(str(value), value)
                return f"{_expr(node.left)} {node.op} {_quote(value)}"
            return f"{_expr(node.left)} {node.op} {_expr(node.right)}"
        if node.op in ("=~", "!~") and isinstance(node.right, expressions.Literal):
            pattern = str(node.right.value).replace("/", "\\/")
            return f"{_expr(node.left)} {node.op} /{pattern}/"
        raise ConfigError(f"'{node.op}' cannot be written in GitLab's rules")
    if isinstance(node, expressions.Call):
        if node.func in ("startsWith", "endsWith") and isinstance(
            node.args[1], expressions.Literal
        ):
            text = re.escape(str(node.args[1].value)).replace("/", "\\/")
            pattern = f"^{text}" if node.func == "startsWith" else f"{text}$"
            return f"{_expr(node.args[0])} =~ /{pattern}/"
        raise ConfigError(
            f"{node.func}() cannot be written in GitLab's rules",
            hint="GitLab's rules compare variables (==, !=, =~) when the pipeline is made",
        )
    raise ConfigError("this `if:` cannot be written in GitLab's rules (a negation or a list)")


def _is_event(node: expressions.Name) -> bool:
    return node.name == "event" and node.scope in (None, "run")


def _name(node: expressions.Name) -> str:
    scope, name = node.scope, node.name
    if scope is None or scope == "run":
        names = {
            "branch": "$CI_COMMIT_BRANCH",
            "tag": "$CI_COMMIT_TAG",
            "commit": "$CI_COMMIT_SHA",
            "event": "$CI_PIPELINE_SOURCE",
            "number": "$CI_PIPELINE_IID",
        }
        if name in names:
            return names[name]
        if name == "ci":
            return "$GITLAB_CI"
    if scope in ("env", "vars", "matrix"):
        return f"${name}"
    raise ConfigError(
        f"{scope}.{name} is known only while the pipeline runs: GitLab decides rules "
        "when it makes the pipeline"
    )


def _text(value: str) -> str:
    """`${{ matrix.X }}`, `${{ vars.X }}`, `${{ env.X }}`, `${{ needs.J.values.X }}` as the
    variables GitLab gives the job."""

    def one(m: re.Match[str]) -> str:
        inner = m.group(1).strip()
        try:
            node = expressions.parse(inner)
        except expressions.ExpressionError:
            return m.group(0)
        if isinstance(node, expressions.Name):
            if node.scope in ("matrix", "vars", "env", "secrets"):
                return "${" + node.name + "}"
            if node.scope == "needs" and ".values." in node.name:
                return "${" + node.name.rpartition(".values.")[2] + "}"
            if node.scope in (None, "run"):
                return "${" + _name(node)[1:] + "}"
        raise ConfigError(f"`${{{{ {inner} }}}}` cannot be written for GitLab")

    return _TEMPLATE.sub(one, value)


def _duration(seconds: float) -> str:
    """In GitLab's words (`5 minutes`, `3 hours`, `3 days`), rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 120:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hours" if hours < 48 else f"{math.ceil(hours / 24)} days"


def _cache(cache: model.CacheSpec) -> dict[str, Any]:
    files = re.findall(r"hashFiles\(([^)]*)\)", cache.key)
    globs = [g for args in files for g in re.findall(r"'([^']*)'|\"([^\"]*)\"", args)]
    paths = [a or b for a, b in globs]
    prefix = re.split(r"\{\{", cache.key, maxsplit=1)[0].strip("-") or "deps"
    key: Any = {"files": paths[:2], "prefix": prefix} if paths else _text(cache.key)
    return {"key": key, "paths": list(cache.paths)}


def _needs(
    instances: list[model.Job], by_base: dict[str, list[model.Job]], base_of: dict[str, str]
) -> list[Any]:
    """A job's `needs`: a needed job by name, or, when only some of its matrix instances
    are needed, with `parallel: matrix:` picking those (GitLab waits for the picked
    ones only). Instances of one job share one list: what any of them needs."""
    wanted: dict[str, set[str]] = {}
    for job in instances:
        for need in job.needs:
            wanted.setdefault(base_of.get(need, need), set()).add(need)
    out: list[Any] = []
    for target in sorted(wanted):
        of = by_base.get(target, [])
        picked = [dict(j.matrix) for j in of if j.name in wanted[target]]
        if target not in wanted[target] and of and of[0].matrix and len(picked) < len(of):
            out.append({"job": target, "parallel": {"matrix": picked}})
        else:
            out.append(target)
    return out


def export(pipeline: model.Pipeline, raw_jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `.gitlab-ci.yml` data for the pipeline (`raw_jobs`: each job as written,
    templates merged, for its commands with their `${{ }}`)."""
    base_of = bases(pipeline)
    by_base: dict[str, list[model.Job]] = {}
    for job in pipeline.jobs:
        by_base.setdefault(job.base, []).append(job)
    producers = {
        m.group(1)
        for job in pipeline.jobs
        for text in (*job.run, *(v for _, v in job.env))
        for m in re.finditer(r"needs\.([^\s.]+)\.values\.", text)
    }
    stages = list(pipeline.stages) or ["build"]
    out: dict[str, Any] = {"stages": [*stages]}
    if pipeline.env:
        out["variables"] = {k: _text(v) for k, v in pipeline.env}
    names = []
    for base, instances in by_base.items():
        job = instances[0]
        raw = raw_jobs.get(base, {})
        body: dict[str, Any] = {"stage": job.stage or stages[0]}
        needs = _needs(instances, by_base, base_of)
        if needs or not pipeline.stages or job.needs_explicit:
            body["needs"] = needs
        if len(instances) > 1 or job.matrix:
            body["parallel"] = {"matrix": [dict(i.matrix) for i in instances]}
        variables = {str(k): _text(str(v)) for k, v in (raw.get("env") or {}).items()}
        if variables:
            body["variables"] = variables
        script = []
        if job.dir != ".":
            script.append(f"cd {job.dir}")
        if base in producers:
            script.append(f'export CONVEYOR_OUTPUT="$CI_PROJECT_DIR/{VALUES_FILE}"')
        commands = raw.get("run", job.run)
        for command in [commands] if isinstance(commands, str) else commands:
            script.append(_shell(job.shell, _text(str(command))))
        body["script"] = script
        if job.finally_run:
            body["after_script"] = [_text(c) for c in job.finally_run]
        rules = _rules(job)
        if rules:
            body["rules"] = rules
        elif job.when in ("on_failure", "always", "manual"):
            body["when"] = job.when
        if job.timeout is not None:
            body["timeout"] = _duration(job.timeout)
        if job.retry.max:
            body["retry"] = min(2, job.retry.max)
        if job.allow_failure:
            codes = list(job.allow_exit_codes)
            body["allow_failure"] = {"exit_codes": codes} if codes else True
        if job.resource_group:
            body["resource_group"] = job.resource_group
        if job.caches:
            body["cache"] = [_cache(c) for c in job.caches]
        artifacts = _artifacts(job, raw, base in producers)
        if artifacts:
            body["artifacts"] = artifacts
        out[base] = body
        names.append(base)
    if has_gates(pipeline):
        out["stages"].append("gates")
        out["quality gates"] = {
            "stage": "gates",
            "when": "always",
            "script": ["python3 -m pip install conveyor-ci", "conveyor gates"],
        }
    return out


def _shell(shell: tuple[str, ...], script: str) -> str:
    if not shell or shell[0] in ("bash", "sh"):
        return script
    program = " ".join(a for a in shell if a not in ("-c", "-e"))
    return f"{program} - <<'CONVEYOR_SCRIPT'\n{script}\nCONVEYOR_SCRIPT"


def _rules(job: model.Job) -> list[dict[str, Any]]:
    if job.condition is None:
        return []
    when = job.when if job.when in ("on_failure", "always", "manual") else "on_success"
    node = expressions.parse(job.condition.strip().removeprefix("${{").removesuffix("}}"))
    calls = expressions.status_calls(node)
    if calls:
        raise ConfigError(
            f"{calls[0].func}() in `if:` cannot be written in GitLab's rules",
            hint="say it with `when: on_failure|always` instead",
        )
    return [{"if": rule(job.condition), "when": when}]


def _artifacts(job: model.Job, raw: dict[str, Any], values: bool) -> dict[str, Any]:
    """Artifacts and reports; their paths as written, a matrix value as its variable
    (the pipeline holds one instance's)."""
    out: dict[str, Any] = {}
    paths = []
    prefix = "" if job.dir == "." else f"{job.dir}/"
    written = raw.get("reports") or {}

    def listed(value: Any) -> list[str]:
        return [_text(str(v)) for v in ([value] if isinstance(value, str) else value or [])]

    if job.artifacts is not None:
        art = raw.get("artifacts")
        art_paths = art if isinstance(art, str | list) else (art or {}).get("paths")
        paths = [prefix + p for p in listed(art_paths)]
        if job.artifacts.expire_in is not None:
            out["expire_in"] = _duration(job.artifacts.expire_in)
        if job.artifacts.when != "on_success":
            out["when"] = job.artifacts.when
    reports: dict[str, Any] = {}
    if job.reports.junit:
        reports["junit"] = [prefix + p for p in listed(written.get("junit"))]
    if job.reports.coverage:
        reports["coverage_report"] = {
            "coverage_format": "cobertura",
            "path": prefix + listed(written.get("coverage"))[0],
        }
    if job.reports.codequality:
        reports["codequality"] = [prefix + p for p in listed(written.get("codequality"))]
    if values:
        reports["dotenv"] = VALUES_FILE
    if paths:
        out["paths"] = paths
    if reports:
        out["reports"] = reports
        # A job failing its tests, or a linter exiting non-zero for what it found, still
        # wrote the report GitLab should show.
        failing_writes = job.reports.junit or job.reports.codequality
        out.setdefault("when", "always" if failing_writes else "on_success")
    return out
