"""Plain data of a validated pipeline and of a run: frozen, typed, no I/O.

Everything past `conveyor.config` works on these objects; nothing here imports
other Conveyor modules. Mappings are stored as tuples of pairs so that every
object is hashable, picklable (the config cache stores them) and immutable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

Pairs = tuple[tuple[str, str], ...]


class GateLevel(enum.StrEnum):
    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True)
class Retry:
    """How often a failed job is tried again, and how long to wait between tries."""

    max: int = 0
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before `attempt` (2 is the first retry)."""
        return float(min(self.max_delay, self.delay * self.backoff ** max(0, attempt - 2)))


@dataclass(frozen=True)
class Reports:
    """Report files a job produces (read by the gates and history issues)."""

    junit: tuple[str, ...] = ()
    coverage: tuple[str, ...] = ()
    sarif: tuple[str, ...] = ()
    codequality: tuple[str, ...] = ()
    """GitLab Code Quality (Code Climate JSON) reports: findings, as SARIF's are."""


@dataclass(frozen=True)
class ArtifactSpec:
    paths: tuple[str, ...] = ()
    name: str | None = None
    expire_in: float | None = None
    when: str = "on_success"
    type: str = "application"
    """What the files are, for the hand-off to deployment: application, library,
    package, container, deployment-manifest, documentation, report or other."""
    version: str | None = None
    """The version's template (`1.4.{{ run_number }}`, or a literal); with
    `version_from`, `{{ version }}` names the version the source gives. None: the build
    number."""
    version_from: str | None = None
    """`git` (git describe), or a pyproject.toml, package.json or Cargo.toml (a path
    relative to the job's directory) whose version field gives the version."""
    keep_last: int | None = None
    """`keep: {last: N}`: the newest N versions are kept (the rest go when pruned)."""
    keep_per: str | None = None
    """`keep: {per: branch}`: N per branch rather than N in all."""
    keep_latest: bool = False
    """`keep: {latest: true}`: the newest version on each branch never expires by age
    (GitLab's keep-latest-artifact; a GitLab job's default)."""

    def covers(self, path: str) -> bool:
        """Whether a workspace-relative file is one of these artifacts: a path written
        as a directory covers everything under it, others match as globs."""
        from fnmatch import fnmatchcase

        for pattern in self.paths:
            pattern = pattern.removeprefix("./")
            if path == pattern.rstrip("/") or path.startswith(pattern.rstrip("/") + "/"):
                return True
            if fnmatchcase(path, pattern):
                return True
        return False


@dataclass(frozen=True)
class ArtifactStoreSpec:
    """The pipeline's `artifacts:`: where the artifact store is and which channels keep
    a version whatever the retention rules say."""

    dir: str | None = None
    """Absolute; None: `.conveyor/artifacts/` in the workspace."""
    protected_channels: tuple[str, ...] = ("prod",)
    signing_key: str | None = None
    """Absolute: the private key a run signs with (CONVEYOR_SIGNING_KEY wins over it)."""


@dataclass(frozen=True)
class CacheSpec:
    """A dependency cache in the manner of actions/cache."""

    key: str
    paths: tuple[str, ...]
    restore_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestsGate:
    max_failures: int = 0
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class CoverageGate:
    line: float | None = None
    branch: float | None = None
    diff: float | None = None
    diff_base: str | None = None
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class FindingsGate:
    max: tuple[tuple[str, int], ...] = ()
    baseline: str | None = None
    level: GateLevel = GateLevel.ERROR
    severity: tuple[tuple[str, str], ...] = ()
    """Overrides of the reported severity: ("ruff", "low"), ("ruff/S105", "high"),
    ("ruff/S*", "medium"); see `conveyor.reports.findings.overrides`."""


