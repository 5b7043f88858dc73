"""A loaded pipeline made concrete for one run: its `${{ env.X }}`, `${{ vars.X }}` and
`${{ run.X }}` expressions filled in (plan time), with `--var` overrides applied.

Matrix values were filled in when the file was loaded (`config.build`), and secrets are
filled in only when a job starts (`executor.environment`), so a secret's value is never
in a plan, a cache key or the history. What is filled in here is part of every cache
key that reads it, like any other text of the job: a job whose command names
`${{ run.branch }}` is keyed on the branch; one that does not, is not.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping, Sequence

from conveyor import model
from conveyor.config.paths import (
    ARTIFACT,
    CACHE,
    OUTPUT,
    REPORT,
    Written,
    check_input,
    check_written,
)
from conveyor.errors import ConfigError, UsageError

PLAN_CONTEXTS = ("matrix", "env", "vars", "run")
"""What is known once the run is planned; `secrets` waits for the job to start."""


def parse_vars(pairs: Sequence[str], declared: Iterable[str]) -> dict[str, str]:
    """`--var NAME=VALUE` options as a mapping; a name `vars:` does not declare is refused
    (a typo would otherwise be silently ignored)."""
    known = list(declared)
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE", hint="e.g. --var channel=beta")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(
                f"--var {name}: no such variable{hint}",
                hint="declare it under the top-level 'vars:' of the pipeline file "
                f"(declared: {', '.join(known) or 'none'})",
            )
        out[name] = value
    return out


def uses(pipeline: model.Pipeline, needle: str) -> bool:
    """Whether any job's text names `needle` (e.g. 'run.number') in an expression."""
    for job in pipeline.jobs:
        if job.condition is not None and needle in job.condition:
            return True
        if job.deferred and any(needle in text for text in job_texts(job)):
            return True
    return False


def job_texts(job: model.Job) -> Iterable[str]:
    """Every string field of a job that may hold an expression (but `if:`)."""
    yield from job.run
    yield from (v for _k, v in job.env)
    yield job.dir
    yield from job.inputs
    yield from job.outputs
    if job.artifacts is not None:
        yield from job.artifacts.paths
        if job.artifacts.name is not None:
            yield job.artifacts.name
        if job.artifacts.version is not None:
            yield job.artifacts.version
    for cache in job.caches:
        yield cache.key
        yield from cache.paths
        yield from cache.restore_keys


def resolve(
    pipeline: model.Pipeline,
    context: model.RunContext,
    environ: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> model.Pipeline:
    """The pipeline with every plan-time expression filled in, or the same pipeline
    when it has none. A path that a value takes outside the workspace is a ConfigError
    at the field that named it."""
    variables = {**dict(pipeline.vars), **(overrides or {})}
    jobs = []
    changed = bool(overrides)
    run = context.values()
    for job in pipeline.jobs:
        if job.deferred:
            job = _resolve_job(job, pipeline, environ, variables, run, context)
            changed = True
        jobs.append(job)
    if not changed:
        return pipeline
    return dataclasses.replace(pipeline, jobs=tuple(jobs), vars=tuple(variables.items()))


def resolve_job(
    job: model.Job,
    pipeline: model.Pipeline,
    context: model.RunContext,
    environ: Mapping[str, str],
) -> model.Job:
    """One job of a resolved pipeline made concrete as `resolve` does (an instance of a
    matrix another job computed, made once the run is under way)."""
    if not job.deferred:
        return job
    return _resolve_job(job, pipeline, environ, dict(pipeline.vars), context.values(), context)


def _resolve_job(
    job: model.Job,
    pipeline: model.Pipeline,
    environ: Mapping[str, str],
    variables: Mapping[str, str],
    run: Mapping[str, str],
    context: model.RunContext,
) -> model.Job:
    # Here, not at the top: only a job with expressions left needs the language, whose
    # node dataclasses cost some 16 ms to define on every run otherwise.
    from conveyor import expressions

    facts: dict[str, str | None] = {
        "branch": context.branch,
        "tag": context.tag,
        "commit": context.commit,
        "event": context.event,
        "ci": context.ci,
    }
    matrix = dict(job.matrix)
    contexts = {"vars": dict(variables), "run": dict(run)}
    # An env value may not read env: it is rendered first, then the rest reads it.
    first = expressions.Scope(values=facts, env={}, matrix=matrix, contexts=contexts)
    env = tuple((k, expressions.render(v, first, only=PLAN_CONTEXTS)) for k, v in job.env)
    known = dict(env)
    for name in job.pass_env:
        known[name] = environ.get(name, "")
    for name in job.secrets:
        known.pop(name, None)
    scope = expressions.Scope(values=facts, env=known, matrix=matrix, contexts=contexts)
    where = ("jobs", job.base)

    def sub(text: str) -> str:
        return expressions.render(text, scope, only=PLAN_CONTEXTS)

    def written(
        values: Sequence[str], field: tuple[str | int, ...], kind: Written
    ) -> tuple[str, ...]:
        out = []
        for i, value in enumerate(values):
            text = sub(value)
            if text != value:
                check_written(text, directory, (*where, *field, i), kind)
            out.append(text)
        return tuple(out)

    directory = sub(job.dir)
    if directory != job.dir:
        directory = _inside(directory, (*where, "dir"))
    inputs = []
    for i, value in enumerate(job.inputs):
        text = sub(value)
        if text != value:
            check_input(text, directory, (*where, "inputs", i))
        inputs.append(text)
    reports = model.Reports(
        junit=written(job.reports.junit, ("reports", "junit"), REPORT),
        coverage=written(job.reports.coverage, ("reports", "coverage"), REPORT),
        sarif=written(job.reports.sarif, ("reports", "sarif"), REPORT),
        codequality=written(job.reports.codequality, ("reports", "codequality"), REPORT),
    )
    artifacts = job.artifacts
    if artifacts is not None:
        artifacts = dataclasses.replace(
            artifacts,
            paths=written(artifacts.paths, ("artifacts", "paths"), ARTIFACT),
            name=sub(artifacts.name) if artifacts.name is not None else None,
            version=sub(artifacts.version) if artifacts.version is not None else None,
        )
    caches = tuple(
        model.CacheSpec(
            key=sub(c.key),
            paths=written(c.paths, ("caches", i, "paths"), CACHE),
            restore_keys=tuple(sub(k) for k in c.restore_keys),
        )
        for i, c in enumerate(job.caches)
    )
    return dataclasses.replace(
        job,
        run=tuple(sub(cmd) for cmd in job.run),
        env=env,
        dir=directory,
        inputs=tuple(inputs),
        outputs=written(job.outputs, ("outputs",), OUTPUT),
        reports=reports,
        artifacts=artifacts,
        caches=caches,
    )


def _inside(value: str, path: tuple[str | int, ...]) -> str:
    import posixpath

    norm = posixpath.normpath(value)
    if value.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ConfigError(
            f"dir must be a relative path inside the workspace, got {value!r}", path=path
        )
    return norm
