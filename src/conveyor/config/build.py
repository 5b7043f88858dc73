"""From parsed YAML to a validated `model.Pipeline`: extends, stages, needs, matrix, if.

Every problem is raised as a ConfigError carrying its config path; the caller
(`conveyor.config.load_pipeline`) adds line and column.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from conveyor import expressions, model
from conveyor.config import schema
from conveyor.config.errors_map import describe, from_validation_error
from conveyor.config.paths import check_job_paths
from conveyor.config.resolve import job_texts
from conveyor.errors import ConfigError, CycleError

JOB_NAME = re.compile(r"\.?[A-Za-z0-9_][A-Za-z0-9_.:/-]*")
SHELLS: dict[str, tuple[str, ...]] = {
    "bash": ("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"),
    "sh": ("sh", "-ec"),
    "python": ("python3", "-c"),
}
DEFAULT_SHELL = SHELLS["bash"]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def build_pipeline(data: Any, *, path: str, root: str) -> model.Pipeline:
    from pydantic import ValidationError

    if data is None:
        raise ConfigError("the file is empty", hint="a pipeline needs at least a 'jobs:' mapping")
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping at the top level (version, name, env, defaults, stages, jobs), "
            f"got {describe(data)}"
        )
    if "jobs" not in data:
        # `jbos:` is a misspelt `jobs:`: name the typo where it is, not the absence.
        typo = next(
            (k for k in data if isinstance(k, str) and _did_you_mean(k, ["jobs"])),
            None,
        )
        if typo is not None:
            raise ConfigError(
                f"unknown key '{typo}' (did you mean 'jobs'?)",
                path=(typo,),
                at_key=True,
                hint="a pipeline needs a 'jobs:' mapping of job names to jobs",
            )
        raise ConfigError(
            "missing required key 'jobs'", hint="add a 'jobs:' mapping of job names to jobs"
        )
    try:
        top = schema.PipelineFile.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, (), ()) from None
    if not top.jobs:
        raise ConfigError("no jobs defined", path=("jobs",), at_key=True)
    if top.defaults.timeout is not None and top.defaults.timeout <= 0:
        raise ConfigError("timeout must be more than 0", path=("defaults", "timeout"))
    if len(set(top.stages)) != len(top.stages):
        dup = next(s for i, s in enumerate(top.stages) if s in top.stages[:i])
        raise ConfigError(
            f"stage '{dup}' is listed twice",
            path=("stages", top.stages.index(dup, top.stages.index(dup) + 1)),
        )

    raw: dict[str, dict[str, Any]] = {}
    validated: dict[str, schema.JobFile] = {}
    for name, body in top.jobs.items():
        if not JOB_NAME.fullmatch(name):
            raise ConfigError(
                f"invalid job name {name!r}: use letters, digits and _ . : / - "
                "(a leading '.' makes a template)",
                path=("jobs", name),
                at_key=True,
            )
        if not isinstance(body, dict):
            raise ConfigError(
                f"expected a mapping (run, needs, ...), got {describe(body)}", path=("jobs", name)
            )
        try:
            validated[name] = schema.JobFile.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc, ("jobs", name), ("<job>",)) from None
        raw[name] = body

    done: dict[str, tuple[dict[str, Any], list[str]]] = {}
    merged = {name: _merge_extends(name, raw, done) for name in raw}
    runnable = [name for name in raw if not name.startswith(".")]
    if not runnable:
        raise ConfigError(
            "every job is a template (its name starts with '.'); nothing would run",
            path=("jobs",),
            at_key=True,
        )
    jobs: list[model.Job] = []
    for name in runnable:
        # A job without `extends` was validated as it stands; only merged ones again.
        spec = (
            validated[name]
            if "extends" not in raw[name]
            else schema.JobFile.model_validate(merged[name])
        )
        jobs.extend(_build_job(name, spec, top, runnable, merged[name]))
    _check_instance_needs(jobs)
    return model.Pipeline(
        path=path,
        root=root,
        jobs=tuple(jobs),
        name=top.name,
        version=top.version,
        env=tuple(top.env.items()),
        stages=tuple(top.stages),
        gates=_gates(top.gates),
        requires=tuple(top.requires.items()),
        history_url=top.history.url if top.history else None,
        keep_runs=top.history.keep_runs if top.history else 200,
        checks=_checks(top.checks),
        vars=tuple(top.vars.items()),
        quarantine=_quarantine(top.gates),
        remote=_remote(top.remote, root),
        deps=_deps(top.deps),
        artifacts=_artifact_store(top.artifacts, root),
    )


def _artifact_store(spec: schema.ArtifactStoreFile | None, root: str) -> model.ArtifactStoreSpec:
    """`artifacts:` at the top: the store's directory made absolute (relative to the
    workspace; `~` expanded), or an `s3://bucket/prefix` kept as it is."""
    if spec is None:
        return model.ArtifactStoreSpec()
    directory = None
    if spec.dir is not None:
        if not spec.dir.strip():
            raise ConfigError("expected a directory", path=("artifacts", "dir"))
        directory = (
            spec.dir.rstrip("/")  # a bucket (conveyor.artifacts.s3store): not a path
            if spec.dir.startswith("s3://")
            else os.path.normpath(os.path.join(root, os.path.expanduser(spec.dir)))
        )
    key = None
    if spec.signing_key is not None:
        if not spec.signing_key.strip():
            raise ConfigError("expected a key file's path", path=("artifacts", "signing_key"))
        key = os.path.normpath(os.path.join(root, os.path.expanduser(spec.signing_key)))
    return model.ArtifactStoreSpec(
        dir=directory,
        protected_channels=tuple(dict.fromkeys(spec.protected_channels)),
        signing_key=key,
    )


def _deps(spec: schema.DepsFile | None) -> model.DepsPolicy:
    if spec is None:
        return model.DepsPolicy()
    return model.DepsPolicy(
        ignore=tuple(
            model.DepsIgnore(i.id, i.reason, None if i.until is None else i.until.isoformat())
            for i in spec.ignore
        ),
        licenses_allow=tuple(spec.licenses.allow),
        licenses_deny=tuple(spec.licenses.deny),
        pypi_index=spec.registries.pypi,
        npm_registry=spec.registries.npm,
        licenses_overrides=tuple(spec.licenses.overrides.items()),
    )


def _remote(spec: schema.RemoteFile | None, root: str) -> model.Remote | None:
    """`remote:` as the store takes it: TLS files relative to the workspace made absolute."""
    if spec is None:
        return None

    def path(value: str | None) -> str | None:
        return None if value is None else os.path.join(root, os.path.expanduser(value))

    return model.Remote(
        url=spec.url,
        instance_name=spec.instance_name,
        upload=spec.upload,
        ca_file=path(spec.ca_file),
        client_cert=path(spec.client_cert),
        client_key=path(spec.client_key),
        auth_header=spec.auth.header if spec.auth else "authorization",
        auth_env=spec.auth.env if spec.auth else None,
        timeout=spec.timeout,
        retries=spec.retries,
        execute=spec.execute,
    )


def _quarantine(spec: schema.PipelineGatesFile | None) -> str:
    """Where the quarantine list is: `gates.quarantine`, else the default beside
    conveyor.yml (not in `.conveyor/`, which is state nobody commits)."""
    path = spec.quarantine if spec is not None else None
    if path is None:
        return model.Pipeline.quarantine
    if not path.strip():
        raise ConfigError("expected a path to the quarantine list", path=("gates", "quarantine"))
    if posixpath.isabs(path) or ".." in posixpath.normpath(path).split("/"):
        raise ConfigError(
            f"{path!r}: expected a path inside the workspace (the list is committed with it)",
            path=("gates", "quarantine"),
        )
    return posixpath.normpath(path)


MAX_EXTENDS_DEPTH = 11
"""Levels of `extends` (a job, its template, the template's template...): GitLab's limit."""


def merged_jobs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each job of a valid file as written, its templates (`extends`) merged in: what an
    exporter writes out again (the pipeline holds matrix instances filled in)."""
    raw = {str(k): v for k, v in (data.get("jobs") or {}).items() if isinstance(v, dict)}
    done: dict[str, tuple[dict[str, Any], list[str]]] = {}
    return {name: _merge_extends(name, raw, done) for name in raw}


def _merge_extends(
    name: str, raw: dict[str, dict[str, Any]], done: dict[str, tuple[dict[str, Any], list[str]]]
) -> dict[str, Any]:
    """GitLab's `extends`: templates merged in order, the job's own keys last; mappings
    merge deeply, anything else is replaced. `done` holds each job already merged with
    its longest chain of templates, so a template shared by many jobs (or reached along
    many paths) is merged once, and a chain too long is refused where it gets too long."""

    def visit(cur: str, chain: list[str]) -> tuple[dict[str, Any], list[str]]:
        if cur in done:
            return done[cur]
        body = raw[cur]
        exts = body.get("extends", [])
        exts = [exts] if isinstance(exts, str) else exts
        result: dict[str, Any] = {}
        longest: list[str] = []
        for i, ext in enumerate(exts):
            where = (
                ("jobs", cur, "extends", i)
                if not isinstance(body.get("extends"), str)
                else ("jobs", cur, "extends")
            )
            if ext not in raw:
                raise ConfigError(
                    f"extends unknown job '{ext}'{_did_you_mean(ext, list(raw))}", path=where
                )
            if ext in chain:
                loop = chain[chain.index(ext) :]
                start = loop.index(cur)
                cycle = [*loop[start:], *loop[:start], cur]
                raise CycleError(cycle, path=("jobs", cur, "extends"), kind="extends")
            merged, below = visit(ext, [*chain, ext])
            if len(below) >= MAX_EXTENDS_DEPTH:
                raise ConfigError(
                    f"extends more than {MAX_EXTENDS_DEPTH} levels deep: "
                    f"{' -> '.join([cur, ext, *below])}",
                    path=where,
                    hint="flatten the templates (GitLab has the same limit)",
                )
            if len(below) + 1 > len(longest):
                longest = [ext, *below]
            result = _deep_merge(result, merged)
        own = {k: v for k, v in body.items() if k != "extends"}
        done[cur] = (_deep_merge(result, own), longest)
        return done[cur]

    return visit(name, [name])[0]


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _shell(
    value: list[str] | None, default: tuple[str, ...], path: tuple[str | int, ...]
) -> tuple[str, ...]:
    if value is None:
        return default
    if len(value) == 1:
        word = value[0].strip()
        if word in SHELLS:
            return SHELLS[word]
        try:
            argv = tuple(shlex.split(word))
        except ValueError as exc:
            raise ConfigError(f"cannot split shell command: {exc}", path=path) from None
        if not argv:
            raise ConfigError("must not be empty", path=path)
        return argv
    return tuple(value)


def _build_job(
    name: str,
    spec: schema.JobFile,
    top: schema.PipelineFile,
    runnable: list[str],
    body: dict[str, Any] | None = None,
) -> list[model.Job]:
    """A job of the file as its instances (one per matrix combination), or the first
    error in it, in the order a reader of the job meets them. A job whose matrix another
    job computes is one job standing for its instances (`expand_dynamic`)."""
    where = ("jobs", name)
    artifacts_raw = (body or {}).get("artifacts")
    needs = _needs(name, spec, top, runnable)
    refs = _dynamic_refs(spec.matrix, (*where, "matrix"), needs) if spec.matrix else ()
    axes: frozenset[str] | None
    if refs:
        combos = _probe_matrix(spec.matrix or {}, refs, (*where, "matrix"), top.limits.matrix)
        # Computed include entries may bring any key: matrix.NAME is checked once known.
        axes = (
            None
            if any(r[0] == "include" for r in refs)
            else frozenset(k for c in combos for k, _ in c)
        )
    else:
        combos = (
            _matrix(spec.matrix, (*where, "matrix"), top.limits.matrix)
            if spec.matrix is not None
            else [()]
        )
        axes = frozenset(k for combo in combos for k, _ in combo)
    fields = _Contexts(spec, top.env, top.vars, axes)
    for i, cache in enumerate(spec.caches):
        _check_cache_key(cache.key, axes, (*where, "caches", i, "key"))
        for j, prefix in enumerate(cache.restore_keys):
            _check_cache_key(prefix, axes, (*where, "caches", i, "restore_keys", j))
    if refs and any("${{" in need for need in needs):
        i = next(i for i, need in enumerate(needs) if "${{" in need)
        raise ConfigError(
            "a job whose matrix another job computes cannot pick one instance in 'needs:' "
            "by its matrix values",
            path=(*where, "needs", i),
            hint="need the whole job instead",
        )
    reads_values = False
    late = spec.when in ("on_failure", "always")
    if spec.if_ is not None:
        try:
            node = expressions.parse(
                _unwrap(spec.if_), matrix_keys=axes, needs=needs, contexts=fields.condition
            )
        except expressions.ExpressionError as exc:
            raise ConfigError(
                f"invalid expression: {exc.message}", path=(*where, "if"), offset=exc.offset
            ) from None
        reads_values = "needs" in spec.if_ and expressions.reads_needs(node)
        if refs and "matrix" in expressions.contexts_used(node):
            raise ConfigError(
                "the 'if:' of a job whose matrix another job computes cannot read matrix "
                "values: it decides for the job as a whole",
                path=(*where, "if"),
                hint="have the job that computes the matrix leave out what should not run",
            )
        late = late or _status_dependent(spec, node, where)
    template = _template(name, spec, top, needs)
    if late:
        # A job that runs because of how the run went (a cleanup, a notification) runs
        # for what it does: not cached unless it says `cache: true`.
        template = dataclasses.replace(template, late=True, cache=template.cache_said)
    if spec.executor == "remote":
        from conveyor.config.remote import cannot_run_remotely

        # `finally:` is filled in per instance; what matters here is that it is there.
        said = dataclasses.replace(template, finally_run=tuple(spec.finally_ or ()))
        if (refusal := cannot_run_remotely(said, inputs=bool(spec.inputs))) is not None:
            raise ConfigError(
                f"this job cannot run remotely: {refusal}",
                path=(*where, "executor"),
                hint="remove `executor: remote` (it runs here), or change what is named",
            )
    if refs:
        if axes is not None:  # every field checked on a stand-in instance
            probe = _instance(template, spec, {**top.env, **spec.env}, combos[0], fields)
            check_job_paths(spec, probe.dir, where, artifacts_raw)
        matrix_from = model.MatrixFrom(
            refs=refs,
            spec=json.dumps(spec.matrix, default=str),
            body=json.dumps(body or {}, default=str),
            limit=top.limits.matrix,
        )
        return [
            dataclasses.replace(
                template,
                run=tuple(spec.run or ()),
                reads_values=reads_values,
                matrix_from=matrix_from,
            )
        ]
    jobs = []
    checked_dirs: set[str] = set()
    for combo in combos:
        jobs.append(_instance(template, spec, {**top.env, **spec.env}, combo, fields, reads_values))
        # Checked once the instance is built (its other errors come first); the paths
        # depend on the instance only through its dir.
        if jobs[-1].dir not in checked_dirs:
            check_job_paths(spec, jobs[-1].dir, where, artifacts_raw)
            checked_dirs.add(jobs[-1].dir)
    return jobs


def _status_dependent(
    spec: schema.JobFile, node: expressions.Node, where: tuple[str | int, ...]
) -> bool:
    """Whether the job's `if:` depends on how the run goes (a status function,
    `needs.X.result`); a located error when it and `when:` both say when the job runs."""
    calls = expressions.status_calls(node)
    if calls and spec.when in ("on_success", "on_failure", "always"):
        said = {"on_success": "success()", "on_failure": "failure()", "always": "always()"}
        raise ConfigError(
            f"'when: {spec.when}' and {calls[0].func}() in 'if:' both say when the job runs",
            path=(*where, "when"),
            hint=f"keep one: 'when: {spec.when}' is '{said[spec.when]}' in 'if:'; "
            f"drop 'when:', or the status function from 'if:'",
        )
    return bool(calls) or expressions.reads_results(node)


def _needs(
    name: str, spec: schema.JobFile, top: schema.PipelineFile, runnable: list[str]
) -> list[str]:
    """The job's `run`, `stage` and `needs` checked; its needs."""
    where = ("jobs", name)
    if spec.run is None:
        raise ConfigError(
            "missing 'run': every job needs a command (a string or a list of strings)",
            path=where,
            at_key=True,
        )
    if spec.stage is not None:
        if not top.stages:
            raise ConfigError(
                f"stage '{spec.stage}' is used but no stages are declared",
                path=(*where, "stage"),
                hint="add a top-level 'stages:' list, in the order they run",
            )
        if spec.stage not in top.stages:
            raise ConfigError(
                f"unknown stage '{spec.stage}'{_did_you_mean(spec.stage, top.stages)}",
                path=(*where, "stage"),
                hint=f"declared stages: {', '.join(top.stages)}",
            )
    needs = spec.needs or []
    for i, need in enumerate(needs):
        if "${{" in need or _INSTANCE.fullmatch(need):
            continue  # one instance of a matrix job: checked once every job is built
        if need not in runnable:
            if need.startswith(".") and need in top.jobs:
                msg = f"'{need}' is a template and never runs; it cannot be needed"
            else:
                msg = f"unknown job '{need}'{_did_you_mean(need, runnable)}"
            raise ConfigError(msg, path=(*where, "needs", i))
        if need == name:
            raise CycleError([name, name], path=(*where, "needs", i))
    if len(set(needs)) != len(needs):
        dup = next(n for i, n in enumerate(needs) if n in needs[:i])
        raise ConfigError(f"'{dup}' is listed twice", path=(*where, "needs"))
    return needs


def _template(
    name: str, spec: schema.JobFile, top: schema.PipelineFile, needs: list[str]
) -> model.Job:
    """What every instance of the job shares (shell, retries, timeout, cache policy...),
    as a Job whose per-instance fields the matrix fills in."""
    where = ("jobs", name)
    defaults = top.defaults
    shell = _shell(
        spec.shell, _shell(defaults.shell, DEFAULT_SHELL, ("defaults", "shell")), (*where, "shell")
    )
    retry_file = spec.retries or defaults.retries or schema.RetryFile()
    retry = model.Retry(
        max=retry_file.max,
        delay=retry_file.delay,
        backoff=retry_file.backoff,
        max_delay=retry_file.max_delay,
    )
    if spec.timeout is not None and spec.timeout <= 0:
        raise ConfigError("timeout must be more than 0", path=(*where, "timeout"))
    for var in (*spec.pass_env, *spec.secrets):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            field = "secrets" if var in spec.secrets else "pass_env"
            raise ConfigError(f"invalid environment variable name {var!r}", path=(*where, field))
    if spec.gates and spec.gates.findings and spec.gates.findings.severity:
        # One table for the run: a finding has one severity in every gate and report.
        raise ConfigError(
            "severity overrides are the pipeline's, not a job's",
            path=(*where, "gates", "findings", "severity"),
            at_key=True,
            hint="move them to the top-level gates.findings.severity",
        )
    return model.Job(
        name=name,
        base=name,
        run=(),
        shell=shell,
        stage=spec.stage,
        needs=tuple(needs),
        needs_explicit=spec.needs is not None,
        condition=spec.if_,
        pass_env=tuple(spec.pass_env),
        secrets=tuple(spec.secrets),
        timeout=spec.timeout if spec.timeout is not None else defaults.timeout,
        retry=retry,
        allow_failure=spec.allow_failure.allowed,
        allow_exit_codes=tuple(spec.allow_failure.exit_codes),
        gates=_gates(spec.gates),
        artifacts=model.ArtifactSpec(
            paths=tuple(spec.artifacts.paths),
            name=spec.artifacts.name,
            expire_in=spec.artifacts.expire_in,
            when=spec.artifacts.when,
            type=spec.artifacts.type,
            version=(
                spec.artifacts.version
                if isinstance(spec.artifacts.version, str)
                else spec.artifacts.version.template
                if spec.artifacts.version is not None
                else None
            ),
            version_from=(
                spec.artifacts.version.from_
                if isinstance(spec.artifacts.version, schema.ArtifactVersionFile)
                else None
            ),
            keep_last=spec.artifacts.keep.last if spec.artifacts.keep else None,
            keep_per=spec.artifacts.keep.per if spec.artifacts.keep else None,
            keep_latest=spec.artifacts.keep.latest if spec.artifacts.keep else False,
        )
        if spec.artifacts
        else None,
        caches=tuple(
            model.CacheSpec(key=c.key, paths=tuple(c.paths), restore_keys=tuple(c.restore_keys))
            for c in spec.caches
        ),
        tools=tuple(spec.tools.items()),
        # A job that talks to the outside world (it has secrets: a deploy, a publish) is
        # not cached behind the user's back: only when it says `cache: true` (issue 10).
        cache=spec.cache if spec.cache is not None else not spec.secrets,
        requires=tuple(spec.requires.items()),
        cache_said=spec.cache is True,
        when=spec.when or "on_success",
        executor=spec.executor,
        platform=tuple(sorted(spec.platform.items())),
    )


def _instance(
    template: model.Job,
    spec: schema.JobFile,
    env: dict[str, str],
    combo: tuple[tuple[str, str], ...],
    fields: _Contexts,
    reads_values: bool = False,
) -> model.Job:
    """One matrix combination of the job: its name and its string fields with the
    matrix's values (`${{ matrix.python }}`) filled in; an expression that reads a
    context known only when the run starts (env, vars, run, secrets) is checked here
    and left for `config.resolve` (plan time) or the executor (secrets, at run time).
    `${{ needs.JOB.values.NAME }}` is checked and left for the run to fill in when the
    job is ready (in `run`, `env` and `dir` only)."""
    name = template.base
    where = ("jobs", name)
    values = dict(combo)
    paths = fields.paths
    reads = [reads_values]

    def sub(text: str, path: tuple[str | int, ...], allowed: _Allowed = paths) -> str:
        return _interpolate(text, values, path, allowed)

    def sub_late(text: str, path: tuple[str | int, ...], allowed: _Allowed) -> str:
        out = _interpolate(text, values, path, allowed, template.needs)
        if "${{" in out and "needs." in out:  # a value or a result of a need
            reads[0] = True
        return out

    reports = (
        model.Reports(
            junit=tuple(
                sub(r, (*where, "reports", "junit", i)) for i, r in enumerate(spec.reports.junit)
            ),
            coverage=tuple(
                sub(r, (*where, "reports", "coverage", i))
                for i, r in enumerate(spec.reports.coverage)
            ),
            sarif=tuple(
                sub(r, (*where, "reports", "sarif", i)) for i, r in enumerate(spec.reports.sarif)
            ),
            codequality=tuple(
                sub(r, (*where, "reports", "codequality", i))
                for i, r in enumerate(spec.reports.codequality)
            ),
        )
        if spec.reports
        else model.Reports()
    )
    assert spec.run is not None  # checked by _needs
    run = tuple(sub_late(cmd, (*where, "run", i), fields.run) for i, cmd in enumerate(spec.run))
    finally_run = tuple(
        sub(cmd, (*where, "finally", i), fields.needs) for i, cmd in enumerate(spec.finally_ or ())
    )
    job_env = tuple(
        (
            k,
            sub_late(v, (*where, "env", k), fields.env)
            if k in spec.env
            else sub(v, ("env", k), fields.env),
        )
        for k, v in env.items()
    )
    directory = (
        _workspace_dir(sub_late(spec.dir, (*where, "dir"), paths), (*where, "dir"))
        if spec.dir
        else "."
    )
    inputs = tuple(sub(p, (*where, "inputs", i)) for i, p in enumerate(spec.inputs))
    # Report files are outputs too: a cache hit restores them, so the job's gates are
    # evaluated against the reports of the result it reuses. Paths may name the matrix
    # values (`reports/junit-${{ matrix.py }}.xml`) so that the instances of one job do
    # not write over each other.
    declared = [sub(o, (*where, "outputs", i)) for i, o in enumerate(spec.outputs)]
    reported = (
        (*reports.junit, *reports.coverage, *reports.sarif, *reports.codequality)
        if spec.reports
        else ()
    )
    artifacts = template.artifacts
    if artifacts is not None and spec.artifacts is not None:
        artifacts = dataclasses.replace(
            artifacts,
            paths=tuple(
                sub(p, (*where, "artifacts", "paths", i))
                for i, p in enumerate(spec.artifacts.paths)
            ),
            name=sub(artifacts.name, (*where, "artifacts", "name"))
            if artifacts.name is not None
            else None,
            version=sub(artifacts.version, _version_at(where, artifacts))
            if artifacts.version is not None
            else None,
        )
    caches = tuple(
        model.CacheSpec(
            key=sub(c.key, (*where, "caches", i, "key")),
            paths=tuple(sub(p, (*where, "caches", i, "paths", j)) for j, p in enumerate(c.paths)),
            restore_keys=tuple(
                sub(k, (*where, "caches", i, "restore_keys", j))
                for j, k in enumerate(c.restore_keys)
            ),
        )
        for i, c in enumerate(spec.caches)
    )
    needs = tuple(sub(n, (*where, "needs", i), fields.needs) for i, n in enumerate(template.needs))
    job = dataclasses.replace(
        template,
        name=name if not combo else f"{name} ({', '.join(f'{k}={v}' for k, v in combo)})",
        run=run,
        finally_run=finally_run,
        matrix=combo,
        env=job_env,
        dir=directory,
        inputs=inputs,
        # Artifact files are outputs too: a cache hit restores them, so they are there
        # to be stored as a version like those of a job that ran.
        outputs=tuple(
            dict.fromkeys([*declared, *reported, *(artifacts.paths if artifacts else ())])
        ),
        reports=reports,
        reads_values=reads[0],
        resource_group=(
            sub(spec.resource_group, (*where, "resource_group")) if spec.resource_group else None
        ),
        artifacts=artifacts,
        caches=caches,
        needs=needs,
    )
    if any("${{" in text for text in job_texts(job)):
        job = dataclasses.replace(job, deferred=True)
    return job


def _version_at(where: tuple[str, ...], spec: model.ArtifactSpec) -> tuple[str, ...]:
    """Where an artifact's version template is written in the file."""
    if spec.version_from is not None:
        return (*where, "artifacts", "version", "template")
    return (*where, "artifacts", "version")


_Allowed = dict[str, frozenset[str] | None]
_INSTANCE = re.compile(r"(?P<base>[^\s(]+) \((?P<values>.*)\)")
"""A need that names one instance of a matrix job: `build (os=linux)`."""


class _Contexts:
    """Which contexts each field of a job may read, with the names each has. Evaluated
    when: matrix at load time; env, vars and run when the run is planned; secrets when
    the job starts (the reference's "Expressions in every field")."""

    def __init__(
        self,
        spec: schema.JobFile,
        top_env: Iterable[str],
        top_vars: Iterable[str],
        axes: frozenset[str] | None,
    ):
        secrets = frozenset(spec.secrets)
        env = frozenset({*top_env, *spec.env, *spec.pass_env} - secrets)
        plan: _Allowed = {
            "matrix": axes,
            "env": env,
            "vars": frozenset(top_vars),
            "run": None,
        }
        self.paths = plan
        """dir, inputs, outputs, reports, artifacts, caches."""
        self.run: _Allowed = {**plan, "secrets": secrets}
        self.env: _Allowed = {k: v for k, v in self.run.items() if k != "env"}
        """An env value cannot read env (the order would matter): use vars."""
        self.needs: _Allowed = {"matrix": axes}
        self.condition: _Allowed = {**plan, "env": None}
        """`if:` reads any variable of the caller's environment (unset is null)."""


def _unwrap(condition: str) -> str:
    """`if: ${{ expr }}` is `if: expr`, as on GitHub Actions."""
    text = condition.strip()
    m = expressions.TEMPLATE.fullmatch(text)
    return m.group(1) if m else condition


def _check_instance_needs(jobs: list[model.Job]) -> None:
    """A need that names one instance (`build (os=linux)`, often written
    `build (os=${{ matrix.os }})`) must name one that exists."""
    names = {job.name for job in jobs}
    bases = {job.base: job for job in jobs}
    for job in jobs:
        for need in job.needs:
            if need in bases or need in names:
                if need == job.name:
                    raise CycleError([job.name, job.name], path=_need_path(job, need))
                continue
            m = _INSTANCE.fullmatch(need)
            base = m.group("base") if m else need
            same = sorted(n for n in names if n.startswith(f"{base} ("))
            if base in bases and same:
                close = difflib.get_close_matches(need, same, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"'{job.base}' needs '{need}', which is no instance of '{base}'{hint}",
                    path=_need_path(job, need),
                    hint=f"its instances: {', '.join(same)}",
                )
            raise ConfigError(
                f"unknown job '{need}'{_did_you_mean(base, sorted(bases))}",
                path=_need_path(job, need),
            )


def _need_path(job: model.Job, need: str) -> tuple[str | int, ...]:
    return ("jobs", job.base, "needs", job.needs.index(need))


_KEY_EXPR = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_HASHFILES = re.compile(
    r"hashFiles\(\s*(?:'[^']*'|\"[^\"]*\")(?:\s*,\s*(?:'[^']*'|\"[^\"]*\"))*\s*\)"
)


def _check_cache_key(text: str, axes: frozenset[str] | None, path: tuple[str | int, ...]) -> None:
    """A cache key may use {{ hashFiles('glob', ...) }}, {{ os }}, {{ arch }}, {{ matrix.X }};
    `${{ ... }}` is the expression language of every field, checked with the others."""
    text = expressions.TEMPLATE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _KEY_EXPR.finditer(text):
        expr = m.group(1)
        if _HASHFILES.fullmatch(expr) or expr in ("os", "runner.os", "arch"):
            continue
        if expr.startswith("matrix.") and (axes is None or expr[7:] in axes):
            continue
        raise ConfigError(
            f"unknown expression '{{{{ {expr} }}}}' in a cache key",
            path=path,
            offset=m.start(),
            hint="use hashFiles('glob', ...), os, arch or matrix.NAME",
        )


def _workspace_dir(value: str, path: tuple[str | int, ...]) -> str:
    """A job's directory, normalised; it must stay inside the workspace."""
    norm = posixpath.normpath(value)
    if value.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ConfigError(
            f"dir must be a relative path inside the workspace, got {value!r}", path=path
        )
    return norm


def _interpolate(
    text: str,
    values: dict[str, str],
    path: tuple[str | int, ...],
    allowed: _Allowed,
    needs: tuple[str, ...] | None = None,
) -> str:
    """`text` with its matrix expressions filled in; every other expression checked
    against the contexts `allowed` in its field and left for later. A job's values
    (`${{ needs.JOB.values.NAME }}`) are allowed where `needs` is given (JOB among them)
    and refused elsewhere."""
    if "${{" not in text:
        return text
    for m in expressions.TEMPLATE.finditer(text):
        try:
            node = expressions.parse(
                m.group(1), matrix_keys=frozenset(values), needs=needs, contexts=allowed
            )
            used = expressions.contexts_used(node)
            if "needs" in used and needs is None:
                raise expressions.ExpressionError(
                    f"'${{{{ {m.group(1).strip()} }}}}' cannot be used here: a job's values "
                    "are known only once it has run, so they can be read in a job's run, "
                    "env, dir and if",
                    0,
                )
            if "secrets" in used and used - {"secrets", "matrix"}:
                raise expressions.ExpressionError(
                    "an expression that reads secrets may read only secrets and matrix "
                    "values (secrets are filled in as the job starts, the rest when the "
                    "run is planned): use one ${{ }} for each",
                    0,
                )
        except expressions.ExpressionError as exc:
            field = str(path[2]) if path[0] == "jobs" and len(path) > 2 else str(path[0])
            raise ConfigError(
                exc.message,
                path=path,
                offset=m.start(1) + exc.offset,
                hint=f"{field} may read: {', '.join(f'{c}.NAME' for c in allowed)}"
                + (", needs.JOB.values.NAME" if needs is not None else ""),
            ) from None
    rest = expressions.TEMPLATE.sub(lambda m: " " * len(m.group(0)), text)
    if "${{" in rest:
        raise ConfigError(
            "unterminated '${{': close the expression with '}}'",
            path=path,
            offset=rest.index("${{"),
        )
    scope = expressions.Scope(values={}, env={}, matrix=values)
    return expressions.render(text, scope, only=("matrix",))


def _scalar(value: Any, path: tuple[str | int, ...]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ConfigError(f"expected a string, number or boolean, got {describe(value)}", path=path)


MAX_MATRIX_ENTRIES = 256
"""`include` or `exclude` entries one matrix may have (each is matched against every
combination: the bound keeps that work in proportion to the matrix limit)."""


def _matrix(spec: dict[str, Any], where: tuple[str | int, ...], limit: int) -> list[model.Pairs]:
    """Expand a matrix as GitHub Actions does: the product of the axes, minus `exclude`,
    then each `include` either extends the combinations it matches or adds one. A matrix
    that would make more than `limit` instances is refused before it is expanded."""
    axes: dict[str, list[str]] = {}
    for key, values in spec.items():
        if key in ("include", "exclude"):
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            raise ConfigError(f"invalid matrix axis name {key!r}", path=(*where, key), at_key=True)
        if not isinstance(values, list):
            raise ConfigError(
                f"a matrix axis must be a list of values, got {describe(values)}",
                path=(*where, key),
            )
        if not values:
            raise ConfigError("a matrix axis must not be empty", path=(*where, key))
        axes[key] = [_scalar(v, (*where, key, i)) for i, v in enumerate(values)]

    def entries(kind: str) -> list[dict[str, str]]:
        items = spec.get(kind, [])
        if not isinstance(items, list):
            raise ConfigError(
                f"expected a list of mappings, got {describe(items)}", path=(*where, kind)
            )
        if len(items) > MAX_MATRIX_ENTRIES:
            raise ConfigError(
                f"{len(items):,} {kind} entries, more than the limit of {MAX_MATRIX_ENTRIES}",
                path=(*where, kind),
                at_key=True,
                hint="describe the combinations with axes and fewer entries",
            )
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not item:
                raise ConfigError(
                    f"expected a mapping of axis values, got {describe(item)}",
                    path=(*where, kind, i),
                )
            out.append({str(k): _scalar(v, (*where, kind, i, str(k))) for k, v in item.items()})
        return out

    excludes, includes = entries("exclude"), entries("include")
    for i, ex in enumerate(excludes):
        for key in ex:
            if key not in axes:
                raise ConfigError(
                    f"exclude names unknown axis '{key}'{_did_you_mean(key, list(axes))}",
                    path=(*where, "exclude", i, key),
                    at_key=True,
                )
    product = 1
    for values in axes.values():
        product *= len(values)
    if not axes:
        product = 0
    if product + len(includes) > limit:
        sizes = " x ".join(f"{k} {len(v)}" for k, v in axes.items()) or "no axes"
        counted = f" + {len(includes)} include entries" if includes else ""
        if excludes:
            counted += f"; the {len(excludes)} exclude entries apply to the expanded product"
        raise ConfigError(
            f"the matrix would expand to {product + len(includes):,} instances "
            f"({sizes} = {product:,}{counted}), more than the limit of {limit:,} per job",
            path=where,
            at_key=True,
            hint="use fewer axes or values (exclude applies after the product is made), "
            "or raise the limit with a top-level 'limits: {matrix: N}'",
        )
    combos: list[dict[str, str]] = [{}]
    for key, values in axes.items():
        combos = [{**c, key: v} for c in combos for v in values]
    if not axes:
        combos = []
    if excludes:
        gone: set[int] = set()
        index = _index(combos)
        for ex in excludes:
            gone |= _matching(index, ex, len(combos))
        combos = [c for i, c in enumerate(combos) if i not in gone]
    # Includes extend the combinations of the axes' product only; one that matches
    # none of them (or any include when there are no axes) is a combination of its own.
    product_combos = combos
    index = _index(product_combos) if includes and product_combos else {}
    added: list[dict[str, str]] = []
    for inc in includes:
        matched = _matching(index, {k: v for k, v in inc.items() if k in axes}, len(combos))
        extra = {k: v for k, v in inc.items() if k not in axes}
        # Added keys may overwrite earlier additions, never an original axis value.
        for i in sorted(matched):
            product_combos[i].update(extra)
        if not matched:
            added.append(dict(inc))
    combos = product_combos + added
    if not axes and not includes:
        raise ConfigError(
            "a matrix needs at least one axis (name: [values]) or an include entry", path=where
        )
    if not combos:
        raise ConfigError("the matrix produces no combinations (every one is excluded)", path=where)
    seen: set[model.Pairs] = set()
    out: list[model.Pairs] = []
    for combo in combos:
        pairs = tuple(combo.items())
        if pairs not in seen:
            seen.add(pairs)
            out.append(pairs)
    return out


_FROM_JSON = re.compile(
    r"\s*\$\{\{\s*fromJSON\(\s*needs\.([^\s()]+?)\.values\.([A-Za-z_][A-Za-z0-9_-]*)\s*\)\s*\}\}\s*"
)
"""A matrix part another job computes: `${{ fromJSON(needs.JOB.values.NAME) }}`."""


def _dynamic_refs(
    spec: dict[str, Any], where: tuple[str | int, ...], needs: list[str]
) -> tuple[tuple[str, str, str], ...]:
    """The parts of a matrix another job computes, as (include or axis, job, value name);
    a located error for one written otherwise or reading a job not needed."""
    refs = []
    for key, value in spec.items():
        if key == "exclude" or not isinstance(value, str) or "${{" not in value:
            continue
        path = (*where, key)
        m = _FROM_JSON.fullmatch(value)
        if m is None:
            what = "include list" if key == "include" else f"axis '{key}'"
            raise ConfigError(
                f"a computed matrix {what} must be one "
                f"'${{{{ fromJSON(needs.JOB.values.NAME) }}}}', got {value!r}",
                path=path,
                hint="a job it needs writes the JSON list to $CONVEYOR_OUTPUT, e.g. "
                'echo \'targets=["a","b"]\' >> "$CONVEYOR_OUTPUT"',
            )
        try:
            expressions.check_need(m.group(1), needs, m.start(1))
        except expressions.ExpressionError as exc:
            raise ConfigError(exc.message, path=path, offset=exc.offset) from None
        if key != "include" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            raise ConfigError(f"invalid matrix axis name {key!r}", path=path, at_key=True)
        refs.append((key, m.group(1), m.group(2)))
    return tuple(refs)


def _probe_matrix(
    spec: dict[str, Any],
    refs: tuple[tuple[str, str, str], ...],
    where: tuple[str | int, ...],
    limit: int,
) -> list[model.Pairs]:
    """The parts of a computed matrix written in the file, checked with a stand-in
    value for each computed axis (a computed include list left out)."""
    probe = {k: v for k, v in spec.items() if k != "include" or not isinstance(v, str)}
    for key, _, _ in refs:
        if key != "include":
            probe[key] = ["_"]
    if not any(k not in ("include", "exclude") for k in probe) and "include" not in probe:
        return [()]
    return _matrix(probe, where, limit)


def expand_dynamic(
    pipeline: model.Pipeline, job: model.Job, written: Mapping[str, Mapping[str, str]]
) -> list[model.Job] | str:
    """The instances of a job whose matrix another job computed (`job.matrix_from`),
    from the values of the jobs it needs (`written`: by job key); or why it cannot run
    (no JSON, not a list, an empty list, too many instances...). Built as a matrix
    written in the file would be: the same expansion, limit and substitutions."""
    from pydantic import ValidationError

    mf = job.matrix_from
    assert mf is not None
    matrix: dict[str, Any] = json.loads(mf.spec)
    sources = ", ".join(dict.fromkeys(need for _, need, _ in mf.refs))
    for key, need, name in mf.refs:
        label = f"needs.{need}.values.{name}"
        text = written.get(need, {}).get(name)
        if text is None:
            return f"matrix: '{need}' did not write '{name}' to $CONVEYOR_OUTPUT ({label})"
        shown = text if len(text) <= 80 else text[:77] + "..."
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"matrix: {label} is not valid JSON ({exc}): {shown!r}"
        if key == "include":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                return (
                    f"matrix: {label} must be a JSON list of objects (include entries): {shown!r}"
                )
        elif not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
            return (
                f"matrix: {label} must be a JSON list of strings, numbers or booleans "
                f"(the values of axis '{key}'): {shown!r}"
            )
        if not value:
            return f"matrix: {label} is an empty list: the job would have no instances"
        matrix[key] = value
    body: dict[str, Any] = json.loads(mf.body)
    where = ("jobs", job.base)
    try:
        spec = schema.JobFile.model_validate(body)
        combos = _matrix(matrix, (*where, "matrix"), mf.limit)
        axes = frozenset(k for combo in combos for k, _ in combo)
        fields = _Contexts(spec, dict(pipeline.env), dict(pipeline.vars), axes)
        template = dataclasses.replace(job, run=(), matrix_from=None)
        env = {**dict(pipeline.env), **spec.env}
        out: list[model.Job] = []
        checked: set[str] = set()
        for combo in combos:
            out.append(_instance(template, spec, env, combo, fields, job.reads_values))
            if out[-1].dir not in checked:
                check_job_paths(spec, out[-1].dir, where, body.get("artifacts"))
                checked.add(out[-1].dir)
    except ConfigError as exc:
        return f"matrix from {sources}: {exc.message}"
    except ValidationError as exc:  # the file was valid when loaded: not expected
        return f"matrix from {sources}: {exc}"
    return out


def _index(combos: list[dict[str, str]]) -> dict[tuple[str, str], set[int]]:
    """For each (axis, value), the combinations that have it."""
    index: dict[tuple[str, str], set[int]] = {}
    for i, combo in enumerate(combos):
        for pair in combo.items():
            index.setdefault(pair, set()).add(i)
    return index


def _matching(index: dict[tuple[str, str], set[int]], entry: dict[str, str], n: int) -> set[int]:
    """The combinations that have every (axis, value) of `entry` (all when it has none)."""
    if not n:
        return set()
    sets = sorted((index.get(pair, set()) for pair in entry.items()), key=len)
    if not sets:
        return set(range(n))
    return sets[0].intersection(*sets[1:])


def _checks(spec: schema.ChecksFile | None) -> model.Checks:
    if spec is None:
        return model.Checks()
    lv = model.GateLevel
    manifests: tuple[str, ...] | None
    if spec.manifests is True:
        manifests = ()
    elif spec.manifests is False:
        manifests = None
    else:
        manifests = tuple(spec.manifests)
    secrets = spec.secrets
    after = spec.after
    return model.Checks(
        disk=spec.disk,
        env=tuple(spec.env),
        manifests=manifests,
        lockfiles=spec.lockfiles,
        secrets=model.SecretsCheck(secrets.baseline, tuple(secrets.exclude), lv(secrets.level))
        if secrets
        else None,
        after=model.AfterChecks(
            tuple(after.required),
            tuple(after.forbidden),
            tuple(after.max_size.items()),
            after.report,
            lv(after.level),
        )
        if after
        else None,
    )


def _gates(spec: schema.GatesFile | None) -> model.Gates:
    if spec is None:
        return model.Gates()
    lv = model.GateLevel
    return model.Gates(
        tests=model.TestsGate(spec.tests.max_failures, lv(spec.tests.level))
        if spec.tests
        else None,
        coverage=model.CoverageGate(
            spec.coverage.line,
            spec.coverage.branch,
            spec.coverage.diff,
            spec.coverage.diff_base,
            lv(spec.coverage.level),
        )
        if spec.coverage
        else None,
        findings=model.FindingsGate(
            tuple(spec.findings.max.items()),
            spec.findings.baseline,
            lv(spec.findings.level),
            tuple(spec.findings.severity.items()),
        )
        if spec.findings
        else None,
        sizes=model.SizesGate(
            tuple(spec.sizes.files.items()), spec.sizes.total, lv(spec.sizes.level)
        )
        if spec.sizes
        else None,
        time=model.TimeGate(spec.time.max, lv(spec.time.level)) if spec.time else None,
        commands=tuple(
            model.CommandGate(name, g.run, lv(g.level)) for name, g in spec.commands.items()
        ),
        licenses=_licenses_gate(spec),
        vulnerabilities=_vulnerabilities_gate(spec.vulnerabilities),
    )


def _vulnerabilities_gate(
    spec: schema.VulnerabilitiesGateFile | None,
) -> model.VulnerabilitiesGate | None:
    if spec is None:
        return None
    return model.VulnerabilitiesGate(
        tuple(spec.max.items()), spec.baseline, model.GateLevel(spec.level)
    )


def _licenses_gate(spec: schema.GatesFile) -> model.LicensesGate | None:
    """`gates.licenses` (the pipeline's gates only have it)."""
    found = getattr(spec, "licenses", None)
    if found is None:
        return None
    return model.LicensesGate(model.GateLevel(found.level))
