"""What a job's gates are evaluated against, read once as the job finishes: its test
cases (JUnit), coverage (Cobertura/LCOV), findings (SARIF, GitLab Code Quality), output
files and duration.
Kept in the run directory (`reports.jsonl`, a line per job) so `conveyor gates` can
evaluate a past run again, against the gates as they are now, and the history can
record its test cases.

A cache hit restores the very report files an earlier run parsed: what was read from
them is kept by their digests (`.conveyor/cache/reports.json`), so a cached job's
reports are not parsed again (2.4 ms a job with a JUnit and a coverage report here).

What is read is masked with the job's secrets as it is read (issue 10): the run
directory, the memo and everything built from them (gates, history, `conveyor show`,
the HTML build scan, traces, metrics) only ever hold masked text. The job's own report
files are its outputs and are left as they are."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.fsutil import atomic_write
from conveyor.model import Finding, Job, JobResult, OutputFile

if TYPE_CHECKING:
    from conveyor.executor.masking import Masker
    from conveyor.reports.coverage import Coverage


@dataclass
class Measurements:
    """One job's (or, combined, the pipeline's) measured facts."""

    scope: str
    tests: list[dict[str, Any]] = field(default_factory=list)
    """Test cases: job, suite, name, status (passed, failed, error, skipped), duration,
    message."""
    coverage: Coverage | None = None
    findings: list[Finding] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    duration: float | None = None
    reports: dict[str, int] = field(default_factory=dict)
    """How many report files of each kind (junit, coverage, sarif, codequality) were read."""
    problems: list[str] = field(default_factory=list)
    """Report files that could not be read."""

    def to_json(self) -> dict[str, Any]:
        """As plain JSON data (a line of `reports.jsonl`, an entry of the memo)."""
        return {
            "scope": self.scope,
            "tests": self.tests,
            "coverage": self.coverage.to_json() if self.coverage is not None else None,
            "findings": [f._asdict() for f in self.findings],
            "outputs": [list(o) for o in self.outputs],
            "duration": self.duration,
            "reports": self.reports,
            "problems": self.problems,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurements:
        """Read back what `to_json` wrote."""
        from conveyor.reports.coverage import Coverage

        cov = data.get("coverage")
        return cls(
            scope=data["scope"],
            tests=list(data.get("tests") or []),
            coverage=Coverage.from_json(cov) if cov else None,
            findings=[Finding(**f) for f in data.get("findings") or []],
            outputs=[OutputFile(*o) for o in data.get("outputs") or []],
            duration=data.get("duration"),
            reports=dict(data.get("reports") or {}),
            problems=list(data.get("problems") or []),
        )

    @classmethod
    def combined(cls, parts: list[Measurements], duration: float | None) -> Measurements:
        """The pipeline's view: every job's tests, findings and outputs; one coverage
        merged from every report (a unit and an integration job cover one codebase)."""
        whole = cls(scope="pipeline", duration=duration)
        for part in parts:
            whole.tests += part.tests
            whole.findings += part.findings
            whole.outputs += part.outputs
            whole.problems += part.problems
            for kind, n in part.reports.items():
                whole.reports[kind] = whole.reports.get(kind, 0) + n
            if part.coverage is not None:
                whole.coverage = (
                    part.coverage
                    if whole.coverage is None
                    else whole.coverage.merged(part.coverage)
                )
        return whole


class ReportMemo:
    """What was read from report files, by the job and the files' SHA-256: a cached job
    restores the same files, so their contents need no parsing again. One JSON file per
    workspace; only the entries a run used are kept when it is saved."""

    VERSION = 4
    """2: entries are masked with their job's secrets (1's could hold a secret: dropped).
    3: findings carry fingerprints of scheme 2 (`conveyor.reports.findings`).
    4: a report made in another checkout names this one's files (3's kept its paths)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, Any] | None = None
        self._used: dict[str, Any] = {}
        self._new = False

    def _load(self) -> dict[str, Any]:
        if self._known is None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                ok = isinstance(data, dict) and data.get("version") == self.VERSION
                self._known = data.get("entries", {}) if ok else {}
            except (OSError, ValueError):
                self._known = {}
        return self._known

    def get(self, key: str) -> dict[str, Any] | None:
        """What was read from the files of this key, if known; kept when saved."""
        with self._lock:
            entry = self._load().get(key)
            if isinstance(entry, dict):
                self._used[key] = entry
                return entry
            return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Remember what was read from the files of this key."""
        with self._lock:
            self._used[key] = entry
            self._new = True

    def save(self) -> None:
        """Write the entries this run used (and only those), if anything changed."""
        with self._lock:
            if not self._new and len(self._used) == len(self._load()):
                return
            data = {"version": self.VERSION, "entries": self._used}
        with contextlib.suppress(OSError):  # only the next run's parsing time is at stake
            atomic_write(self.path, json.dumps(data, separators=(",", ":")), makedirs=True)


FINDINGS = ("sarif", "codequality")
"""The report kinds read as findings (what a findings gate needs one of)."""


def _memo_key(
    job: Job, files: list[tuple[str, list[str], list[str]]], result: JobResult, masked: bool
) -> str | None:
    """The key of the job's report files as this result has them, or None when one of
    them is not among its recorded outputs (then it is parsed). Whether the entry is
    masked is part of it (whether, never with what: no secret goes into a key), so a
    job without secrets is not served another run's masks; an entry is masked again
    as it is taken, so one stored for other secrets never serves these unmasked."""
    digests = {o.path: o.sha256 for o in result.outputs}
    parts = [job.name, "masked" if masked else "plain"]
    if any(kind in FINDINGS and paths for kind, _patterns, paths in files):
        # A finding's fingerprint hashes its source line, which the report does not hold:
        # the same report over edited code is the same entry only for the same action.
        if result.action_digest is None:
            return None
        parts.append(result.action_digest)
    for kind, _patterns, paths in files:
        for rel in paths:
            sha = digests.get(rel)
            if sha is None:
                return None
            parts.append(f"{kind}\0{rel}\0{sha}")
    return hashlib.sha256("\0\0".join(parts).encode()).hexdigest()


def measure(
    root: str,
    job: Job,
    result: JobResult,
    memo: ReportMemo | None = None,
    masker: Masker | None = None,
) -> Measurements:
    """Read the job's declared reports (as they are now: the job just wrote them, or the
    cache just restored them) into Measurements, masked with `masker` (the job's secrets)."""
    from conveyor.reports.junit import report_files

    m = Measurements(scope=job.name, outputs=list(result.outputs), duration=result.duration)
    reports = job.reports
    files = []
    for kind, patterns in (
        ("junit", reports.junit),
        ("coverage", reports.coverage),
        ("sarif", reports.sarif),
        ("codequality", reports.codequality),
    ):
        if patterns:
            found = report_files(root, job.dir, patterns)
            files.append((kind, list(patterns), [_rel(root, p) for p in found]))
    masking = masker is not None and bool(masker)
    key = _memo_key(job, files, result, masking) if memo is not None else None
    known = memo.get(key) if memo is not None and key is not None else None
    if known is None:
        _read_reports(root, job, files, m)
        m = masked(m, masker)
        if memo is not None and key is not None:
            entry = m.to_json()
            del entry["outputs"], entry["duration"]
            memo.put(key, entry)
        return m
    read = Measurements.from_json({**known, "scope": job.name})
    m.tests, m.coverage, m.findings = read.tests, read.coverage, read.findings
    m.reports, m.problems = read.reports, read.problems
    return masked(m, masker)


def masked(m: Measurements, masker: Masker | None) -> Measurements:
    """`m` with every string in it masked (test names and messages, file paths, finding
    messages, problems): all of it, so a field added later is masked too. Fingerprints
    are hashes, never a secret, and stay as they are for baselines to match."""
    if masker is None or not masker:
        return m
    out = Measurements.from_json(masker.mask_data(m.to_json(), keep=_UNMASKED))
    out.duration = m.duration
    return out


_UNMASKED = frozenset({"fingerprint"})


def _rel(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _read_reports(
    root: str, job: Job, files: list[tuple[str, list[str], list[str]]], m: Measurements
) -> None:
    from conveyor.reports.junit import ReportError, read_cases

    base = os.path.normpath(os.path.join(root, job.dir))
    for kind, patterns, paths in files:
        m.reports[kind] = 0
        for rel in paths:
            path = os.path.join(root, rel)
            try:
                if kind == "junit":
                    m.tests += [{**case, "job": job.name} for case in read_cases(path)]
                elif kind == "coverage":
                    from conveyor.reports.coverage import read_coverage

                    cov = read_coverage(path, root, base)
                    m.coverage = cov if m.coverage is None else m.coverage.merged(cov)
                elif kind == "sarif":
                    from conveyor.reports.sarif import read_sarif

                    m.findings += read_sarif(path, root, base)
                else:
                    from conveyor.reports.codequality import read_codequality

                    m.findings += read_codequality(path, root, base)
                m.reports[kind] += 1
            except ReportError as exc:
                m.problems.append(f"{job.name}: {kind} report {exc}")
        if not paths:
            m.problems.append(
                f"{job.name}: no {kind} report matches {', '.join(patterns)} "
                f"(relative to {job.dir})"
            )


REPORTS_FILE = "reports.jsonl"


class RunReports:
    """Appends each job's measurements to the run directory's `reports.jsonl` as it is
    read: one file for the run, not one per job (creating a file cost more than reading
    a cached job's reports)."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, REPORTS_FILE)
        self._lock = threading.Lock()
        self._fh: Any = None

    def add(self, m: Measurements) -> None:
        """Append one job's measurements (a line, flushed at once)."""
        line = json.dumps(m.to_json(), separators=(",", ":")) + "\n"
        with self._lock:
            if self._fh is None:
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        """Close the file (a run with no report never opened it)."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def load_all(run_dir: str) -> list[Measurements]:
    """Every measurement a run directory kept (the last one of each scope)."""
    found: dict[str, Measurements] = {}
    try:
        with open(os.path.join(run_dir, REPORTS_FILE), encoding="utf-8") as fh:
            for line in fh:
                try:
                    m = Measurements.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
                found[m.scope] = m
    except OSError:
        return []
    return list(found.values())
