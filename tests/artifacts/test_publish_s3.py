"""The S3 target against moto's S3 server on 127.0.0.1: objects under
<prefix>/<name>/<version>/, the manifest written last, verified by reading back or by
S3's SHA-256 checksum; a failure leaves no manifest and removes what it uploaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.publish import PublishError, PublishFailure, PublishRefused, publish_all
from conveyor.artifacts.publish.s3 import S3Target
from tests.artifacts.servers import S3_SECRET, S3Server, files_of, moto_s3


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        server.client().create_bucket(Bucket="releases")
        yield server


@pytest.mark.parametrize("verify", ["read", "checksum"])
def test_objects_then_the_manifest_and_each_verified(
    s3: S3Server, tmp_path: Path, verify: str
) -> None:
    files = files_of(tmp_path, {"dist/app.whl": b"w" * 3000, "notes.txt": b"notes"})
    where = S3Target("releases", f"team/{verify}", environ=s3.environ(), verify=verify)  # type: ignore[arg-type]
    receipt = where.publish("app@1.0", files)
    base = f"team/{verify}/app/1.0/"
    assert s3.keys("releases")
    assert set(s3.keys("releases")) >= {
        base + "dist/app.whl",
        base + "notes.txt",
        base + ".conveyor-manifest.json",
    }
    body = s3.client().get_object(Bucket="releases", Key=base + "dist/app.whl")["Body"].read()
    assert body == b"w" * 3000
    manifest = where.lookup("app@1.0")
    assert manifest is not None
    assert [(e["name"], e["sha256"], e["size"]) for e in manifest["files"]] == [
        ("dist/app.whl", files[0].sha256, 3000),
        ("notes.txt", files[1].sha256, 5),
    ]
    assert [f.location for f in receipt.files] == [
        f"s3://releases/{base}dist/app.whl",
        f"s3://releases/{base}notes.txt",
    ]
    assert receipt.target == f"s3://releases/team/{verify} at {s3.endpoint}"


def test_a_multipart_upload_is_read_back_whole(s3: S3Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * (4 * 4096 * 6)  # 24 MiB: multipart above a 5 MiB threshold
    files = files_of(tmp_path, {"big.tar": data})
    where = S3Target("releases", "mp", environ=s3.environ(), multipart_threshold=5 * 1024 * 1024)
    receipt = where.publish("big@1", files)
    head = s3.client().head_object(Bucket="releases", Key="mp/big/1/big.tar")
    assert head["ETag"].strip('"').endswith("-5")  # five parts of 5 MiB
    assert receipt.files[0].sha256 == files[0].sha256
    assert receipt.verify_seconds > 0


def test_again_is_a_no_op_and_other_bytes_are_refused(s3: S3Server, tmp_path: Path) -> None:
    where = S3Target("releases", "again", environ=s3.environ())
    files = files_of(tmp_path, {"a.bin": b"one"})
    where.publish("app@1.0", files)
    assert where.publish("app@1.0", files).already
    with pytest.raises(PublishRefused, match=r"app@1\.0 is already published at s3://"):
        where.publish("app@1.0", files_of(tmp_path / "o", {"a.bin": b"two"}))
    body = s3.client().get_object(Bucket="releases", Key="again/app/1.0/a.bin")["Body"].read()
    assert body == b"one"


def test_a_failure_mid_way_leaves_no_manifest_and_removes_the_objects(
    s3: S3Server, tmp_path: Path
) -> None:
    """The fourth of six files reads back as other bytes than its digest says: the
    publish fails naming it, no manifest, none of the six objects left."""
    files = files_of(tmp_path, {f"f{i}.bin": f"{i}".encode() * 2000 for i in range(6)})
    Path(files[3].local_path).write_bytes(b"not what the digest says")
    where = S3Target("releases", "broken", environ=s3.environ())
    (failure,) = publish_all([where], "app@1.0", files, retries=1, backoff=0)
    assert isinstance(failure, PublishFailure)
    assert failure.error.startswith(f"s3://releases/broken at {s3.endpoint}: f3.bin: ")
    assert "reads back as sha256" in failure.error
    assert failure.error.endswith("(after 2 attempts)")
    assert s3.keys("releases") == [k for k in s3.keys("releases") if not k.startswith("broken/")]
    assert where.lookup("app@1.0") is None


def test_with_checksums_other_bytes_fail_on_the_servers_checksum_and_nothing_stays(
    s3: S3Server, tmp_path: Path
) -> None:
    files = files_of(tmp_path, {"a.bin": b"a" * 100, "b.bin": b"b" * 100})
    Path(files[1].local_path).write_bytes(b"c" * 100)
    where = S3Target("releases", "ck", environ=s3.environ(), verify="checksum")
    with pytest.raises(
        PublishError,
        match=r"b\.bin: s3://releases/ck/app/1/b\.bin has the server's checksum sha256 ",
    ):
        where.publish("app@1", files)
    assert not [k for k in s3.keys("releases") if k.startswith("ck/")]


def test_the_manifest_is_written_last_and_a_server_gone_before_it_leaves_none(
    tmp_path: Path,
) -> None:
    """When the manifest is about to be written, every object is there and the manifest
    is not; the server then dies: the error names the step and, since the manifest's
    fate is unknown, says to check it."""
    with moto_s3(tmp_path / "moto") as server:
        server.client().create_bucket(Bucket="bucket-b")
        files = files_of(tmp_path, {"a.bin": b"a" * 10, "b.bin": b"b" * 10})
        seen: list[str] = []

        class KilledBeforeManifest(S3Target):
            def _write_manifest(self, *args: object) -> None:
                seen.extend(server.keys("bucket-b"))
                server.proc.kill()
                server.proc.wait()
                super()._write_manifest(*args)  # type: ignore[arg-type]

        where = KilledBeforeManifest("bucket-b", "", environ=server.environ(), request_attempts=1)
        with pytest.raises(PublishError) as caught:
            where.publish("app@1", files)
    assert seen == ["app/1/a.bin", "app/1/b.bin"]
    text = caught.value.message
    assert text.startswith("writing the manifest: Could not connect to the endpoint URL")
    assert text.endswith(
        "(the manifest s3://bucket-b/app/1/.conveyor-manifest.json may have been written and "
        "could not be removed: delete it by hand)"
    )


def test_objects_without_a_manifest_are_not_a_published_version(
    s3: S3Server, tmp_path: Path
) -> None:
    """What a publish cut short left behind reads as absent, and the next publish of
    that version replaces it."""
    s3.client().put_object(Bucket="releases", Key="cut/app/3.0/a.bin", Body=b"stale")
    where = S3Target("releases", "cut", environ=s3.environ())
    assert where.lookup("app@3.0") is None
    receipt = where.publish("app@3.0", files_of(tmp_path, {"a.bin": b"fresh"}))
    assert not receipt.already
    body = s3.client().get_object(Bucket="releases", Key="cut/app/3.0/a.bin")["Body"].read()
    assert body == b"fresh"
    assert where.lookup("app@3.0") is not None


def test_credentials_come_from_the_environment_and_are_never_shown(
    s3: S3Server, tmp_path: Path
) -> None:
    files = files_of(tmp_path, {"a.bin": b"a"})
    missing = S3Target("releases", "x", environ={"CONVEYOR_S3_ENDPOINT": s3.endpoint})
    with pytest.raises(PublishRefused, match="no credentials") as caught:
        missing.publish("app@1", files)
    assert caught.value.hint
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint
    (failure,) = publish_all(
        [S3Target("no-such-bucket", "x", environ=s3.environ())], "app@1", files, backoff=0
    )
    assert isinstance(failure, PublishFailure)
    assert "NoSuchBucket" in failure.error
    assert failure.attempts == 1
    assert S3_SECRET not in failure.error
    assert S3_SECRET not in repr(failure)
    manifest = json.dumps(S3Target("releases", "team/read", environ=s3.environ()).lookup("app@1.0"))
    assert S3_SECRET not in manifest
