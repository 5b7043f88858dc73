"""A planned job as a REAPI Action: what it runs, on what inputs, and its digest.

The action digest is the cache key. It covers (DESIGN.md, "The cache key"): a schema
version; the command and shell; the working directory; declared env values and the
values of `pass_env` variables (secrets by name only); the digests of the inputs (an
input-root Merkle tree of REAPI Directory messages); the output digests of the jobs
it needs; declared tool versions; the platform; the matrix values; the declared
outputs. Everything but the input files goes into the Command (or the Action's salt,
for what REAPI has no field for), so the stored form is REAPI's own.

Alongside, a Manifest keeps the same parts in plain JSON so `conveyor why` can say
exactly which part changed between two runs of a job.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.graph.context import RUN_FACTS
from conveyor.model import Digest, Job
from conveyor.workspace.files import FileInfo

if TYPE_CHECKING:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

SCHEMA = 2
"""2: the job's name is part of the Action (two jobs with one command never share a
result), and the run facts a script reads (CONVEYOR_TAG, ...) are part of its env."""
SECRET_VALUE = "<secret>"


def _pb() -> Any:
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2

    return remote_execution_pb2


def proto_digest(message: Any) -> tuple[Digest, bytes]:
    data: bytes = message.SerializeToString(deterministic=True)
    return Digest(hashlib.sha256(data).hexdigest(), len(data)), data


@functools.cache
def platform_facts() -> dict[str, str]:
    return {"OSFamily": platform.system().lower(), "ISA": platform.machine().lower()}


class Probed(Protocol):
    """What a probe says of the command it ran (`executor.interface.ProbeResult`)."""

    @property
    def returncode(self) -> int | None:
        """Its exit status (-N: killed by signal N); None if it did not start or finish."""
        ...

    @property
    def stdout(self) -> bytes: ...

    @property
    def stderr(self) -> bytes: ...

    @property
    def timed_out(self) -> bool: ...

    @property
    def error(self) -> OSError | None:
        """Why it could not be started."""
        ...


class Probe(Protocol):
    """Runs a short command and captures its output: how `tools:` versions are asked.
    The run's executor provides it (`Executor.probe`, given by run.compose): the cache
    never starts a process itself, and does not depend on the executor."""

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float, cwd: str | None
    ) -> Probed: ...


TOOL_TIMEOUT = 60
"""Seconds a `tools:` command gets to print its version."""


def tool_versions(
    tools: Sequence[tuple[str, str]], cwd: str, env: Mapping[str, str], probe: Probe
) -> dict[str, str]:
    """Run each `tools:` command; keep the first line it printed and a digest of all of it."""
    out: dict[str, str] = {}
    for name, command in tools:
        argv = ["sh", "-c", command]
        done = probe(argv, env=env, timeout=TOOL_TIMEOUT, cwd=cwd)
        if done.error is not None:
            text = f"error: {done.error}".encode()
        elif done.timed_out:
            # subprocess's own words, which keys have always hashed: keys made before
            # stay valid.
            text = f"error: Command '{argv}' timed out after {TOOL_TIMEOUT} seconds".encode()
        else:
            text = done.stdout + done.stderr + f"\nexit {done.returncode}".encode()
        first = text.decode("utf-8", "replace").strip().splitlines()[0][:80]
        out[name] = f"{first} ({hashlib.sha256(text).hexdigest()[:12]})"
    return out


@dataclass(frozen=True)
class Manifest:
    """The parts of an action digest, readable and comparable."""

    job: str
    command: tuple[str, ...]
    dir: str
    env: tuple[tuple[str, str], ...]
    inputs: tuple[tuple[str, str], ...]
    """(path, 'sha256/size[x]') of every input file."""
    needs: tuple[tuple[str, str], ...]
    """(job, its output digest)."""
    tools: tuple[tuple[str, str], ...]
    platform: tuple[tuple[str, str], ...]
    matrix: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]

    def to_json(self) -> bytes:
        data = dict(self.__dict__.items())
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        return cls(
            job=data["job"],
            command=tuple(data["command"]),
            dir=data["dir"],
            outputs=tuple(data["outputs"]),
            **{
                k: tuple(tuple(p) for p in data[k])
                for k in ("env", "inputs", "needs", "tools", "platform", "matrix")
            },
        )


class BuiltAction:
    """A job's action digest, its manifest, and (when built here rather than taken from
    the memo) the Action and the Command/Directory blobs. The manifest may be given as a
    function: a memoized cache hit never needs it, and building it per job was a good
    part of a no-op run.

    The digest too may be given as a function (`pending` until first read): a fresh
    clone asks the remote cache by the job's fingerprint first (`fingerprint_key`), and
    only a miss there needs its inputs hashed. `settle` gives the digest that entry
    named instead."""

    def __init__(
        self,
        digest: Digest | Callable[[], BuiltAction],
        manifest: Manifest | Callable[[], Manifest],
        action: Any = None,
        blobs: dict[Digest, bytes] | None = None,
        paths: Sequence[str] = (),
        fingerprint: str | None = None,
    ) -> None:
        self._digest = digest if isinstance(digest, Digest) else None
        self._build = None if isinstance(digest, Digest) else digest
        self.paths = paths
        """The workspace-relative input files the digest covers."""
        self.fingerprint = fingerprint
        """What the job's key was made of, as `fingerprint` gives it (None: not made)."""
        self.sizes: dict[str, int] | None = None
        """Input sizes stated when the inputs were checked for writes (`stale_inputs`)."""
        self.inputs_state: dict[str, tuple[int, ...] | None] | None = None
        """Each input's stat just before the job ran (see JobCache.inputs_changed)."""
        self._manifest = manifest
        self.action = action
        """remote_execution_pb2.Action; None when the digest came from a memo (or is
        pending: it is set when the digest is first read)."""
        self.blobs = blobs
        """Command and Directory messages, by digest (for a CAS that executes remotely)."""

    @property
    def pending(self) -> bool:
        """Whether the digest is still to be computed (reading it computes it)."""
        return self._digest is None

    @property
    def digest(self) -> Digest:
        if self._digest is None:
            assert self._build is not None
            built = self._build()
            self._digest, self._build = built.digest, None
            self.action, self.blobs = built.action, built.blobs
            self._manifest = built._manifest
        return self._digest

    def settle(self, digest: Digest) -> None:
        """Take `digest` as the action's (what an entry found by fingerprint named): the
        inputs are not hashed."""
        self._digest, self._build = digest, None

    @property
    def manifest(self) -> Manifest:
        if not isinstance(self._manifest, Manifest):
            self._manifest = self._manifest()
        return self._manifest