@dataclass(frozen=True)
class VulnerabilitiesGate:
    """Known vulnerabilities of the lockfiles' packages (`conveyor deps audit`): at most
    so many per severity (critical, high, medium, low, none, unknown), counting only
    those not in the baseline when one is named."""

    max: tuple[tuple[str, int], ...] = ()
    baseline: str | None = None
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class SizesGate:
    files: tuple[tuple[str, int], ...] = ()
    total: int | None = None
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class TimeGate:
    max: float
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class CommandGate:
    name: str
    run: str
    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class LicensesGate:
    """The pipeline's dependencies judged by the `deps.licenses` policy."""

    level: GateLevel = GateLevel.ERROR


@dataclass(frozen=True)
class Gates:
    tests: TestsGate | None = None
    coverage: CoverageGate | None = None
    findings: FindingsGate | None = None
    sizes: SizesGate | None = None
    time: TimeGate | None = None
    commands: tuple[CommandGate, ...] = ()
    vulnerabilities: VulnerabilitiesGate | None = None
    licenses: LicensesGate | None = None
    """The pipeline's only: the workspace's dependencies' licenses."""

    def __bool__(self) -> bool:
        return any(
            (
                self.tests,
                self.coverage,
                self.findings,
                self.sizes,
                self.time,
                self.commands,
                self.vulnerabilities,
                self.licenses,
            )
        )


class MatrixFrom(NamedTuple):
    """A matrix another job computes (`${{ fromJSON(needs.X.values.Y) }}`): expanded by
    the run once X has finished (`config.build.expand_dynamic`)."""

    refs: tuple[tuple[str, str, str], ...]
    """(where: 'include' or an axis name, job, value name) for each computed part."""
    spec: str
    """The `matrix:` mapping as written, in JSON."""
    body: str
    """The job's mapping (its `extends` merged), in JSON: what its instances are made of."""
    limit: int
    """Instances it may expand to (`limits: {matrix: N}`)."""


@dataclass(frozen=True)
class Job:
    """One runnable job instance (a matrix job yields one per combination)."""

    name: str
    """Instance name, e.g. 'test (python=3.12, os=linux)'."""
    base: str
    """The key under `jobs:`; equal to `name` unless the job has a matrix."""
    run: tuple[str, ...]
    shell: tuple[str, ...]
    """argv prefix; the script is appended as the last argument."""
    matrix: Pairs = ()
    stage: str | None = None
    needs: tuple[str, ...] = ()
    """Job keys as written (a matrix job means all its instances), or the name of one
    instance (`build (os=linux)`)."""
    needs_explicit: bool = False
    condition: str | None = None
    env: Pairs = ()
    pass_env: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    dir: str = "."
    timeout: float | None = None
    retry: Retry = field(default_factory=Retry)
    allow_failure: bool = False
    allow_exit_codes: tuple[int, ...] = ()
    """With `allow_failure`, only a failure with one of these exit codes is allowed
    (GitLab's `allow_failure: exit_codes`); empty: any failure or timeout."""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reports: Reports = field(default_factory=Reports)
    gates: Gates = field(default_factory=Gates)
    artifacts: ArtifactSpec | None = None
    caches: tuple[CacheSpec, ...] = ()
    tools: Pairs = ()
    cache: bool = True
    requires: Pairs = ()
    deferred: bool = False
    """Some field holds an expression filled in when the run is planned or the job starts
    (`${{ vars.X }}`, `${{ secrets.X }}`...): see `config.resolve`."""
    cache_said: bool = False
    """`cache: true` written out: the job is stored even where Conveyor would not store
    it by itself (a job with secrets, one that writes files it does not declare)."""
    reads_values: bool = False
    """Its `run`, `env`, `dir` or `if:` read `${{ needs.JOB.values.NAME }}`: filled in
    (and the condition evaluated) when its needs have finished."""
    resource_group: str | None = None
    """Jobs of one group never run at the same time, in a run or across the runs of
    the machine's user (GitLab's `resource_group`)."""
    when: str = "on_success"
    """GitLab's `when:`: on_success, on_failure, always or manual (run only when asked)."""
    late: bool = False
    """Whether the job's condition depends on how the run goes (`when: on_failure` or
    `always`, a status function or `needs.X.result` in its `if:`), and so is decided
    when the job is ready to start rather than when the run is planned."""
    finally_run: tuple[str, ...] = ()
    """`finally:` (GitLab's `after_script`): commands run after the main ones whatever
    they did, with CONVEYOR_JOB_STATUS set."""
    matrix_from: MatrixFrom | None = None
    """A dynamic matrix: this job stands for the instances a job it needs computes."""
    executor: str | None = None
    """"local" or "remote" (the remote's workers, REAPI Execute); None: as
    `remote.execute` says."""
    platform: Pairs = ()
    """REAPI platform properties a remote worker must offer (sorted by name)."""

    @property
    def script(self) -> str:
        return "\n".join(self.run)


