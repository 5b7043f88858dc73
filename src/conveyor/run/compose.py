"""One `conveyor run`, start to end: plan, preflight, run directory, scheduler, sinks."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.cache.interface import StoreUnavailable
from conveyor.cache.jobs import JobCache
from conveyor.cache.local import default_root
from conveyor.cache.stores import open_store
from conveyor.errors import ConfigError, EnvironmentProblem
from conveyor.events import EventBus, RunFinished, Sink
from conveyor.executor.interface import Executor
from conveyor.executor.local import LocalExecutor
from conveyor.graph import plan as graph
from conveyor.graph.plan import Plan
from conveyor.history.location import NO_HISTORY
from conveyor.model import Job, Pipeline, RunContext
from conveyor.run.lock import OnWait, lock_workspace
from conveyor.run.rundir import (
    EventLogSink,
    JobLogSink,
    LogNames,
    ResultJSON,
    SummarySink,
    create_run_dir,
    new_run_id,
)
from conveyor.run.scheduler import RunOptions, Scheduler
from conveyor.workspace.files import GitScan, WorkspaceFiles, workspace_state_file

if TYPE_CHECKING:
    from conveyor.gates.keeper import GateKeeper
    from conveyor.run.artifacts import ArtifactCollector


@dataclass
class RunOutcome:
    finished: RunFinished
    summary: dict[str, object]
    run_dir: str
    sink_errors: list[str]
    notes: list[str] = dataclasses.field(default_factory=list)
    """Lines to say after the run that are no problem (what was uploaded to the remote)."""


def check_secrets(plan: Plan, environ: Mapping[str, str]) -> None:
    """Every secret a running job declares must be set, and long enough to be masked
    (conveyor.executor.masking.MIN_SECRET_LENGTH); checked before anything starts."""
    if not any(pj.job.secrets for pj in plan.runnable):
        return  # and masking (base64, json, urllib) is not imported
    from conveyor.executor.masking import MIN_SECRET_LENGTH, too_short

    for pj in plan.runnable:
        for i, name in enumerate(pj.job.secrets):
            if not environ.get(name):
                raise EnvironmentProblem(
                    f"job '{pj.name}' needs the secret {name}, which is not set in the environment",
                    hint=f"export {name}=... before `conveyor run` (its value is never printed)",
                )
            if too_short(environ[name]):
                from conveyor.config import locate_in_file

                pipeline = plan.pipeline
                error = ConfigError(
                    f"the secret {name} is shorter than {MIN_SECRET_LENGTH} characters: "
                    "too short to be masked in the job's output",
                    path=("jobs", pj.job.base, "secrets", i),
                    hint=f"use a value of at least {MIN_SECRET_LENGTH} characters, or pass a "
                    "value that is not secret with pass_env",
                )
                raise locate_in_file(
                    error, os.path.join(pipeline.root, os.path.basename(pipeline.path))
                )


def run_pipeline(
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    *,
    selected: Sequence[str] = (),
    manual: Sequence[str] = (),
    only: bool = False,
    parallelism: int,
    keep_going: bool = False,
    sinks: Sequence[Sink] = (),
    kill_grace: float = 5.0,
    cache: bool = True,
    read_cache: bool = True,
    explain: bool = False,
    scan: GitScan | None = None,
    history: str | None = None,
    record_history: bool = True,
    wait_for_lock: bool = True,
    on_lock_wait: OnWait | None = None,
    remote_jobs: int = 64,
) -> RunOutcome:
    """Run the plan. `scan` is the workspace's git scan if the caller started it early
    (so it overlaps the caller's own start-up); it is started here otherwise. `history`:
    a database URL to record the run in as it ends (a shared history); without one, the
    run directory is recorded in the workspace's database by the next history command.
    `record_history=False` (--no-history) keeps the run out of every history. `manual`:
    the manual jobs (`when: manual`) asked for besides those `selected`; `only`: those
    without what they need (`--only`).
    `remote_jobs`: remote executions in flight at once (`--remote-jobs`). The
    workspace's run lock is held throughout: when another run holds it, this waits
    (telling `on_lock_wait` first), or raises RunInProgress if not `wait_for_lock`."""
    plan = graph.plan(pipeline, context, selected, manual, only=only)
    check_secrets(plan, environ)
    # Taken before the run directory, kept to the end whatever happens: two runs of one
    # workspace never interleave their writes (issue 10).
    lock = lock_workspace(pipeline.root, wait=wait_for_lock, on_wait=on_lock_wait)
    try:
        run_id = new_run_id()
        run_dir = _run_dir(pipeline.root, run_id, record_history)
        warnings: list[str] = []
        # The one executor of the run: jobs, command gates and tool probes all use it.
        local = LocalExecutor(grace=kill_grace)
        jobcache = (
            _job_cache(pipeline, context, environ, run_id, read_cache, warnings, scan, local)
            if cache
            else None
        )
        executor = _executor(plan, environ, jobcache, local, warnings)
        results = ResultJSON()
        summary = SummarySink(run_dir, os.path.abspath(pipeline.path), results)
        log_names = LogNames()
        keeper = (
            _keeper(plan, context, environ, run_dir, run_id, executor, jobcache, scan)
            if _needs_keeper(pipeline)
            else None
        )
        if jobcache is not None and any(pj.job.inputs for pj in plan.runnable):
            warnings += _unmatched_inputs(pipeline, plan, jobcache.files)
        collector = _collector(plan, context, run_id, environ)
        bus = EventBus([JobLogSink(), EventLogSink(run_dir, results), summary, *sinks])
        scheduler = Scheduler(
            plan,
            executor,
            bus,
            context,
            environ,
            RunOptions(
                run_id=run_id,
                run_dir=run_dir,
                parallelism=parallelism,
                keep_going=keep_going,
                log_name=log_names,
                explain=explain,
                hooks=keeper,
                remote=pipeline.remote if executor is not local else None,
                remote_jobs=max(1, remote_jobs),
                artifacts=collector,
            ),
            jobcache,
        )
        said: list[str] = []
        try:
            finished = scheduler.run()
            if jobcache is not None and jobcache.stored:
                from conveyor.run.undeclared import review

                warnings += review(jobcache, scheduler.jobs, finished.results)
            if collector is not None:
                said, problems = collector.finish()
                warnings += problems
        finally:
            notes = [*said, *_close(bus, keeper, jobcache, warnings)]
        if keeper is not None:
            warnings += _gate_reports(keeper, finished, run_dir)
        if history is not None and record_history:
            _record(history, pipeline.root, run_dir, warnings)
        _keep_runs(pipeline, history, warnings)
        return RunOutcome(finished, summary.summary or {}, run_dir, [*warnings, *bus.errors], notes)
    finally:
        lock.release()


def _collector(
    plan: Plan, context: RunContext, run_id: str, environ: Mapping[str, str]
) -> ArtifactCollector | None:
    """What stores the jobs' artifacts as versions, when a job of the run declares any."""
    if not any(pj.job.artifacts is not None for pj in plan.runnable):
        return None
    from conveyor.run.artifacts import ArtifactCollector

    return ArtifactCollector(plan.pipeline, context, run_id, environ)


def _executor(
    plan: Plan,
    environ: Mapping[str, str],
    jobcache: JobCache | None,
    local: LocalExecutor,
    warnings: list[str],
) -> Executor:
    """The run's executor: the local one, wrapped by a remote executor when some job
    runs on the remote's workers (`executor: remote`, `remote.execute`). Remote jobs
    that cannot go there run here, with a warning saying why."""
    from conveyor.config.remote import runs_remotely

    remote = plan.pipeline.remote
    asked = [pj.job for pj in plan.runnable if pj.job.executor == "remote"]
    if remote is None:
        if asked:
            warnings.append(
                f"{_count(asked)} says `executor: remote` but no remote is set (remote: in "
                "the pipeline file, --remote or CONVEYOR_REMOTE): it runs here"
            )
        return local
    if not any(runs_remotely(pj.job, remote) for pj in plan.runnable):
        return local
    if jobcache is None:
        warnings.append(
            "remote execution needs the job cache (a job's action is its key's): "
            "with the cache off, every job runs here"
        )
        return local
    from conveyor.cache.remote import RemoteStore
    from conveyor.executor.remote import RemoteExecutor
    from conveyor.reapi.channel import Connection

    server = getattr(jobcache.store, "remote", None)  # a tiered store's remote tier
    try:
        connection = (
            server.connection
            if isinstance(server, RemoteStore)
            else Connection(remote, environ, error=StoreUnavailable, what="remote executor")
        )
        cas = RemoteStore(remote, environ, connection=connection, cas_writes=True)
    except StoreUnavailable as exc:
        warnings.append(f"remote execution unavailable: {exc}; every job runs here")
        return local
    return RemoteExecutor(connection, cas, local, on_warning=warnings.append)


def _count(jobs: Sequence[Job]) -> str:
    names = ", ".join(f"'{job.name}'" for job in jobs[:3])
    more = f" and {len(jobs) - 3} more" if len(jobs) > 3 else ""
    return f"job {names}{more}" if len(jobs) == 1 else f"jobs {names}{more}"


def _run_dir(root: str, run_id: str, record_history: bool) -> str:
    """The run's directory, created (marked when the run stays out of every history)."""
    try:
        run_dir = create_run_dir(root, run_id)
        if not record_history:
            with open(os.path.join(run_dir, NO_HISTORY), "w", encoding="utf-8") as fh:
                fh.write("recorded with --no-history\n")
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the run directory in {root}/.conveyor: {exc.strerror}",
            hint="Conveyor keeps each run's logs and summary there; make it writable",
        ) from None
    return run_dir


