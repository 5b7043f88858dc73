"""Drive a Plan to completion: a ready queue, N workers, retries, fail-fast, cancel.

The scheduler emits events and returns the run's outcome; it never prints. Jobs
become ready when everything they need has finished well (success, or a failure
the job allows); among ready jobs the one heading the longest remaining chain
starts first, so the critical path begins as early as it can.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from conveyor.cache.jobs import JobCache
from conveyor.cache.keys import BuiltAction
from conveyor.config.remote import runs_remotely
from conveyor.errors import ConveyorError
from conveyor.events import (
    ChecksFinished,
    EventBus,
    JobFinished,
    JobOutput,
    JobQueued,
    JobStarted,
    JobWaiting,
    RunFinished,
    RunStarted,
)
from conveyor.executor.environment import job_request
from conveyor.executor.interface import Cancel, ExecRequest, Executor
from conveyor.graph.plan import Plan, PlannedJob, runs_on_status
from conveyor.insights.critical_path import critical_path
from conveyor.model import (
    CheckResult,
    GateResult,
    Job,
    JobResult,
    JobStatus,
    OutputFile,
    Remote,
    RunContext,
)
from conveyor.run import values
from conveyor.run.attempts import JobLog, run_attempts, stopped_verb
from conveyor.run.cached import CachedJobs
from conveyor.run.conditions import RESULT_NAMES, Decision, Upstream, decide, upstream, worse
from conveyor.run.lock import Holder, RunLock, group_lock_dir, lock_group
from conveyor.run.remote_jobs import remote_spec
from conveyor.run.workers import Workers
from conveyor.units import format_duration

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2.remote_execution_pb2 import (
        ActionResult,
    )

_RUNS = Decision(True, "", False)


class RunHooks(Protocol):
    """What runs around the jobs (the checks and gates, `conveyor.gates.keeper`): the
    scheduler only calls these at their moments and acts on blocking results."""

    def before(self) -> Sequence[CheckResult]:
        """Checks before the first job; a blocking one starts no job."""
        ...

    def job(self, job: Job, result: JobResult) -> JobResult:
        """A finished job's result with its gates evaluated (on the worker's thread, or
        the scheduler's for a cache hit); may turn it into a failure or, for failures a
        tests gate tolerates, a success."""
        ...

    def after(
        self, results: Sequence[JobResult], started: float, finished: float, ok: bool
    ) -> tuple[Sequence[CheckResult], Sequence[GateResult]]:
        """Checks after the last job (when `ok`) and the pipeline's gates."""
        ...


class ArtifactHook(Protocol):
    """Stores a finished job's artifacts (`conveyor.run.artifacts`): on a worker's thread,
    before the jobs that need it start."""

    def wants(self, job: Job, result: JobResult) -> bool:
        """Whether the job's artifacts are stored after this result (its `when:`)."""
        ...

    def collect(
        self,
        job: Job,
        result: JobResult,
        say: Callable[[str], None],
        inputs: Callable[[], Sequence[tuple[str, str]]] | None = None,
    ) -> JobResult:
        """Store them, saying what was done in the job's log; the result after (a job
        whose artifacts could not be stored has failed). `inputs`: the input files its
        cache key was made of, (path, 'sha256/size[x]'), for its provenance (None: the
        job had no key: the cache was off)."""
        ...


@dataclass(frozen=True)
class RunOptions:
    run_id: str
    run_dir: str
    parallelism: int
    keep_going: bool = False
    log_name: Callable[[str], str] = lambda name: name
    explain: bool = False
    """Say why each cache miss missed."""
    hooks: RunHooks | None = None
    remote: Remote | None = None
    """The run's remote: jobs it executes (`runs_remotely`) go to its workers."""
    remote_jobs: int = 64
    """Remote executions in flight at once (`--remote-jobs`); `parallelism` counts the
    local slots only."""
    artifacts: ArtifactHook | None = None
    """Stores the jobs' `artifacts:` as versions (None: no job declares any)."""