class SecretsCheck(NamedTuple):
    baseline: str | None = None
    exclude: tuple[str, ...] = ()
    level: GateLevel = GateLevel.ERROR


class AfterChecks(NamedTuple):
    required: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    max_size: tuple[tuple[str, int], ...] = ()
    report: str | None = None
    level: GateLevel = GateLevel.ERROR


class Checks(NamedTuple):
    """`checks:` as validated: what `conveyor run` verifies before and after the jobs."""

    disk: int | None = None
    env: tuple[str, ...] = ()
    manifests: tuple[str, ...] | None = None
    """Globs of manifest files to parse; () for the default set; None: not checked."""
    lockfiles: bool = False
    secrets: SecretsCheck | None = None
    after: AfterChecks | None = None

    @property
    def before(self) -> bool:
        return bool(
            self.disk is not None
            or self.env
            or self.manifests is not None
            or self.lockfiles
            or self.secrets
        )


class Remote(NamedTuple):
    """A remote cache (REAPI v2: BuildGrid, Buildbarn, BuildBuddy, NativeLink...): where it
    is, how to reach it, and whether this machine writes to it. From `remote:` in the
    pipeline file, `--remote URL` or `CONVEYOR_REMOTE` (the flag and variable win)."""

    url: str
    """`grpc://host:port` (plain) or `grpcs://host:port` (TLS)."""
    instance_name: str = ""
    """REAPI's instance name: separates caches on one server (e.g. trust levels)."""
    upload: bool = False
    """Write results after local executions (CI on protected branches); off, this machine
    only reads the team's cache (Bazel's --remote_upload_local_results)."""
    ca_file: str | None = None
    """PEM roots to verify the server by (grpcs); None: the system's."""
    client_cert: str | None = None
    """PEM client certificate and key for mutual TLS (both or neither)."""
    client_key: str | None = None
    auth_header: str = "authorization"
    """The metadata key the credential is sent in."""
    auth_env: str | None = None
    """The environment variable holding the credential's value (never the value itself:
    it is never printed, stored or part of a cache key)."""
    timeout: float = 60.0
    """Seconds one call may take before it is retried or given up."""
    retries: int = 3
    """Retries of a call that failed with UNAVAILABLE or RESOURCE_EXHAUSTED (backoff)."""
    execute: bool = False
    """Run every job that can on the server's workers (REAPI Execute); a job's
    `executor:` says otherwise for itself."""


class DepsIgnore(NamedTuple):
    """An advisory set aside (`deps.ignore`): its id (or any alias), why, and until when
    (an ISO date; None: for good)."""

    id: str
    reason: str
    until: str | None = None