def _keeper(
    plan: Plan,
    context: RunContext,
    environ: Mapping[str, str],
    run_dir: str,
    run_id: str,
    executor: Executor,
    jobcache: JobCache | None,
    scan: GitScan | None,
) -> GateKeeper:
    """What runs around the jobs: the checks before and after, the gates, the reports."""
    from conveyor.gates.keeper import GateKeeper

    return GateKeeper(
        plan.pipeline,
        [pj.job for pj in plan.runnable],
        context,
        environ,
        run_dir,
        run_id,
        executor=executor,
        cache_dir=jobcache.local_dir if jobcache is not None else None,
        scan=scan,
    )


def _close(
    bus: EventBus, keeper: GateKeeper | None, jobcache: JobCache | None, warnings: list[str]
) -> list[str]:
    """The run's sinks, keeper and cache closed, whatever ended the run; what the cache
    has to say of it (a tiered store: what it uploaded, once its uploads are done)."""
    bus.close()
    if keeper is not None:
        keeper.close()
    notes: list[str] = []
    if jobcache is not None:
        jobcache.save()  # flushes the store: the remote uploads are awaited here
        if jobcache.write_error:
            warnings.append(
                f"the cache could not be written ({jobcache.write_error}): "
                "results from then on were not stored"
            )
        jobcache.files.close()
        summary = getattr(jobcache.store, "summary", None)  # a tiered store's
        said = summary() if callable(summary) else None
        if said:
            notes.append(said)
    return notes