class _RunState:
    """Where a run stands, as the scheduler's loop moves it on."""

    def __init__(self, plan: Plan) -> None:
        self.jobs = list(plan.jobs)
        """The plan's jobs; a job whose matrix another computes gives way to its
        instances once they are known."""
        self.order = {pj.name: i for i, pj in enumerate(plan.jobs)}
        self.by_name = {pj.name: pj for pj in plan.jobs}
        self.runnable = [pj for pj in plan.jobs if pj.will_run]
        self.dependents = plan.dependents()
        self.waiting = {pj.name: len(pj.needs) for pj in self.runnable}
        """How many of its needs each runnable job still waits for."""
        self.results: dict[str, JobResult] = {}
        self.trails: dict[str, Upstream] = {}
        """What failed or was cancelled in or before each finished job (a job that
        succeeded in a plan without conditional jobs has none: all went well before it)."""
        self.plain = not any(pj.conditional for pj in plan.jobs)
        """No job runs on how the run goes: only a job that did not succeed can have
        something wrong behind it, so only those need a trail."""
        self.secrets = frozenset(s for pj in plan.jobs for s in pj.job.secrets)
        self.ready: list[tuple[int, int, str]] = []
        """A heap: the job heading the longest remaining chain first, then plan order."""
        self.running: set[str] = set()
        self.asking: set[str] = set()
        """Jobs whose entry the remote cache is being asked for (no slot taken)."""
        self.checks: list[CheckResult] = []
        self.checks_time: float | None = None
        """Seconds the checks before the build took."""
        self.stop_reason: str | None = None
        self.interrupted = False
        self.groups: dict[str, str] = {}
        """Each resource group held in this run: by the job handed over in it."""
        self.group_queue: dict[str, list[_HandOver]] = {}
        """Jobs ready, their keys looked up (a miss), waiting for their group, in order."""
        self.unblocked: list[_HandOver] = []
        """Jobs whose group was just given to them, to hand over before any other."""


REMOTE_LOOKUPS = 32
"""Jobs the remote cache is asked for at once: its round trips overlap (BuildGrid on
loopback: 1,000 lookups took 0.97 s one at a time, 0.54 s with 8 to 64 in flight; at
1,000 in flight it refused, its thread pool full)."""


class _Missed(NamedTuple):
    """The remote cache did not have a job: it runs, as any miss."""

    job: _HandOver


