"""Caching whole jobs: compute a job's action, look it up, restore or store its results.

Sits between the scheduler and the stores: the scheduler asks `prepare` for a job's
action once what it needs has finished, then `lookup`; on a hit it `restore`s the
outputs and replays the log, on a successful miss it `store`s them. A failed job is
never stored. Nothing here decides what runs: that stays in the scheduler.

It reaches its store only through `conveyor.cache.interface.Store`, so a local, remote or
tiered store serve alike. Its methods raise OSError for the workspace's files and
`CacheError` (StoreUnavailable) when the store cannot be read; a store that cannot be
written turns the cache off for the rest of the run (`write_error`) instead.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

from conveyor.cache.hitrecords import HitRecord, HitRecords
from conveyor.cache.interface import BlobMissing, CorruptBlob, Store, StoreUnavailable
from conveyor.cache.keys import (
    BuiltAction,
    Manifest,
    Probe,
    build_action,
    build_manifest,
    explain,
    fingerprint,
    fingerprint_key,
    key_environment,
    outputs_digest,
    tool_versions,
)
from conveyor.cache.memo import ActionMemo
from conveyor.cache.results import (
    MANIFEST_TYPE,
    Hit,
    Stored,
    describe_execution,
    origin_of,
    values_of,
)
from conveyor.model import Digest, Job, Pipeline
from conveyor.workspace.files import FileInfo, WorkspaceFiles, digest_bytes, digest_file

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2.remote_execution_pb2 import (
        ActionResult,
    )

    from conveyor.cache.deps import Restoration
    from conveyor.cache.jobindex import JobIndex
    from conveyor.cache.outputs import FileToRestore


class AskRemote:
    """`JobCache.find`'s answer when only a remote tier could have the entry."""


ASK_REMOTE = AskRemote()


class _Tiers(Protocol):
    """A store with a local tier and a remote one (`cache.tiered.TieredStore`)."""

    def local_action_result(self, action: Digest) -> ActionResult | None: ...

    @property
    def remote_enabled(self) -> bool: ...

    def peek_action_result(self, action: Digest) -> tuple[ActionResult, bool] | None: ...

    def remote_entry(self, action: Digest) -> ActionResult | None: ...

    def point_latest(self, key: Digest, action: Digest) -> None: ...

    @property
    def upload(self) -> bool: ...

    def fingerprint_result(self, key: Digest) -> tuple[Digest, ActionResult, bool] | None: ...

    def publish_fingerprint(self, action: Digest, key: Digest) -> None: ...


class Peeked(NamedTuple):
    """What `JobCache.peek` found: the result a lookup would serve, and where from."""

    result: ActionResult
    remote: bool
    """From the remote cache (not in the local one: a run would fetch it)."""


class _Earlier(NamedTuple):
    """An earlier entry of a job a miss is compared with (`JobCache.explain_miss`)."""

    action: str
    when: float
    """When it was stored (seconds since the epoch; 0: unknown)."""
    origin: str
    """Which run produced it ("run X", "run X on HOST")."""
    manifest: Manifest | None
    """The parts of its key; None when its result can no longer be read."""


# Logs longer than this are not kept in the hit records (read from the CAS instead).
_RECORD_LOG_BYTES = 64 * 1024
# A hit served from a record refreshes the entry's mtime (for `prune`) once this old.
_TOUCH_AFTER = 3600.0