def _gate_reports(keeper: GateKeeper, finished: RunFinished, run_dir: str) -> list[str]:
    """The gates and checks as JUnit (gates.xml) and the findings as GitLab Code Quality
    (codequality.json) in the run directory; the keeper's warnings."""
    if finished.all_gates or finished.checks:
        from conveyor.gates.junit import write

        write(os.path.join(run_dir, "gates.xml"), finished.all_gates, finished.checks)
    found = keeper.findings()
    if found:
        from conveyor.export import codequality

        codequality.write(os.path.join(run_dir, "codequality.json"), found)
    return [*(f"a report was not read: {p}" for p in keeper.problems), *keeper.notes]


def _unmatched_inputs(pipeline: Pipeline, plan: Plan, files: WorkspaceFiles) -> list[str]:
    """`inputs:` patterns of the jobs about to run that match no file (located, with a
    did-you-mean); a pattern a needed job will produce is not one of them."""
    from conveyor.checks.inputs import pipeline_unmatched, unmatched_message
    from conveyor.config import locate_warnings

    running = {pj.name for pj in plan.runnable}
    found = [u for u in pipeline_unmatched(pipeline, files.candidates()) if u.job in running]
    located = locate_warnings([(u.path, unmatched_message(u)) for u in found], pipeline.path)
    return [line.replace(": warning: ", ": ", 1) for line in located]


