"""A run's directory, `.conveyor/runs/<run-id>/`, and the sinks that fill it.

logs/<job>.log   each job's combined output, secrets masked, every attempt
events.jsonl     every event, one JSON object per line, as it happens
summary.json     the run's outcome, per job: status, timings, exit code,
                 attempts, CPU time and peak memory; written atomically at the end

`find_run_dir` and `read_summary` read a past run back, typed, for whatever shows it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from conveyor import __version__
from conveyor.events import (
    ChecksFinished,
    Event,
    JobFinished,
    JobOutput,
    JobQueued,
    JobRetrying,
    JobStarted,
    JobWaiting,
    RunFinished,
    RunStarted,
)
from conveyor.fsutil import atomic_write, ensure_state_dir
from conveyor.model import CheckResult, GateResult, JobResult, RunContext

SUMMARY_FILE = "summary.json"


def new_run_id() -> str:
    """Sortable by start time (to the millisecond), unique across concurrent runs."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}-{secrets.token_hex(2)}"


def create_run_dir(root: str, run_id: str) -> str:
    """Create `.conveyor/runs/<run_id>/logs/` in the workspace; the run directory."""
    path = ensure_state_dir(root, "runs", run_id)
    os.makedirs(os.path.join(path, "logs"), exist_ok=True)
    return path


