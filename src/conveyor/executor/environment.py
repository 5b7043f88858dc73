"""What a job's process is given: its environment (a baseline of the caller's, the
pipeline's and job's `env`, `pass_env`, secrets and the CONVEYOR_* variables) and the
whole request an executor runs. Every process Conveyor starts for a job or a command gate
is built here, so all are masked, timed out and stopped alike."""

from __future__ import annotations

import os
from collections.abc import Mapping

from conveyor.executor.interface import ExecRequest
from conveyor.graph.context import run_facts
from conveyor.model import Job, Pipeline, RunContext

# What a job inherits from the caller's environment without asking (`pass_env`
# names more): enough for tools to find themselves, nothing that varies by user.
BASELINE_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "CI",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NO_COLOR",
    "FORCE_COLOR",
)


def job_environment(
    job: Job,
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    run_id: str,
    values_file: str | None = None,
) -> dict[str, str]:
    """The whole environment a job's process gets; `values_file`, the file it may write
    values to for the jobs after it (`$CONVEYOR_OUTPUT`)."""
    env = {k: v for k, v in environ.items() if k in BASELINE_ENV or k.startswith("LC_")}
    env.update(pipeline.env)
    env.update((k, with_secrets(v, job, environ)) for k, v in job.env)
    for name in (*job.pass_env, *job.secrets):
        if name in environ:
            env[name] = environ[name]
    env.update(
        {
            "CONVEYOR": "true",
            "CONVEYOR_RUN_ID": run_id,
            "CONVEYOR_JOB": job.name,
            "CONVEYOR_WORKSPACE": pipeline.root,
            **run_facts(context),  # how each of these is (not) in the key: graph.context.RUN_FACTS
        }
    )
    for axis, value in job.matrix:
        env[f"CONVEYOR_MATRIX_{axis.upper().replace('-', '_')}"] = value
    if values_file is not None:
        # Never in the key: a path in the run directory, new in every run.
        env["CONVEYOR_OUTPUT"] = values_file
    return env


def with_secrets(text: str, job: Job, environ: Mapping[str, str]) -> str:
    """`text` with its `${{ secrets.NAME }}` filled in from the caller's environment (an
    unset secret is empty). Done only here, as the process starts: the plan, the cache
    key and the history hold the expression, never the value; the output is masked."""
    if "${{" not in text or not job.secrets:
        return text
    from conveyor import expressions

    secrets = {name: environ[name] for name in job.secrets if name in environ}
    scope = expressions.Scope(
        values={}, env={}, matrix=dict(job.matrix), contexts={"secrets": secrets}
    )
    return expressions.render(text, scope, only=("secrets", "matrix"))


def job_request(
    job: Job,
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    run_id: str,
    values_file: str | None = None,
) -> ExecRequest:
    """What the executor is given to run the job: its shell and script, directory,
    environment and the secrets to mask. The one way from anything Conveyor runs to a
    process (a command gate is its job's request with another script), so all are
    masked and stopped alike."""
    return ExecRequest(
        name=job.name,
        argv=(*job.shell, with_secrets(job.script, job, environ)),
        cwd=os.path.normpath(os.path.join(pipeline.root, job.dir)),
        env=job_environment(job, pipeline, context, environ, run_id, values_file),
        timeout=job.timeout,
        secrets=tuple(environ[s] for s in job.secrets if s in environ),
    )
