"""Which remote cache a run uses: `remote:` in the pipeline file, overridden by
`--remote URL` / `CONVEYOR_REMOTE` (the URL) and `--no-remote`, and `upload` by
`CONVEYOR_REMOTE_UPLOAD` (so CI on a protected branch turns writing on without a
different pipeline file). One URL rule for all of them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor.errors import UsageError
from conveyor.model import Job, Remote

_URL = re.compile(r"^(grpcs?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?$")

REMOTE_ENV = "CONVEYOR_REMOTE"
UPLOAD_ENV = "CONVEYOR_REMOTE_UPLOAD"
EXECUTE_ENV = "CONVEYOR_REMOTE_EXECUTE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def url_problem(url: str) -> str | None:
    """What is wrong with a remote cache's URL, or None: `grpc://host:port` (plain),
    `grpcs://host[:port]` (TLS, port 443 by default)."""
    m = _URL.match(url)
    if m is None:
        return (
            f"expected grpc://host:port or grpcs://host[:port] (a REAPI server such as "
            f"BuildGrid, Buildbarn or BuildBuddy), got {url!r}"
        )
    scheme, _host, port = m.groups()
    if port is None and scheme == "grpc":
        return f"{url!r}: a plain grpc:// address needs its port (grpc://host:port)"
    if port is not None and not 0 < int(port) < 65536:
        return f"{url!r}: port {port} is out of range"
    return None


def target(url: str) -> tuple[str, bool]:
    """The gRPC target (`host:port`) of a valid URL, and whether it uses TLS."""
    m = _URL.match(url)
    assert m is not None, url
    scheme, host, port = m.groups()
    return f"{host}:{port or 443}", scheme == "grpcs"


def resolve(
    configured: Remote | None,
    environ: Mapping[str, str],
    *,
    url: str | None = None,
    off: bool = False,
) -> Remote | None:
    """The remote cache of a run: the file's, its URL replaced by `url` (`--remote`),
    else by $CONVEYOR_REMOTE; none with `off` (`--no-remote`) or `CONVEYOR_REMOTE=off`.
    $CONVEYOR_REMOTE_UPLOAD (1/0) decides whether this machine writes. A bad URL or
    value is a UsageError naming where it came from."""
    if off:
        return None
    given, where = url, "--remote"
    if given is None and environ.get(REMOTE_ENV):
        given, where = environ[REMOTE_ENV], REMOTE_ENV
    if given is not None and given.strip().lower() in ("off", "none"):
        return None
    remote = configured
    if given is not None:
        problem = url_problem(given)
        if problem is not None:
            raise UsageError(f"{where}: {problem}")
        remote = configured._replace(url=given) if configured else Remote(url=given)
    if remote is None:
        return None
    upload = environ.get(UPLOAD_ENV)
    if upload is not None:
        value = upload.strip().lower()
        if value not in _TRUE | _FALSE:
            raise UsageError(f"{UPLOAD_ENV}: expected 1 or 0 (true/false), got {upload!r}")
        remote = remote._replace(upload=value in _TRUE)
    execute = environ.get(EXECUTE_ENV)
    if execute is not None:
        value = execute.strip().lower()
        if value not in _TRUE | _FALSE:
            raise UsageError(f"{EXECUTE_ENV}: expected 1 or 0 (true/false), got {execute!r}")
        remote = remote._replace(execute=value in _TRUE)
    return remote


def cannot_run_remotely(job: Job, *, inputs: bool | None = None) -> str | None:
    """Why `job` cannot run on a remote worker, or None. A worker sees only what the
    job declares: its inputs (and its needs' outputs) are its whole world, and nothing
    secret may be uploaded. `inputs`: whether it declares any (default: `job.inputs`)."""
    if not (job.inputs if inputs is None else inputs):
        return "it declares no `inputs:` (a worker sees only the files a job declares)"
    if job.secrets:
        return "it has `secrets:`, whose values would be uploaded to the server"
    if not job.cache:
        return "it is not cached (`cache: false`, or it runs on how the run went)"
    if job.finally_run:
        return "it has `finally:` commands, which run on the machine that ran the job"
    if job.caches:
        return "it has `caches:`, which are restored and saved on this machine"
    return None


def runs_remotely(job: Job, remote: Remote | None) -> bool:
    """Whether the job goes to the remote's workers in a run with `remote`."""
    if remote is None or job.executor == "local":
        return False
    if job.executor == "remote" or remote.execute:
        return cannot_run_remotely(job) is None
    return False