FINGERPRINT_TAG = "conveyor.fingerprint/1"
"""What a fingerprint is hashed with into an action cache key (`fingerprint_key`); a
new tag, should what such an entry holds change, leaves the old entries unread."""


def fingerprint_key(fingerprint: str) -> Digest:
    """The action cache key a result is also published under by its fingerprint, so
    that another checkout can ask for it before hashing a file: the digest of a tagged
    string that is no Action (no Action hashes to it), of a fixed size."""
    data = f"{FINGERPRINT_TAG}:{fingerprint}".encode()
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


@functools.cache
def _version() -> str:
    from conveyor import __version__

    return __version__


def fingerprint(
    job: Job,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    needs: Mapping[str, str],
    tools: Mapping[str, str],
    paths: Sequence[str],
    identities: Sequence[str],
) -> str:
    """A cheap stand-in for the action digest, made of exactly the manifest's parts with
    each input named by `WorkspaceFiles.identities` (a git blob id names the same bytes
    as their SHA-256), so equal fingerprints always mean equal actions (for one Conveyor
    version). It needs no file digest, no Manifest and no protobuf."""
    head = json.dumps(
        [
            SCHEMA,
            _version(),
            job.name,
            list(argv),
            job.dir,
            sorted(env.items()),
            sorted(needs.items()),
            sorted(tools.items()),
            sorted(platform_facts().items()),
            [list(pair) for pair in job.matrix],
            sorted(job.outputs),
        ],
        separators=(",", ":"),
    )
    h = hashlib.sha256(head.encode())
    h.update(b"\n")
    # Neither a path nor an identity can hold a NUL: the pairs cannot run together.
    if len(paths) != len(identities):
        raise ValueError("one identity per path")
    pairs: list[str] = [""] * (2 * len(paths))
    pairs[::2], pairs[1::2] = paths, identities
    h.update("\0".join(pairs).encode())
    return h.hexdigest()


