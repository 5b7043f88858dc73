"""`conveyor run`: run the pipeline (or some jobs and what they need).

SIGINT (Ctrl-C), SIGTERM (a CI cancelling the run) and SIGHUP (the terminal closed, the
SSH connection dropped) all stop the run the same way: running jobs are cancelled (SIGTERM
to each job's process group, SIGKILL after --kill-grace), the summary is written, and
the exit code is 130. A second Ctrl-C skips the grace period; a repeated SIGTERM or
SIGHUP does not (a hangup often arrives twice: from the kernel and from the shell).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, TextIO, TypeAlias

import click

from conveyor.cli import load, pipeline_file_option

if TYPE_CHECKING:
    from conveyor.cache.why import Verdict
    from conveyor.events import Sink
    from conveyor.graph.plan import Plan
    from conveyor.model import Pipeline, RunContext
    from conveyor.run.compose import RunOutcome
    from conveyor.run.lock import Holder

SignalHandler: TypeAlias = Callable[[int, FrameType | None], object] | int | None
"""What signal.signal takes and returns (typeshed's own alias is private)."""


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A duration with a unit (`90s`, `1m`) or a plain number of seconds (`5`, `0.5`), as
    `timeout` in most tools takes it."""
    if value is None:
        return None
    import math

    from conveyor.units import parse_duration

    try:
        plain = value.strip()
        if plain.replace(".", "", 1).isdigit() and plain.isascii():
            seconds = float(plain)
        else:
            seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, or a number of seconds such as '5'") from None
    if not math.isfinite(seconds):
        raise click.BadParameter(f"{value!r} is too long a duration")
    return seconds


@click.command("run")
@click.argument("jobs", nargs=-1)
@click.option(
    "-j",
    "--jobs",
    "parallelism",
    type=click.IntRange(min=1),
    default=None,
    help="Jobs to run at once (default: the number of CPUs).",
)
@click.option(
    "-k",
    "--keep-going",
    is_flag=True,
    help="After a failure, still run the jobs that do not need it.",
)
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="Print the plan, in order: why each job would or would not run, and which the "
    "cache would serve, the remote cache's included (nothing runs, is restored or is "
    "written to a cache).",
)
@click.option(
    "--event",
    type=click.Choice(
        [
            *("push", "pull_request", "tag", "schedule", "manual"),
            *("workflow_dispatch", "pull_request_target", "release", "merge_group"),
        ]
    ),
    default=None,
    help="The event to plan for (default: from the CI's variables, else push). A GitHub "
    "workflow (-f) also takes its own events (workflow_dispatch...).",
)
@click.option(
    "--input",
    "inputs",
    metavar="NAME=VALUE",
    multiple=True,
    help="A workflow_dispatch input of a GitHub workflow run with -f (repeatable).",
)
@click.option(
    "--matrix",
    "matrix_picks",
    metavar="NAME=VALUE",
    multiple=True,
    help="Of each matrix job, only the instances with this value (repeatable; as act's).",
)
@click.option(
    "--secret-file",
    metavar="PATH",
    default=None,
    help="Secrets as NAME=value lines (a .env file), for this run: the jobs that name "
    "them (`secrets:`, a workflow's `secrets.NAME`) get them, masked in their output.",
)
@click.option(
    "--env-file",
    metavar="PATH",
    default=None,
    help="Variables as NAME=value lines for a GitHub workflow's `env` context (as act's).",
)
@click.option(
    "--on-unsupported",
    type=click.Choice(["skip", "fail"]),
    default="skip",
    show_default=True,
    help="A GitHub workflow's jobs that cannot run here (other repositories' actions, "
    "services, containers): skipped, or failed.",
)
@click.option(
    "--var",
    "variables",
    metavar="NAME=VALUE",
    multiple=True,
    help="Set a variable of the top-level `vars:` for this run (repeatable): "
    "`${{ vars.NAME }}` reads it.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the run summary (or the plan) as JSON on stdout."
)
@click.option(
    "--plain", is_flag=True, help="Plain lines even on a terminal (the default on CI and in pipes)."
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Do not print jobs' output (it is still in the logs)."
)
@click.option(
    "--affected",
    "affected_ref",
    metavar="REF",
    default=None,
    help="Only jobs whose inputs changed since git REF, and the jobs that need them.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every job even if a cached result exists (results are still stored).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Say, for each job the cache missed, what changed (against its last result here, "
    "and the remote cache's latest).",
)
@click.option(
    "--no-history", is_flag=True, help="Keep this run out of the history (`conveyor history`)."
)
@click.option(
    "--gates-junit",
    type=click.Path(dir_okay=False),
    help="Also write the gates and checks as JUnit XML here (one test case each).",
)
@click.option(
    "--codequality",
    type=click.Path(dir_okay=False),
    help="Also write the findings as a GitLab Code Quality report here.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="If another run holds this workspace, fail at once (exit 2) instead of waiting.",
)
@click.option(
    "--only",
    is_flag=True,
    help="Run the named jobs alone, not what they need (Turborepo's --only; gitlab-ci-local's"
    " job without --needs); they run uncached.",
)
@click.option(
    "--manual",
    "manual_jobs",
    metavar="NAME",
    multiple=True,
    help="Also run this manual job (`when: manual`); repeatable. Naming it as a JOB does too.",
)
@click.option(
    "--kill-grace",
    callback=_duration,
    default="5s",
    show_default=True,
    help="Time between SIGTERM and SIGKILL when a job is stopped (5s, 1m; plain: seconds).",
)
@click.option(
    "--otlp",
    "otlp_url",
    metavar="[URL]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Send the run's spans to an OpenTelemetry collector as it goes (OTLP/HTTP), as"
    " `conveyor trace --otlp` does; the OTEL_EXPORTER_OTLP_* variables apply. A collector"
    " that is down is a warning, never the run's failure.",
)
@click.option(
    "--remote",
    "remote_url",
    metavar="URL",
    default=None,
    help="Use this REAPI remote cache (grpc://host:port, grpcs://host[:port]) besides the"
    " local one, instead of `remote.url` (also CONVEYOR_REMOTE). This machine writes to it"
    " only with `remote.upload: true` or CONVEYOR_REMOTE_UPLOAD=1.",
)
@click.option(
    "--no-remote", is_flag=True, help="Use the local cache only, whatever `remote:` says."
)
@click.option(
    "--remote-execute",
    is_flag=True,
    help="Run every job that can on the remote's workers (REAPI Execute), as"
    " `remote.execute: true` or CONVEYOR_REMOTE_EXECUTE=1; a job's `executor: local` stays here.",
)
@click.option(
    "--remote-jobs",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    metavar="N",
    help="Remote executions in flight at once (-j counts the local slots only).",
)
@pipeline_file_option
@click.pass_context
def run_command(
    ctx: click.Context,
    jobs: tuple[str, ...],
    parallelism: int | None,
    keep_going: bool,
    dry_run: bool,
    event: str | None,
    inputs: tuple[str, ...],
    matrix_picks: tuple[str, ...],
    secret_file: str | None,
    env_file: str | None,
    on_unsupported: str,
    variables: tuple[str, ...],
    as_json: bool,
    plain: bool,
    quiet: bool,
    affected_ref: str | None,
    no_cache: bool,
    explain: bool,
    no_history: bool,
    gates_junit: str | None,
    codequality: str | None,
    no_wait: bool,
    only: bool,
    manual_jobs: tuple[str, ...],
    kill_grace: float,
    otlp_url: str | None,
    remote_url: str | None,
    no_remote: bool,
    remote_execute: bool,
    remote_jobs: int,
) -> int:
    """Run the pipeline's jobs as a parallel graph (JOBS: only these and what they need)."""
    from conveyor.interop import dotenv

    secrets = dotenv.read(secret_file) if secret_file else {}
    if ctx.obj and ctx.obj.get("pipeline_file"):
        ctx.obj["github_options"] = _github_options(
            event,
            inputs,
            variables,
            on_unsupported,
            dotenv.read(env_file) if env_file else {},
            sorted(secrets),
        )
        ctx.obj["gitlab_options"] = _gitlab_options(event, variables, on_unsupported)
    if event in ("workflow_dispatch", "pull_request_target", "release", "merge_group"):
        event = {"workflow_dispatch": "manual", "pull_request_target": "pull_request"}.get(
            event, "push"
        )
    pipeline = load(ctx)
    if remote_url is not None or no_remote or pipeline.remote or "CONVEYOR_REMOTE" in os.environ:
        from conveyor.config.remote import resolve

        remote = resolve(pipeline.remote, os.environ, url=remote_url, off=no_remote)
        if remote is not None and remote_execute:
            remote = remote._replace(execute=True)
        pipeline = dataclasses.replace(pipeline, remote=remote)
    elif remote_execute:
        raise click.UsageError(
            "--remote-execute needs a remote: `remote:` in the pipeline file, --remote URL "
            "or CONVEYOR_REMOTE"
        )
    if only and not jobs:
        raise click.UsageError("--only runs the jobs named: name them (conveyor run --only JOB)")
    from conveyor.graph.context import GitFacts
    from conveyor.run import policy

    facts = GitFacts(pipeline.root)
    scan = None if dry_run else policy.start_scan(pipeline)
    # The git commands are reaped whatever happens next (click closes the context even
    # when the command raises).
    ctx.call_on_close(facts.close)
    if scan is not None:
        ctx.call_on_close(scan.close)
    from conveyor.graph import context as run_context

    environ = dict(os.environ)
    environ.update(secrets)  # this run's environment only, never Conveyor's own
    context = run_context.detect(pipeline.root, environ, event, git=facts)
    pipeline, context = for_this_run(ctx, pipeline, context, environ, variables, take=not dry_run)
    if matrix_picks:
        from conveyor.graph.plan import pick_matrix

        picks = {}
        for item in matrix_picks:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise click.BadParameter(
                    f"expected NAME=VALUE, got {item!r}", param_hint="--matrix"
                )
            picks[name] = value
        jobs = tuple(pick_matrix(pipeline, jobs, picks))
    selection = policy.select_jobs(pipeline, context, jobs, affected_since=affected_ref)
    if selection.nothing_affected:
        click.echo(f"no job is affected by changes since {affected_ref}", err=as_json)
        return 0
    selected = selection.jobs
    from conveyor.graph import plan as graph

    manual = graph.select_manual(pipeline, manual_jobs) if manual_jobs else []
    if selected and manual:  # `conveyor run test --manual deploy`: both
        selected = (*selected, *(m for m in manual if m not in selected))
    parallelism = parallelism or os.cpu_count() or 1
    if dry_run:
        from conveyor.graph import plan as graph

        plan = graph.plan(pipeline, context, selected, manual, only=only)
        cache = _cache_verdicts(plan, context, environ, read=not no_cache, explain=explain)
        _print_plan(plan, context, parallelism, as_json, cache)
        return 0

    from conveyor.run.compose import run_pipeline

    exporters: list[Sink] = []
    if otlp_url is not None:
        from conveyor.export import otlp
        from conveyor.export.otlp_live import OtlpExport

        where = f"conveyor run {otlp_url} --otlp"
        exporters.append(OtlpExport(otlp.option(otlp_url, environ, before=where)))
    stream = sys.stderr if as_json else sys.stdout
    view = _view(stream, context, plain=plain, quiet=quiet, explain=explain)
    previous = _stop_on_signals()
    try:
        outcome = run_pipeline(
            pipeline,
            context,
            environ,
            selected=selected,
            manual=manual,
            only=only,
            parallelism=parallelism,
            keep_going=keep_going,
            sinks=[view, *_ci_sinks(context, environ, stream), *exporters],
            kill_grace=kill_grace,
            read_cache=not no_cache,
            explain=explain,
            scan=scan,
            history=policy.shared_history(pipeline, environ),
            record_history=not no_history,
            wait_for_lock=not no_wait,
            on_lock_wait=_say_waiting,
            remote_jobs=remote_jobs,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = {"success": 0, "failed": 1}.get(outcome.finished.status, 130)
    try:
        _finish(outcome, gates_junit, codequality, as_json)
    except OSError as exc:
        # An interrupted run whose terminal or pipe is gone (a hangup) has nowhere to
        # say more; its summary is written, and its exit code stays 130.
        if code != 130 or exc.errno not in (errno.EIO, errno.EPIPE):
            raise
    return code


def for_this_run(
    ctx: click.Context,
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    variables: tuple[str, ...] = (),
    *,
    take: bool,
) -> tuple[Pipeline, RunContext]:
    """The pipeline with its `${{ env/vars/run }}` expressions filled in for this run,
    and the context with the build number when a job reads `run.number` (taken from the
    workspace's counter unless `take` is false: a dry run only says it)."""
    from conveyor.config.resolve import parse_vars, resolve, uses

    overrides = parse_vars(variables, dict(pipeline.vars))
    # A stored artifact version records the build number, whether a job reads it or not.
    if uses(pipeline, "run.number") or any(job.artifacts for job in pipeline.jobs):
        import dataclasses

        from conveyor.graph.context import build_number

        context = dataclasses.replace(
            context, number=build_number(pipeline.root, environ, take=take)
        )
    from conveyor.config import locate_in_file
    from conveyor.errors import ConfigError

    try:
        return resolve(pipeline, context, environ, overrides), context
    except ConfigError as exc:
        raise locate_in_file(exc, pipeline.path) from None


def _view(stream: TextIO, context: RunContext, *, plain: bool, quiet: bool, explain: bool) -> Sink:
    """The live table on a terminal, plain lines elsewhere (CI, a pipe, TERM=dumb)."""
    if not plain and stream.isatty() and context.ci is None and os.environ.get("TERM") != "dumb":
        from conveyor.cli.view import LiveView

        return LiveView(stream, show_output=not quiet, explain=explain)
    from conveyor.cli.view import PlainView

    return PlainView(stream, show_output=not quiet, explain=explain)


def _finish(
    outcome: RunOutcome, gates_junit: str | None, codequality: str | None, as_json: bool
) -> None:
    """What is printed or written after the run."""
    for problem in outcome.sink_errors:
        click.echo(f"warning: {problem}", err=True)
    for note in outcome.notes:
        click.echo(note, err=True)
    finished = outcome.finished
    if gates_junit:
        # Written even with no gates or checks (an empty suite): a CI step that uploads
        # the file must not fail because this run had nothing to report.
        from conveyor.gates.junit import write

        write(gates_junit, finished.all_gates, finished.checks)
    if codequality:
        import shutil

        from conveyor.export import codequality as code_climate

        found = os.path.join(outcome.run_dir, "codequality.json")
        if os.path.exists(found):
            shutil.copyfile(found, codequality)
        else:  # nothing found (or nothing scanned): an empty report, as GitLab expects
            code_climate.write(codequality, [])
    if as_json:
        click.echo(json.dumps(outcome.summary, indent=2))


def _ci_sinks(context: RunContext, environ: Mapping[str, str], stream: TextIO) -> list[Sink]:
    """What the CI running the pipeline shows besides the log."""
    if context.ci == "github":
        from conveyor.cli.github import GitHubSink

        return [GitHubSink(stream, environ)]
    return []


def _say_waiting(holder: Holder) -> None:
    click.echo(
        f"conveyor: waiting for the run in this workspace ({holder.describe()}) to finish",
        err=True,
    )


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_on_signals() -> dict[int, SignalHandler]:
    """Make SIGINT, SIGTERM and SIGHUP stop the run like Ctrl-C (the scheduler cancels
    its jobs on KeyboardInterrupt); returns the handlers they had."""
    previous: dict[int, SignalHandler] = {}
    stopping = [False]

    def stop(signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            _drop_hung_up_terminal()
        if stopping[0] and signum != signal.SIGINT:
            return  # only a second Ctrl-C means "now"
        stopping[0] = True
        raise KeyboardInterrupt

    for sig in _STOP_SIGNALS:
        handler = signal.getsignal(sig)
        # SIGINT even when ignored: a run started with `&` by a script inherits SIGINT
        # ignored, and must still stop on it. A SIGHUP ignored on purpose (nohup) stays so.
        if sig == signal.SIGHUP and handler == signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, stop)
    return previous


def _drop_hung_up_terminal() -> None:
    """Point standard output and error at /dev/null if they are a terminal that hung up:
    every write to it fails (EIO), and what is left to say would fail the clean stop."""
    import termios

    for fd in (1, 2):
        try:
            termios.tcgetattr(fd)
        except termios.error as exc:
            if exc.args[0] != errno.EIO:
                continue  # not a terminal (ENOTTY), or a live one
        else:
            continue
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def _cache_verdicts(
    plan: Plan, context: RunContext, environ: Mapping[str, str], *, read: bool, explain: bool
) -> dict[str, Verdict] | str:
    """For `run -n`: which of the jobs would be served from the cache (`conveyor why`'s
    verdicts: keys made and looked up, nothing run or restored), the remote cache's
    included when the run would use one (looked at there, nothing written); or why that
    cannot be told. A remote that cannot be reached is a warning line."""
    from conveyor.cache.interface import CacheError
    from conveyor.cache.jobs import JobCache
    from conveyor.cache.local import default_root
    from conveyor.cache.stores import open_store
    from conveyor.cache.why import verdicts
    from conveyor.executor.local import LocalExecutor
    from conveyor.graph.context import run_facts
    from conveyor.workspace.files import WorkspaceFiles, workspace_state_file

    root = default_root(dict(environ))
    pipeline = plan.pipeline
    # Resolved by run_command already (--remote, --no-remote, CONVEYOR_REMOTE): only
    # read here, so never written to whatever CONVEYOR_REMOTE_UPLOAD says.
    remote = pipeline.remote._replace(upload=False) if pipeline.remote else None
    warnings: list[str] = []
    try:
        jobcache = JobCache(
            open_store(root, remote, environ, warnings.append),
            WorkspaceFiles(pipeline.root, workspace_state_file(pipeline.root)),
            pipeline,
            environ,
            run_id="dry-run",
            read=read,
            facts=run_facts(context),
            probe=LocalExecutor().probe,
            local_dir=root,
        )
        # Not saved afterwards: a dry run leaves the workspace's state as it found it.
        return {v.job: v for v in verdicts(plan, jobcache, explain=explain)}
    except (OSError, CacheError) as exc:
        return f"the cache cannot be read ({exc})"
    finally:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)


_CACHE_LABEL = {True: "cached", False: "run", None: "run?"}
_CACHE_JSON = {True: "hit", False: "miss", None: "unknown"}


def _print_plan(
    plan: Plan,
    context: RunContext,
    parallelism: int,
    as_json: bool,
    cache: Mapping[str, Verdict] | str,
) -> None:
    verdict = cache if not isinstance(cache, str) else {}
    if as_json:
        data = {
            "context": {k: getattr(context, k) for k in ("branch", "tag", "commit", "event", "ci")},
            "parallelism": parallelism,
            "jobs": [
                {
                    "name": pj.name,
                    "will_run": pj.will_run,
                    "conditional": pj.conditional,
                    "when": pj.job.when,
                    "reason": pj.reason,
                    "needs": list(pj.needs),
                    "priority": pj.priority,
                    "stage": pj.job.stage,
                    "command": pj.job.script,
                    "cache": _CACHE_JSON[verdict[pj.name].hit] if pj.name in verdict else None,
                    "cache_reasons": list(verdict[pj.name].reasons) if pj.name in verdict else [],
                }
                for pj in plan.jobs
            ],
        }
        if isinstance(cache, str):
            data["cache_unavailable"] = cache
        click.echo(json.dumps(data, indent=2))
        return
    runs = [pj for pj in plan.jobs if pj.will_run]
    maybe = sum(1 for pj in runs if pj.conditional)
    where = ", ".join(
        p
        for p in (
            f"branch {context.branch}" if context.branch else "",
            f"tag {context.tag}" if context.tag else "",
            f"event {context.event}",
        )
        if p
    )
    hits = sum(1 for v in verdict.values() if v.hit)
    some = f" ({maybe} depending on how the run goes)" if maybe else ""
    click.echo(
        f"plan: {len(runs)} of {len(plan.jobs)} job(s) would run{some} ({where}), "
        f"{parallelism} at a time; {hits} from the cache"
    )
    if isinstance(cache, str):
        click.echo(f"warning: {cache}: every job is shown as running", err=True)
    width = max((len(pj.name) for pj in plan.jobs), default=0)
    n = 0
    for pj in plan.jobs:
        if not pj.will_run:
            manual = pj.job.when == "manual" and pj.reason.startswith("manual job")
            click.echo(f"   - {pj.name:<{width}}  {'manual' if manual else 'skip  '}  {pj.reason}")
            continue
        n += 1
        label = f"{n:>3}."
        why = pj.reason
        if pj.needs:
            why += f"; after {', '.join(pj.needs)}"
        found = verdict.get(pj.name)
        hit = found.hit if found is not None else False
        reasons = found.reasons if found is not None else ()
        if hit:  # where it comes from
            why += f"; {reasons[0]}" if reasons else ""
        # Conditional: whether it runs depends on how the run goes (`if: failure()`).
        verb = "maybe" if pj.conditional and not hit else _CACHE_LABEL[hit]
        click.echo(f"{label} {pj.name:<{width}}  {verb:<6}  {why}")
        if not hit:
            for reason in reasons:  # what changed (--explain), or what it waits for
                click.echo(f"     {'':<{width}}          {reason}")


def _github_options(
    event: str | None,
    inputs: tuple[str, ...],
    variables: tuple[str, ...],
    on_unsupported: str,
    env: dict[str, str],
    secret_names: list[str],
) -> object:
    """How a GitHub workflow given with -f is translated (conveyor.interop.github)."""
    from conveyor.interop.github.workflow import Options

    def pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
        out = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=flag)
            out[name] = value
        return out

    return Options(
        event={"manual": "workflow_dispatch", "tag": "push"}.get(event or "push", event or "push"),
        inputs=pairs(inputs, "--input"),
        vars=pairs(variables, "--var"),
        on_unsupported=on_unsupported,
        env=env,
        secrets=tuple(secret_names),
    )


def _gitlab_options(event: str | None, variables: tuple[str, ...], on_unsupported: str) -> object:
    """How a `.gitlab-ci.yml` given with -f is translated (conveyor.interop.gitlab):
    `--var` sets its variables (over the file's, as a pipeline's variables do)."""
    from conveyor.interop.gitlab.pipeline import Options

    given = {}
    for item in variables:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--var")
        given[name] = value
    return Options(event=event or "push", variables=given, on_unsupported=on_unsupported)
