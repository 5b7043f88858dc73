"""Publishing a stored version to targets, each upload verified by reading it back.

`target(url)` turns what the user wrote into a target: a directory (`dir:///srv/a` or a
path: `directory`), an S3-compatible bucket (`s3://bucket/prefix`: `s3`), a
PyPI-compatible index (`pypi+https://host/legacy/`: `pypi`). `publish_all` publishes
one version to several targets at once, one thread each: a failed attempt is retried
with exponential backoff, and a target that still fails becomes a `PublishFailure`
(one line naming it) while the others finish. Each target leaves nothing half-published
(see each module for how); credentials come from the environment and are never shown.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from conveyor.artifacts.publish.interface import (
    PublishedFile,
    PublishError,
    PublishFailure,
    PublishFile,
    PublishReceipt,
    PublishRefused,
    Target,
)

__all__ = [
    "PublishError",
    "PublishFailure",
    "PublishFile",
    "PublishReceipt",
    "PublishRefused",
    "PublishedFile",
    "Target",
    "publish_all",
    "target",
]


def target(url: str, *, environ: Mapping[str, str] | None = None) -> Target:
    """The target a URL names (PublishRefused when it names none)."""
    if url.startswith("s3://"):
        from conveyor.artifacts.publish.s3 import S3Target

        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise PublishRefused(f"{url!r}: no bucket", hint="s3://bucket/prefix")
        return S3Target(bucket, prefix, environ=environ)
    if url.startswith("pypi+"):
        from conveyor.artifacts.publish.pypi import PypiTarget

        return PypiTarget(url[len("pypi+") :], environ=environ)
    from conveyor.artifacts.publish.directory import DirectoryTarget

    if url.startswith("dir://"):
        path = url[len("dir://") :]
        if not path.startswith("/"):
            raise PublishRefused(f"{url!r}: a directory URL is dir:///absolute/path")
        return DirectoryTarget(path)
    if "://" in url:
        raise PublishRefused(
            f"{url.split('://')[0]!r} is not a publish target",
            hint="dir:///path (or a path), s3://bucket/prefix, pypi+https://index/legacy/",
        )
    return DirectoryTarget(url)


def publish_all(
    targets: Sequence[Target],
    version_ref: str,
    files: Sequence[PublishFile],
    *,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[PublishReceipt | PublishFailure]:
    """Publish to every target at once; one result per target, in their order. A failed
    attempt is tried again up to `retries` times, `backoff` seconds after the first
    failure and twice as long after each next one; refusals are not retried."""
    if not targets:
        return []
    with ThreadPoolExecutor(len(targets), thread_name_prefix="publish") as pool:
        futures = [
            pool.submit(_publish_one, t, version_ref, files, retries, backoff) for t in targets
        ]
        return [f.result() for f in futures]


def _publish_one(
    where: Target, version_ref: str, files: Sequence[PublishFile], retries: int, backoff: float
) -> PublishReceipt | PublishFailure:
    shown = where.describe()
    attempt = 0
    while True:
        attempt += 1
        try:
            receipt = where.publish(version_ref, files)
        except (PublishError, OSError) as exc:
            retry = exc.retry if isinstance(exc, PublishError) else True
            if retry and attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            text = exc.message if isinstance(exc, PublishError) else str(exc)
            line = " ".join(text.split())
            if attempt > 1:
                line += f" (after {attempt} attempts)"
            return PublishFailure(shown, f"{shown}: {line}", attempt)
        if attempt == 1:
            return receipt
        from dataclasses import replace

        return replace(receipt, attempts=attempt)
