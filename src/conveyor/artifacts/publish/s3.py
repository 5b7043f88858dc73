"""The S3 target (`s3://bucket/prefix`): any S3-compatible server, through boto3.

Where: `<prefix>/<name>/<version>/<file name>`, and last `<prefix>/<name>/<version>/
.conveyor-manifest.json` (every file's key, SHA-256, size and media type). The server
is the one in CONVEYOR_S3_ENDPOINT, else AWS_ENDPOINT_URL, else AWS's own; credentials
come only from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
region from AWS_REGION or AWS_DEFAULT_REGION (default us-east-1). They are never shown:
`describe()` is the bucket, prefix and endpoint.

Nothing half-published: S3 has no rename, so the manifest is the commit. Every object
is uploaded and verified, then the manifest is written last; a version without its
manifest is not published, and readers (`lookup`, the store's fetch) must treat it as
absent. A failed publish deletes the objects it uploaded; if even that fails (the
server went away), what is left has no manifest and is overwritten by the next publish
of that version. If the manifest write itself fails, the manifest is deleted before the
objects (a write that timed out may have landed). A version whose manifest is there
with the same digests is a no-op (the manifest is trusted, the objects are not read
again); with others it is refused. Two publishers racing on one new version are not fenced
(the later manifest wins); versions are published by one pipeline.

Verification (`verify=`):
- "read" (the default) reads every object back (GET) and hashes it. It checks what a
  reader will get, works on every S3-compatible server, and is the only check that
  covers multipart objects: S3's ChecksumSHA256 of a multipart object is a hash of its
  parts' hashes, not the file's SHA-256. It costs a second transfer of every byte.
- "checksum" uploads each single-part object with a SHA-256 checksum
  (ChecksumAlgorithm=SHA256: botocore hashes what it sends, AWS refuses a body that
  does not match), then a HEAD with ChecksumMode=ENABLED returns the checksum the
  server stored, compared with the file's digest. No second transfer, but it trusts
  the server's hash and needs a server that keeps SHA-256 checksums (AWS, moto; not
  every S3 clone: a server that returns none fails the publish rather than passing
  it). moto stores the checksum but does not refuse a mismatching body (a PUT with a
  wrong ChecksumSHA256 is accepted), so only the HEAD comparison is tested here.
  Objects large enough to go multipart are still read back.
Large files go multipart (boto3's TransferConfig: `multipart_threshold`, default 64 MiB,
and parts that size).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from conveyor.artifacts.publish.interface import (
    CHUNK,
    PublishedFile,
    PublishError,
    PublishFile,
    PublishReceipt,
    PublishRefused,
    check_names,
    refuse_other_files,
    split_ref,
)
from conveyor.urls import without_userinfo

MANIFEST = ".conveyor-manifest.json"
MIB = 1024 * 1024
T = TypeVar("T")
R = TypeVar("R")


class S3Target:
    """Publishes to a bucket of an S3-compatible server."""

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        environ: Mapping[str, str] | None = None,
        verify: Literal["read", "checksum"] = "read",
        multipart_threshold: int = 64 * MIB,
        concurrency: int = 8,
        request_attempts: int = 3,
    ) -> None:
        env = os.environ if environ is None else environ
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = env.get("CONVEYOR_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or None
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._key_id = env.get("AWS_ACCESS_KEY_ID", "")
        self._secret = env.get("AWS_SECRET_ACCESS_KEY", "")
        self._token = env.get("AWS_SESSION_TOKEN") or None
        self.verify = verify
        self.multipart_threshold = multipart_threshold
        self.concurrency = concurrency
        self.request_attempts = request_attempts
        self._client_cache: Any = None

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {without_userinfo(self.endpoint)}" if self.endpoint else where

    # -- reading ---------------------------------------------------------------------
    def base(self, version_ref: str) -> str:
        """The key prefix of a version: '<prefix>/<name>/<version>/'."""
        name, version = split_ref(version_ref)
        return "/".join(p for p in (self.prefix, name, version) if p) + "/"

    def lookup(self, version_ref: str) -> dict[str, Any] | None:
        """The published version's manifest; None when it has none (never published, or
        a publish that did not finish)."""
        client = self._client()
        try:
            reply = client.get_object(Bucket=self.bucket, Key=self.base(version_ref) + MANIFEST)
            data: dict[str, Any] = json.loads(reply["Body"].read())
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise _error(exc, "reading the manifest") from None
        return data

    # -- publishing ------------------------------------------------------------------
    def publish(self, version_ref: str, files: Sequence[PublishFile]) -> PublishReceipt:
        start = time.perf_counter()
        check_names(files)
        base = self.base(version_ref)
        existing = self.lookup(version_ref)
        if existing is not None:
            return self._already(version_ref, existing, files, start)
        uploaded: list[str] = []
        committing = False
        try:
            self._run(lambda f: self._upload(f, base + f.name, uploaded), files)
            verify_start = time.perf_counter()
            published = tuple(self._run(lambda f: self._check(f, base + f.name), files))
            verify = time.perf_counter() - verify_start
            committing = True
            self._write_manifest(version_ref, base, files)
        except BaseException as exc:
            # A manifest write that timed out may still have landed: it goes first, so
            # no reader ever finds a manifest whose objects are gone.
            manifest_left = committing and self._delete([base + MANIFEST]) > 0
            left = self._delete(uploaded)
            if isinstance(exc, PublishError):
                if manifest_left:
                    exc.message += (
                        f" (the manifest s3://{self.bucket}/{base}{MANIFEST} may have been "
                        "written and could not be removed: delete it by hand)"
                    )
                elif left:
                    exc.message += f" ({left} uploaded objects could not be removed; "
                    exc.message += "without a manifest they are not published)"
                raise
            if isinstance(exc, Exception) and _is_s3_error(exc):
                raise _error(exc, "uploading") from None
            raise
        return PublishReceipt(
            target=self.describe(),
            kind=self.kind,
            version_ref=version_ref,
            files=published,
            bytes=sum(f.size for f in files),
            seconds=time.perf_counter() - start,
            verify_seconds=verify,
        )

    def _run(self, work: Callable[[PublishFile], R], files: Sequence[PublishFile]) -> list[R]:
        """`work` on every file, `concurrency` at a time (a bucket takes many requests at
        once; 10,000 small files one after another would wait on round trips)."""
        if len(files) <= 1 or self.concurrency <= 1:
            return [work(f) for f in files]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(work, files))

    def _upload(self, f: PublishFile, key: str, uploaded: list[str]) -> None:
        client = self._client()
        uploaded.append(key)  # before: a failed upload may still have left the object
        try:
            if self.verify == "checksum" and f.size < self.multipart_threshold:
                with open(f.local_path, "rb") as fh:
                    client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=fh,
                        ContentType=f.media_type,
                        ChecksumAlgorithm="SHA256",
                    )
                return
            client.upload_file(
                f.local_path,
                self.bucket,
                key,
                ExtraArgs={"ContentType": f.media_type},
                Config=self._transfer_config(),
            )
        except OSError as exc:
            raise PublishError(f"{f.name}: {exc.strerror}: {f.local_path}", retry=False) from None
        except Exception as exc:
            if _is_s3_error(exc):
                raise _error(exc, f"uploading {f.name}") from None
            raise

    def _check(self, f: PublishFile, key: str) -> PublishedFile:
        """The object's SHA-256 as the server has it, compared with the file's."""
        import hashlib

        client = self._client()
        location = f"s3://{self.bucket}/{key}"
        try:
            if self.verify == "checksum" and f.size < self.multipart_threshold:
                head = client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
                stored = head.get("ChecksumSHA256")
                got = base64.b64decode(stored).hex() if stored else "(none)"
                size = int(head["ContentLength"])
                how = "has the server's checksum"
            else:
                body = client.get_object(Bucket=self.bucket, Key=key)["Body"]
                digest = hashlib.sha256()
                size = 0
                for chunk in _chunks(body):
                    digest.update(chunk)
                    size += len(chunk)
                got = digest.hexdigest()
                how = "reads back as"
        except Exception as exc:
            if _is_s3_error(exc):
                raise _error(exc, f"reading back {f.name}") from None
            raise
        if got != f.sha256 or size != f.size:
            raise PublishError(
                f"{f.name}: {location} {how} sha256 {got[:12]}…, {size} bytes; "
                f"expected {f.sha256[:12]}…, {f.size} bytes"
            )
        return PublishedFile(f.name, location, got, size)

    def _write_manifest(self, version_ref: str, base: str, files: Sequence[PublishFile]) -> None:
        name, version = split_ref(version_ref)
        manifest = {
            "conveyor_manifest": 1,
            "name": name,
            "version": version,
            "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": [
                {
                    "name": f.name,
                    "key": base + f.name,
                    "sha256": f.sha256,
                    "size": f.size,
                    "media_type": f.media_type,
                }
                for f in files
            ],
        }
        try:
            self._client().put_object(
                Bucket=self.bucket,
                Key=base + MANIFEST,
                Body=json.dumps(manifest, indent=1).encode(),
                ContentType="application/json",
            )
        except Exception as exc:
            if _is_s3_error(exc):
                raise _error(exc, "writing the manifest") from None
            raise

    def _delete(self, keys: Sequence[str]) -> int:
        """Delete what a failed publish uploaded; how many could not be."""
        left = 0
        client = self._client()
        unique = sorted(set(keys))
        for i in range(0, len(unique), 1000):
            batch = unique[i : i + 1000]
            try:
                reply = client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
                left += len(reply.get("Errors", ()))
            except Exception:
                left += len(batch)
        return left

    def _already(
        self,
        version_ref: str,
        manifest: Mapping[str, Any],
        files: Sequence[PublishFile],
        start: float,
    ) -> PublishReceipt:
        there = {e["name"]: e["sha256"] for e in manifest.get("files", ())}
        wanted = {f.name: f.sha256 for f in files}
        refuse_other_files(
            version_ref, f"s3://{self.bucket}/{self.base(version_ref)}", wanted, there
        )
        base = self.base(version_ref)
        return PublishReceipt(
            target=self.describe(),
            kind=self.kind,
            version_ref=version_ref,
            files=tuple(
                PublishedFile(f.name, f"s3://{self.bucket}/{base}{f.name}", f.sha256, f.size)
                for f in files
            ),
            bytes=0,
            seconds=time.perf_counter() - start,
            verify_seconds=0.0,
            already=True,
        )

    # -- the client ------------------------------------------------------------------
    def _client(self) -> Any:
        """One boto3 client per target (thread-safe), credentials from the environment
        given and nowhere else (no profile files, no instance metadata)."""
        if self._client_cache is not None:
            return self._client_cache
        if not self._key_id or not self._secret:
            raise PublishRefused(
                "no credentials in the environment",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
            )
        from conveyor.artifacts.s3client import s3_client

        self._client_cache = s3_client(
            key_id=self._key_id,
            secret=self._secret,
            token=self._token,
            region=self.region,
            endpoint=self.endpoint,
            attempts=self.request_attempts,
            connections=max(10, self.concurrency * 2),
        )
        return self._client_cache

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            # Parts as large as the threshold (S3's minimum part is 5 MiB, its most
            # parts 10,000; s3transfer raises the size when a file needs more).
            multipart_chunksize=max(5 * MIB, min(64 * MIB, self.multipart_threshold)),
            max_concurrency=4,
            use_threads=True,
        )


def _chunks(body: Any) -> Iterator[bytes]:
    while chunk := body.read(CHUNK):
        yield chunk


def _is_s3_error(exc: BaseException) -> bool:
    """botocore's and boto3's own errors (imported only once boto3 is)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError | Boto3Error)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _error(exc: BaseException, doing: str) -> PublishError:
    """One line from a boto error; refusals (4xx but timeouts and throttling) are not
    retried."""
    response = getattr(exc, "response", None)
    status = 0
    if isinstance(response, dict):
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    text = " ".join(str(exc).split())
    if 400 <= status < 500 and status not in (408, 429) and _code(exc) != "BadDigest":
        return PublishRefused(f"{doing}: {text}")
    return PublishError(f"{doing}: {text}")