class DepsPolicy(NamedTuple):
    """`deps:` as validated: the policy of `conveyor deps` and of its gates."""

    ignore: tuple[DepsIgnore, ...] = ()
    licenses_allow: tuple[str, ...] = ()
    """SPDX identifiers allowed (empty: any not denied)."""
    licenses_deny: tuple[str, ...] = ()
    pypi_index: str | None = None
    """A PyPI-compatible index's base URL, for `deps outdated`."""
    npm_registry: str | None = None
    """An npm-compatible registry's base URL, for `deps outdated`."""
    licenses_overrides: Pairs = ()
    """(package, SPDX expression): licenses set by hand (`deps.licenses.overrides`)."""


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline file."""

    path: str
    """The pipeline file, as given (used in messages)."""
    root: str
    """Absolute workspace root: the directory holding the pipeline file."""
    jobs: tuple[Job, ...]
    name: str = ""
    version: int = 1
    env: Pairs = ()
    stages: tuple[str, ...] = ()
    gates: Gates = field(default_factory=Gates)
    requires: Pairs = ()
    history_url: str | None = None
    keep_runs: int = 200
    """Run directories kept under `.conveyor/runs/` (older ones are removed once recorded)."""
    checks: Checks = field(default_factory=Checks)
    vars: Pairs = ()
    """`vars:` as written, or with `--var` overrides once resolved for a run."""
    quarantine: str = "conveyor.quarantine.json"
    """The flaky tests' quarantine list (`gates.quarantine`), workspace-relative: a file
    to commit, so the whole team's test gates set aside the same tests."""
    remote: Remote | None = None
    """The remote cache, if the pipeline file names one (`remote:`)."""
    deps: DepsPolicy = field(default_factory=DepsPolicy)
    """`deps:`: advisories set aside, the license policy, the registries."""
    artifacts: ArtifactStoreSpec = field(default_factory=ArtifactStoreSpec)
    """`artifacts:`: the artifact store's directory and protected channels."""

    @property
    def label(self) -> str:
        """The pipeline's name, else its workspace directory's (what runs are filed under)."""
        return self.name or self.root.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RunContext:
    """What the run is for: the facts `if:` conditions are evaluated against."""

    branch: str | None
    tag: str | None
    commit: str | None
    event: str
    ci: str | None = None
    """'github', 'gitlab', 'ci' (some other CI) or None (a developer's machine)."""
    env: Pairs = ()
    number: int | None = None
    """The build number (`${{ run.number }}`), taken only when a job reads it."""

    def values(self) -> dict[str, str]:
        """The `run` context of expressions: run.branch, .commit, .event, .tag, .number
        (an unknown one is empty)."""
        return {
            "branch": self.branch or "",
            "commit": self.commit or "",
            "event": self.event,
            "tag": self.tag or "",
            "number": "" if self.number is None else str(self.number),
        }


class JobStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def ok(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.SKIPPED)


class OutputFile(NamedTuple):
    """One file a job produced: workspace-relative path, SHA-256, size; and, when the
    job declares it among its `artifacts:`, their type."""

    path: str
    sha256: str
    size: int
    artifact: str | None = None


SEVERITIES = ("critical", "high", "medium", "low", "note")
"""Finding severities, most severe first."""


class Finding(NamedTuple):
    """One finding of a scanner (from a SARIF report, or Conveyor's own scanners)."""

    tool: str
    rule: str
    severity: str
    """One of SEVERITIES."""
    message: str
    path: str | None = None
    """Workspace-relative ('/'-separated) when the file is inside the workspace."""
    line: int | None = None
    fingerprint: str = ""
    """Stable across unrelated edits (no line number in it): what a baseline lists."""


class CheckResult(NamedTuple):
    """One check before or after the build: what was expected, what was found, how to
    fix it. Secrets are never in any of these strings. Built with keyword arguments
    (`CheckResult(check=..., ok=..., expected=..., found=...)`): four strings in a row
    are easy to swap."""

    check: str
    """What was checked, e.g. 'tool python', 'disk', 'env AWS_REGION', 'secrets'."""
    ok: bool
    """Whether what was found is what was expected."""
    expected: str
    """What the check wants, e.g. 'python >= 3.11', 'at least 1.0 GB free'."""
    found: str
    """What it found, e.g. 'python 3.10.4', '0.4 GB free'."""
    hint: str = ""
    """How to fix it, when it failed (one command or one step)."""
    location: str | None = None
    """file:line:col, or a path, when the problem is in a file."""
    level: GateLevel = GateLevel.ERROR
    """Whether a failure stops the run (error) or is only reported (warn)."""

    @property
    def blocking(self) -> bool:
        """Failed, at the error level: the run fails with it."""
        return not self.ok and self.level is GateLevel.ERROR


