"""The scheduler's side of the job cache: a job's key made and looked up when it is
ready (a hit restores its outputs and replays its log without taking a worker), its
result stored when it succeeds, and its dependency caches restored and saved around it.
The cache is an optimisation: nothing here fails a job or the run."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from conveyor.cache.interface import CacheError
from conveyor.cache.jobs import ASK_REMOTE, AskRemote, JobCache
from conveyor.cache.keys import BuiltAction, action_argv
from conveyor.cache.results import Hit
from conveyor.events import EventBus, JobOutput, JobStarted
from conveyor.graph.plan import PlannedJob
from conveyor.model import Job, JobResult, JobStatus, OutputFile
from conveyor.run.values import digest

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2.remote_execution_pb2 import (
        ActionResult,
    )

    from conveyor.cache.deps import Restoration


class LookedUp(NamedTuple):
    """What the scheduler learns of a ready job from the cache."""

    hit: JobResult | None
    """Served already (its outputs were in place)."""
    built: BuiltAction | None
    """Its action (None: the job runs uncached)."""
    reasons: tuple[str, ...]
    """Why it missed (with --explain), or why it is not cached."""
    entry: ActionResult | None = None
    """A hit whose outputs must be restored, in a worker slot (`CachedJobs.restore`)."""
    remote: bool = False
    """Only the remote cache can tell: ask it off the scheduler's thread, many jobs at a
    time (`CachedJobs.ask_remote`), then restore or run."""


class CachedJobs:
    """What the scheduler asks of the job cache (`jobcache` None: nothing is cached)."""

    def __init__(
        self,
        jobcache: JobCache | None,
        bus: EventBus,
        log_path: Callable[[str], str],
        *,
        explain: bool,
    ) -> None:
        self.jobcache = jobcache
        self.bus = bus
        self.log_path = log_path
        self.explain = explain
        self.outputs: dict[str, str] = {}
        """The outputs' digest of each job finished well, which the jobs needing it are
        keyed on."""
        self.ran_before: set[str] = set()
        """Jobs that ran in this run (not served from the cache), or need one that did."""
        self.notes: dict[str, list[str]] = {}
        """Lines for a job's log, said when it was looked up, before it started."""
        self.rekey: dict[str, Callable[[], BuiltAction]] = {}
        """For a job handed to `ask_remote` before its inputs were checked for writes
        since git was asked: its key made again (from their content), if they were."""
        self.checked: dict[str, tuple[float, float]] = {}
        """When a job that missed was checked (its key computed, the cache asked): the
        start and end of its checking phase, for its result's timeline."""

    def finished(self, result: JobResult) -> None:
        """Note a finished job's outputs digest (a hit's, a stored result's)."""
        if result.outputs_digest is not None:
            # Its values are part of what the jobs needing it are keyed on.
            self.outputs[result.name] = digest(result.outputs_digest, result.values)

    def look_up(self, pj: PlannedJob, queued_at: float | None) -> LookedUp:
        """On the scheduler's thread: the job's action and, on a hit whose outputs are in
        place already, its result (log replayed): no worker slot, no thread hop, which is
        what keeps a no-op run fast. A hit whose outputs must be restored is handed over
        (`LookedUp.entry`): restoring is work, done in a worker slot while the scheduler
        starts other jobs, not a wait that every ready job shares."""
        if self.jobcache is None:
            return LookedUp(None, None, ())
        began = time.time()
        job, name = pj.job, pj.name
        jc = self.jobcache
        outputs = self.outputs
        unknown = [d for d in pj.needs if d not in outputs] if pj.needs else []
        if unknown or pj.left_out:
            # Its key would leave out what those produced: never look it up (a stale hit)
            # nor store it under a key that does not cover its inputs. (So a job that runs
            # after a failure, `if: failure()`, is never served from the cache.)
            self.ran_before.add(name)
            if not job.cache:
                return LookedUp(None, None, ())
            why = (
                f"the outputs of {', '.join(repr(d) for d in unknown)} are unknown"
                if unknown
                else f"--only left out what it needs ({', '.join(pj.left_out)})"
            )
            # Said in its log once it starts (a line before JobStarted has no log yet).
            self.notes[name] = [f"conveyor: not cached: {why}"]
            return LookedUp(None, None, (f"not cached: {why}",))
        needs = {d: outputs[d] for d in pj.needs}
        argv = action_argv(job)
        try:
            # Once a job it needs (directly or not) has run, what git said of the workspace
            # at the start may be out of date for it: its key is made from the files as
            # they are now. (A job that needs none of those may read them as they were:
            # it could have run before them.)
            fresh = bool(self.ran_before) and any(d in self.ran_before for d in pj.needs)
            built = jc.prepare(job, argv, needs, fresh=fresh)
            found = jc.find(job, built, here=True)
            if found is ASK_REMOTE and not fresh:
                # Checked for inputs written since git was asked on the lookup thread
                # instead (`ask_remote`): 20 stats a job here, each a release of the GIL
                # that the lookup threads kept for a while, were most of this thread's
                # time in a fresh clone served from the remote cache.
                self.rekey[name] = functools.partial(jc.prepare, job, argv, needs)
            elif (found is None or found is ASK_REMOTE) and jc.stale_inputs(built):
                # Written since git was asked (by an editor, say): key them by content.
                built = jc.prepare(job, argv, needs)
                found = jc.find(job, built, here=True)
        except (OSError, CacheError) as exc:  # the cache is an optimisation: never a reason to fail
            self.bus.emit(JobOutput(name, f"conveyor: cache unavailable: {exc}", time.time()))
            return LookedUp(None, None, ())
        if found is None:
            reasons = self.missed(pj, built)
            self.checked[name] = (began, time.time())
            return LookedUp(None, None, ()) if reasons is None else LookedUp(None, built, reasons)
        if fresh:
            self.ran_before.add(name)
        if isinstance(found, AskRemote):
            self.checked[name] = (began, time.time())
            return LookedUp(None, built, (), remote=True)
        if isinstance(found, Hit):
            keyed = time.time()  # its outputs are in place: nothing to restore but its log
            served = self._serve(pj, found, built, queued_at, began, keyed, keyed)
            return LookedUp(served, built, ())
        self.checked[name] = (began, time.time())
        return LookedUp(None, built, (), entry=found)

    def missed(self, pj: PlannedJob, built: BuiltAction) -> tuple[str, ...] | None:
        """A job the cache does not serve, about to run: why (with --explain); None when
        the cache cannot be used for it (it then runs uncached)."""
        jc = self.jobcache
        assert jc is not None
        try:
            # Now, before the job can change its own inputs: what its result is
            # stored with (and `why` compares against) is what the key was made of,
            # and each input's stat, to tell whether one changed while it ran.
            built.manifest  # noqa: B018
            jc.note_inputs(built)
        except OSError as exc:
            self.bus.emit(JobOutput(pj.name, f"conveyor: cache unavailable: {exc}", time.time()))
            return None
        self.ran_before.add(pj.name)
        return tuple(jc.explain_miss(pj.job, built)) if self.explain else ()

    def ask_remote(
        self, pj: PlannedJob, built: BuiltAction, queued_at: float | None
    ) -> JobResult | LookedUp:
        """Off the scheduler's thread: the remote cache asked for the job's entry (written
        through to the local cache) and, on a hit, the job served (`restore`); else what
        the scheduler needs to run it (`missed`)."""
        jc = self.jobcache
        assert jc is not None
        asking = time.time()
        try:
            rekey = self.rekey.pop(pj.name, None)
            if rekey is not None and jc.stale_inputs(built):
                built = rekey()  # written since git was asked: keyed by their content
            entry, remote = jc.ask_remote(built)
        except (OSError, CacheError) as exc:
            self.bus.emit(JobOutput(pj.name, f"conveyor: cache unavailable: {exc}", time.time()))
            entry, remote = None, False
        if entry is not None:
            tier = "remote" if remote else "local"
            served = self.restore(pj, built, entry, queued_at, since=asking, tier=tier)
            if served is not None:
                return served
        reasons = self.missed(pj, built)
        return LookedUp(None, None if reasons is None else built, reasons or ())

    def restore(
        self,
        pj: PlannedJob,
        built: BuiltAction,
        entry: ActionResult,
        queued_at: float | None,
        *,
        since: float | None = None,
        tier: str = "local",
    ) -> JobResult | None:
        """In a worker slot: the cache entry `look_up` found, restored and served as the
        job's result; None when it cannot be (evicted meanwhile...): the job then runs.
        `since`: when restoring began (fetching the entry from the remote counts);
        `tier`: which cache had it ("local", "remote")."""
        jc = self.jobcache
        assert jc is not None
        restoring = time.time() if since is None else since
        try:
            hit = jc.restore(pj.job, built, entry)
        except (OSError, CacheError) as exc:
            self.bus.emit(JobOutput(pj.name, f"conveyor: cache unavailable: {exc}", time.time()))
            hit = None
        if hit is None:
            return None
        began, keyed = self.checked.pop(pj.name, (restoring, restoring))
        return self._serve(pj, hit, built, queued_at, began, keyed, restoring, tier)

    def _serve(
        self,
        pj: PlannedJob,
        hit: Hit,
        built: BuiltAction,
        queued_at: float | None,
        began: float,
        keyed: float,
        restoring: float,
        tier: str = "local",
    ) -> JobResult:
        """A hit as the job's result: its dependency caches restored, its log replayed.
        Checked from `began` to `keyed`, restoring from `restoring` to now."""
        job, name = pj.job, pj.name
        if job.caches:
            # Its dependency caches (a .venv, node_modules) are part of what the jobs
            # after it expect to find, whether it ran or not.
            deps_lines = self.restore_dependencies(job).lines
            hit = dataclasses.replace(hit, log=[*deps_lines, *hit.log])
        now = time.time()
        log_path = self.log_path(name) if hit.log else None
        if hit.log and log_path is not None:
            # A silent hit is one JobFinished event: thousands of them are common.
            self.bus.emit(JobStarted(name, 1, now, log_path, cached=True))
            for line in hit.log:
                self.bus.emit(JobOutput(name, line, now))
        done = time.time()
        return JobResult(
            name=name,
            status=JobStatus.SUCCESS,
            reason=f"from {hit.origin}",
            exit_code=hit.exit_code,
            attempts=0,
            queued_at=queued_at,
            started_at=began,
            finished_at=done,
            check_time=keyed - began,
            restore_time=done - restoring,
            log_path=log_path,
            cached=True,
            saved=hit.saved,
            action_digest=built.digest.hash,
            outputs_digest=hit.outputs_digest,
            outputs=output_files(job, hit.outputs),
            values=hit.values,
            cache_tier=tier,
        )

    def restore_dependencies(self, job: Job) -> Restoration:
        """Before a job runs: its dependency caches restored."""
        from conveyor.cache.deps import Restoration

        if self.jobcache is None or not job.caches:
            return Restoration([], set(), (False,) * len(job.caches))
        try:
            return self.jobcache.restore_dependencies(job)
        except (OSError, CacheError) as exc:
            lines = [f"conveyor: could not restore caches: {exc}"]
            return Restoration(lines, set(), (False,) * len(job.caches))

    def save_dependencies(
        self, job: Job, restored_keys: set[str], on_line: Callable[[str], None]
    ) -> None:
        """After a job succeeded: its dependency caches saved (those not restored exactly)."""
        if self.jobcache is None or not job.caches:
            return
        try:
            for line in self.jobcache.save_dependencies(job, restored_keys):
                on_line(line)
        except (OSError, CacheError) as exc:
            on_line(f"conveyor: could not save caches: {exc}")

    def keep(
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
        ended = result.finished_at or time.time()
        began = result.started_at
        if result.run_time is not None:  # its timeline is set: what a hit saves is its run
            began = ended - result.run_time
        try:
            stored = jc.store_result(
                job,
                built,
                lines,
                began,
                ended,
                exit_code=result.exit_code or 0,
                values=result.values,
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
            outputs=output_files(job, stored.outputs),
        )


def output_files(job: Job, files: tuple[tuple[str, str, int], ...]) -> tuple[OutputFile, ...]:
    """A job's output files, each marked with its artifact type when the job declares it
    among its `artifacts:`."""
    spec = job.artifacts
    if spec is None:
        return tuple(OutputFile(path, sha, size) for path, sha, size in files)
    return tuple(
        OutputFile(path, sha, size, spec.type if spec.covers(path) else None)
        for path, sha, size in files
    )
