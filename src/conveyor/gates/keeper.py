"""The scheduler's RunHooks for checks and gates: the checks before the first job; each
job's reports read and its gates evaluated as it finishes (a failing `error` gate fails
the job, so what needs it does not run); the checks after the last job and the
pipeline's gates over every job's measurements. Everything measured is kept in the run
directory for `conveyor gates` and the history.

A job's secrets are masked in everything read from its reports before anything keeps
it, and a command gate runs as its job does (`executor.environment.job_request`): its
environment, and its output masked with the job's secrets (issue 10), through the run's
executor, the one that runs the jobs (issue 11)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.executor.masking import Masker
from conveyor.fsutil import atomic_write
from conveyor.gates.evaluate import Context, evaluate, judged_when_partial, severities
from conveyor.gates.measure import Measurements, ReportMemo, RunReports, measure
from conveyor.model import (
    CheckResult,
    CommandGate,
    Finding,
    GateResult,
    Job,
    JobResult,
    JobStatus,
    Pipeline,
    RunContext,
)
from conveyor.units import first_few

if TYPE_CHECKING:
    from conveyor.deps.license_report import LicenseReport
    from conveyor.executor.interface import Executor
    from conveyor.gates.vulnerabilities import Audits
    from conveyor.workspace.files import GitScan

OLD_QUARANTINE = os.path.join(".conveyor", "quarantine.json")
"""Where `conveyor flaky --quarantine` wrote the list before issue 13: in the state
directory, which nobody commits. Still read, with a note to move it."""


@dataclass(frozen=True)
class Quarantine:
    """The tests `conveyor flaky --quarantine` set aside, and what to tell the user."""

    tests: frozenset[tuple[str, str]] = frozenset()
    """(job, test) pairs."""
    note: str = ""
    """A list found at the old place, or one that could not be read."""


QUARANTINE_VERSION = 1


def load_quarantine(pipeline: Pipeline) -> Quarantine:
    """The quarantine list at `pipeline.quarantine` (`gates.quarantine`), else at the old
    place in `.conveyor/` with a note to move it: an existing list is never lost."""
    root = pipeline.root
    path = pipeline.quarantine
    if not os.path.exists(os.path.join(root, path)) and os.path.exists(
        os.path.join(root, OLD_QUARANTINE)
    ):
        tests, problem = _read_quarantine(root, OLD_QUARANTINE)
        note = (
            f"the quarantine list was read from {OLD_QUARANTINE}, which is not committed: "
            f"move it to {path} (mv {OLD_QUARANTINE} {path}) and commit it, or run "
            "`conveyor flaky --quarantine` to write it there"
        )
        return Quarantine(tests, f"{problem}; {note}" if problem else note)
    tests, problem = _read_quarantine(root, path)
    if os.path.normpath(path) != OLD_QUARANTINE and os.path.exists(
        os.path.join(root, OLD_QUARANTINE)
    ):
        ignored = f"{OLD_QUARANTINE} is not read: {path} is the quarantine list; remove it"
        problem = f"{problem}; {ignored}" if problem else ignored
    return Quarantine(tests, problem)


def _read_quarantine(root: str, path: str) -> tuple[frozenset[tuple[str, str]], str]:
    try:
        with open(os.path.join(root, path), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return frozenset(), ""
    except (OSError, ValueError) as exc:
        return frozenset(), f"the quarantine list {path} was not read ({exc}): no test is set aside"
    try:
        return frozenset((str(t["job"]), str(t["test"])) for t in data.get("tests", [])), ""
    except (KeyError, TypeError, AttributeError):
        return frozenset(), (
            f'the quarantine list {path} was not read (expected {{"tests": [{{"job": ..., '
            '"test": ...}]}): no test is set aside'
        )


def write_quarantine(pipeline: Pipeline, tests: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """Write the quarantine list (atomically), sorted, one test a line, for a diff a test
    a line. The list at the old place is removed when this one holds all of its tests,
    else left with a note saying which are not carried over. Returns the path written
    (workspace-relative) and that note, or what was removed."""
    listing = sorted(set(tests))
    lines = ",\n".join(
        "    " + json.dumps({"job": job, "test": test}, ensure_ascii=False) for job, test in listing
    )
    body = f"[\n{lines}\n  ]" if listing else "[]"
    data = f'{{\n  "version": {QUARANTINE_VERSION},\n  "tests": {body}\n}}\n'
    atomic_write(os.path.join(pipeline.root, pipeline.quarantine), data, makedirs=True)
    path = pipeline.quarantine
    old = os.path.join(pipeline.root, OLD_QUARANTINE)
    if os.path.normpath(path) == OLD_QUARANTINE or not os.path.exists(old):
        return path, ""
    before, _problem = _read_quarantine(pipeline.root, OLD_QUARANTINE)
    dropped = sorted(before - set(listing))
    if dropped:
        # Tests set aside by hand, or flaky in a history this machine does not have.
        names = first_few([f"{job}: {test}" for job, test in dropped])
        return path, (
            f"{OLD_QUARANTINE} is left in place: {len(dropped)} of its tests are not flaky "
            f"in this history ({names}); add those to keep to {path}, then remove it"
        )
    with contextlib.suppress(FileNotFoundError):
        os.remove(old)
    return path, f"{OLD_QUARANTINE} removed: {path} replaces it (commit it)"


class GateKeeper:
    """The checks and gates of one run. `executor` runs the command gates and the tool
    checks: the run's own, so they are started and stopped as its jobs are."""

    def __init__(
        self,
        pipeline: Pipeline,
        jobs: Sequence[Job],
        context: RunContext,
        environ: Mapping[str, str],
        run_dir: str,
        run_id: str,
        *,
        executor: Executor,
        cache_dir: str | None = None,
        scan: GitScan | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.jobs = jobs
        self.context = context
        self.environ = environ
        self.run_dir = run_dir
        self.run_id = run_id
        self.executor = executor
        self.cache_dir = cache_dir
        self.scan = scan
        self._lock = threading.Lock()
        self.measured: dict[str, Measurements] = {}
        self.kept = RunReports(run_dir)
        self.memo = ReportMemo(os.path.join(pipeline.root, ".conveyor", "cache", "reports.json"))
        self.problems: list[str] = []
        """Report files that could not be read."""
        self.notes: list[str] = []
        """Pipeline gates left unjudged by a run of part of the pipeline."""
        from conveyor.gates.diffcov import ChangedLines

        quarantine = load_quarantine(pipeline)
        if quarantine.note:
            self.notes.append(quarantine.note)
        self.ctx = Context(
            root=pipeline.root,
            quarantine=quarantine.tests,
            changed=ChangedLines(pipeline.root, environ),
            command=self._run_command,
            severity=severities(pipeline),
            vulnerabilities=self._vulnerability_audits(),
            deps_ignore=tuple((i.id, i.reason, i.until) for i in pipeline.deps.ignore),
        )
        # Reports are read for jobs with gates, and for every job with reports when the
        # pipeline has gates of its own (its tests, coverage and findings are theirs).
        self._measure_all = bool(pipeline.gates)

    # -- before ------------------------------------------------------------------------
    def before(self) -> Sequence[CheckResult]:
        """The checks before the first job (tools, disk, env, secrets, ...)."""
        from conveyor.checks.before import run_before

        found = run_before(
            self.pipeline,
            self.jobs,
            self.environ,
            cache_dir=self.cache_dir,
            scan=self.scan,
            executor=self.executor,
        )
        self.ctx.own_findings = found.findings
        self.ctx.own_scanned = found.scanned
        if found.scanned:
            from conveyor.reports.sarif import write_sarif

            write_sarif(
                found.findings, "conveyor-secrets", "1", os.path.join(self.run_dir, "secrets.sarif")
            )
        return found.results

    # -- each job ------------------------------------------------------------------------
    def job(self, job: Job, result: JobResult) -> JobResult:
        """A finished job's result, with its reports read and its gates judged (a failing
        `error` gate fails it; a tests gate may tolerate its test failures)."""
        reports = job.reports
        has_reports = bool(
            reports.junit or reports.coverage or reports.sarif or reports.codequality
        )
        if not job.gates and not (has_reports and (self._measure_all or reports.junit)):
            return result
        if result.status not in (JobStatus.SUCCESS, JobStatus.FAILED):
            return result  # skipped, cancelled or timed out: nothing trustworthy to read
        m = measure(self.pipeline.root, job, result, self.memo, self._masker(job))
        self.kept.add(m)
        with self._lock:
            self.measured[job.name] = m
            self.problems += m.problems
        if not job.gates:
            return result
        if result.status is JobStatus.FAILED:
            return self._tolerated(job, result, m)
        gates = evaluate(job.gates, m, self.ctx)
        return self._with(result, gates)

    def _tolerated(self, job: Job, result: JobResult, m: Measurements) -> JobResult:
        """A job that failed because of test failures its tests gate allows (at most N,
        or only quarantined tests) succeeds; any other failure stands."""
        gate = job.gates.tests
        if gate is None or result.exit_code in (None, 0) or not m.tests:
            return dataclasses.replace(result, gates=tuple(evaluate(job.gates, m, self.ctx)))
        gates = evaluate(job.gates, m, self.ctx)
        tests = next(g for g in gates if g.gate == "tests")
        failing = [c for c in m.tests if c["status"] in ("failed", "error")]
        if not tests.passed or not failing:
            return dataclasses.replace(result, gates=tuple(gates))
        ok = dataclasses.replace(
            result,
            status=JobStatus.SUCCESS,
            reason=f"exit code {result.exit_code}, tolerated by its tests gate: {tests.measured}",
            allowed_failure=False,
        )
        return self._with(ok, gates)

    def _with(self, result: JobResult, gates: list[GateResult]) -> JobResult:
        blocking = [g for g in gates if g.blocking]
        if not blocking or result.status is not JobStatus.SUCCESS:
            return dataclasses.replace(result, gates=tuple(gates))
        first = blocking[0]
        reason = f"gate {first.gate} failed: {first.measured} (wanted {first.threshold})"
        if len(blocking) > 1:
            reason += f", and {len(blocking) - 1} more gate(s)"
        return dataclasses.replace(
            result, status=JobStatus.FAILED, reason=reason, gates=tuple(gates)
        )

    # -- after ---------------------------------------------------------------------------
    def after(
        self, results: Sequence[JobResult], started: float, finished: float, ok: bool
    ) -> tuple[Sequence[CheckResult], Sequence[GateResult]]:
        """The checks after the last job (when the run is `ok`) and the pipeline's gates
        over every job's measurements."""
        checks: list[CheckResult] = []
        spec = self.pipeline.checks.after
        if spec is not None and ok:
            from conveyor.checks.after import run_after

            checks = run_after(self.pipeline.root, spec, results, self.context)
        gates: list[GateResult] = []
        if self.pipeline.gates.licenses is not None:
            self.ctx.licenses = self._licenses
        if self.pipeline.gates:
            whole = self.combined(results, finished - started)
            self.kept.add(whole)
            gates = evaluate(self.pipeline.gates, whole, self.ctx)
            ran = {r.name for r in results if r.status is not JobStatus.SKIPPED}
            gates, notes = judged_when_partial(gates, ran, {j.name for j in self.pipeline.jobs})
            self.notes += notes
        return checks, gates

    def combined(self, results: Sequence[JobResult], wall: float) -> Measurements:
        """Every job's measurements as one, over `wall` seconds of the run."""
        with self._lock:
            parts = [self.measured[r.name] for r in results if r.name in self.measured]
        whole = Measurements.combined(parts, wall)
        seen = {o.path for o in whole.outputs}
        for r in results:  # outputs of jobs without reports count for sizes too
            if r.name not in self.measured:
                whole.outputs += [o for o in r.outputs if o.path not in seen]
                seen.update(o.path for o in r.outputs)
        return whole

    def findings(self) -> list[Finding]:
        """Everything found in this run: every job's SARIF reports and the secrets check,
        with the severities `gates.findings.severity` sets, as the gates judged them."""
        from conveyor.reports.findings import with_severities

        with self._lock:
            reported = [f for m in self.measured.values() for f in m.findings]
        return with_severities(reported + list(self.ctx.own_findings), self.ctx.severity)

    def close(self) -> None:
        """At the end of the run, whatever ended it."""
        self.kept.close()
        self.memo.save()

    # -- helpers -------------------------------------------------------------------------
    def _vulnerability_audits(self) -> Audits | None:
        """The audits of the vulnerabilities gates (kept in the run directory), when a
        gate asks for them."""
        scopes = [self.pipeline.gates, *(j.gates for j in self.pipeline.jobs)]
        if not any(g.vulnerabilities is not None for g in scopes):
            return None
        from conveyor.gates.vulnerabilities import LiveAudits

        def files() -> list[str]:
            from conveyor.workspace.listing import workspace_files

            # A scan of its own, not the run's: a job may have written a lockfile since.
            return sorted(workspace_files(self.pipeline.root))

        return LiveAudits(self.pipeline, self.environ, self.run_dir, files)

    def _licenses(self) -> LicenseReport | None:
        from conveyor.gates.licenses import scan_for_run

        return scan_for_run(self.pipeline, self.run_dir, self.environ)

    def _secrets(self, job: Job) -> tuple[str, ...]:
        return tuple(self.environ[s] for s in job.secrets if self.environ.get(s))

    def _masker(self, job: Job) -> Masker | None:
        values = self._secrets(job)
        return Masker(values) if values else None

    def _run_command(self, gate: CommandGate, scope: str) -> tuple[int | None, list[str]]:
        from conveyor.executor.environment import job_request
        from conveyor.executor.interface import Cancel

        job = next((j for j in self.pipeline.jobs if j.name == scope), None)
        secrets: tuple[str, ...] = ()
        if job is None:
            # The pipeline's gates: the baseline environment with the pipeline's `env`
            # (no secret in it), but what they read may come from any job, so every
            # job's secrets are masked.
            job = Job(name="pipeline", base="pipeline", run=(), shell=("sh", "-c"))
            secrets = tuple(dict.fromkeys(v for j in self.jobs for v in self._secrets(j)))
        request = job_request(job, self.pipeline, self.context, self.environ, self.run_id)
        request = dataclasses.replace(
            request,
            name=f"gate {gate.name}",
            argv=(*job.shell, gate.run),
            env={**request.env, "CONVEYOR_GATES_DIR": os.path.join(self.run_dir, "gates")},
            timeout=600,
            secrets=tuple(dict.fromkeys((*request.secrets, *secrets))),
        )
        lines: list[str] = []
        outcome = self.executor.execute(request, lines.append, Cancel())
        if outcome.error:
            return None, [outcome.error]
        return outcome.exit_code, lines[-20:]
