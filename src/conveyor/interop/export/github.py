"""conveyor.yml as a GitHub Actions workflow (`conveyor export github`).

Each job becomes a workflow job of the same name (an id GitHub accepts, the name kept
as `name:`): its needs (a need of one matrix instance becomes a need of the whole job:
GitHub has no finer one), its matrix (Conveyor's matrix is GitHub's: include/exclude
alike), its `if:` in GitHub's expression language, `timeout-minutes`,
`continue-on-error` for `allow_failure`, its env and secrets, its commands as `run`
steps in its `dir` with its shell, retries as a loop, values ($CONVEYOR_OUTPUT) as job
outputs, dependency caches as actions/cache keyed with hashFiles, artifacts and reports
as uploaded artifacts kept as long as `expire_in` says. Gates become a last job that
needs every other, downloads the reports and runs `conveyor gates` on them.

Third-party actions are pinned to full commit SHAs (the tag in a comment): what a tag
names can change under a workflow.
"""

from __future__ import annotations

import math
import re
from typing import Any

from conveyor import expressions, model
from conveyor.errors import ConfigError
from conveyor.interop.export import bases, has_gates

CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"  # v7.0.1
CACHE = "actions/cache@55cc8345863c7cc4c66a329aec7e433d2d1c52a9"  # v6.1.0
UPLOAD = "actions/upload-artifact@043fb46d1a93c77aae656e7c1c64a875d1fc6a0a"  # v7.0.1
DOWNLOAD = "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c"  # v8.0.1
PINS = {CHECKOUT: "v7.0.1", CACHE: "v6.1.0", UPLOAD: "v7.0.1", DOWNLOAD: "v8.0.1"}

_ID = re.compile(r"[^A-Za-z0-9_-]+")
_EVENTS = {"manual": "workflow_dispatch", "tag": "push"}
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def job_id(name: str) -> str:
    """A workflow job id for a Conveyor job name: letters, digits, '-' and '_', not
    starting with a digit or '-'."""
    ident = _ID.sub("-", name).strip("-") or "job"
    return ident if re.match(r"[A-Za-z_]", ident) else f"j-{ident}"


def condition(source: str) -> str:
    """A Conveyor `if:` in GitHub's expression language."""
    node = expressions.parse(source.strip().removeprefix("${{").removesuffix("}}").strip())
    return _expr(node)


def _expr(node: expressions.Node) -> str:
    if isinstance(node, expressions.Literal):
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(int(value)) if float(value).is_integer() else str(value)
        if isinstance(value, tuple):
            raise ConfigError("a list in `if:` cannot be written for GitHub")
        return "'" + str(value).replace("'", "''") + "'"
    if isinstance(node, expressions.Name):
        return _name(node)
    if isinstance(node, expressions.Not):
        return f"!({_expr(node.operand)})"
    if isinstance(node, expressions.BoolOp):
        op = "&&" if node.op == "and" else "||"
        return f"({_expr(node.left)} {op} {_expr(node.right)})"
    if isinstance(node, expressions.Compare):
        if node.op in ("=~", "!~", "in"):
            raise ConfigError(
                f"'{node.op}' has no equivalent in GitHub's expressions",
                hint="use startsWith/endsWith/contains, or == on the exact value",
            )
        return f"{_expr(node.left)} {node.op} {_expr(node.right)}"
    if isinstance(node, expressions.Call):
        if node.func == "matches":
            raise ConfigError("matches() has no equivalent in GitHub's expressions")
        return f"{node.func}({', '.join(_expr(a) for a in node.args)})"
    if isinstance(node, expressions.ListExpr):
        raise ConfigError("a list in `if:` cannot be written for GitHub")
    raise ConfigError(f"cannot write {node!r} for GitHub")


def _name(node: expressions.Name) -> str:
    scope, name = node.scope, node.name
    if scope is None or scope == "run":
        if name == "branch":
            return "github.ref_name"
        if name == "tag":
            return "(github.ref_type == 'tag' && github.ref_name || '')"
        if name == "commit":
            return "github.sha"
        if name == "event":
            # Conveyor's event names: push, pull_request, tag, schedule, manual.
            return (
                "(github.ref_type == 'tag' && 'tag' || "
                "github.event_name == 'workflow_dispatch' && 'manual' || github.event_name)"
            )
        if name == "ci":
            return "'github'"
        if name == "number":
            return "github.run_number"
        raise ConfigError(f"run.{name} has no equivalent on GitHub")
    if scope == "needs":
        if ".values." in name:
            job, _, key = name.partition(".values.")
            return f"needs.{job_id(job)}.outputs.{key}"
        job = name.removesuffix(".result")
        return f"needs.{job_id(job)}.result"
    return f"{scope}.{name}"


