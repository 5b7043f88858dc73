"""Where a backup repository's files live: a directory, or `s3://bucket/prefix`.

Both offer the same few operations on names like `packs/ab/<hex>`. A directory writes
each file to a hidden temporary beside it, fsyncs and renames it, so a killed backup
leaves whole files or hidden temporaries that listing skips. S3's PUT is already whole
or nothing. Backups share the repository and a prune holds it alone: through flock(2)
in a directory, through lock objects in a bucket (restic's protocol). The bucket is
reached through conveyor.artifacts.s3client, with the endpoint and credentials from the
environment as for the S3 artifact store (CONVEYOR_S3_ENDPOINT or AWS_ENDPOINT_URL;
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from conveyor.errors import EnvironmentProblem, UserError
from conveyor.fsutil import atomic_file
from conveyor.urls import without_userinfo

REPO_ENV = "CONVEYOR_BACKUP_REPO"
LOCK_STALE = 30 * 60
"""Seconds after which a bucket's lock not renewed no longer counts (restic's figure)."""
LOCK_RENEW = 5 * 60
"""Seconds between renewals of a bucket's lock while it is held."""


class BackupError(UserError):
    """A backup repository or snapshot that cannot be used as asked."""


class Backend(Protocol):
    where: str

    def read(self, name: str) -> bytes:
        """The whole file; FileNotFoundError when there is none."""

    def read_range(self, name: str, offset: int, length: int) -> bytes: ...

    def write(self, name: str, data: bytes) -> None:
        """Replace `name` with `data` whole (never a partial file, whatever kills us)."""

    def exists(self, name: str) -> bool: ...

    def list(self, folder: str) -> Iterator[tuple[str, float]]:
        """(name, modified time) of every complete file under `folder`."""

    def delete(self, name: str) -> None: ...

    def lock(self, *, exclusive: bool) -> contextlib.AbstractContextManager[None]:
        """Held while a backup writes (shared) or a prune deletes (exclusive)."""