class JobCache:
    """The job cache of one run (or of one `conveyor why`) over one store."""

    def __init__(
        self,
        store: Store,
        files: WorkspaceFiles,
        pipeline: Pipeline,
        environ: Mapping[str, str],
        *,
        run_id: str,
        read: bool = True,
        facts: Mapping[str, str] | None = None,
        probe: Probe,
        local_dir: str,
    ) -> None:
        """`local_dir`: a directory on this machine for the job cache's own bookkeeping,
        shared by the machine's workspaces (the job index `why` reads, the dependency
        caches' key index): the cache directory. Not the store's: a remote store has none."""
        self.store = store
        # A tiered store's local tier answers without the network (duck-typed: importing
        # the tiered module would cost every run without a remote).
        self._tiers = cast(_Tiers, store) if hasattr(store, "local_action_result") else None
        self.local_dir = local_dir
        caps = store.capabilities
        self._inline_max = caps.max_inline_bytes
        self._touches = caps.supports_touch
        self.probe = probe
        """Runs `tools:` commands (the run's executor's probe)."""
        self.facts = facts or {}
        """The run facts (CONVEYOR_TAG, ...) a job's key includes when its script reads them."""
        self.writable = True
        self.write_error: str | None = None
        """Why the cache could not be written, once it could not (the run goes on uncached)."""
        self._globbing = any(job.inputs for job in pipeline.jobs)
        """Whether any job chooses inputs with `inputs:`: only those can choose the files
        jobs produce (default inputs are tracked files)."""
        self.stored: dict[str, tuple[Digest, frozenset[str]]] = {}
        """The action of each job whose result this run stored, and its input files."""
        self.files = files
        self.pipeline = pipeline
        self.environ = environ
        self.run_id = run_id
        self.read = read
        self._lock = threading.Lock()
        self._host = os.uname().nodename  # socket.gethostname(), without importing socket
        self._index: JobIndex | None = None
        self.memo = ActionMemo(os.path.join(os.path.dirname(files.state_file), "actions.memo"))
        self.records = HitRecords(os.path.join(os.path.dirname(files.state_file), "hits"))

    # -- keys ------------------------------------------------------------------------------
    def prepare(
        self, job: Job, argv: Sequence[str], needs: Mapping[str, str], *, fresh: bool = False
    ) -> BuiltAction:
        """The job's action, from its inputs as they are now and its needs' outputs.

        `fresh`: jobs it needs have run since git was asked about the workspace, so what
        it said may be out of date: every input git called clean is checked for a write since
        (its mtime or ctime). Files jobs of this run produced are chosen too when they are
        declared outputs; an undeclared one an `inputs:` glob would have chosen is found
        after the run, and the result keyed without it taken back (conveyor.run.undeclared):
        listing untracked files again before every job cost a git process each."""
        with self._lock:
            paths = self.files.select(job.dir, job.inputs)
            if fresh:
                self.files.changed_since(paths, self.files.scan_started_ns())
            identities = self.files.identities(paths)
        tools = (
            tool_versions(job.tools, self._cwd(job), self.environ, self.probe) if job.tools else {}
        )
        env = key_environment(job, self.pipeline.env, self.environ, self.facts)

        def manifest_of(infos: Mapping[str, FileInfo]) -> Manifest:
            return build_manifest(job, argv=argv, env=env, files=infos, needs=needs, tools=tools)

        # Unchanged parts give the same action: skip the file digests, the manifest and
        # the protos (the Merkle tree of every input directory), most of a no-op's cost.
        fp = fingerprint(
            job, argv=argv, env=env, needs=needs, tools=tools, paths=paths, identities=identities
        )
        with self._lock:
            known = self.memo.get(fp)
        if known is not None:
            return BuiltAction(
                known, lambda: manifest_of(self._infos(paths)), paths=paths, fingerprint=fp
            )

        def build() -> BuiltAction:
            infos = self._infos(paths)
            built = build_action(manifest_of(infos), infos)
            with self._lock:
                self.memo.put(fp, built.digest)
            return built

        if self._by_fingerprint(job, paths):
            # Asked of the remote by fingerprint first (`ask_remote`), off this thread:
            # a fresh clone served from a team's cache then hashes none of its inputs
            # (20,000 files were most of the scheduler's time).
            return BuiltAction(
                build, lambda: manifest_of(self._infos(paths)), paths=paths, fingerprint=fp
            )
        built = build()
        built.paths, built.fingerprint = paths, fp
        return built

    def _by_fingerprint(self, job: Job, paths: Sequence[str]) -> bool:
        """Whether the job's result is asked of the remote by its fingerprint: a remote
        tier is on, and the inputs named by blob id hold their blobs' bytes (else another
        checkout's equal fingerprint would not mean an equal action)."""
        tiers = self._tiers
        if tiers is None or not tiers.remote_enabled or not self.read or not job.cache:
            return False
        with self._lock:
            return self.files.unconverted(paths)

    @property
    def index(self) -> JobIndex:
        """The job index, opened when first needed (a run served wholly from the cache
        never needs it)."""
        if self._index is None:
            from conveyor.cache.jobindex import JobIndex

            self._index = JobIndex(self.local_dir, self.pipeline.root)
        return self._index

    # -- inputs that change under a job ---------------------------------------------------
    def stale_inputs(self, built: BuiltAction) -> list[str]:
        """Inputs written since git was asked about them (so the key may have been made
        from what they held before); each is marked changed, so preparing the job again
        digests its content."""
        with self._lock:
            since = self.files.scan_started_ns()
        # The stats outside the lock: each releases the GIL, and another thread holding
        # the lock meanwhile kept every other one (the scheduler's too) waiting.
        built.sizes = {}
        stale = self.files.written_since(built.paths, since, built.sizes)
        if stale:
            with self._lock:
                self.files.changed_since(stale, since)
        return stale

    def note_inputs(self, built: BuiltAction) -> None:
        """Remember each input's stat just before the job runs."""
        built.inputs_state = {
            p: _stat_key(os.path.join(self.pipeline.root, p)) for p in built.paths
        }

    def inputs_changed(self, built: BuiltAction) -> list[str]:
        """Inputs that changed while the job ran (an editor saving, a job running beside
        it): its result may not be what its key says, so it is not stored (Bazel's
        --guard_against_concurrent_changes). A file whose stat moved is hashed: one
        written again with the same bytes (a formatter with nothing to change) did not
        change."""
        before = built.inputs_state
        if before is None:
            return []
        root = self.pipeline.root
        moved = [p for p, st in before.items() if _stat_key(os.path.join(root, p)) != st]
        if not moved:
            return []
        keyed = dict(built.manifest.inputs)
        changed = []
        for rel in moved:
            try:
                now = digest_file(os.path.join(root, rel))
                executable = bool(os.stat(os.path.join(root, rel)).st_mode & 0o100)
            except OSError:
                changed.append(rel)
                continue
            if keyed.get(rel) != f"{now}{'x' if executable else ''}":
                changed.append(rel)
        return changed

    def input_infos(self, paths: Sequence[str]) -> dict[str, FileInfo]:
        """The digest and executable bit of each of `paths` that exists (from the
        workspace's stat cache: a file hashed for the key is not hashed again)."""
        return self._infos(paths)

    def _infos(self, paths: Sequence[str]) -> dict[str, FileInfo]:
        infos: dict[str, FileInfo] = {}
        with self._lock:
            for path in paths:
                try:
                    infos[path] = self.files.info(path)
                except FileNotFoundError:
                    continue
        return infos

    def _cwd(self, job: Job) -> str:
        return os.path.normpath(os.path.join(self.pipeline.root, job.dir))

    # -- hits --------------------------------------------------------------------------------
    def peek(self, job: Job, built: BuiltAction) -> Peeked | None:
        """The stored result `lookup` would serve, read without restoring or recording
        anything in the workspace or writing to any cache (`conveyor why`, `conveyor run
        -n`): a remote tier's result is looked at where it is, not written through. None
        on a miss, or when the cache is not read for the job or the run."""
        if not self.read or not job.cache:
            return None
        if self._tiers is not None:
            found = self._tiers.peek_action_result(built.digest)
            return None if found is None else Peeked(*found)
        result = self.store.get_action_result(built.digest)
        return None if result is None else Peeked(result, False)

    def lookup(self, job: Job, built: BuiltAction) -> Hit | None:
        """A complete, verified earlier result whose outputs are now in place, or None."""
        found = self.find(job, built)
        if found is None or isinstance(found, Hit | AskRemote):
            return None if isinstance(found, AskRemote) else found
        return self.restore(job, built, found)

    def find(
        self, job: Job, built: BuiltAction, *, here: bool = False
    ) -> Hit | ActionResult | AskRemote | None:
        """Without writing a file: a hit whose outputs are all in place already (what
        this workspace recorded, still true), else the cache's entry for the action, whose
        outputs `restore` puts in place (work, which a worker slot can do), else None.
        With `here`, no network call: ASK_REMOTE when only a remote tier could have it
        (`ask_remote` then asks, off the caller's thread)."""
        if not self.read or not job.cache:
            return None
        tiers = self._tiers
        if here and built.pending and tiers is not None and tiers.remote_enabled:
            return ASK_REMOTE  # by fingerprint, then by the action (its inputs hashed)
        hit = self._recorded_hit(job, built)
        if hit is not None:
            return hit
        if not here or tiers is None:
            return self.store.get_action_result(built.digest)
        found = tiers.local_action_result(built.digest)
        if found is None and tiers.remote_enabled:
            return ASK_REMOTE
        return found

    def ask_remote(self, built: BuiltAction) -> tuple[ActionResult | None, bool]:
        """The entry for the action from every tier, the remote's written through to the
        local one (a network call: `find(here=True)` said ASK_REMOTE), and whether it
        came from the remote (False: the local tier had it after all, a fresh checkout's
        key once computed, say). An action still `pending` is asked by its fingerprint
        first: a hit names the action's digest, and no input is hashed; on a miss the
        inputs are hashed now, on the caller's thread."""
        tiers = self._tiers
        if built.pending and built.fingerprint is not None and tiers is not None:
            found = tiers.fingerprint_result(fingerprint_key(built.fingerprint))
            if found is not None and self._sizes_agree(found[1], built.sizes):
                action, result, remote = found
                built.settle(action)
                with self._lock:
                    self.memo.put(built.fingerprint, action)
                return result, remote
        if tiers is not None and (local := tiers.local_action_result(built.digest)) is not None:
            return local, False
        return self.store.get_action_result(built.digest), tiers is not None

    def _sizes_agree(self, result: ActionResult, known: Mapping[str, int] | None) -> bool:
        """Whether every input the result's manifest names has here the size it had
        where the result was made. A stat each, beside `unconverted` (which makes blob
        ids name the same bytes in both checkouts): a checkout that converts files
        anyway (Git LFS, line endings) shows in their sizes. `known`: sizes stated
        already (`stale_inputs`), not stated again."""
        manifest = None
        try:
            for extra in result.execution_metadata.auxiliary_metadata:
                if extra.type_url == MANIFEST_TYPE:
                    manifest = Manifest.from_json(extra.value)
        except (KeyError, ValueError, TypeError):
            return False
        if manifest is None:
            return False
        root = self.pipeline.root
        known = known or {}
        for path, named in manifest.inputs:
            try:
                size = known.get(path)
                if size is None:
                    size = os.stat(f"{root}/{path}").st_size
                if size != int(named.split("/", 1)[1].rstrip("x")):
                    return False
            except (OSError, ValueError, IndexError):
                return False
        return True

    def restore(self, job: Job, built: BuiltAction, result: ActionResult) -> Hit | None:
        """The entry `find` gave, as a hit: its outputs restored and verified, its log
        read; None when that cannot be done (evicted meanwhile, a path outside the
        workspace), and the job must run."""
        from conveyor.cache.outputs import inside, restore_files, restore_link

        outputs = []
        todo: list[FileToRestore] = []
        for out in result.output_files:
            placed = self._place_file(job, out)
            if placed is None:
                return None
            outputs.append(placed[0])
            if placed[1] is not None:
                todo.append(placed[1])
        log = _digest(result.stdout_digest) if result.HasField("stdout_digest") else None
        # An inline log is covered by the entry's own check; a log blob is read with the
        # outputs, in the same batch.
        inline_log = log is not None and len(result.stdout_raw) == log.size_bytes
        try:
            fetched = restore_files(
                self.store, todo, blobs=[log] if log is not None and not inline_log else []
            )
            links = []
            for link in result.output_symlinks:
                rel = os.path.normpath(os.path.join(job.dir, link.path))
                dest = os.path.join(self.pipeline.root, rel)
                if not inside(self.pipeline.root, dest):
                    return None
                restore_link(dest, link.target)
                links.append((rel, link.target))
        except (CorruptBlob, BlobMissing):
            return None  # evicted or pruned meanwhile: run the job again
        log_bytes = fetched.get(log, result.stdout_raw) if log is not None else b""
        meta = result.execution_metadata
        saved = max(
            0.0,
            meta.execution_completed_timestamp.ToNanoseconds() / 1e9
            - meta.execution_start_timestamp.ToNanoseconds() / 1e9,
        )
        text = log_bytes.decode("utf-8", "replace")
        files = tuple((rel, d.hash, d.size_bytes) for rel, d, _x in outputs)
        hit = Hit(
            text.splitlines(),
            outputs_digest(result),
            saved,
            origin_of(result, self._host),
            files,
            result.exit_code,
            values_of(result),
        )
        log_digest = (
            (result.stdout_digest.hash, result.stdout_digest.size_bytes)
            if result.HasField("stdout_digest")
            else None
        )
        self._record(job, built, outputs, links, hit, log_digest, len(log_bytes))
        if self._globbing:  # what it restored is what the jobs after it choose inputs from
            with self._lock:
                self.files.add_produced([rel for rel, _d, _x in outputs])
        return hit

    def _recorded_hit(self, job: Job, built: BuiltAction) -> Hit | None:
        """The hit this workspace recorded for the job, if the entry it came from is still
        in the cache and every output is still in place, byte for byte (by the stat cache,
        with its racy rule): then it is exactly what the full lookup would give."""
        record = self.records.get(job.name)
        if record is None or record.action != built.digest.hash:
            return None
        state = self.store.entry_state(built.digest)
        if state is None or state.identity != record.entry:
            return None
        with self._lock:
            for rel, sha, size, executable in record.outputs:
                try:
                    digest, is_exec = self.files.file_state(rel)
                except OSError:
                    return None
                if digest != Digest(sha, size) or is_exec != executable:
                    return None
        root = self.pipeline.root
        for rel, target in record.links:
            try:
                if os.readlink(os.path.join(root, rel)) != target:
                    return None
            except OSError:
                return None
        log = record.log
        blobs = [Digest(sha, size) for _rel, sha, size, _x in record.outputs]
        if record.log_digest is not None:
            blobs.append(Digest(*record.log_digest))
            if log is None:
                try:
                    log = tuple(
                        self.store.get_bytes(Digest(*record.log_digest))
                        .decode("utf-8", "replace")
                        .splitlines()
                    )
                except (CorruptBlob, BlobMissing):
                    return None
        if self._touches and time.time() - state.used_at > _TOUCH_AFTER:
            self.store.touch(built.digest, blobs)
        self.records.put(job.name, record)
        if self._globbing:
            with self._lock:
                self.files.add_produced([rel for rel, _s, _n, _x in record.outputs])
        files = tuple((rel, sha, size) for rel, sha, size, _x in record.outputs)
        return Hit(
            list(log or ()),
            record.outputs_digest,
            record.saved,
            record.origin,
            files,
            record.exit_code,
            record.values,
        )

    def _record(
        self,
        job: Job,
        built: BuiltAction,
        outputs: Sequence[tuple[str, Digest, bool]],
        links: Sequence[tuple[str, str]],
        hit: Hit,
        log_digest: tuple[str, int] | None,
        log_size: int,
    ) -> None:
        state = self.store.entry_state(built.digest)
        if state is None:
            return
        record = HitRecord(
            action=built.digest.hash,
            entry=state.identity,
            outputs=tuple((rel, d.hash, d.size_bytes, x) for rel, d, x in outputs),
            log=tuple(hit.log) if log_size <= _RECORD_LOG_BYTES else None,
            log_digest=log_digest,
            saved=hit.saved,
            origin=hit.origin,
            outputs_digest=hit.outputs_digest,
            links=tuple(links),
            exit_code=hit.exit_code,
            values=hit.values,
        )
        self.records.put(job.name, record)

    def _place_file(
        self, job: Job, out: Any
    ) -> tuple[tuple[str, Digest, bool], FileToRestore | None] | None:
        """One output: (workspace path, digest, exec), and what to restore unless it is
        in place already; None if it would land outside the workspace."""
        rel = os.path.normpath(os.path.join(job.dir, out.path))
        dest = os.path.join(self.pipeline.root, rel)
        want = _digest(out.digest)
        executable = bool(out.is_executable)
        from conveyor.cache.outputs import FileToRestore, inside

        if not inside(self.pipeline.root, dest):
            # A directory on the way was replaced by a link to elsewhere: never follow it.
            return None
        mode = out.node_properties.unix_mode.value if out.HasField("node_properties") else None
        if os.path.islink(dest):
            os.unlink(dest)  # the output is a file now: never write through a link
        elif os.path.isfile(dest):
            with self._lock:
                try:
                    have: tuple[Digest, bool] | None = self.files.file_state(rel)
                except OSError:
                    have = None
            if have == (want, executable):
                if mode is not None and os.stat(dest).st_mode & 0o7777 != mode:
                    os.chmod(dest, mode)
                return (rel, want, executable), None
        inline = out.contents if len(out.contents) == want.size_bytes else None
        return (rel, want, executable), FileToRestore(want, dest, executable, mode, inline)

    # -- misses ------------------------------------------------------------------------------
    def explain_miss(self, job: Job, built: BuiltAction) -> list[str]:
        """Why this job's key differs from its last stored one (empty: never stored here)."""
        if not job.cache:
            if job.secrets:
                return ["caching is off for this job: it has secrets (say cache: true to cache it)"]
            if job.late:
                return [
                    "caching is off for this job: it runs on how the run goes (when:, "
                    "a status function in if:); say cache: true to cache it"
                ]
            return ["caching is off for this job (cache: false)"]
        if not self.read:
            return ["--no-cache: no result is read from the cache"]
        local = self._last_local(job)
        remote = self._last_remote(job)
        if remote is not None and (local is None or local.action != remote.action):
            line = self._against_remote(remote, built)
            if local is None:
                return [line]
            mine = self._against_local(local, built)
            if local.manifest is None or local.action == built.digest.hash:
                return [line, *mine]
            # Both compared: a line each, the newer first (the one more likely to be
            # what the developer expected to be served).
            said = f"this machine's last result ({local.origin}) differs: {'; '.join(mine)}"
            return [line, said] if remote.when >= local.when else [said, line]
        if local is None:
            return ["no earlier result of this job in the cache"]
        return self._against_local(local, built)

    def _against_local(self, local: _Earlier, built: BuiltAction) -> list[str]:
        """Why the key differs from this machine's last stored one."""
        if local.action == built.digest.hash:
            return ["its earlier result was removed from the cache (pruned, cleared or corrupt)"]
        if local.manifest is None:
            return ["its earlier result is no longer in the cache (pruned, cleared or corrupt)"]
        return explain(local.manifest, built.manifest) or [
            "the cache key changed (Conveyor was upgraded)"
        ]

    def _against_remote(self, remote: _Earlier, built: BuiltAction) -> str:
        """Why the key differs from the remote cache's latest entry of the job, in a line."""
        said = f"the remote cache's latest result ({remote.origin})"
        if remote.action == built.digest.hash:
            return f"{said} has this very key, but cannot be served (its outputs were evicted)"
        if remote.manifest is None:
            return f"{said} can no longer be read"
        changes = explain(remote.manifest, built.manifest)
        return f"{said} differs: " + (
            "; ".join(changes) if changes else "the cache key changed (Conveyor was upgraded)"
        )

    def _last_local(self, job: Job) -> _Earlier | None:
        """This machine's last stored entry of the job (the job index), read without
        writing anything (a remote tier is asked for its manifest when the local one
        lost it, not written through)."""
        last = self.index.get(job.name)
        if last is None:
            return None
        manifest = None
        try:
            action = Digest(last["action"], last["action_size"])
            tiers = self._tiers
            if tiers is None:
                result = self.store.get_action_result(action)
            else:
                result = tiers.local_action_result(action) or tiers.remote_entry(action)
            manifest = _manifest_of(result) if result is not None else None
        except (KeyError, ValueError, TypeError):
            manifest = None
        run = last.get("run_id")
        return _Earlier(
            str(last.get("action")),
            float(last.get("time") or 0.0),
            f"run {run}" if run else "an earlier run",
            manifest,
        )

    def _last_remote(self, job: Job) -> _Earlier | None:
        """The remote cache's latest entry of the job (its "latest" pointer, which the
        machines that upload keep: conveyor.cache.tiered.latest_key); None without a
        remote tier, or when the remote has none or is off."""
        tiers = self._tiers
        if tiers is None or not tiers.remote_enabled:
            return None
        from conveyor.cache.tiered import latest_key, pointed_action

        pointer = tiers.remote_entry(latest_key(self.pipeline.label, job.name))
        action = pointed_action(pointer) if pointer is not None else None
        if pointer is None or action is None:
            return None
        meta = pointer.execution_metadata
        try:
            manifest = _manifest_of(pointer)
        except (KeyError, ValueError, TypeError):
            manifest = None
        return _Earlier(
            action.hash,
            meta.execution_completed_timestamp.ToNanoseconds() / 1e9,
            origin_of(pointer, self._host),
            manifest,
        )

    def store_result(
        self,
        job: Job,
        built: BuiltAction,
        log_lines: Sequence[str],
        started: float,
        finished: float,
        exit_code: int = 0,
        values: tuple[tuple[str, str], ...] = (),
    ) -> Stored:
        """Store outputs, log, values and result; return the outputs' digest for dependents.

        A result is not stored (but its outputs' digest still returned) when the job is
        not cached, when an input changed while it ran, when an output is a symlink
        pointing outside the workspace, and once the cache could not be written (a full
        disk, no permission): from then on the run goes on uncached, `write_error` saying
        why. (Storing from a background thread was tried: on two cores it made cold runs
        slower, the store competing with the jobs for the CPU.)"""
        from conveyor.cache.outputs import collect

        found = collect(self.pipeline.root, self._cwd(job), job.outputs)
        not_stored = None
        if found.refused:
            not_stored = "an output is a symlink pointing outside the workspace: " + ", ".join(
                found.refused
            )
        elif changed := self.inputs_changed(built):
            not_stored = (
                "inputs changed while it ran: "
                + ", ".join(changed[:5])
                + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            )
        store = job.cache and self.writable and not_stored is None
        if store:
            try:
                return self._store(
                    job, built, found, log_lines, started, finished, exit_code, values=values
                )
            except StoreUnavailable as exc:
                # Nothing half-written is ever visible (every entry is renamed into
                # place); what is lost is only the caching of the rest of this run.
                self.writable = False
                self.write_error = f"{exc.reason} ({exc.where})"
            except OSError as exc:  # reading an output (it went away meanwhile)
                self.writable = False
                self.write_error = f"{exc.strerror or exc} ({exc.filename or self.local_dir})"
        result = self._store(
            job, built, found, log_lines, started, finished, exit_code, store=False
        )
        return dataclasses.replace(result, not_stored=not_stored) if not_stored else result

    def _store(
        self,
        job: Job,
        built: BuiltAction,
        found: Any,
        log_lines: Sequence[str],
        started: float,
        finished: float,
        exit_code: int,
        *,
        store: bool = True,
        values: tuple[tuple[str, str], ...] = (),
    ) -> Stored:
        from conveyor.cache.keys import _pb

        pb = _pb()
        result = pb.ActionResult(exit_code=exit_code)
        stored = []
        for rel_to_dir, full in found.files:
            digest, executable, inline, mode = self._store_output(full, store=store)
            node = result.output_files.add(
                path=rel_to_dir,
                digest=pb.Digest(hash=digest.hash, size_bytes=digest.size_bytes),
                is_executable=executable,
            )
            node.node_properties.unix_mode.value = mode
            if inline is not None:
                node.contents = inline
            stored.append((rel_to_dir, digest, executable))
        for rel_to_dir, target in found.links:
            result.output_symlinks.add(path=rel_to_dir, target=target)
        in_workspace = [(os.path.normpath(os.path.join(job.dir, p)), d, x) for p, d, x in stored]
        links = [(os.path.normpath(os.path.join(job.dir, p)), t) for p, t in found.links]
        produced = tuple((rel, d.hash, d.size_bytes) for rel, d, _x in in_workspace)
        digest_of_outputs = outputs_digest(None, stored, found.links)
        if self._globbing:
            with self._lock:
                self.files.add_produced([rel for rel, _d, _x in in_workspace])
        if store:
            log_bytes = ("\n".join(log_lines) + "\n").encode() if log_lines else b""
            if len(log_bytes) <= self._inline_max:
                log = digest_bytes(log_bytes)
                result.stdout_raw = log_bytes
            else:
                log = self.store.put_bytes(log_bytes)
            result.stdout_digest.CopyFrom(pb.Digest(hash=log.hash, size_bytes=log.size_bytes))
            describe_execution(
                result,
                worker=f"conveyor@{self._host} run {self.run_id}",
                started=started,
                finished=finished,
                manifest=built.manifest.to_json(),
                values=values,
            )
            self.store.put_action_result(built.digest, result)
            if self._tiers is not None:
                from conveyor.cache.tiered import latest_key

                # The remote's "latest" of this job, for the `why` of other machines.
                key = latest_key(self.pipeline.label, job.name)
                self._tiers.point_latest(key, built.digest)
            self._publish(built)
            self.index.put(job.name, built.digest, self.run_id, finished - started)
            hit = Hit(
                list(log_lines),
                digest_of_outputs,
                finished - started,
                f"run {self.run_id}",
                exit_code=exit_code,
                values=values,
            )
            self._record(
                job, built, in_workspace, links, hit, (log.hash, log.size_bytes), log.size_bytes
            )
            with self._lock:
                self.stored[job.name] = (built.digest, frozenset(built.paths))
        return Stored(digest_of_outputs, found.missing, produced)

    def _publish(self, built: BuiltAction) -> None:
        """With uploads to a remote on: the result just stored is also published under
        the job's fingerprint, when the inputs named by blob id hold their blobs' bytes
        (`unconverted`), for another checkout to find before hashing a file."""
        tiers = self._tiers
        if tiers is None or not tiers.upload or built.fingerprint is None:
            return
        with self._lock:
            plain = self.files.unconverted(built.paths)
        if plain:
            tiers.publish_fingerprint(built.digest, fingerprint_key(built.fingerprint))

    def _store_output(self, full: str, *, store: bool) -> tuple[Digest, bool, bytes | None, int]:
        """(digest, executable, contents if small, mode): an output up to the store's
        `max_inline_bytes` travels inside the action result (REAPI's OutputFile.contents),
        a larger one goes to the CAS. Not stored when `store` is false: only the digest is
        wanted (for dependents' keys)."""
        st = os.stat(full)
        executable = bool(st.st_mode & 0o100)
        mode = st.st_mode & 0o7777
        limit = self._inline_max
        if st.st_size <= limit or not store:
            with open(full, "rb") as fh:
                data = fh.read(limit + 1)
                if len(data) <= limit:
                    return digest_bytes(data), executable, data if store else None, mode
            if not store:
                return digest_file(full), executable, None, mode
        return self.store.put_file(full), executable, None, mode

    def retract(self, job: Job) -> None:
        """Take back the result this run stored for `job` (it wrote files it does not
        declare: a hit would not give them back)."""
        entry = self.stored.pop(job.name, None)
        if entry is None:
            return
        digest = entry[0]
        self.store.remove_action(digest)
        self.records.drop(job.name)
        self.index.forget(job.name, digest)

    # -- dependency caches (`caches:`) ------------------------------------------------------
    def restore_dependencies(self, job: Job) -> Restoration:
        """Restore each of the job's `caches:`."""
        from conveyor.cache.deps import DependencyCaches

        deps = DependencyCaches(
            self.store, self.files, self.pipeline.root, self.local_dir, self._lock
        )
        return deps.restore_all(job, read=self.read)

    def save_dependencies(self, job: Job, exact: set[str]) -> list[str]:
        """Save each of the job's `caches:` not restored exactly; lines to show."""
        from conveyor.cache.deps import DependencyCaches

        deps = DependencyCaches(
            self.store, self.files, self.pipeline.root, self.local_dir, self._lock
        )
        return deps.save_all(job, exact)

    def save(self) -> None:
        """Write the file-state, the action memo, the job index and the hit records; let
        the store finish what it deferred."""
        # Even once writing failed: what was stored before (and queued for a remote
        # cache) is still finished.
        try:
            self.store.flush()
        except StoreUnavailable as exc:
            self.writable = False
            self.write_error = self.write_error or f"{exc.reason} ({exc.where})"
        with self._lock:
            self.files.save()
            self.memo.save()
        if self._index is not None:
            self._index.flush()
        self.records.save({job.name for job in self.pipeline.jobs})


def _manifest_of(result: ActionResult) -> Manifest | None:
    """The manifest a result's auxiliary metadata carries (ValueError, KeyError or
    TypeError if it cannot be read)."""
    for extra in result.execution_metadata.auxiliary_metadata:
        if extra.type_url == MANIFEST_TYPE:
            return Manifest.from_json(extra.value)
    return None


def _stat_key(path: str) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def _digest(message: Any) -> Digest:
    return Digest(message.hash, message.size_bytes)