def _text(value: str) -> str:
    """A string field's `${{ }}` references in GitHub's terms."""

    def one(m: re.Match[str]) -> str:
        inner = m.group(1).strip()
        try:
            return "${{ " + _expr(expressions.parse(inner)) + " }}"
        except expressions.ExpressionError:
            return m.group(0)

    return _TEMPLATE.sub(one, value)


def _shell(shell: tuple[str, ...]) -> str:
    if shell in (("bash",), ()) or (shell[:1] == ("bash",) and "-eo" in shell):
        return "bash"
    if shell[:1] == ("sh",):
        return "sh"
    if shell[:1] in (("python",), ("python3",)):
        return "python"
    args = [a for a in shell if a not in ("-c", "-e", "-ec")]
    return " ".join([*args, "{0}"])


def _retry(script: str, retries: model.Retry) -> str:
    if retries.max <= 0:
        return script
    delay = max(1, int(retries.delay))
    return (
        f"for attempt in $(seq 1 {retries.max + 1}); do\n"
        f"  if (\n{script}\n  ); then exit 0; fi\n"
        f'  echo "attempt $attempt failed"; sleep {delay}\n'
        "done\nexit 1"
    )


def _allowed_codes(script: str, job: model.Job) -> str:
    """`allow_failure: {exit_codes}`: GitHub allows a job's failure whatever its code
    (`continue-on-error`), so the step itself lets those codes pass, and says so."""
    if not (job.allow_failure and job.allow_exit_codes):
        return script
    codes = " ".join(str(c) for c in job.allow_exit_codes)
    return (
        f'(\n{script}\n) || {{ code=$?; case " {codes} " in *" $code "*)\n'
        '  echo "::warning::exit code $code allowed (allow_failure)"; exit 0;; esac\n'
        "  exit $code; }"
    )


def _cache_key(key: str) -> str:
    out = re.sub(r"\{\{\s*os\s*\}\}", "${{ runner.os }}", key)
    out = re.sub(r"\{\{\s*arch\s*\}\}", "${{ runner.arch }}", out)
    out = re.sub(r"\{\{\s*(hashFiles\([^}]*\))\s*\}\}", r"${{ \1 }}", out)
    return re.sub(r"\{\{\s*(matrix\.[A-Za-z0-9_-]+)\s*\}\}", r"${{ \1 }}", out)


def _days(seconds: float | None) -> int | None:
    if seconds is None:
        return None
    return max(1, min(90, math.ceil(seconds / 86400)))