class _HandOver(NamedTuple):
    """A job to hand to a worker: its action, looked up and missed (or found, with
    outputs to restore: `entry`)."""

    pj: PlannedJob
    built: BuiltAction | None
    reasons: tuple[str, ...]
    entry: ActionResult | None = None
    upstream: tuple[OutputFile, ...] | None = None
    """For a job a remote worker runs: its needs' outputs (part of its input root)."""


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        executor: Executor,
        bus: EventBus,
        context: RunContext,
        environ: Mapping[str, str],
        options: RunOptions,
        jobcache: JobCache | None = None,
    ) -> None:
        self.plan = plan
        self.executor = executor
        self.bus = bus
        self.context = context
        self.environ = environ
        self.opt = options
        self.cached = CachedJobs(jobcache, bus, self._log_path, explain=options.explain)
        self._done: queue.Queue[JobResult | _Missed] = queue.Queue()
        # Stopping is always for the whole run (fail-fast or an interrupt), so one
        # Cancel is shared by every running job; but for those that run on how the run
        # goes (`if: always()`, a cleanup), which only a second Ctrl-C stops.
        self._cancel = Cancel()
        self._late_cancel = Cancel()
        self._queued_at: dict[str, float] = {}
        self._holds: dict[str, threading.Event] = {}
        self._holds_lock = threading.Lock()
        self._closing = False
        self.jobs: tuple[Job, ...] = tuple(pj.job for pj in plan.runnable)
        """The jobs that were to run; after `run`, with the instances of a matrix
        computed during it in place of the job that stood for them."""
        self._remote_exec = (
            options.remote is not None
            and jobcache is not None
            and any(runs_remotely(pj.job, options.remote) for pj in plan.runnable)
        )
        """Whether some job of the run goes to the remote's workers."""
        self._remote_pool: Workers | None = None
        self._value_notes: dict[str, list[str]] = {}
        """Lines for the log of a job about to run (values it reads that were not written)."""

    # -- one job, on a worker thread ----------------------------------------------
    def _values_file(self, name: str) -> str:
        return values.values_path(self.opt.run_dir, self.opt.log_name(name))

    def _request(self, pj: PlannedJob) -> ExecRequest:
        return job_request(
            pj.job,
            self.plan.pipeline,
            self.context,
            self.environ,
            self.opt.run_id,
            self._values_file(pj.name),
        )

    def _work(self, job: _HandOver, cancel: Cancel) -> None:
        pj, built, reasons = job.pj, job.built, job.reasons
        if cancel.requested.is_set():  # handed over, but the run stopped before it started
            why = (cancel.reason or "cancelled").removeprefix("cancelled: ")
            self._done.put(JobResult(pj.name, JobStatus.SKIPPED, reason=f"not started: {why}"))
            return
        try:
            served = None
            if job.entry is not None and built is not None:
                served = self.cached.restore(pj, built, job.entry, self._queued_at.get(pj.name))
                if served is None:  # gone since it was found: the job runs
                    missed = self.cached.missed(pj, built)
                    built, reasons = (None, ()) if missed is None else (built, missed)
            if served is not None:
                result = served
                if self.opt.hooks is not None:
                    result = self.opt.hooks.job(pj.job, result)
            else:
                upstream = job.upstream if job.entry is None else None
                result = self._ran(pj, cancel, built, reasons, upstream)
            result = self._collected(pj, result, built)
        except Exception as exc:  # a bug here must still end the job, or the run hangs
            now = time.time()
            result = JobResult(
                pj.name,
                JobStatus.FAILED,
                reason=f"conveyor internal error: {exc!r}",
                started_at=now,
                finished_at=now,
            )
        hold = None
        if result.blocks_run:
            # Do not start the next job handed over before the scheduler has decided
            # whether this failure stops the run (fail-fast).
            with self._holds_lock:
                if not self._closing:
                    hold = self._holds[pj.name] = threading.Event()
        self._done.put(result)
        if hold is not None:
            hold.wait()

    def _collects(self, job: Job, result: JobResult) -> bool:
        hook = self.opt.artifacts
        return hook is not None and hook.wants(job, result)

    def _collected(
        self, pj: PlannedJob, result: JobResult, built: BuiltAction | None = None
    ) -> JobResult:
        """The result after the job's artifacts were stored (when its `when:` says so).
        `built`: the job's action, whose manifest names the inputs its key was made of."""
        hook = self.opt.artifacts
        if hook is None or not hook.wants(pj.job, result):
            return result
        said: list[str] = []
        silent_hit = result.cached and result.log_path is None

        def say(line: str) -> None:
            if not said and silent_hit:  # its log begins here
                now = time.time()
                self.bus.emit(JobStarted(pj.name, 1, now, self._log_path(pj.name), cached=True))
            said.append(line)
            self.bus.emit(JobOutput(pj.name, line, time.time()))

        # The manifest of a hit served by the memo is made only now, and only when a
        # provenance asks for it (from the stat cache: the same digests as the key's).
        inputs = None if built is None else functools.partial(_manifest_inputs, built)
        result = hook.collect(pj.job, result, say, inputs)
        if said and result.log_path is None:
            result = dataclasses.replace(result, log_path=self._log_path(pj.name))
        return result

    def _collect_hit(self, pj: PlannedJob, hit: JobResult, built: BuiltAction | None) -> None:
        """On a worker's thread: a cache hit's artifacts stored, then the hit settled."""
        try:
            result = self._collected(pj, hit, built)
        except Exception as exc:  # a bug here must still end the job, or the run hangs
            result = dataclasses.replace(
                hit, status=JobStatus.FAILED, reason=f"conveyor internal error: {exc!r}"
            )
        self._done.put(result)

    def _ran(
        self,
        pj: PlannedJob,
        cancel: Cancel,
        built: BuiltAction | None,
        reasons: tuple[str, ...],
        upstream: tuple[OutputFile, ...] | None = None,
    ) -> JobResult:
        """The job run (`_attempts`), then judged by its gates."""
        result, lines = self._attempts(pj, cancel, built, reasons, upstream)
        if self.opt.hooks is not None:
            executed = result
            result = self.opt.hooks.job(pj.job, result)
            if executed.status is JobStatus.FAILED and result.status is JobStatus.SUCCESS:
                # Failures its tests gate tolerates: stored like a success (with its
                # exit code), so the job is not run again while nothing changes.
                result = self.cached.keep(pj.job, built, lines, result)
        return result

    def _log_path(self, name: str) -> str:
        return os.path.join(self.opt.run_dir, "logs", self.opt.log_name(name))

    def _attempts(
        self,
        pj: PlannedJob,
        cancel: Cancel,
        built: BuiltAction | None,
        reasons: tuple[str, ...],
        upstream: tuple[OutputFile, ...] | None = None,
    ) -> tuple[JobResult, list[str]]:
        """The job run (with its retries) and, if it succeeded, its result stored; the
        result and the last attempt's log lines. `upstream`: the job runs on a remote
        worker, with these outputs of its needs."""
        job = pj.job
        log = JobLog(job.name, self.bus)
        waited: list[str] = []
        group = self._lock_group(job, cancel, waited) if job.resource_group else None
        if isinstance(group, JobResult):
            return group, []
        checked = self.cached.checked.pop(job.name, None)
        try:
            restoring = time.time()
            preface, restored_keys, hits = self.cached.restore_dependencies(job)
            restored = time.time()
            preface = [
                *waited,
                *self.cached.notes.pop(job.name, ()),
                *self._value_notes.pop(job.name, ()),
                *preface,
            ]
            request = self._request(pj)
            if hits:  # after the key was made: whether a cache was there is not an input
                env = dict(request.env)
                env.update(
                    (f"CONVEYOR_CACHE_HIT_{i}", str(hit).lower()) for i, hit in enumerate(hits)
                )
                request = dataclasses.replace(request, env=env)
            values_file = request.env["CONVEYOR_OUTPUT"]
            if upstream is not None and built is not None and self.cached.jobcache is not None:
                spec = remote_spec(
                    job, self.plan.pipeline, request, built, self.cached.jobcache, upstream
                )
                request = dataclasses.replace(request, remote=spec)
            result = run_attempts(
                self.executor,
                request,
                job,
                cancel,
                log,
                self._log_path(job.name),
                preface=preface,
                queued_at=self._queued_at.get(job.name),
                action_digest=built.digest.hash if built is not None else None,
                miss_reasons=reasons,
                values_file=values_file,
            )
        finally:
            if group is not None:
                group.release()
        written, notes = values.read(values_file, request.secrets)
        for line in notes:
            log(line)
        if written:
            result = dataclasses.replace(result, values=written)
        ran = result.finished_at
        if result.status is JobStatus.SUCCESS:
            # A failed job is never stored; a successful one is, with its last attempt's log.
            result = self.cached.keep(job, built, log.lines, result, log)
            self.cached.save_dependencies(job, restored_keys, log)
        return _timeline(result, checked, restoring, restored, ran), log.lines

    def _lock_group(self, job: Job, cancel: Cancel, waited: list[str]) -> RunLock | JobResult:
        """The job's resource group locked against the other runs of the machine (this
        run's own jobs of the group are kept apart by the main loop): waited for, with
        a line saying for whom in the terminal and the job's log; a skipped or failed
        result if the run stops meanwhile or the wait could never end."""
        group = job.resource_group
        assert group is not None
        since = time.time()
        holders: list[str] = []

        def on_wait(holder: Holder) -> None:
            holders.append(holder.describe())
            self.bus.emit(JobWaiting(job.name, group, holders[0], time.time()))

        try:
            lock = lock_group(
                group,
                group_lock_dir(self.environ),
                job=job.name,
                stop=cancel.requested,
                on_wait=on_wait,
            )
        except ConveyorError as exc:
            now = time.time()
            return JobResult(
                job.name, JobStatus.FAILED, reason=exc.message, started_at=now, finished_at=now
            )
        if lock is None:
            why = (cancel.reason or "cancelled").removeprefix("cancelled: ")
            return JobResult(job.name, JobStatus.SKIPPED, reason=f"not started: {why}")
        if holders:
            waited.append(
                f"conveyor: waited {format_duration(time.time() - since)} for resource group "
                f"'{group}', held by another run ({holders[0]})"
            )
        return lock

    # -- the main loop, on the calling thread ---------------------------------------
    def run(self) -> RunFinished:
        plan, opt = self.plan, self.opt
        started = time.time()
        state = _RunState(plan)
        self.bus.emit(
            RunStarted(
                run_id=opt.run_id,
                pipeline=plan.pipeline.label,
                workspace=plan.pipeline.root,
                run_dir=opt.run_dir,
                context=self.context,
                jobs=tuple(pj.name for pj in state.runnable),
                skipped=tuple((pj.name, pj.reason) for pj in plan.jobs if not pj.will_run),
                parallelism=opt.parallelism,
                time=started,
            )
        )
        for pj in plan.jobs:
            if not pj.will_run:
                self._finish(state.results, JobResult(pj.name, JobStatus.SKIPPED, reason=pj.reason))
                state.trails[pj.name] = upstream(pj, state.results[pj.name], state.trails)
        for pj in state.runnable:
            state.waiting[pj.name] = sum(1 for d in pj.needs if d not in state.results)
        if opt.hooks is not None:
            # Before any job is queued: their time is the checks', not the jobs' queue time.
            checking = time.time()
            state.checks += opt.hooks.before()
            state.checks_time = time.time() - checking
            if state.checks:
                self.bus.emit(ChecksFinished("before", tuple(state.checks), time.time()))
            failed = [c.check for c in state.checks if c.blocking]
            if failed:
                state.stop_reason = f"checks before the build failed: {', '.join(failed)}"
        for pj in state.runnable:
            if state.waiting[pj.name] == 0 and pj.name not in state.results:
                self._ready(state, pj.name)
        self._drive(state)
        self.jobs = tuple(pj.job for pj in state.jobs if pj.will_run)
        for pj in state.jobs:
            if pj.name not in state.results:
                why = f"not started: {state.stop_reason}" if state.stop_reason else "not started"
                self._finish(state.results, JobResult(pj.name, JobStatus.SKIPPED, reason=why))
        return self._conclude(state, started)

    def _verdict(self, state: _RunState, name: str) -> Decision:
        """Whether a job whose needs have all finished runs now (and if not, why)."""
        pj = state.by_name[name]
        if not pj.conditional and state.stop_reason is None:
            # The common case, cheaply: every need finished well (a failure it allows
            # included) and nothing went wrong before them.
            results, trails = state.results, state.trails
            if all(
                (
                    results[d].status is JobStatus.SUCCESS
                    or results[d].allowed_failure
                    or (results[d].status is JobStatus.SKIPPED and not pj.job.needs_explicit)
                )
                and (d not in trails or not (trails[d].failed or trails[d].cancelled))
                for d in pj.needs
            ):
                return _RUNS
        return decide(
            self.plan,
            state.by_name,
            pj,
            state.results,
            state.trails,
            self.context,
            stopping=state.stop_reason,
            interrupted=state.interrupted,
            secrets=state.secrets,
        )

    def _ready(self, state: _RunState, name: str) -> None:
        """Every need of `name` has finished: queue it, or skip it."""
        verdict = self._verdict(state, name)
        if verdict.runs:
            self._make_ready(state, name)
        else:
            self._record(state, JobResult(name, JobStatus.SKIPPED, reason=verdict.reason))

    def _record(self, state: _RunState, result: JobResult) -> None:
        """A job's result recorded; the jobs waiting on it moved on (queued, or skipped
        with their reason, and so on down the graph)."""
        stack = [result]
        while stack:
            cur = stack.pop()
            self._finish(state.results, cur)
            if not state.plain or cur.status is not JobStatus.SUCCESS:
                state.trails[cur.name] = upstream(state.by_name[cur.name], cur, state.trails)
            for dep in state.dependents.get(cur.name, ()):
                if dep in state.waiting and dep not in state.results:
                    state.waiting[dep] -= 1
                    if state.waiting[dep] == 0:
                        verdict = self._verdict(state, dep)
                        if verdict.runs:
                            self._make_ready(state, dep)
                        else:
                            stack.append(JobResult(dep, JobStatus.SKIPPED, reason=verdict.reason))

    def _make_ready(self, state: _RunState, name: str) -> None:
        pj = state.by_name[name]
        if pj.job.matrix_from is not None:
            self._expand(state, pj)
            return
        self._queued_at[name] = time.time()
        self.bus.emit(JobQueued(name, self._queued_at[name]))
        if pj.job.reads_values and not self._fill_values(state, pj):
            return
        heapq.heappush(state.ready, (-pj.priority, state.order[name], name))

    def _expand(self, state: _RunState, pj: PlannedJob) -> None:
        """A job whose matrix a job it needs computed (`fromJSON(needs.X.values.Y)`),
        its needs done: replaced by its instances, each queued (or skipped) as any job,
        the jobs that need it now waiting for every instance; failed with the reason when
        the value makes no matrix."""
        # Here: only pipelines with a computed matrix need the config's builder.
        from conveyor.config.build import expand_dynamic
        from conveyor.config.resolve import resolve_job

        written: dict[str, dict[str, str]] = {}
        for dep in pj.needs:
            result = state.results.get(dep)
            if result is not None and result.values:
                written.setdefault(state.by_name[dep].job.base, {}).update(result.values)
        got = expand_dynamic(self.plan.pipeline, pj.job, written)
        if not isinstance(got, str):
            try:
                got = [resolve_job(j, self.plan.pipeline, self.context, self.environ) for j in got]
            except ConveyorError as exc:
                got = f"matrix: {exc.message}"
        if isinstance(got, str):
            now = time.time()
            failed = JobResult(
                pj.name,
                JobStatus.FAILED,
                reason=got,
                started_at=now,
                finished_at=now,
                allowed_failure=pj.job.allow_failure and not pj.job.allow_exit_codes,
            )
            self._settle(state, failed)
            return
        instances = [dataclasses.replace(pj, job=job) for job in got]
        names = [inst.name for inst in instances]
        at = next(i for i, job in enumerate(state.jobs) if job.name == pj.name)
        state.jobs[at : at + 1] = instances
        users = state.dependents.pop(pj.name, [])
        for user in users:
            upj = state.by_name[user]
            needs: list[str] = []
            for need in upj.needs:
                needs.extend(names if need == pj.name else (need,))
            state.by_name[user] = dataclasses.replace(upj, needs=tuple(dict.fromkeys(needs)))
            if user in state.waiting:
                state.waiting[user] += len(names) - 1
        for inst in instances:
            state.by_name[inst.name] = inst
            state.order[inst.name] = state.order[pj.name]
            state.dependents[inst.name] = list(users)
            state.waiting[inst.name] = 0
        for inst in instances:
            self._make_ready(state, inst.name)

    def _fill_values(self, state: _RunState, pj: PlannedJob) -> bool:
        """The values of its needs filled into a job that reads them; False when it
        does not run after all (its `if:` is false, or it cannot run as written)."""
        written: dict[str, dict[str, str]] = {}
        for dep in pj.needs:  # instances of one job in plan order: a later one wins
            result = state.results.get(dep)
            if result is not None and result.values:
                written.setdefault(state.by_name[dep].job.base, {}).update(result.values)
        ended: dict[str, str] = {}
        for dep in pj.needs:  # a matrix job: its worst instance's result
            result = state.results.get(dep)
            if result is not None:
                base = state.by_name[dep].job.base
                ended[base] = worse(ended.get(base, ""), RESULT_NAMES[result.status])
        absent: frozenset[str] = frozenset()
        if pj.left_out:
            base_of = {j.name: j.base for j in self.plan.pipeline.jobs}
            absent = frozenset(base_of.get(n, n) for n in pj.left_out)
        done = values.resolve(
            pj.job,
            {base: tuple(pairs.items()) for base, pairs in written.items()},
            self.plan.pipeline,
            self.context,
            ended,
            absent,
        )
        if done.notes:  # they open its log (a hit replays them: they were stored with it)
            self._value_notes[pj.name] = done.notes
        if done.skip is not None or done.error is not None:
            status = JobStatus.SKIPPED if done.skip is not None else JobStatus.FAILED
            result = JobResult(
                pj.name,
                status,
                reason=done.skip or done.error or "",
                queued_at=self._queued_at.get(pj.name),
                allowed_failure=pj.job.allow_failure
                and not pj.job.allow_exit_codes
                and status is JobStatus.FAILED,
            )
            if status is JobStatus.SKIPPED:  # and so are the jobs that need it
                self._record(state, result)
            else:
                self._settle(state, result)
            return False
        state.by_name[pj.name] = dataclasses.replace(pj, job=done.job)
        return True

    def _drive(self, state: _RunState) -> None:
        """Hand ready jobs to the workers (a cache hit is served here) and settle each one
        that finishes, until every job is done or nothing more can start."""
        hooks = self.opt.hooks
        pool = Workers(max(1, self.opt.parallelism))
        # Jobs handed to the workers: those running and as many next in line, their keys
        # computed and looked up already, so a worker starts its next job the moment it
        # finishes one instead of waiting for this thread (cold 1,000-job runs had one
        # slot idle half the time).
        handed_over = 2 * max(1, self.opt.parallelism)
        if self._remote_exec:
            handed_over += self.opt.remote_jobs
        running, asking = state.running, state.asking
        # Asking a remote cache is waiting on the network, not work: many at a time, off
        # this thread and off the slots (a fresh clone served from the team's cache).
        remote = Workers(REMOTE_LOOKUPS)
        try:
            while len(state.results) < len(state.jobs):
                try:
                    completed: list[JobResult | _Missed] = []
                    while (state.ready or state.unblocked) and len(running) < handed_over:
                        if state.unblocked:  # its group is its own now
                            job = state.unblocked.pop(0)
                            name = job.pj.name
                            if state.stop_reason is not None:
                                verdict = self._verdict(state, name)
                                if not verdict.runs:
                                    _give_group(state, name)
                                    skip = JobResult(name, JobStatus.SKIPPED, reason=verdict.reason)
                                    self._record(state, skip)
                                    continue
                        else:
                            _, _, name = heapq.heappop(state.ready)
                            pj = state.by_name[name]
                            if state.stop_reason is not None:
                                # Queued before the run began to stop: only a job that runs
                                # on how the run goes (`if: always()`) still starts.
                                verdict = self._verdict(state, name)
                                if not verdict.runs:
                                    skip = JobResult(name, JobStatus.SKIPPED, reason=verdict.reason)
                                    self._record(state, skip)
                                    continue
                            looked = self.cached.look_up(pj, self._queued_at.get(name))
                            hit = looked.hit
                            if hit is not None:
                                if hooks is not None:
                                    hit = hooks.job(pj.job, hit)
                                if self._collects(pj.job, hit):
                                    # Storing its artifacts is work: a slot's, not this thread's.
                                    running.add(name)
                                    pool.submit(
                                        functools.partial(self._collect_hit, pj, hit, looked.built)
                                    )
                                    continue
                                completed.append(hit)
                                break  # handle it (its dependents may be ready) before going on
                            job = _HandOver(pj, looked.built, looked.reasons, looked.entry)
                            if looked.remote:
                                asking.add(name)
                                remote.submit(functools.partial(self._ask_remote, job))
                                continue
                            if not _take_group(state, job):
                                continue  # another job of its group runs: it waits its turn
                        self._submit(state, pool, job)
                    if not completed:
                        if not running and not asking:
                            break
                        try:
                            completed.append(self._done.get(timeout=0.25))
                        except queue.Empty:
                            continue
                    done = completed[0]
                    if isinstance(done, _Missed):
                        asking.discard(done.job.pj.name)
                        self._run_missed(state, pool, done.job)
                        continue
                    asking.discard(done.name)
                    self._settle(state, done)
                except KeyboardInterrupt:
                    if not state.interrupted:
                        state.interrupted = True
                        state.stop_reason = "the run was interrupted"
                        self._cancel_all("cancelled: the run was interrupted")
                    else:  # a second ^C: no more grace period, cleanups stopped too
                        late = self._late_cancel
                        if not late.requested.is_set():
                            late.reason = "cancelled: the run was interrupted twice"
                            late.requested.set()
                        late.force.set()
                        self._cancel.force.set()
        finally:
            with self._holds_lock:  # whatever stopped the loop, no worker may wait on it
                self._closing = True
                for hold in self._holds.values():
                    hold.set()
            pool.shutdown()
            remote.shutdown()
            if self._remote_pool is not None:
                self._remote_pool.shutdown()

    def _run_missed(self, state: _RunState, pool: Workers, job: _HandOver) -> None:
        """A job the remote cache did not have: to a slot, as any miss (or skipped, if
        the run began to stop meanwhile)."""
        name = job.pj.name
        if state.stop_reason is not None:
            verdict = self._verdict(state, name)
            if not verdict.runs:
                self._record(state, JobResult(name, JobStatus.SKIPPED, reason=verdict.reason))
                return
        if _take_group(state, job):  # else another job of its group runs: it waits its turn
            self._submit(state, pool, job)

    def _submit(self, state: _RunState, pool: Workers, job: _HandOver) -> None:
        """A job to a worker slot: a local one, or (a miss a remote worker runs) one of
        the `remote_jobs` slots, which wait on the server rather than work here."""
        state.running.add(job.pj.name)
        if (
            self._remote_exec
            and job.entry is None
            and job.built is not None
            and runs_remotely(job.pj.job, self.opt.remote)
        ):
            upstream = tuple(
                output
                for need in job.pj.needs
                if (done := state.results.get(need)) is not None
                for output in done.outputs
            )
            job = job._replace(upstream=upstream)
            if self._remote_pool is None:
                self._remote_pool = Workers(self.opt.remote_jobs)
            pool = self._remote_pool
        # A job that runs on how the run goes (a cleanup) is not stopped by fail-fast or
        # a first Ctrl-C: it is what should run then.
        cancel = (
            self._late_cancel if job.pj.conditional and runs_on_status(job.pj.job) else self._cancel
        )
        pool.submit(functools.partial(self._work, job, cancel))

    def _ask_remote(self, job: _HandOver) -> None:
        """On a remote-lookup thread: the job served from the remote cache, or handed
        back to the scheduler to run."""
        pj = job.pj
        try:
            assert job.built is not None
            got = self.cached.ask_remote(pj, job.built, self._queued_at.get(pj.name))
            if isinstance(got, JobResult):
                if self.opt.hooks is not None:
                    got = self.opt.hooks.job(pj.job, got)
                self._done.put(self._collected(pj, got, job.built))
            else:
                self._done.put(_Missed(_HandOver(pj, got.built, got.reasons)))
        except Exception as exc:  # a bug here must still end the job, or the run hangs
            now = time.time()
            self._done.put(
                JobResult(
                    pj.name,
                    JobStatus.FAILED,
                    reason=f"conveyor internal error: {exc!r}",
                    started_at=now,
                    finished_at=now,
                )
            )

    def _settle(self, state: _RunState, result: JobResult) -> None:
        """A job finished: stop the run if it failed (fail-fast), record it and move
        on the jobs waiting on it (made ready, or skipped with their reason, which
        --keep-going relies on); release its worker."""
        state.running.discard(result.name)
        _give_group(state, result.name)
        if result.blocks_run and not self.opt.keep_going and state.stop_reason is None:
            state.stop_reason = (
                f"'{result.name}' {stopped_verb(result.status)} "
                "(fail-fast; --keep-going runs independent jobs)"
            )
            self._cancel_all(f"cancelled: {state.stop_reason}")
        self._record(state, result)
        with self._holds_lock:
            hold = self._holds.pop(result.name, None)
        if hold is not None:
            hold.set()

    def _conclude(self, state: _RunState, started: float) -> RunFinished:
        """The checks after the build and the pipeline's gates, then the run's outcome."""
        opt = self.opt
        finished = time.time()
        ordered = tuple(state.results[pj.name] for pj in state.jobs)
        checks = state.checks
        failed_run = any(r.blocks_run for r in ordered) or any(c.blocking for c in checks)
        gates: Sequence[GateResult] = ()
        if opt.hooks is not None and not state.interrupted:
            after, gates = opt.hooks.after(ordered, started, finished, not failed_run)
            if after:
                self.bus.emit(ChecksFinished("after", tuple(after), time.time()))
            checks += after
            failed_run = failed_run or any(c.blocking for c in after)
            failed_run = failed_run or any(g.blocking for g in gates)
        status = "interrupted" if state.interrupted else ("failed" if failed_run else "success")
        event = RunFinished(
            run_id=opt.run_id,
            status=status,
            results=ordered,
            started_at=started,
            finished_at=finished,
            critical_path=_critical_path(state, state.results),
            gates=tuple(gates),
            checks=tuple(checks),
            checks_time=state.checks_time,
        )
        self.bus.emit(event)
        return event

    def _finish(self, results: dict[str, JobResult], result: JobResult) -> None:
        results[result.name] = result
        self.cached.finished(result)
        self.bus.emit(JobFinished(result, time.time()))

    def _cancel_all(self, reason: str) -> None:
        if not self._cancel.requested.is_set():
            self._cancel.reason = reason
            self._cancel.requested.set()