class LogNames:
    """File names for job logs: readable, safe on every filesystem, never colliding."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._used: set[str] = set()

    def __call__(self, job: str) -> str:
        """The log file name of `job`: its name made safe for a file, unique in the run."""
        if job not in self._names:
            base = re.sub(r"[^A-Za-z0-9._=-]+", "_", job).strip("_")[:120] or "job"
            name, n = base, 1
            while name in self._used:
                n += 1
                name = f"{base}-{n}"
            self._used.add(name)
            self._names[job] = name + ".log"
        return self._names[job]


def machine() -> dict[str, Any]:
    """What the run had to work with: CPUs, memory, platform (for capacity planning)."""
    uname = os.uname()
    try:
        memory: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        memory = None
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
        "platform": f"{uname.sysname}-{uname.release}-{uname.machine}"[:64],
    }


class JobLogSink:
    """Writes each job's output to its log file, with a header per attempt.

    The file is created at the job's first line of output: a silent job has no log
    (its result's `log_path` is then None), which saves a file per job in large graphs.
    """

    events = (JobOutput, JobStarted, JobFinished)

    def __init__(self) -> None:
        self._paths: dict[str, tuple[str, int]] = {}
        self._files: dict[str, IO[str]] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, JobOutput):
            fh = self._files.get(event.name)
            if fh is None:
                path, attempt = self._paths[event.name]
                fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed on JobFinished
                self._files[event.name] = fh
                if attempt > 1:
                    fh.write(f"--- conveyor: attempt {attempt} ---\n")
            fh.write(event.line + "\n")
        elif isinstance(event, JobStarted):
            self._paths[event.name] = (event.log_path, event.attempt)
            fh = self._files.get(event.name)
            if fh is not None and event.attempt > 1:
                fh.write(f"--- conveyor: attempt {event.attempt} ---\n")
        elif isinstance(event, JobFinished):
            self._paths.pop(event.result.name, None)
            fh = self._files.pop(event.result.name, None)
            if fh is not None:
                fh.close()

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


def context_dict(context: RunContext) -> dict[str, Any]:
    """A run's context (branch, tag, event, commit, CI) as summary.json holds it."""
    # The caller's environment may hold secrets: it is never written down.
    return {
        "branch": context.branch,
        "tag": context.tag,
        "commit": context.commit,
        "event": context.event,
        "ci": context.ci,
    }


def result_dict(r: JobResult) -> dict[str, Any]:
    """A job's result as summary.json and events.jsonl hold it. `history/rundirs.py`
    reads these keys from the run directories of older versions too: add, never rename."""
    return {
        "name": r.name,
        "status": r.status.value,
        "reason": r.reason,
        "exit_code": r.exit_code,
        "attempts": r.attempts,
        "queued_at": r.queued_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "duration": r.duration,
        "queue_time": r.queue_time,
        "check_time": r.check_time,
        "restore_time": r.restore_time,
        "run_time": r.run_time,
        "store_time": r.store_time,
        "cpu_time": r.cpu_time,
        "peak_rss": r.peak_rss,
        "allowed_failure": r.allowed_failure,
        "log_path": r.log_path,
        "cached": r.cached,
        "saved": r.saved,
        "action_digest": r.action_digest,
        "outputs_digest": r.outputs_digest,
        "miss_reasons": list(r.miss_reasons),
        "outputs": r.outputs,  # a NamedTuple is encoded as a JSON array
        "gates": [gate_dict(g) for g in r.gates],
        "values": dict(r.values),
        "cache_tier": r.cache_tier,
        "worker": r.worker,
    }


def gate_dict(g: GateResult) -> dict[str, Any]:
    """A gate's result as summary.json and `conveyor gates --json` show it."""
    return {
        "gate": g.gate,
        "scope": g.scope,
        "level": g.level.value,
        "passed": g.passed,
        "measured": g.measured,
        "threshold": g.threshold,
        "detail": g.detail,
    }


def check_dict(c: CheckResult) -> dict[str, Any]:
    """A check's result as summary.json and `conveyor check --json` show it."""
    return {
        "check": c.check,
        "ok": c.ok,
        "level": c.level.value,
        "expected": c.expected,
        "found": c.found,
        "hint": c.hint,
        "location": c.location,
    }


class ResultJSON:
    """Each job result encoded once, shared by the event log (as the job finishes) and
    the summary (at the end): on a large no-op run, encoding was a measurable part."""

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        self._done: dict[int, tuple[JobResult, str]] = {}

    def __call__(self, result: JobResult) -> str:
        """The JSON of `result`, made once for both summary.json and events.jsonl."""
        known = self._done.get(id(result))
        if known is not None and known[0] is result:
            return known[1]
        text = self._encode(result_dict(result))
        self._done[id(result)] = (result, text)
        return text


def event_dict(event: Event) -> dict[str, Any]:
    """One event as plain JSON-able data, with a `type`."""
    if isinstance(event, JobOutput):
        return {"type": "job_output", "name": event.name, "line": event.line, "time": event.time}
    if isinstance(event, JobFinished):
        return {"type": "job_finished", "result": result_dict(event.result), "time": event.time}
    if isinstance(event, JobStarted):
        return {
            "type": "job_started",
            "name": event.name,
            "attempt": event.attempt,
            "time": event.time,
            "log_path": event.log_path,
            "cached": event.cached,
        }
    if isinstance(event, JobQueued):
        return {"type": "job_queued", "name": event.name, "time": event.time}
    if isinstance(event, JobWaiting):
        return {
            "type": "job_waiting",
            "name": event.name,
            "group": event.group,
            "holder": event.holder,
            "time": event.time,
        }
    if isinstance(event, JobRetrying):
        return {
            "type": "job_retrying",
            "name": event.name,
            "attempt": event.attempt,
            "reason": event.reason,
            "delay": event.delay,
            "time": event.time,
        }
    if isinstance(event, RunStarted):
        return {
            "type": "run_started",
            "run_id": event.run_id,
            "pipeline": event.pipeline,
            "workspace": event.workspace,
            "run_dir": event.run_dir,
            "context": context_dict(event.context),
            "jobs": list(event.jobs),
            "skipped": [list(pair) for pair in event.skipped],
            "parallelism": event.parallelism,
            "time": event.time,
        }
    if isinstance(event, ChecksFinished):
        return {
            "type": "checks_finished",
            "phase": event.phase,
            "results": [check_dict(c) for c in event.results],
            "time": event.time,
        }
    return {
        "type": "run_finished",
        "run_id": event.run_id,
        "status": event.status,
        "started_at": event.started_at,
        "finished_at": event.finished_at,
        "wall_time": event.wall_time,
        "checks_time": event.checks_time,
        "critical_path": list(event.critical_path),
        "gates": [gate_dict(g) for g in event.gates],
        "checks": [check_dict(c) for c in event.checks],
    }


class EventLogSink:
    """Appends every event to events.jsonl as it happens. Written in batches (a write
    per event cost more than a short job here) that a background thread flushes within
    FLUSH_EVERY of the first unflushed event, so a run killed mid-way, even during a
    long silent job, keeps its trail up to its last tenth of a second."""

    FLUSH_EVERY = 0.1

    def __init__(self, run_dir: str, results: ResultJSON | None = None) -> None:
        self._fh = open(os.path.join(run_dir, "events.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        self._results = results or ResultJSON()
        self._lock = threading.Lock()
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="events", daemon=True)
        self._flusher.start()

    def handle(self, event: Event) -> None:
        if isinstance(event, JobFinished):
            line = (
                f'{{"type":"job_finished","result":{self._results(event.result)},'
                f'"time":{self._encode(event.time)}}}\n'
            )
        else:
            line = self._encode(event_dict(event)) + "\n"
        with self._lock:
            self._fh.write(line)
            if isinstance(event, RunFinished):
                self._fh.flush()
        self._pending.set()

    def _flush_loop(self) -> None:
        # `_stop` is checked at the top of every turn: close() sets it before `_pending`,
        # and a flush in progress may clear `_pending` after close() set it.
        while not self._stop.is_set():
            self._pending.wait()
            if self._stop.wait(self.FLUSH_EVERY):
                return  # closing: close() writes the rest
            with self._lock:
                self._pending.clear()
                self._fh.flush()

    def close(self) -> None:
        self._stop.set()
        self._pending.set()
        self._flusher.join()
        with self._lock:
            self._fh.close()


def dumps_summary(summary: dict[str, Any], jobs: list[str] | None = None) -> str:
    """JSON with one top-level key, and one job, per line: readable and diffable, yet made
    by the C encoder (`indent=` falls back to pure Python: 40 ms for 1,000 jobs). `jobs`:
    the jobs already encoded, if they were."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    lines = []
    for key, value in summary.items():
        if key == "jobs" and value:
            encoded = jobs if jobs is not None else [encode(job) for job in value]
            lines.append('  "jobs": [\n    ' + ",\n    ".join(encoded) + "\n  ]")
        else:
            lines.append(f"  {encode(key)}: {encode(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


class SummarySink:
    """Writes summary.json when the run finishes; keeps it for `--json`."""

    events = (RunStarted, RunFinished)

    def __init__(self, run_dir: str, pipeline_file: str, results: ResultJSON | None = None) -> None:
        self.run_dir = run_dir
        self.pipeline_file = pipeline_file
        self._results = results or ResultJSON()
        self._started: RunStarted | None = None
        self.text: str | None = None
        """summary.json's content, once the run finished."""

    @property
    def summary(self) -> dict[str, Any] | None:
        """The summary as data (parsed back from the text: only `--json` wants it)."""
        return None if self.text is None else dict(json.loads(self.text))

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started = event
            # Who is running it, for the history: a run directory without summary.json
            # whose process is gone was killed (SIGKILL, power), not still running.
            meta = {
                "run_id": event.run_id,
                "pid": os.getpid(),
                "host": os.uname().nodename,
                "conveyor_version": __version__,
                "started_at": event.time,
                "pipeline": event.pipeline,
                "workspace": event.workspace,
                "run_dir": self.run_dir,
                "pipeline_file": self.pipeline_file,
                "machine": machine(),
                "parallelism": event.parallelism,
                "trigger": event.context.ci or "local",
                "context": context_dict(event.context),
            }
            path = os.path.join(self.run_dir, "run.json")
            atomic_write(path, json.dumps(meta) + "\n")
        elif isinstance(event, RunFinished):
            started = self._started
            head = {
                "run_id": event.run_id,
                "pipeline": started.pipeline if started else None,
                "pipeline_file": self.pipeline_file,
                "workspace": started.workspace if started else None,
                "run_dir": self.run_dir,
                "status": event.status,
                "started_at": event.started_at,
                "finished_at": event.finished_at,
                "wall_time": event.wall_time,
                "checks_time": event.checks_time,
                "parallelism": started.parallelism if started else None,
                "context": context_dict(started.context) if started else None,
                "critical_path": list(event.critical_path),
                "gates": [gate_dict(g) for g in event.gates],
                "checks": [check_dict(c) for c in event.checks],
                "jobs": list(event.results),
            }
            self.text = dumps_summary(head, [self._results(r) for r in event.results])
            atomic_write(os.path.join(self.run_dir, SUMMARY_FILE), self.text, fsync=True)

    def close(self) -> None:
        pass


# Readers of a past run's directory: the queries that show a run (`conveyor gates`, the
# dashboard) read it through these, never by opening its files themselves.


def find_run_dir(root: str, run_id: str | None) -> str:
    """The directory of the run whose id starts with `run_id` (default: the latest
    finished run, one with summary.json); UsageError when there is no such single run."""
    from conveyor.errors import UsageError

    base = os.path.join(root, ".conveyor", "runs")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    if run_id is None:
        finished = [n for n in names if os.path.exists(os.path.join(base, n, SUMMARY_FILE))]
        if not finished:
            raise UsageError("no finished run here yet", hint="`conveyor run` makes one")
        return os.path.join(base, finished[-1])
    matches = [n for n in names if n.startswith(run_id)]
    if len(matches) != 1:
        hint = (
            f"it matches {len(matches)} runs: {', '.join(matches[:5])}"
            if matches
            else "`conveyor history` lists the runs"
        )
        raise UsageError(f"no single run '{run_id}' in {base}", hint=hint)
    return os.path.join(base, matches[0])


@dataclass(frozen=True)
class SummaryJob:
    """One job of a finished run, as its summary.json lists it."""

    name: str
    status: str
    """A JobStatus value: success, failed, timed_out, cancelled or skipped."""


@dataclass(frozen=True)
class RunSummary:
    """A finished run, as its summary.json says it ended."""

    run_id: str
    """The run directory's name (which is the run's id)."""
    status: str | None
    """success, failed or interrupted."""
    wall_time: float | None
    """Seconds from the run's start to its end."""
    jobs: tuple[SummaryJob, ...]

    @property
    def ran(self) -> frozenset[str]:
        """The jobs that ran (cached or not): every job but the skipped ones."""
        return frozenset(j.name for j in self.jobs if j.status != "skipped")


def read_summary(run_dir: str) -> RunSummary:
    """The summary.json of the run in `run_dir`."""
    with open(os.path.join(run_dir, SUMMARY_FILE), encoding="utf-8") as fh:
        data = json.load(fh)
    return RunSummary(
        run_id=os.path.basename(run_dir),
        status=data.get("status"),
        wall_time=data.get("wall_time"),
        jobs=tuple(
            SummaryJob(name=j["name"], status=j.get("status") or "") for j in data.get("jobs", [])
        ),
    )
