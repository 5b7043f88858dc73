"""A run's artifacts: each job that declares `artifacts:` has its files stored as a
version (`conveyor.artifacts.collect`) as it finishes, per its `when:` (on_success, the
default; on_failure; always), before the jobs that need it start, on the worker's
thread. What was stored is said in the job's log; a version that cannot be stored (the
same version with other bytes, a version source that gives none) fails a job that had
succeeded, with the reason. At the end of the run, retention is applied to the names
stored with rules (`expire_in`, `keep`). With a signing key (conveyor.run.signing), each
version stored is signed and its provenance attached before the jobs that need it start.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.artifacts.backend import Store
from conveyor.artifacts.collect import collect_job
from conveyor.artifacts.record import ArtifactVersion
from conveyor.artifacts.sbom import WorkspaceSbom
from conveyor.artifacts.store import ArtifactError, Document
from conveyor.artifacts.versioning import Facts
from conveyor.model import Job, JobResult, JobStatus, Pipeline, RunContext
from conveyor.units import format_size

if TYPE_CHECKING:
    from conveyor.artifacts.provenance import Resource
    from conveyor.workspace.files import WorkspaceFiles

_FAILED = (JobStatus.FAILED, JobStatus.TIMED_OUT)
_UNASKED = object()


def store_of(pipeline: Pipeline) -> Store:
    """The pipeline's artifact store: `artifacts.dir` (a directory or an
    `s3://bucket/prefix`), else `.conveyor/artifacts/`."""
    from conveyor.artifacts.s3store import open_store

    return open_store(pipeline.artifacts.dir, pipeline.root)


class ArtifactCollector:
    """Stores the artifacts of a run's jobs (the scheduler's `artifacts` hook)."""

    def __init__(
        self,
        pipeline: Pipeline,
        context: RunContext,
        run_id: str,
        environ: Mapping[str, str],
    ) -> None:
        self.pipeline = pipeline
        self.context = context
        self.run_id = run_id
        self.environ = environ
        self.store = store_of(pipeline)
        # The SBOM's cache is local even when the store is a bucket.
        local = getattr(self.store, "local", None) or self.store.root
        self.sbom = WorkspaceSbom(pipeline.root, os.path.join(local, "cache", "sbom"))
        self.stored: list[ArtifactVersion] = []
        self._lock = threading.Lock()
        self._number = context.number
        from conveyor.run.signing import run_key

        # Loaded here, as the run is composed: a bad key fails the run before any job.
        self.key = run_key(pipeline, environ)
        self._remote: object = _UNASKED
        self._files: WorkspaceFiles | None = None
        self._files_lock = threading.Lock()

    def wants(self, job: Job, result: JobResult) -> bool:
        """Whether the job's artifacts are stored after this result."""
        spec = job.artifacts
        if spec is None:
            return False
        if result.status is JobStatus.SUCCESS:
            return spec.when in ("on_success", "always")
        if result.status in _FAILED and result.started_at is not None:
            return spec.when in ("on_failure", "always")
        return False

    def _build_number(self) -> int:
        with self._lock:
            if self._number is None:
                from conveyor.graph.context import build_number

                self._number = build_number(self.pipeline.root, self.environ, take=True)
            return self._number

    def collect(
        self,
        job: Job,
        result: JobResult,
        say: Callable[[str], None],
        inputs: Callable[[], Sequence[tuple[str, str]]] | None = None,
    ) -> JobResult:
        """The job's artifacts stored; the result as it stands after (failed, when they
        could not be stored and the job had succeeded). `inputs`: the input files its
        cache key was made of, for the provenance."""
        began = time.time()
        ctx = self.context
        try:
            facts = Facts(
                pipeline=self.pipeline.label,
                job=job.name,
                run_id=self.run_id,
                build_number=self._build_number(),
                commit=ctx.commit,
                branch=ctx.branch,
                tag=ctx.tag,
                when=began,
            )
            attester = self._attester(job, result, inputs) if self.key is not None else None
            got = collect_job(
                self.store,
                job,
                self.pipeline.root,
                facts,
                sbom=self.sbom,
                attest=attester,
            )
        except (ArtifactError, OSError) as exc:
            problem = (
                exc.message
                if isinstance(exc, ArtifactError)
                else f"the artifact store {self.store.root} cannot be written: {exc}"
            )
            say(f"conveyor: artifacts not stored: {problem}")
            if result.status is JobStatus.SUCCESS:
                return dataclasses.replace(
                    _timed(result, began),
                    status=JobStatus.FAILED,
                    reason=getattr(exc, "short", None) or f"artifacts not stored: {problem}",
                    allowed_failure=job.allow_failure and not job.allow_exit_codes,
                )
            return _timed(result, began)
        for pattern in got.missing:
            say(f"conveyor: artifacts: no file matches {pattern!r}")
        for path in got.left_out:
            say(f"conveyor: artifacts: {path} left out (a symlink to outside the workspace)")
        version = got.version
        if version is None:
            say("conveyor: artifacts: no file matched, nothing stored")
            return _timed(result, began)
        files = f"{len(version.files)} file{'s' if len(version.files) != 1 else ''}"
        if got.new:
            say(
                f"conveyor: artifact {version.ref} stored: {files}, "
                f"{format_size(version.size)}, {version.digest}"
            )
        else:
            say(f"conveyor: artifact {version.ref} was stored before with the same bytes")
        if self.sbom.error is not None:
            say(f"conveyor: artifacts: no SBOM attached: {self.sbom.error}")
        if attester is not None and attester.problem is not None and got.new:
            say(f"conveyor: artifact {version.ref} stored unsigned: {attester.problem}")
        elif self.key is not None and not version.attachments_of("signature"):
            # Stored before, unsigned (by a run without a key): signed now.
            version = self._sign(job, result, version, say, inputs)
        elif attester is not None and got.new:
            self._said_signed(version, say)
        with self._lock:
            self.stored.append(version)
        return _timed(result, began)

    def _attester(
        self,
        job: Job,
        result: JobResult,
        inputs: Callable[[], Sequence[tuple[str, str]]] | None,
    ) -> _Attester:
        return _Attester(self, job, result, inputs)

    def _said_signed(self, version: ArtifactVersion, say: Callable[[str], None]) -> None:
        assert self.key is not None
        say(
            f"conveyor: artifact {version.ref} signed ({len(version.files)} signature(s), "
            f"provenance) with key {self.key.key_id}"
        )

    def _attestations(
        self,
        job: Job,
        result: JobResult,
        version: ArtifactVersion,
        inputs: Callable[[], Sequence[tuple[str, str]]] | None,
    ) -> list[Document]:
        """The version's signatures and provenance (ArtifactError, OSError when they
        cannot be made)."""
        from conveyor.run.signing import attestations

        assert self.key is not None
        with self._lock:
            upstream = list(self.stored)
        return attestations(
            version,
            self.key,
            pipeline_file=os.path.relpath(self.pipeline.path, self.pipeline.root),
            job=job,
            result=result,
            upstream=upstream,
            inputs=inputs() if inputs is not None else self._inputs_now(job),
            source=self._source(),
        )

    def _sign(
        self,
        job: Job,
        result: JobResult,
        version: ArtifactVersion,
        say: Callable[[str], None],
        inputs: Callable[[], Sequence[tuple[str, str]]] | None,
    ) -> ArtifactVersion:
        from conveyor.artifacts.store import attach_all

        try:
            documents = self._attestations(job, result, version, inputs)
            signed = attach_all(self.store, version.ref, documents)
        except (ArtifactError, OSError) as exc:
            say(f"conveyor: artifact {version.ref} stored unsigned: {exc}")
            return version
        self._said_signed(version, say)
        return signed

    def _inputs_now(self, job: Job) -> list[tuple[str, str]]:
        """A job run without a cache key (the cache off): its inputs as its key would
        select and digest them, taken now, as its artifacts are stored."""
        from conveyor.workspace.files import WorkspaceFiles, workspace_state_file

        root = self.pipeline.root
        out = []
        with self._files_lock:
            if self._files is None:
                self._files = WorkspaceFiles(root, workspace_state_file(root))
            files = self._files
            for path in files.select(job.dir, job.inputs):
                try:
                    info = files.info(path)
                except FileNotFoundError:
                    continue
                out.append((path, f"{info.digest}{'x' if info.executable else ''}"))
        return out

    def _source(self) -> Resource | None:
        """The source repository at the run's commit (None without a commit), its
        remote asked of git once a run."""
        commit = self.context.commit
        if commit is None:
            return None
        with self._lock:
            if self._remote is _UNASKED:
                from conveyor.workspace import git

                try:
                    self._remote = git.remote_url(self.pipeline.root)
                except OSError:
                    self._remote = None
            remote = self._remote
        from conveyor.artifacts.provenance import source

        ctx = self.context
        return source(
            remote if isinstance(remote, str) else None,
            commit=commit,
            branch=ctx.branch,
            tag=ctx.tag,
            root=self.pipeline.root,
        )

    def finish(self) -> tuple[list[str], list[str]]:
        """Retention applied to the names stored with rules: (notes, warnings)."""
        if self._files is not None:
            self._files.close()
        ruled = sorted(
            {v.name for v in self.stored if v.keep_last is not None or v.expires is not None}
        )
        if not ruled:
            return [], []
        from conveyor.artifacts.retention import prune

        try:
            report = prune(
                self.store, protected=self.pipeline.artifacts.protected_channels, names=ruled
            )
        except (ArtifactError, OSError) as exc:
            return [], [f"artifacts were not pruned: {exc}"]
        if not report.removed:
            return [], []
        refs = ", ".join(r.version.ref for r in report.removed[:5])
        more = f" and {len(report.removed) - 5} more" if len(report.removed) > 5 else ""
        return [
            f"artifacts: {len(report.removed)} version(s) removed by retention ({refs}{more}), "
            f"{format_size(report.freed)} freed"
        ], []


def _timed(result: JobResult, began: float) -> JobResult:
    """The result with the time storing its artifacts took in its storing phase."""
    now = time.time()
    if result.finished_at is None:
        return result
    return dataclasses.replace(
        result,
        finished_at=max(result.finished_at, now),
        store_time=(result.store_time or 0.0) + (now - began),
    )


class _Attester:
    """Signs a version as it is stored (`collect.Attester`); a problem making the
    signatures is kept to be said, and the version stored unsigned, as before."""

    def __init__(
        self,
        collector: ArtifactCollector,
        job: Job,
        result: JobResult,
        inputs: Callable[[], Sequence[tuple[str, str]]] | None,
    ) -> None:
        self.collector = collector
        self.job = job
        self.result = result
        self.inputs = inputs
        self.problem: str | None = None

    def __call__(self, version: ArtifactVersion) -> list[Document]:
        try:
            return self.collector._attestations(self.job, self.result, version, self.inputs)
        except (ArtifactError, OSError) as exc:
            self.problem = str(exc)
            return []