# The facts about the run that Conveyor puts in every job's environment (see
# scheduler.job_environment), and how each is covered by the key:
#   CONVEYOR=true               a constant
#   CONVEYOR_JOB                the job's name is part of every key
#   CONVEYOR_MATRIX_*           the matrix values are part of every key
#   CONVEYOR_EVENT, _BRANCH,    in the key of a job whose script or env names them: a
#   CONVEYOR_TAG, _COMMIT       release job that writes $CONVEYOR_TAG must not be served
#                               the result of another tag; a test job that does not read
#                               them must still hit on the next commit
#   CONVEYOR_RUN_ID             never: it differs in every run, so a job keyed on it
#                               could never hit (use `cache: false` for such a job)
#   CONVEYOR_OUTPUT             never: a file in the run directory, new in every run (what
#                               the job writes there is stored with its result, and is
#                               part of the keys of the jobs that need it)
#   CONVEYOR_WORKSPACE          never: the absolute checkout path would stop two clones
#                               (CI runners, worktrees) from sharing results; a job whose
#                               outputs embed it should use relative paths or cache: false


def action_argv(job: Job) -> tuple[str, ...]:
    """The command line the key covers: the shell and script, and the `finally:`
    commands when the job has some (they are part of what it does)."""
    if job.finally_run:
        return (*job.shell, job.script, "finally:", "\n".join(job.finally_run))
    return (*job.shell, job.script)


