"""The artifact store in a bucket (`artifacts: {dir: s3://...}`), against moto's S3
server on 127.0.0.1: real `conveyor run`s store versions there, and the `conveyor
artifacts` commands read, verify, fetch and prune them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.record import ArtifactVersion
from tests.artifacts.servers import S3Server, moto_s3
from tests.conftest import Project


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


def _bucket(s3: S3Server, project: Project, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"store-{project.root.parent.name.lower().replace('_', '-')[-40:]}"
    s3.client().create_bucket(Bucket=name)
    for key, value in s3.environ().items():
        monkeypatch.setenv(key, value)
    return name


def _record(s3: S3Server, bucket: str) -> bytes:
    reply = s3.client().get_object(Bucket=bucket, Key="team/store/index/shop/1.0.json")
    return bytes(reply["Body"].read())


PIPELINE = """
    name: shop
    artifacts:
      dir: s3://{bucket}/team/store
    jobs:
      build:
        run:
          - mkdir -p dist && echo "wheel $SALT" > dist/shop.whl && echo doc > dist/README.md
        pass_env: [SALT]
        artifacts:
          paths: [dist/]
          name: shop
          version: "1.0"
"""


def test_a_run_stores_a_version_in_the_bucket_and_other_bytes_are_refused(
    s3: S3Server, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, project, monkeypatch)
    project.pipeline(PIPELINE.format(bucket=bucket))
    project.commit()
    monkeypatch.setenv("SALT", "one")
    first = project.run("run", "--plain")
    assert first.code == 0, first.err
    assert "artifact shop@1.0 stored: 2 files" in first.out
    keys = s3.keys(bucket)
    wheel = hashlib.sha256(b"wheel one\n").hexdigest()
    assert f"team/store/blobs/sha256/{wheel[:2]}/{wheel}" in keys
    assert "team/store/index/shop/1.0.json" in keys
    assert not (project.root / ".conveyor" / "artifacts" / "index").exists()
    objects = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    written = {o["Key"]: o["LastModified"] for o in objects}
    record_at = written.pop("team/store/index/shop/1.0.json")
    assert all(at <= record_at for at in written.values())  # the record last
    record = _record(s3, bucket)

    # Again with the same bytes: a no-op; with other bytes: refused, both digests named.
    again = project.run("run", "--plain")
    assert again.code == 0, again.err
    assert "was stored before with the same bytes" in again.out
    monkeypatch.setenv("SALT", "two")
    other = project.run("run", "--plain")
    assert other.code != 0
    said = other.out + other.err
    assert "already stored" in said
    assert json.loads(record)["digest"] in said
    offered = [line for line in said.splitlines() if "this one sha256:" in line]
    assert offered, said
    assert _record(s3, bucket) == record  # the stored version unchanged


def test_list_show_verify_fetch_and_a_tampered_object_against_the_bucket(
    s3: S3Server, project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = _bucket(s3, project, monkeypatch)
    project.pipeline(PIPELINE.format(bucket=bucket))
    project.commit()
    monkeypatch.setenv("SALT", "one")
    assert project.run("run", "--plain").code == 0
    listed = project.run("artifacts", "list", "--json")
    assert listed.code == 0, listed.err
    assert [v["version"] for v in json.loads(listed.out)["versions"]] == ["1.0"]
    shown = project.run("artifacts", "show", "shop@1.0", "--json")
    assert shown.code == 0, shown.err
    assert sorted(f["path"] for f in json.loads(shown.out)["files"]) == [
        "dist/README.md",
        "dist/shop.whl",
    ]
    wheel = hashlib.sha256(b"wheel one\n").hexdigest()
    blob = f"team/store/blobs/sha256/{wheel[:2]}/{wheel}"
    blobs = {f["path"]: f["blob"] for f in json.loads(shown.out)["files"]}
    assert blobs["dist/shop.whl"] == f"s3://{bucket}/{blob}"
    assert project.run("artifacts", "verify", "shop@1.0").code == 0
    out = tmp_path / "out"
    fetched = project.run("artifacts", "fetch", "shop@1.0", "--to", str(out))
    assert fetched.code == 0, fetched.err
    assert (out / "dist" / "shop.whl").read_bytes() == b"wheel one\n"
    assert not (project.root / "s3:").exists()  # downloads go to a private temporary

    promoted = project.run("artifacts", "promote", "shop@1.0", "--to", "staging")
    assert promoted.code == 0, promoted.err
    assert (
        json.loads(project.run("artifacts", "show", "shop@1.0", "--json").out)["channel"]
        == "staging"
    )

    s3.client().put_object(Bucket=bucket, Key=blob, Body=b"wheel 0ne\n")
    bad = project.run("artifacts", "verify", "shop@1.0")
    assert bad.code != 0
    assert "dist/shop.whl" in bad.out + bad.err


def test_prune_removes_expired_records_then_unreferenced_blobs(
    s3: S3Server, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, project, monkeypatch)
    project.pipeline(
        PIPELINE.format(bucket=bucket).replace(
            'version: "1.0"', 'version: "1.{{ run_number }}"\n          keep: {last: 1}'
        )
    )
    project.commit()
    monkeypatch.setenv("SALT", "one")
    assert project.run("run", "--plain").code == 0
    monkeypatch.setenv("SALT", "two")
    assert project.run("run", "--plain").code == 0
    keys = s3.keys(bucket)
    one = hashlib.sha256(b"wheel one\n").hexdigest()
    two = hashlib.sha256(b"wheel two\n").hexdigest()
    doc = hashlib.sha256(b"doc\n").hexdigest()
    # keep: 1 -> the run's retention removed 1.1's record and its wheel, not the shared doc.
    assert "team/store/index/shop/1.1.json" not in keys
    assert "team/store/index/shop/1.2.json" in keys
    assert f"team/store/blobs/sha256/{one[:2]}/{one}" not in keys
    assert f"team/store/blobs/sha256/{two[:2]}/{two}" in keys
    assert f"team/store/blobs/sha256/{doc[:2]}/{doc}" in keys
    # A blob no record names goes with an explicit prune.
    stray = hashlib.sha256(b"stray").hexdigest()
    s3.client().put_object(
        Bucket=bucket, Key=f"team/store/blobs/sha256/{stray[:2]}/{stray}", Body=b"stray"
    )
    pruned = project.run("artifacts", "prune")
    assert pruned.code == 0, pruned.err
    assert f"team/store/blobs/sha256/{stray[:2]}/{stray}" not in s3.keys(bucket)
    assert "team/store/index/shop/1.2.json" in s3.keys(bucket)


def test_a_change_racing_another_writer_keeps_both(
    s3: S3Server, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes changing one record: the write made on a stale read is refused by
    the server (If-Match) and redone on the new record, so neither change is lost."""
    from conveyor.artifacts.s3store import S3ArtifactStore

    bucket = _bucket(s3, project, monkeypatch)
    project.pipeline(PIPELINE.format(bucket=bucket))
    project.commit()
    monkeypatch.setenv("SALT", "one")
    assert project.run("run", "--plain").code == 0
    ours = S3ArtifactStore(f"s3://{bucket}/team/store", environ=s3.environ())
    theirs = S3ArtifactStore(f"s3://{bucket}/team/store", environ=s3.environ())
    calls: list[str] = []

    def promote_after_theirs(v: ArtifactVersion) -> ArtifactVersion:
        if not calls:  # the other writer lands between our read and our write
            theirs.record_publication("shop@1.0", {"target": "s3", "where": "elsewhere"})
        calls.append(v.ref)
        return dataclasses.replace(v, channel="staging")

    ours.update("shop@1.0", promote_after_theirs)
    record = json.loads(_record(s3, bucket))
    assert len(calls) == 2
    assert record["channel"] == "staging"
    assert [p["where"] for p in record["published"]] == ["elsewhere"]
