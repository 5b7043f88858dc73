"""One job run by an executor, attempt after attempt: its retries with their delays,
what each attempt printed, and the JobResult its last attempt makes."""

from __future__ import annotations

import time

from conveyor.events import EventBus, JobOutput, JobRetrying, JobStarted
from conveyor.executor.interface import Cancel, ExecOutcome, ExecRequest, Executor
from conveyor.model import Job, JobResult, JobStatus
from conveyor.run.values import fresh_file
from conveyor.units import format_duration


class JobLog:
    """The lines of a job's current attempt, each emitted as a JobOutput as it comes."""

    def __init__(self, name: str, bus: EventBus) -> None:
        self.name = name
        self.bus = bus
        self.lines: list[str] = []
        self.any_output = False
        """Whether any attempt printed a line (a job's log file exists only then)."""

    def __call__(self, line: str) -> None:
        self.any_output = True
        self.lines.append(line)
        self.bus.emit(JobOutput(self.name, line, time.time()))


def run_attempts(
    executor: Executor,
    request: ExecRequest,
    job: Job,
    cancel: Cancel,
    log: JobLog,
    log_path: str,
    *,
    preface: list[str],
    queued_at: float | None,
    action_digest: str | None,
    miss_reasons: tuple[str, ...],
    values_file: str | None = None,
) -> JobResult:
    """Run the job until an attempt succeeds, its retries are spent, or the run is
    cancelled; `preface` lines open the first attempt's log (dependency caches).
    `values_file` ($CONVEYOR_OUTPUT) is emptied before each attempt."""
    bus, name = log.bus, job.name
    first_start: float | None = None
    attempt = 0
    outcome: ExecOutcome | None = None
    while True:
        attempt += 1
        log.lines.clear()
        bus.emit(JobStarted(name, attempt, time.time(), log_path))
        if attempt == 1:
            for line in preface:
                log(line)
        if values_file is not None:
            fresh_file(values_file)
        outcome = executor.execute(request, log, cancel)
        if job.finally_run:
            outcome = run_finally(executor, request, job, outcome, cancel, log)
        first_start = first_start if first_start is not None else outcome.started_at
        if outcome.ok or outcome.cancelled or cancel.requested.is_set():
            break
        if attempt > job.retry.max:
            break
        delay = job.retry.wait_before(attempt + 1)
        bus.emit(JobRetrying(name, attempt, failure_reason(outcome, job), delay, time.time()))
        if cancel.requested.wait(delay):
            break
    status, reason = JobStatus.SUCCESS, ""
    if outcome.cancelled or (
        cancel.requested.is_set() and not outcome.ok and not outcome.timed_out
    ):
        status, reason = JobStatus.CANCELLED, cancel.reason or "cancelled"
    elif outcome.timed_out:
        status, reason = JobStatus.TIMED_OUT, failure_reason(outcome, job)
    elif not outcome.ok:
        status, reason = JobStatus.FAILED, failure_reason(outcome, job)
    if status is not JobStatus.SUCCESS and attempt > 1:
        reason += f" (after {attempt} attempts)"
    return JobResult(
        name=name,
        status=status,
        reason=reason,
        exit_code=outcome.exit_code,
        attempts=attempt,
        queued_at=queued_at,
        started_at=first_start,
        finished_at=outcome.finished_at,
        cpu_time=outcome.cpu_time,
        peak_rss=outcome.peak_rss,
        allowed_failure=allowed(job, status, outcome.exit_code),
        log_path=log_path if log.any_output else None,
        action_digest=action_digest,
        miss_reasons=miss_reasons,
        worker=outcome.worker,
    )


def attempt_status(outcome: ExecOutcome, cancel: Cancel) -> JobStatus:
    """What an attempt's end means for the job (CONVEYOR_JOB_STATUS of its `finally:`)."""
    if outcome.ok:
        return JobStatus.SUCCESS
    if outcome.timed_out:
        return JobStatus.TIMED_OUT
    if outcome.cancelled or cancel.requested.is_set():
        return JobStatus.CANCELLED
    return JobStatus.FAILED


def run_finally(
    executor: Executor,
    request: ExecRequest,
    job: Job,
    outcome: ExecOutcome,
    cancel: Cancel,
    log: JobLog,
) -> ExecOutcome:
    """The job's `finally:` commands after an attempt, whatever it did: with the job's
    environment and directory and CONVEYOR_JOB_STATUS, their output in its log after a
    marked line. They do not change the attempt's result (as GitLab's after_script);
    only a second Ctrl-C stops them. The attempt's outcome, ending when they did."""
    import dataclasses

    status = attempt_status(outcome, cancel)
    if cancel.force.is_set():
        log(f"conveyor: finally: not run (the run was stopped at once; job status: {status})")
        return outcome
    log(f"conveyor: finally (job status: {status})")
    after = dataclasses.replace(
        request,
        name=f"{request.name} (finally)",
        argv=(*job.shell, "\n".join(job.finally_run)),
        env={**request.env, "CONVEYOR_JOB_STATUS": status.value},
    )
    # A Ctrl-C stopped the main commands; their cleanup still runs, until a second one.
    done = executor.execute(after, log, Cancel(requested=cancel.force, force=cancel.force))
    if not done.ok:
        why = "timed out" if done.timed_out else failure_reason(done, job)
        log(f"conveyor: finally: {why} (the job's result is its main commands')")
    return dataclasses.replace(outcome, finished_at=done.finished_at)


def failure_reason(outcome: ExecOutcome, job: Job) -> str:
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


def stopped_verb(status: JobStatus) -> str:
    return {"timed_out": "timed out", "cancelled": "was cancelled"}.get(status.value, "failed")


def allowed(job: Job, status: JobStatus, exit_code: int | None) -> bool:
    """Whether `allow_failure` covers how the job ended: a failure or a timeout, or,
    with `exit_codes`, a failure with one of them."""
    if not job.allow_failure or status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
        return False
    if not job.allow_exit_codes:
        return True
    return status is JobStatus.FAILED and exit_code in job.allow_exit_codes