def key_environment(
    job: Job,
    pipeline_env: Sequence[tuple[str, str]],
    environ: Mapping[str, str],
    facts: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment that is part of the key: declared env, pass_env values, secrets
    by name only, and the run facts (`RUN_FACTS`, from `facts`) the job's script or env
    names. The run id and the workspace path never are (see above)."""
    env = {**dict(pipeline_env), **dict(job.env)}
    for name in job.pass_env:
        if name in environ:
            env[name] = environ[name]
    for name in job.secrets:
        env[name] = SECRET_VALUE
    if facts:
        text = job.script
        if job.finally_run:
            text += "\n" + "\n".join(job.finally_run)
        if any("CONVEYOR_" in v for _k, v in job.env):
            text += "\n" + "\n".join(v for _k, v in job.env)
        if "CONVEYOR_" in text:
            for name in RUN_FACTS:
                if name in text and name not in env:
                    env[name] = facts.get(name, "")
    return env


def input_root(files: Mapping[str, FileInfo]) -> tuple[Digest, dict[Digest, bytes]]:
    """The REAPI Merkle tree (Directory messages) of workspace-relative files."""
    pb = _pb()
    tree: dict[str, Any] = {}
    for path, info in files.items():
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = info
    blobs: dict[Digest, bytes] = {}

    def build(node: dict[str, Any]) -> Digest:
        directory = pb.Directory()
        for name in sorted(node):
            value = node[name]
            if isinstance(value, FileInfo):
                directory.files.add(
                    name=name,
                    digest=pb.Digest(hash=value.digest.hash, size_bytes=value.digest.size_bytes),
                    is_executable=value.executable,
                )
        for name in sorted(node):
            value = node[name]
            if isinstance(value, dict):
                sub = build(value)
                directory.directories.add(
                    name=name, digest=pb.Digest(hash=sub.hash, size_bytes=sub.size_bytes)
                )
        digest, data = proto_digest(directory)
        blobs[digest] = data
        return digest

    return build(tree), blobs


def build_manifest(
    job: Job,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    files: Mapping[str, FileInfo],
    needs: Mapping[str, str],
    tools: Mapping[str, str],
) -> Manifest:
    return Manifest(
        job=job.name,
        command=tuple(argv),
        dir=job.dir,
        env=tuple(sorted(env.items())),
        inputs=tuple(
            (p, f"{i.digest}{'x' if i.executable else ''}") for p, i in sorted(files.items())
        ),
        needs=tuple(sorted(needs.items())),
        tools=tuple(sorted(tools.items())),
        platform=tuple(sorted(platform_facts().items())),
        matrix=tuple(job.matrix),
        outputs=tuple(sorted(job.outputs)),
    )


def build_action(manifest: Manifest, files: Mapping[str, FileInfo]) -> BuiltAction:
    """The REAPI Action of a manifest. Everything but the file tree comes from the manifest,
    so equal manifests (and files) always give the same digest: what the memo relies on."""
    pb = _pb()
    command = pb.Command(
        arguments=list(manifest.command),
        working_directory="" if manifest.dir == "." else manifest.dir,
        output_paths=list(manifest.outputs),
    )
    for name, value in manifest.env:
        command.environment_variables.add(name=name, value=value)
    for name, value in manifest.platform:
        command.platform.properties.add(name=name, value=value)
    command_digest, command_bytes = proto_digest(command)
    root, blobs = input_root(files)
    blobs[command_digest] = command_bytes
    salt = json.dumps(
        {
            "schema": SCHEMA,
            "job": manifest.job,
            "needs": dict(manifest.needs),
            "tools": dict(manifest.tools),
            "matrix": dict(manifest.matrix),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    action = pb.Action(
        command_digest=pb.Digest(hash=command_digest.hash, size_bytes=command_digest.size_bytes),
        input_root_digest=pb.Digest(hash=root.hash, size_bytes=root.size_bytes),
        salt=salt,
    )
    action.platform.CopyFrom(command.platform)
    digest, _ = proto_digest(action)
    return BuiltAction(digest, manifest, action, blobs)


def remote_action(
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    working_directory: str,
    output_paths: Sequence[str],
    platform: Sequence[tuple[str, str]],
    files: Mapping[str, FileInfo],
    timeout: float | None,
) -> tuple[Digest, dict[Digest, bytes]]:
    """The Action a remote worker executes for one job, and every message it names (the
    Action, the Command, the input root's Directory tree) by digest.

    Not the cache key's Action: the worker needs what the key leaves out, the job's
    whole environment (CONVEYOR_JOB, the matrix variables...) and its needs' outputs in
    the input root. It is as deterministic, though, so a server that already ran it for
    another machine answers from its own cache. Lists are sorted as REAPI asks."""
    pb = _pb()
    command = pb.Command(
        arguments=list(argv),
        working_directory="" if working_directory == "." else working_directory,
        output_paths=sorted(set(output_paths)),
    )
    for name in sorted(env):
        command.environment_variables.add(name=name, value=env[name])
    for name, value in sorted(platform):
        command.platform.properties.add(name=name, value=value)
    command_digest, command_bytes = proto_digest(command)
    root, blobs = input_root(files)
    blobs[command_digest] = command_bytes
    action = pb.Action(
        command_digest=pb.Digest(hash=command_digest.hash, size_bytes=command_digest.size_bytes),
        input_root_digest=pb.Digest(hash=root.hash, size_bytes=root.size_bytes),
    )
    action.platform.CopyFrom(command.platform)
    if timeout is not None:
        action.timeout.FromNanoseconds(int(timeout * 1e9))
    digest, data = proto_digest(action)
    blobs[digest] = data
    return digest, blobs


def outputs_digest(
    result: remote_execution_pb2.ActionResult | None,
    files: Sequence[tuple[str, Digest, bool]] = (),
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """One digest for a job's outputs (files and symlinks): what its dependents' keys
    include."""
    entries: list[tuple[str, str, int, bool]]
    if result is not None:
        entries = [
            (f.path, f.digest.hash, f.digest.size_bytes, f.is_executable)
            for f in result.output_files
        ]
        links = [(s.path, s.target) for s in result.output_symlinks]
    else:
        entries = [(p, d.hash, d.size_bytes, x) for p, d, x in files]
    # A link is told from a file by its size of -1; a result without links digests as
    # it always did.
    entries += [(p, f"link:{t}", -1, False) for p, t in links]
    text = json.dumps(sorted(entries), separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def explain(old: Manifest, new: Manifest) -> list[str]:
    """What differs between two manifests of a job, one line per change."""
    lines: list[str] = []
    if old.command != new.command:
        lines.append("the command changed")
    if old.dir != new.dir:
        lines.append(f"the working directory changed: {old.dir} -> {new.dir}")
    lines += _diff_pairs("env", old.env, new.env, values=True)
    lines += _diff_pairs("input", old.inputs, new.inputs, values=False)
    lines += _diff_pairs("upstream outputs of", old.needs, new.needs, values=False)
    lines += _diff_pairs("tool", old.tools, new.tools, values=True)
    lines += _diff_pairs("platform", old.platform, new.platform, values=True)
    lines += _diff_pairs("matrix value", old.matrix, new.matrix, values=True)
    if old.outputs != new.outputs:
        lines.append("the declared outputs changed")
    return lines


def _diff_pairs(
    label: str,
    old: Sequence[tuple[str, str]],
    new: Sequence[tuple[str, str]],
    *,
    values: bool,
) -> list[str]:
    a, b = dict(old), dict(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            out.append(f"{label} {key} added" + (f" ({b[key]!r})" if values else ""))
        elif key not in b:
            out.append(f"{label} {key} removed")
        elif a[key] != b[key]:
            if values and SECRET_VALUE not in (a[key], b[key]):
                out.append(f"{label} {key} changed: {a[key]!r} -> {b[key]!r}")
            else:
                out.append(f"{label} {key} modified")
    return out