def export(pipeline: model.Pipeline, raw_jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The workflow's data. `raw_jobs`: each job as written, templates merged
    (`config.build.merged_jobs`): its `run`, `env` and `matrix` with their `${{ }}`,
    which the pipeline holds filled in per matrix instance."""
    base_of = bases(pipeline)
    by_base: dict[str, list[model.Job]] = {}
    for job in pipeline.jobs:
        by_base.setdefault(job.base, []).append(job)
    read_values: dict[str, set[str]] = {}
    for job in pipeline.jobs:
        for text in (*job.run, *(v for _, v in job.env), job.condition or "", job.dir):
            for m in re.finditer(
                r"needs\.([^\s.]+(?:\s\([^)]*\))?)\.values\.([A-Za-z0-9_-]+)", text
            ):
                read_values.setdefault(m.group(1), set()).add(m.group(2))
    jobs: dict[str, Any] = {}
    reports: list[str] = []
    for base, instances in by_base.items():
        job = instances[0]
        ident = job_id(base)
        out: dict[str, Any] = {}
        if ident != base:
            out["name"] = base
        out["runs-on"] = "ubuntu-latest"
        needs = sorted({job_id(base_of.get(n, n)) for i in instances for n in i.needs})
        if needs:
            out["needs"] = needs
        cond = _condition(job)
        if cond:
            out["if"] = cond
        if job.timeout is not None:
            out["timeout-minutes"] = max(1, math.ceil(job.timeout / 60))
        else:
            out["timeout-minutes"] = 60  # GitHub's default is 6 hours: a hung job is found sooner
        if job.allow_failure and not job.allow_exit_codes:
            out["continue-on-error"] = True
        raw = raw_jobs.get(base, {})
        matrix = raw.get("matrix")
        if matrix:
            if isinstance(matrix, str):
                raise ConfigError(
                    f"job '{base}': a matrix computed by another job cannot be exported",
                    hint="write the matrix out in conveyor.yml",
                )
            out["strategy"] = {"fail-fast": True, "matrix": matrix}
        env = {str(k): _text(str(v)) for k, v in (raw.get("env") or {}).items()}
        for secret in job.secrets:
            env[secret] = f"${{{{ secrets.{secret} }}}}"
        if env:
            out["env"] = env
        if job.dir != ".":
            out["defaults"] = {"run": {"working-directory": job.dir}}
        steps: list[dict[str, Any]] = [{"uses": CHECKOUT, "with": {"persist-credentials": False}}]
        for i, cache in enumerate(job.caches):
            steps.append(
                {
                    "name": f"restore cache {cache.key.split('-')[0] or i}",
                    "uses": CACHE,
                    "with": {
                        "path": "\n".join(cache.paths),
                        "key": _cache_key(cache.key),
                        **(
                            {"restore-keys": "\n".join(_cache_key(k) for k in cache.restore_keys)}
                            if cache.restore_keys
                            else {}
                        ),
                    },
                }
            )
        values = sorted(read_values.get(base, set()))
        shell = _shell(job.shell)
        commands = raw.get("run", job.run)
        commands = [commands] if isinstance(commands, str) else list(commands)
        for i, command in enumerate(commands):
            script = _allowed_codes(_retry(_text(command), job.retry), job)
            step: dict[str, Any] = {"name": _text(command.strip().split("\n")[0][:80])}
            if values:
                # Each command's values, from its own step's $GITHUB_OUTPUT.
                step["id"] = f"run-{i}"
                script = 'export CONVEYOR_OUTPUT="$GITHUB_OUTPUT"\n' + script
            steps.append({**step, "run": script, "shell": shell})
        if values:
            out["outputs"] = {
                v: "${{ "
                + " || ".join(f"steps.run-{i}.outputs.{v}" for i in reversed(range(len(commands))))
                + " }}"
                for v in values
            }
        upload = [
            *job.reports.junit,
            *job.reports.coverage,
            *job.reports.sarif,
            *job.reports.codequality,
        ]
        if upload:
            reports.append(ident)
            steps.append(
                {
                    "name": "upload reports",
                    "if": "always()",
                    "uses": UPLOAD,
                    "with": {
                        "name": f"reports-{ident}"
                        + ("-${{ strategy.job-index }}" if matrix else ""),
                        "path": "\n".join(_in_dir(job.dir, p) for p in upload),
                        "retention-days": 14,
                        "if-no-files-found": "ignore",
                    },
                }
            )
        if job.artifacts is not None:
            art = job.artifacts
            steps.append(
                {
                    "name": "upload artifacts",
                    **(
                        {"if": "always()"}
                        if art.when == "always"
                        else {"if": "failure()"}
                        if art.when == "on_failure"
                        else {}
                    ),
                    "uses": UPLOAD,
                    "with": {
                        "name": (art.name or ident)
                        + ("-${{ strategy.job-index }}" if matrix else ""),
                        "path": "\n".join(_in_dir(job.dir, p) for p in art.paths),
                        "retention-days": _days(art.expire_in) or 30,
                    },
                }
            )
        out["steps"] = steps
        jobs[ident] = out
    if has_gates(pipeline):
        jobs["gates"] = _gates_job(list(jobs), reports)
    workflow: dict[str, Any] = {"name": pipeline.name or "conveyor"}
    workflow["on"] = {"push": {}, "pull_request": {}, "workflow_dispatch": {}}
    workflow["permissions"] = {"contents": "read"}
    if pipeline.env:
        workflow["env"] = {k: _text(v) for k, v in pipeline.env}
    workflow["jobs"] = jobs
    return workflow


def _in_dir(directory: str, path: str) -> str:
    return path if directory == "." else f"{directory}/{path}"


def _condition(job: model.Job) -> str | None:
    parts = []
    if job.when == "on_failure":
        parts.append("failure()")
    elif job.when == "always":
        parts.append("always()")
    elif job.when == "manual":
        parts.append("github.event_name == 'workflow_dispatch'")
    if job.condition is not None:
        parts.append(condition(job.condition))
    return " && ".join(parts) if parts else None


def _gates_job(needs: list[str], reports: list[str]) -> dict[str, Any]:
    return {
        "name": "quality gates",
        "runs-on": "ubuntu-latest",
        "needs": needs,
        "if": "always()",
        "timeout-minutes": 15,
        "steps": [
            {"uses": CHECKOUT, "with": {"persist-credentials": False}},
            *(
                [{"uses": DOWNLOAD, "with": {"pattern": "reports-*", "merge-multiple": True}}]
                if reports
                else []
            ),
            {"run": "python3 -m pip install conveyor-ci\nconveyor gates", "shell": "bash"},
        ],
    }
