"""The artifact store in an S3-compatible bucket (`artifacts: {dir: s3://bucket/prefix}`).

    <prefix>/blobs/sha256/ab/<hex>          a file's bytes, named by their SHA-256
    <prefix>/index/<name>/<version>.json    one version's record, written last

The same layout as the directory store (conveyor.artifacts.store), and the same rules:
a blob is uploaded only when a HEAD finds it absent (the same bytes stored once); a
version's record is written only after every blob it names is there, so the record is
the commit point and a version without one does not exist. Server, credentials and
region come from the environment as for the S3 publish target (CONVEYOR_S3_ENDPOINT or
AWS_ENDPOINT_URL; AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY only; never shown).

S3 has no rename and no lock, so records are written with conditional PUTs: a new
record with `IfNoneMatch='*'` (of two runs storing one version, one wins; the other
reads the winner's record and is a no-op with the same bytes or a VersionConflict with
other bytes), a change to a record (promotion, attachment, publication, expiry) with
`IfMatch=<etag>`, re-read and retried when another writer got there first.

Races that remain: there is no store-wide lock, so `writing()` and `exclusive()` are
no-ops. A prune running while a run uploads may delete a blob the run found present
(HEAD) a moment before, and the run's record then names a missing blob (verify says
so). Prune a bucket when no run writes to it.

Reading: a blob is downloaded, when first asked for by this process, into a private
temporary directory (to a temporary name, then renamed), so verify, fetch, publish and
the signature checks read a local file; a new process (each CLI command) reads the
bucket again, so verify hashes what the bucket holds now.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from conveyor.artifacts.backend import Store
from conveyor.artifacts.record import ArtifactVersion
from conveyor.artifacts.store import (
    ArtifactError,
    ArtifactStore,
    VersionConflict,
    check_member,
    check_name,
    check_version,
)
from conveyor.config.versions import ALLOWED, NAME
from conveyor.urls import without_userinfo

ATTEMPTS = 5
"""Times a record change is re-read and retried when another writer changed it first."""


def is_bucket_url(where: str | None) -> bool:
    return bool(where) and str(where).startswith("s3://")


class S3ArtifactStore(ArtifactStore):
    # The directory store's logic over its index (attach, promote, record_publication,
    # find, files) is reused as it is: it reaches the bucket only through the methods
    # overridden here. The Protocol the rest of Conveyor uses is conveyor.artifacts.backend.Store.
    """The store in `s3://bucket/prefix` (what the directory store does, over S3)."""

    def __init__(self, url: str, *, environ: Mapping[str, str] | None = None) -> None:
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ArtifactError(f"{url!r}: no bucket", hint="s3://bucket/prefix")
        self.local = tempfile.mkdtemp(prefix="conveyor-s3store-")
        atexit.register(shutil.rmtree, self.local, True)
        super().__init__(self.local)
        env = os.environ if environ is None else environ
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint = env.get("CONVEYOR_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or None
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._key_id = env.get("AWS_ACCESS_KEY_ID", "")
        self._secret = env.get("AWS_SECRET_ACCESS_KEY", "")
        self._token = env.get("AWS_SESSION_TOKEN") or None
        self._client_cache: Any = None
        self._fetched: set[str] = set()
        self._fetch_lock = threading.Lock()

    def describe(self) -> str:
        at = f" at {without_userinfo(self.endpoint)}" if self.endpoint else ""
        return self.root + at

    # -- the bucket ------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._client_cache is not None:
            return self._client_cache
        if not self._key_id or not self._secret:
            raise ArtifactError(
                f"the artifact store {self.root}: no credentials in the environment",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        from conveyor.artifacts.s3client import s3_client

        self._client_cache = s3_client(
            key_id=self._key_id,
            secret=self._secret,
            token=self._token,
            region=self.region,
            endpoint=self.endpoint,
        )
        return self._client_cache

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def blob_key(self, sha256: str) -> str:
        return self._key("blobs", "sha256", sha256[:2], sha256)

    def blob_location(self, sha256: str) -> str:
        """The blob's URL (shown by list and show, which download nothing)."""
        return f"s3://{self.bucket}/{self.blob_key(sha256)}"

    def record_key(self, name: str, version: str) -> str:
        return self._key("index", name, f"{version}.json")

    def exists(self) -> bool:
        return True

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        yield  # no lock in S3: see the module's docstring

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        yield

    # -- blobs -----------------------------------------------------------------------------
    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self._client().head_object(Bucket=self.bucket, Key=self.blob_key(sha256))
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        return size is None or int(head["ContentLength"]) == size

    def put_file(self, path: str) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        sha = h.hexdigest()
        if not self.has_blob(sha, size):
            with open(path, "rb") as fh:
                self._client().upload_fileobj(fh, self.bucket, self.blob_key(sha))
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha, len(data)):
            self._client().put_object(Bucket=self.bucket, Key=self.blob_key(sha), Body=data)
        return sha, len(data)

    def blob_path(self, sha256: str) -> str:
        """A local copy of the blob, downloaded when first asked for (to a temporary
        name, then renamed); a path that is not there when the bucket has no such blob."""
        local = os.path.join(self.local, "blobs", sha256[:2], sha256)
        with self._fetch_lock:
            if sha256 in self._fetched:
                return local
            self._fetched.add(sha256)
        from botocore.exceptions import ClientError

        os.makedirs(os.path.dirname(local), exist_ok=True)
        part = f"{local}.{threading.get_ident()}.part"
        try:
            self._client().download_file(self.bucket, self.blob_key(sha256), part)
            os.replace(part, local)
        except ClientError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            if _status(exc) != 404:
                raise
        return local

    def blob_digest(self, sha256: str) -> str | None:
        from conveyor.artifacts.store import file_sha256

        return file_sha256(self.blob_path(sha256))

    def blobs(self) -> Iterator[tuple[str, int]]:
        for key, size in self._list(self._key("blobs", "sha256") + "/"):
            yield key.rsplit("/", 1)[-1], size

    def remove_blob(self, sha256: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=self.blob_key(sha256))

    def _list(self, prefix: str) -> Iterator[tuple[str, int]]:
        pages = (
            self._client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        for page in pages:
            for obj in page.get("Contents", ()):
                yield obj["Key"], int(obj["Size"])

    # -- the index -------------------------------------------------------------------------
    def _read(self, name: str, version: str) -> tuple[ArtifactVersion, str] | None:
        """A record and its ETag, or None."""
        from botocore.exceptions import ClientError

        try:
            reply = self._client().get_object(
                Bucket=self.bucket, Key=self.record_key(name, version)
            )
            record = ArtifactVersion.from_dict(json.loads(reply["Body"].read()))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        except ValueError:
            return None
        return record, str(reply["ETag"])

    def get(self, name: str, version: str) -> ArtifactVersion | None:
        if not NAME.fullmatch(name) or not ALLOWED.fullmatch(version):
            return None
        found = self._read(name, version)
        return None if found is None else found[0]

    def names(self) -> list[str]:
        base = self._key("index") + "/"
        return sorted({k[len(base) :].split("/", 1)[0] for k, _ in self._list(base)})

    def versions(
        self,
        name: str | None = None,
        *,
        branch: str | None = None,
        channel: str | None = None,
        run_id: str | None = None,
    ) -> list[ArtifactVersion]:
        out: list[ArtifactVersion] = []
        for each in [name] if name is not None else self.names():
            base = self._key("index", each) + "/"
            found = []
            for key, _size in self._list(base):
                version = key[len(base) :].removesuffix(".json")
                record = self.get(each, version)
                if record is not None:
                    found.append(record)
            found.sort(key=lambda r: (r.created, r.build_number or 0, r.version))
            out.extend(
                r
                for r in found
                if (branch is None or r.branch == branch)
                and (channel is None or r.channel == channel)
                and (run_id is None or r.run_id == run_id)
            )
        return out

    def _put_record(self, version: ArtifactVersion, **condition: str) -> bool:
        """The record written if `condition` holds (False: it did not)."""
        from botocore.exceptions import ClientError

        text = version.to_json()
        try:
            self._client().put_object(
                Bucket=self.bucket,
                Key=self.record_key(version.name, version.version),
                Body=text.encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if _status(exc) in (409, 412):
                return False
            raise
        return True

    def store(self, version: ArtifactVersion) -> tuple[ArtifactVersion, bool]:
        check_name(version.name)
        check_version(version.version)
        for f in version.files:
            check_member(f.path)
        for _ in range(ATTEMPTS):
            stored = self.get(version.name, version.version)
            if stored is not None:
                if stored.digest == version.digest:
                    return stored, False
                raise VersionConflict(stored, version)
            if self._put_record(version, IfNoneMatch="*"):
                return version, True
        raise ArtifactError(f"{version.ref}: its record kept changing in {self.root}")

    def update(
        self, ref: str, change: Callable[[ArtifactVersion], ArtifactVersion]
    ) -> ArtifactVersion:
        fixed = ("name", "version", "files", "created", "run_id", "commit", "build_number")
        for _ in range(ATTEMPTS):
            found = self.find(ref)
            read = self._read(found.name, found.version)
            if read is None:
                continue
            stored, etag = read
            changed = change(stored)
            for key in fixed:
                if getattr(changed, key) != getattr(stored, key):
                    raise ArtifactError(f"{stored.ref}: its {key} cannot change (immutable)")
            if changed == stored or self._put_record(changed, IfMatch=etag):
                return changed
        raise ArtifactError(f"{ref}: its record kept changing in {self.root}")

    def remove(self, version: ArtifactVersion) -> None:
        self._client().delete_object(
            Bucket=self.bucket, Key=self.record_key(version.name, version.version)
        )


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def open_store(where: str | None, workspace: str) -> Store:
    """The store `where` names (a directory, or `s3://bucket/prefix`), else the
    workspace's `.conveyor/artifacts/`."""
    from conveyor.artifacts.store import default_dir

    if where and is_bucket_url(where):
        return S3ArtifactStore(where)
    return ArtifactStore(where or default_dir(workspace))


__all__ = ["S3ArtifactStore", "is_bucket_url", "open_store"]
