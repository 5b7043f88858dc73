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
from typing import Protocol

from conveyor.cache.jobs import JobCache
from conveyor.cache.keys import BuiltAction
from conveyor.events import (
    ChecksFinished,
    EventBus,
    JobFinished,
    JobOutput,
    JobQueued,
    JobRetrying,
    JobStarted,
    RunFinished,
    RunStarted,
)
from conveyor.executor.environment import job_request
from conveyor.executor.interface import Cancel, ExecOutcome, ExecRequest, Executor
from conveyor.graph.plan import Plan, PlannedJob
from conveyor.insights.critical_path import critical_path
from conveyor.model import (
    CheckResult,
    GateResult,
    Job,
    JobResult,
    JobStatus,
    OutputFile,
    RunContext,
)
from conveyor.units import format_duration


class _Workers:
    """N threads running submitted calls; started as they are first needed (a run served
    wholly from the cache starts none). concurrent.futures would do, but importing it
    (with logging) cost more than this class on every run."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._loop, name=f"job-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._tasks.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self._tasks.get()
            if fn is None:
                return
            fn()  # never raises: Scheduler._work catches everything
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()


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
        self.jobcache = jobcache
        self._outputs: dict[str, str] = {}
        self._ran_before: set[str] = set()
        """Jobs that ran in this run (not served from the cache), or need one that did."""
        self.executor = executor
        self.bus = bus
        self.context = context
        self.environ = environ
        self.opt = options
        self._done: queue.Queue[JobResult] = queue.Queue()
        # Stopping is always for the whole run (fail-fast or an interrupt), so one
        # Cancel is shared by every running job.
        self._cancel = Cancel()
        self._queued_at: dict[str, float] = {}
        self._holds: dict[str, threading.Event] = {}
        self._holds_lock = threading.Lock()
        self._closing = False

    # -- one job, on a worker thread ----------------------------------------------
    def _request(self, pj: PlannedJob) -> ExecRequest:
        return job_request(pj.job, self.plan.pipeline, self.context, self.environ, self.opt.run_id)

    def _work(
        self, pj: PlannedJob, cancel: Cancel, built: BuiltAction | None, reasons: tuple[str, ...]
    ) -> None:
        if cancel.requested.is_set():  # handed over, but the run stopped before it started
            why = (cancel.reason or "cancelled").removeprefix("cancelled: ")
            self._done.put(JobResult(pj.name, JobStatus.SKIPPED, reason=f"not started: {why}"))
            return
        try:
            result, lines = self._attempts(pj, cancel, built, reasons)
            if self.opt.hooks is not None:
                executed = result
                result = self.opt.hooks.job(pj.job, result)
                if executed.status is JobStatus.FAILED and result.status is JobStatus.SUCCESS:
                    # Failures its tests gate tolerates: stored like a success (with its
                    # exit code), so the job is not run again while nothing changes.
                    result = self._keep(pj.job, built, lines, result)
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

    def _log_path(self, name: str) -> str:
        return os.path.join(self.opt.run_dir, "logs", self.opt.log_name(name))

    def _from_cache(
        self, pj: PlannedJob
    ) -> tuple[JobResult | None, BuiltAction | None, tuple[str, ...]]:
        """On the scheduler's thread: the job's action and, on a hit, its result (outputs
        restored, log replayed). A hit never takes a worker slot or a thread hop."""
        if self.jobcache is None:
            return None, None, ()
        job, name = pj.job, pj.name
        jc = self.jobcache
        outputs = self._outputs
        unknown = [d for d in pj.needs if d not in outputs] if pj.needs else []
        if unknown:
            # Its key would leave out what those produced: never look it up (a stale hit)
            # nor store it under a key that does not cover its inputs.
            why = f"the outputs of {', '.join(repr(d) for d in unknown)} are unknown"
            self.bus.emit(JobOutput(name, f"conveyor: not cached: {why}", time.time()))
            self._ran_before.add(name)
            return None, None, (f"not cached: {why}",)
        needs = {d: outputs[d] for d in pj.needs}
        argv = (*job.shell, job.script)
        try:
            # Once a job it needs (directly or not) has run, what git said of the workspace
            # at the start may be out of date for it: its key is made from the files as
            # they are now. (A job that needs none of those may read them as they were:
            # it could have run before them.)
            fresh = bool(self._ran_before) and any(d in self._ran_before for d in pj.needs)
            built = jc.prepare(job, argv, needs, fresh=fresh)
            hit = jc.lookup(job, built)
            if hit is None and jc.stale_inputs(built):
                # Written since git was asked (by an editor, say): key them by content.
                built = jc.prepare(job, argv, needs)
                hit = jc.lookup(job, built)
        except OSError as exc:  # the cache is an optimisation: never a reason to fail
            self.bus.emit(JobOutput(name, f"conveyor: cache unavailable: {exc}", time.time()))
            return None, None, ()
        if hit is None:
            try:
                # Now, before the job can change its own inputs: what its result is
                # stored with (and `why` compares against) is what the key was made of,
                # and each input's stat, to tell whether one changed while it ran.
                built.manifest  # noqa: B018
                jc.note_inputs(built)
            except OSError as exc:
                self.bus.emit(JobOutput(name, f"conveyor: cache unavailable: {exc}", time.time()))
                return None, None, ()
            self._ran_before.add(name)
            reasons = tuple(jc.explain_miss(job, built)) if self.opt.explain else ()
            return None, built, reasons
        if fresh:
            self._ran_before.add(name)
        if job.caches:
            # Its dependency caches (a .venv, node_modules) are part of what the jobs
            # after it expect to find, whether it ran or not.
            try:
                deps_lines, _exact = jc.restore_dependencies(job)
            except OSError as exc:
                deps_lines = [f"conveyor: could not restore caches: {exc}"]
            hit = dataclasses.replace(hit, log=[*deps_lines, *hit.log])
        now = time.time()
        log_path = self._log_path(name) if hit.log else None
        if (
            hit.log and log_path is not None
        ):  # a silent hit is one JobFinished event: thousands of them are common
            self.bus.emit(JobStarted(name, 1, now, log_path, cached=True))
            for line in hit.log:
                self.bus.emit(JobOutput(name, line, now))
        result = JobResult(
            name=name,
            status=JobStatus.SUCCESS,
            reason=f"from {hit.origin}",
            exit_code=hit.exit_code,
            attempts=0,
            queued_at=self._queued_at.get(name),
            started_at=now,
            finished_at=time.time(),
            log_path=log_path,
            cached=True,
            saved=hit.saved,
            action_digest=built.digest.hash,
            outputs_digest=hit.outputs_digest,
            outputs=_output_files(job, hit.outputs),
        )
        return result, built, ()

    def _attempts(
        self, pj: PlannedJob, cancel: Cancel, built: BuiltAction | None, reasons: tuple[str, ...]
    ) -> tuple[JobResult, list[str]]:
        """The job run (with its retries) and, if it succeeded, its result stored; the
        result and the last attempt's log lines."""
        job = pj.job
        request = self._request(pj)
        log_path = self._log_path(job.name)
        name = job.name
        first_start: float | None = None
        attempt = 0
        outcome: ExecOutcome | None = None
        lines: list[str] = []
        any_output = False

        def on_line(line: str) -> None:
            nonlocal any_output
            any_output = True
            lines.append(line)
            self.bus.emit(JobOutput(name, line, time.time()))

        restored_keys: set[str] = set()
        deps_lines: list[str] = []
        if self.jobcache is not None and job.caches:
            try:
                deps_lines, restored_keys = self.jobcache.restore_dependencies(job)
            except OSError as exc:
                deps_lines = [f"conveyor: could not restore caches: {exc}"]
        while True:
            attempt += 1
            lines.clear()
            self.bus.emit(JobStarted(name, attempt, time.time(), log_path))
            if attempt == 1:
                for line in deps_lines:
                    on_line(line)
            outcome = self.executor.execute(request, on_line, cancel)
            first_start = first_start if first_start is not None else outcome.started_at
            if outcome.ok or outcome.cancelled or cancel.requested.is_set():
                break
            if attempt > job.retry.max:
                break
            delay = job.retry.wait_before(attempt + 1)
            self.bus.emit(
                JobRetrying(name, attempt, _failure_reason(outcome, job), delay, time.time())
            )
            if cancel.requested.wait(delay):
                break
        status, reason = JobStatus.SUCCESS, ""
        if outcome.cancelled or (
            cancel.requested.is_set() and not outcome.ok and not outcome.timed_out
        ):
            status, reason = JobStatus.CANCELLED, cancel.reason or "cancelled"
        elif outcome.timed_out:
            status, reason = JobStatus.TIMED_OUT, _failure_reason(outcome, job)
        elif not outcome.ok:
            status, reason = JobStatus.FAILED, _failure_reason(outcome, job)
        if status is not JobStatus.SUCCESS and attempt > 1:
            reason += f" (after {attempt} attempts)"
        result = JobResult(
            name=name,
            status=status,
            reason=reason,
            exit_code=outcome.exit_code,
            attempts=attempt,
            queued_at=self._queued_at.get(name),
            started_at=first_start,
            finished_at=outcome.finished_at,
            cpu_time=outcome.cpu_time,
            peak_rss=outcome.peak_rss,
            allowed_failure=job.allow_failure and status in (JobStatus.FAILED, JobStatus.TIMED_OUT),
            log_path=log_path if any_output else None,
            action_digest=built.digest.hash if built is not None else None,
            miss_reasons=reasons,
        )
        if status is JobStatus.SUCCESS:
            # A failed job is never stored; a successful one is, with its last attempt's log.
            result = self._keep(job, built, lines, result, on_line)
            if self.jobcache is not None and job.caches:
                try:
                    for line in self.jobcache.save_dependencies(job, restored_keys):
                        on_line(line)
                except OSError as exc:
                    on_line(f"conveyor: could not save caches: {exc}")
        return result, lines

    def _keep(
        self,
        job: Job,
        built: BuiltAction | None,
        lines: list[str],
        result: JobResult,
        on_line: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Store a job's result (with the log `lines`) and give it its outputs' digest,
        which the jobs that need it are keyed on; without one they run uncached."""
        jc = self.jobcache
        if jc is None or built is None or result.started_at is None:
            return result
        say = on_line or (lambda line: self.bus.emit(JobOutput(job.name, line, time.time())))
        was_writable = jc.writable
        try:
            stored = jc.store_result(
                job,
                built,
                lines,
                result.started_at,
                result.finished_at or time.time(),
                exit_code=result.exit_code or 0,
            )
        except OSError as exc:
            say(f"conveyor: not cached, and what needs it runs uncached: {exc}")
            return result
        if was_writable and not jc.writable:
            problem = jc.write_error
            say(f"conveyor: the cache cannot be written ({problem}): the run goes on uncached")
        elif stored.not_stored:
            say(f"conveyor: not cached: {stored.not_stored}")
        for missing in stored.missing_outputs:
            say(f"conveyor: declared output {missing!r} was not produced")
        return dataclasses.replace(
            result,
            outputs_digest=stored.outputs_digest,
            outputs=_output_files(job, stored.outputs),
        )

    # -- the main loop, on the calling thread ---------------------------------------
    def run(self) -> RunFinished:
        plan, opt = self.plan, self.opt
        started = time.time()
        order = {pj.name: i for i, pj in enumerate(plan.jobs)}
        by_name = {pj.name: pj for pj in plan.jobs}
        runnable = [pj for pj in plan.jobs if pj.will_run]
        dependents = plan.dependents()
        waiting = {pj.name: len(pj.needs) for pj in runnable}
        results: dict[str, JobResult] = {}
        self.bus.emit(
            RunStarted(
                run_id=opt.run_id,
                pipeline=plan.pipeline.label,
                workspace=plan.pipeline.root,
                run_dir=opt.run_dir,
                context=self.context,
                jobs=tuple(pj.name for pj in runnable),
                skipped=tuple((pj.name, pj.reason) for pj in plan.jobs if not pj.will_run),
                parallelism=opt.parallelism,
                time=started,
            )
        )
        for pj in plan.jobs:
            if not pj.will_run:
                self._finish(results, JobResult(pj.name, JobStatus.SKIPPED, reason=pj.reason))

        ready: list[tuple[int, int, str]] = []

        def make_ready(name: str) -> None:
            self._queued_at[name] = time.time()
            self.bus.emit(JobQueued(name, self._queued_at[name]))
            heapq.heappush(ready, (-by_name[name].priority, order[name], name))

        for pj in runnable:
            if waiting[pj.name] == 0:
                make_ready(pj.name)

        stop_reason: str | None = None
        checks: list[CheckResult] = []
        if opt.hooks is not None:
            checks += opt.hooks.before()
            if checks:
                self.bus.emit(ChecksFinished("before", tuple(checks), time.time()))
            failed = [c.check for c in checks if c.blocking]
            if failed:
                stop_reason = f"checks before the build failed: {', '.join(failed)}"
        interrupted = False
        running: set[str] = set()
        pool = _Workers(max(1, opt.parallelism))
        # Jobs handed to the workers: those running and as many next in line, their keys
        # computed and looked up already, so a worker starts its next job the moment it
        # finishes one instead of waiting for this thread (cold 1,000-job runs had one
        # slot idle half the time).
        handed_over = 2 * max(1, opt.parallelism)
        try:
            while len(results) < len(plan.jobs):
                try:
                    completed: list[JobResult] = []
                    while ready and len(running) < handed_over and stop_reason is None:
                        _, _, name = heapq.heappop(ready)
                        hit, built, reasons = self._from_cache(by_name[name])
                        if hit is not None:
                            if opt.hooks is not None:
                                hit = opt.hooks.job(by_name[name].job, hit)
                            completed.append(hit)
                            break  # handle it (its dependents may be ready) before going on
                        running.add(name)
                        pool.submit(
                            functools.partial(
                                self._work, by_name[name], self._cancel, built, reasons
                            )
                        )
                    if not completed:
                        if not running:
                            break
                        try:
                            completed.append(self._done.get(timeout=0.25))
                        except queue.Empty:
                            continue
                    result = completed[0]
                    running.discard(result.name)
                    self._finish(results, result)
                    if result.blocks_run:
                        if opt.keep_going:
                            self._skip_downstream(result.name, dependents, results, by_name)
                        elif stop_reason is None:
                            stop_reason = (
                                f"'{result.name}' {_verb(result.status)} "
                                "(fail-fast; --keep-going runs independent jobs)"
                            )
                            self._cancel_all(f"cancelled: {stop_reason}")
                    else:
                        for dep in dependents.get(result.name, ()):
                            if dep in waiting and dep not in results:
                                waiting[dep] -= 1
                                if waiting[dep] == 0:
                                    make_ready(dep)
                    with self._holds_lock:
                        hold = self._holds.pop(result.name, None)
                    if hold is not None:
                        hold.set()
                except KeyboardInterrupt:
                    if not interrupted:
                        interrupted = True
                        stop_reason = "the run was interrupted"
                        self._cancel_all("cancelled: the run was interrupted")
                    else:  # a second ^C: no more grace period
                        self._cancel.force.set()
        finally:
            with self._holds_lock:  # whatever stopped the loop, no worker may wait on it
                self._closing = True
                for hold in self._holds.values():
                    hold.set()
            pool.shutdown()
        for pj in plan.jobs:
            if pj.name not in results:
                why = f"not started: {stop_reason}" if stop_reason else "not started"
                self._finish(results, JobResult(pj.name, JobStatus.SKIPPED, reason=why))
        finished = time.time()
        ordered = tuple(results[pj.name] for pj in plan.jobs)
        failed_run = any(r.blocks_run for r in ordered) or any(c.blocking for c in checks)
        gates: Sequence[GateResult] = ()
        if opt.hooks is not None and not interrupted:
            after, gates = opt.hooks.after(ordered, started, finished, not failed_run)
            if after:
                self.bus.emit(ChecksFinished("after", tuple(after), time.time()))
            checks += after
            failed_run = failed_run or any(c.blocking for c in after)
            failed_run = failed_run or any(g.blocking for g in gates)
        status = "interrupted" if interrupted else ("failed" if failed_run else "success")
        event = RunFinished(
            run_id=opt.run_id,
            status=status,
            results=ordered,
            started_at=started,
            finished_at=finished,
            critical_path=_critical_path(plan, results),
            gates=tuple(gates),
            checks=tuple(checks),
        )
        self.bus.emit(event)
        return event

    def _finish(self, results: dict[str, JobResult], result: JobResult) -> None:
        results[result.name] = result
        if result.outputs_digest is not None:
            self._outputs[result.name] = result.outputs_digest
        self.bus.emit(JobFinished(result, time.time()))

    def _cancel_all(self, reason: str) -> None:
        if not self._cancel.requested.is_set():
            self._cancel.reason = reason
            self._cancel.requested.set()

    def _skip_downstream(
        self,
        failed: str,
        dependents: dict[str, list[str]],
        results: dict[str, JobResult],
        by_name: dict[str, PlannedJob],
    ) -> None:
        stack = [failed]
        while stack:
            cur = stack.pop()
            for dep in dependents.get(cur, ()):
                if dep in results or not by_name[dep].will_run:
                    continue
                why = (
                    f"needs '{cur}', which failed"
                    if cur == failed
                    else (f"needs '{cur}', which was skipped because '{failed}' failed")
                )
                self._finish(results, JobResult(dep, JobStatus.SKIPPED, reason=why))
                stack.append(dep)


def _verb(status: JobStatus) -> str:
    return {"timed_out": "timed out", "cancelled": "was cancelled"}.get(status.value, "failed")


def _failure_reason(outcome: ExecOutcome, job: Job) -> str:
    if outcome.error:
        return outcome.error
    if outcome.timed_out:
        return f"timed out after {format_duration(job.timeout or 0)}"
    code = outcome.exit_code
    if code is not None and code > 128:
        import signal

        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def _critical_path(plan: Plan, results: Mapping[str, JobResult]) -> tuple[str, ...]:
    """The run's critical path (`insights.critical_path`), from the jobs that ran or
    were served from the cache."""
    durations = {
        name: r.finished_at - r.started_at
        for name, r in results.items()
        if r.finished_at is not None and r.started_at is not None
    }
    needs = {pj.name: pj.needs for pj in plan.jobs}
    return critical_path(durations, needs, savings=False).chain


def _output_files(job: Job, files: tuple[tuple[str, str, int], ...]) -> tuple[OutputFile, ...]:
    """A job's output files, each marked with its artifact type when the job declares it
    among its `artifacts:`."""
    spec = job.artifacts
    if spec is None:
        return tuple(OutputFile(path, sha, size) for path, sha, size in files)
    return tuple(
        OutputFile(path, sha, size, spec.type if spec.covers(path) else None)
        for path, sha, size in files
    )