def _keep_runs(pipeline: Pipeline, history: str | None, warnings: list[str]) -> None:
    """Remove the oldest run directories beyond `history.keep_runs` (once recorded)."""
    from conveyor.history.retention import over_limit

    if not over_limit(pipeline.root, pipeline.keep_runs):
        return
    from sqlalchemy.exc import SQLAlchemyError

    from conveyor.errors import ConveyorError
    from conveyor.history.location import database_url
    from conveyor.history.retention import prune

    url = history or database_url(pipeline.root, None, {})
    try:
        prune(pipeline.root, pipeline.keep_runs, url)
    except (ConveyorError, SQLAlchemyError, OSError) as exc:
        warnings.append(f"old run directories were kept: the history is unavailable: {exc}")


def _needs_keeper(pipeline: Pipeline) -> bool:
    """Whether anything runs around the jobs: checks, gates, or reports to read."""
    return bool(
        pipeline.gates
        or pipeline.requires
        or pipeline.checks.before
        or pipeline.checks.after
        or any(j.gates or j.requires or j.reports.junit for j in pipeline.jobs)
    )


def _job_cache(
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    run_id: str,
    read: bool,
    warnings: list[str],
    scan: GitScan | None,
    executor: Executor,
) -> JobCache | None:
    """The job cache over the run's store (conveyor.cache.stores), its bookkeeping in
    $CONVEYOR_CACHE_DIR (default ~/.cache/conveyor), or None when the store cannot be
    opened: the run goes on uncached, with a warning."""
    root = default_root(dict(environ))
    try:
        store = open_store(root, pipeline.remote, environ, warnings.append)
    except StoreUnavailable as exc:
        warnings.append(f"the job cache is off for this run: cannot use {root}: {exc.reason}")
        return None
    files = WorkspaceFiles(pipeline.root, workspace_state_file(pipeline.root), scan=scan)
    from conveyor.graph.context import run_facts

    return JobCache(
        store,
        files,
        pipeline,
        environ,
        run_id=run_id,
        read=read,
        facts=run_facts(context),
        probe=executor.probe,
        local_dir=root,
    )


def _record(url: str, root: str, run_dir: str, warnings: list[str]) -> None:
    """Record the run in a shared history now, and any earlier run of the workspace it
    lacks (killed before it could record itself, or the database was down then); a
    failure is a warning, never the run's."""
    from sqlalchemy.exc import SQLAlchemyError

    from conveyor.errors import ConveyorError
    from conveyor.history.rundirs import read_run, record_missing
    from conveyor.history.store import HistoryStore

    try:
        record = read_run(run_dir)
        if record is None:
            return
        store = HistoryStore(url)
        try:
            store.record(record)
            record_missing(store, root)
        finally:
            store.close()
    except (ConveyorError, SQLAlchemyError, OSError) as exc:
        warnings.append(f"the run was not recorded in the history: {exc}")