class DirectoryBackend:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.where = self.root
        self._dirs: set[str] = set()

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("/"))

    def read(self, name: str) -> bytes:
        with open(self._path(name), "rb") as fh:
            return fh.read()

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        with open(self._path(name), "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        # fsync: a repository is what is left after a disaster; its files must be whole.
        with atomic_file(path, fsync=True) as fh:
            fh.write(data)

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def list(self, folder: str) -> Iterator[tuple[str, float]]:
        base = self._path(folder)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # a temporary left by a killed writer
                with contextlib.suppress(FileNotFoundError):
                    yield f"{rel}/{name}", os.stat(os.path.join(dirpath, name)).st_mtime

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """flock(2) on `<repo>/lock`: backups share it, a prune holds it alone (it could
        delete a pack a running backup counts on). The kernel drops it when its holder
        dies, so a killed backup never leaves the repository locked."""
        import fcntl

        os.makedirs(self.root, exist_ok=True)
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = "a backup or a prune" if exclusive else "a prune"
                raise BackupError(
                    f"{self.where}: {busy} is using the repository now",
                    hint="try again when it has finished",
                ) from None
            yield
        finally:
            os.close(fd)


class S3Backend:
    def __init__(self, url: str, environ: Mapping[str, str]) -> None:
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise BackupError(f"{url!r}: no bucket", hint="--repo s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = environ.get("CONVEYOR_S3_ENDPOINT") or environ.get("AWS_ENDPOINT_URL")
        at = f" at {without_userinfo(self.endpoint)}" if self.endpoint else ""
        self.where = f"s3://{bucket}/{self.prefix}".rstrip("/") + at
        key_id = environ.get("AWS_ACCESS_KEY_ID", "")
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise BackupError(
                f"the backup repository {self.where}: no credentials in the environment",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        from conveyor.artifacts.s3client import s3_client

        self._client = s3_client(
            key_id=key_id,
            secret=secret,
            token=environ.get("AWS_SESSION_TOKEN") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint=self.endpoint or None,
        )

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @contextlib.contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status == 404 or code in ("NoSuchKey", "404"):
                raise FileNotFoundError(name) from None
            raise EnvironmentProblem(f"{self.where}: {name}: {code or status}") from None
        except BotoCoreError as exc:
            raise EnvironmentProblem(f"{self.where}: {exc}") from None

    def read(self, name: str) -> bytes:
        with self._errors(name):
            reply = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            return bytes(reply["Body"].read())

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        with self._errors(name):
            reply = self._client.get_object(
                Bucket=self.bucket,
                Key=self._key(name),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
            return bytes(reply["Body"].read())

    def write(self, name: str, data: bytes) -> None:
        with self._errors(name):
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def exists(self, name: str) -> bool:
        try:
            with self._errors(name):
                self._client.head_object(Bucket=self.bucket, Key=self._key(name))
        except FileNotFoundError:
            return False
        return True

    def list(self, folder: str) -> Iterator[tuple[str, float]]:
        start = len(self._key("")) if self.prefix else 0
        with self._errors(folder):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(folder.rstrip("/") + "/")
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    modified: Any = obj.get("LastModified")
                    stamp = modified.timestamp() if modified is not None else time.time()
                    yield str(obj["Key"])[start:], float(stamp)

    def delete(self, name: str) -> None:
        with self._errors(name):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """restic's protocol, as a bucket has no flock: a lock object under `locks/`,
        written, then every other one read. A prune (exclusive) goes on only when there
        is no other live lock, a backup only when there is no live prune's. Two that
        start together both see the other and both stop: never both go on. A live lock
        is rewritten every few minutes; one not rewritten for LOCK_STALE (its holder was
        killed), or left on this host by a process that is gone, no longer counts."""
        import json
        import socket

        name = f"locks/{os.urandom(16).hex()}"
        mine: dict[str, Any] = {
            "exclusive": exclusive,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.time(),
        }
        self.write(name, json.dumps(mine).encode())
        try:
            for other, _ in self.list("locks"):
                if other == name:
                    continue
                try:
                    theirs = json.loads(self.read(other))
                except (FileNotFoundError, ValueError):
                    continue  # released since it was listed, or not a lock
                if not isinstance(theirs, dict) or not (exclusive or theirs.get("exclusive")):
                    continue
                if _stale(theirs, mine["host"]):
                    continue
                what = "a prune" if theirs.get("exclusive") else "a backup"
                since = time.strftime("%H:%M:%S", time.localtime(float(theirs.get("time", 0))))
                raise BackupError(
                    f"{self.where}: {what} is using the repository now (host "
                    f"{theirs.get('host')}, pid {theirs.get('pid')}, its lock renewed at {since})",
                    hint="try again when it has finished (a lock a killed process left stops "
                    f"counting {LOCK_STALE // 60} minutes after it was last renewed)",
                )
            stop = threading.Event()
            renew = threading.Thread(target=self._renew, args=(name, mine, stop), daemon=True)
            renew.start()
            try:
                yield
            finally:
                stop.set()
                renew.join()
        finally:
            with contextlib.suppress(EnvironmentProblem):
                self.delete(name)

    def _renew(self, name: str, lock: dict[str, Any], stop: threading.Event) -> None:
        import json

        while not stop.wait(LOCK_RENEW):
            lock["time"] = time.time()
            with contextlib.suppress(EnvironmentProblem):  # tried again at the next turn
                self.write(name, json.dumps(lock).encode())


def _stale(lock: Mapping[str, Any], host: str) -> bool:
    """A lock that no longer counts: not renewed for LOCK_STALE, or left on this host by
    a process that is gone."""
    try:
        if time.time() - float(lock.get("time", 0)) > LOCK_STALE:
            return True
        if lock.get("host") == host:
            os.kill(int(lock.get("pid", 0)), 0)
    except (TypeError, ValueError):
        return True  # not a lock this code wrote
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def open_backend(repo: str | None, environ: Mapping[str, str]) -> Backend:
    """The repository `--repo` (else $CONVEYOR_BACKUP_REPO) names."""
    where = repo or environ.get(REPO_ENV)
    if not where:
        raise BackupError(
            "no backup repository named",
            hint=f"give --repo DIR or --repo s3://bucket/prefix, or set {REPO_ENV}",
        )
    if where.startswith("s3://"):
        return S3Backend(where, environ)
    return DirectoryBackend(where)