def _timeline(
    result: JobResult,
    checked: tuple[float, float] | None,
    restoring: float,
    restored: float,
    ran: float | None,
) -> JobResult:
    """A job that ran, with its phases: checked (when the cache was asked), restoring
    its dependency caches, running its attempts, storing its result and caches."""
    if result.started_at is None or ran is None:
        return result  # it never started (the run stopped first)
    done = time.time()
    return dataclasses.replace(
        result,
        started_at=checked[0] if checked is not None else restoring,
        finished_at=done if result.status is JobStatus.SUCCESS else ran,
        check_time=checked[1] - checked[0] if checked is not None else None,
        restore_time=restored - restoring,
        run_time=ran - result.started_at,
        store_time=done - ran if result.status is JobStatus.SUCCESS else None,
    )


def _take_group(state: _RunState, job: _HandOver) -> bool:
    """Whether the job may start now as far as its resource group goes (it then holds
    it); else it joins the group's queue."""
    group = job.pj.job.resource_group
    if group is None:
        return True
    if group in state.groups:
        state.group_queue.setdefault(group, []).append(job)
        return False
    state.groups[group] = job.pj.name
    return True


def _give_group(state: _RunState, name: str) -> None:
    """A job finished: its resource group goes to the next job waiting for it."""
    group = state.by_name[name].job.resource_group
    if group is None or state.groups.get(group) != name:
        return
    del state.groups[group]
    queue_ = state.group_queue.get(group)
    if queue_:
        job = queue_.pop(0)
        state.groups[group] = job.pj.name
        state.unblocked.append(job)


def _critical_path(state: _RunState, results: Mapping[str, JobResult]) -> tuple[str, ...]:
    """The run's critical path (`insights.critical_path`), from the jobs that ran or
    were served from the cache."""
    durations = {name: r.duration for name, r in results.items() if r.duration is not None}
    needs = {pj.name: state.by_name[pj.name].needs for pj in state.jobs}
    return critical_path(durations, needs, savings=False).chain


def _manifest_inputs(built: BuiltAction) -> Sequence[tuple[str, str]]:
    """The input files a job's key was made of: (path, 'sha256/size[x]')."""
    return built.manifest.inputs
