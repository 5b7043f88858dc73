"""publish_all: every target at once, each failure one line naming its target while the
others finish, retries with backoff, and credentials never in what comes back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from conveyor.artifacts.publish import (
    PublishError,
    PublishFailure,
    PublishFile,
    PublishReceipt,
    publish_all,
    target,
)
from conveyor.artifacts.publish.directory import DirectoryTarget
from conveyor.artifacts.publish.interface import sha256_file
from tests.artifacts.servers import S3_SECRET, files_of, moto_s3
from tests.deps.registries import build_wheel, pypiserver

PYPI_SECRET = "pypi-password-never-shown-9d2e"


def test_three_targets_at_once_one_failing_named_the_others_done(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "allthree", "2.0")
    digest, size = sha256_file(str(wheel))
    files = [PublishFile(f"dist/{wheel.name}", str(wheel), digest, size)]
    with moto_s3(tmp_path / "moto") as s3, pypiserver(tmp_path / "pypi") as index:
        s3.client().create_bucket(Bucket="good-bucket")
        environ = s3.environ(CONVEYOR_PYPI_USERNAME="ci", CONVEYOR_PYPI_PASSWORD=PYPI_SECRET)
        targets = [
            target(str(tmp_path / "pub"), environ=environ),
            target("s3://good-bucket/rel", environ=environ),
            target("s3://missing-bucket/rel", environ=environ),
            target(f"pypi+{index.root}", environ=environ),
        ]
        results = publish_all(targets, "allthree@2.0", files, retries=2, backoff=0)
        assert [type(r).__name__ for r in results] == [
            "PublishReceipt",
            "PublishReceipt",
            "PublishFailure",
            "PublishReceipt",
        ]
        failure = results[2]
        assert isinstance(failure, PublishFailure)
        assert failure.error.startswith(
            f"s3://missing-bucket/rel at {s3.endpoint}: reading the manifest: "
        )
        assert "NoSuchBucket" in failure.error
        assert "\n" not in failure.error
        assert s3.keys("good-bucket")[-1] == "rel/allthree/2.0/dist/" + wheel.name
        assert (tmp_path / "pub" / "allthree" / "2.0" / "dist" / wheel.name).is_file()
        assert all(r.files[0].sha256 == digest for r in results if isinstance(r, PublishReceipt))
    shown = repr(results) + " ".join(t.describe() for t in targets)
    assert S3_SECRET not in shown
    assert PYPI_SECRET not in shown


class _Gate:
    """A directory target that waits until every other gate has started: publish_all
    finishes only if the targets run at the same time."""

    kind = "directory"

    def __init__(self, root: Path, barrier: threading.Barrier) -> None:
        self.inner = DirectoryTarget(str(root))
        self.barrier = barrier

    def describe(self) -> str:
        return self.inner.describe()

    def publish(self, version_ref: str, files: Sequence[PublishFile]) -> PublishReceipt:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            raise PublishError("ran alone", retry=False) from None
        return self.inner.publish(version_ref, files)


def test_targets_run_in_parallel(tmp_path: Path) -> None:
    barrier = threading.Barrier(3, timeout=10)
    files = files_of(tmp_path, {"a.bin": b"a"})
    targets = [_Gate(tmp_path / f"pub{i}", barrier) for i in range(3)]
    results = publish_all(targets, "app@1", files)
    assert all(isinstance(r, PublishReceipt) for r in results), results


class _Flaky:
    """Fails its first `failures` attempts as an unreachable server would."""

    kind = "directory"

    def __init__(self, root: Path, failures: int) -> None:
        self.inner = DirectoryTarget(str(root))
        self.failures = failures

    def describe(self) -> str:
        return self.inner.describe()

    def publish(self, version_ref: str, files: Sequence[PublishFile]) -> PublishReceipt:
        if self.failures:
            self.failures -= 1
            raise PublishError("connection refused")
        return self.inner.publish(version_ref, files)


def test_a_failed_attempt_is_retried_then_a_clear_error(tmp_path: Path) -> None:
    files = files_of(tmp_path, {"a.bin": b"a"})
    recovers, gives_up = _Flaky(tmp_path / "one", 2), _Flaky(tmp_path / "two", 9)
    results = publish_all([recovers, gives_up], "app@1", files, retries=2, backoff=0.01)
    assert isinstance(results[0], PublishReceipt)
    assert results[0].attempts == 3
    assert results[1] == PublishFailure(
        target=f"dir://{tmp_path / 'two'}",
        error=f"dir://{tmp_path / 'two'}: connection refused (after 3 attempts)",
        attempts=3,
    )