class GateResult(NamedTuple):
    """One gate, evaluated: its measured value against its threshold. Built with keyword
    arguments (`GateResult(gate=..., scope=..., level=..., passed=..., ...)`): the three
    strings in a row are easy to swap."""

    gate: str
    """e.g. 'tests', 'coverage.line', 'findings.high', 'sizes.total', 'time', 'command:x'."""
    scope: str
    """The job it belongs to, or 'pipeline'."""
    level: GateLevel
    """Whether a failure fails the run (error) or is only reported (warn)."""
    passed: bool
    """Whether the measured value is within the threshold."""
    measured: str
    """The value as shown, e.g. '1 failed of 12', '81.3% (813/1000 lines)'."""
    threshold: str
    """The limit as shown, e.g. '<= 0 failures', '>= 80.0%'."""
    detail: str = ""
    """What failed, when it did (failing tests, files over their limit, new findings)."""
    unmeasured: bool = False
    """Failed for want of data (no report read, no matching output), not on a value."""

    @property
    def blocking(self) -> bool:
        """Failed, at the error level: the run fails with it."""
        return not self.passed and self.level is GateLevel.ERROR


@dataclass(frozen=True)
class JobResult:
    """What happened to one job in one run."""

    name: str
    status: JobStatus
    reason: str = ""
    exit_code: int | None = None
    attempts: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cpu_time: float | None = None
    """User + system seconds of the job's process tree (last attempt)."""
    peak_rss: int | None = None
    """Peak resident memory in bytes of the job's process tree (last attempt)."""
    allowed_failure: bool = False
    log_path: str | None = None
    cached: bool = False
    """Restored from the cache instead of run."""
    saved: float | None = None
    """For a cached job: how long the run that produced the result took."""
    action_digest: str | None = None
    outputs_digest: str | None = None
    """One digest of the job's outputs (what its dependents' cache keys include)."""
    miss_reasons: tuple[str, ...] = ()
    """Why the cache missed (with --explain)."""
    outputs: tuple[OutputFile, ...] = ()
    """The files the job produced (or the cache restored), when it succeeded."""
    gates: tuple[GateResult, ...] = ()
    """The job's gates, evaluated when it finished."""
    values: Pairs = ()
    """What the job wrote to $CONVEYOR_OUTPUT (or the cache restored), in the order
    written; one containing a secret is withheld, never here."""
    # The job's timeline, in seconds: queued (waiting for a free slot, its resource group
    # or the scheduler), then checking (its key computed, the cache asked), then restoring
    # (a hit's outputs, dependency caches) or running (its attempts), then storing (its
    # result and dependency caches saved). `started_at` is when the first phase began,
    # `finished_at` when the last ended; waiting between phases is queue time.
    check_time: float | None = None
    restore_time: float | None = None
    run_time: float | None = None
    store_time: float | None = None
    cache_tier: str | None = None
    """For a cached job: "local" (this machine's cache) or "remote" (the team's)."""
    worker: str | None = None
    """For a job a remote worker ran: the worker, as the server named it."""

    @property
    def duration(self) -> float | None:
        """The job's own time: its phases added up (what the critical path and every
        duration statistic use; waiting is `queue_time`)."""
        if self.started_at is None or self.finished_at is None:
            return None
        # Plain arithmetic: read for every job several times over (no-op runs count).
        c, r, u, s = self.check_time, self.restore_time, self.run_time, self.store_time
        if c is None and r is None and u is None and s is None:
            return self.finished_at - self.started_at
        return (c or 0.0) + (r or 0.0) + (u or 0.0) + (s or 0.0)

    @property
    def queue_time(self) -> float | None:
        """Seconds between ready and finished that were no phase of the job's own."""
        own = self.duration
        if self.queued_at is None or self.finished_at is None or own is None:
            return None
        return max(0.0, self.finished_at - self.queued_at - own)

    @property
    def blocks_run(self) -> bool:
        """True when this result makes the run fail."""
        return not self.status.ok and not self.allowed_failure and self.status != JobStatus.SKIPPED


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest as REAPI has it: SHA-256 hex of the bytes, and their length."""

    hash: str
    size_bytes: int

    def __str__(self) -> str:
        return f"{self.hash}/{self.size_bytes}"
