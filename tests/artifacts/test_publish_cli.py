"""`conveyor artifacts publish` on what a real signed run stored: a directory and moto's
S3 at once, the attachments with the files, each recorded and shown by `artifacts show`
and the build-output hand-off; a failing target named while the others are done; a
version that does not verify is published nowhere."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifacts.keytools import keygen
from tests.artifacts.servers import S3_SECRET, S3Server, moto_s3
from tests.conftest import Project

PIPELINE = """
    name: shop
    jobs:
      build:
        run:
          - mkdir -p dist && echo wheel > dist/shop-1.0-py3-none-any.whl
        artifacts:
          paths: [dist/]
          name: shop
          version: "1.0"
"""
WHEEL = "dist/shop-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        server.client().create_bucket(Bucket="releases")
        yield server


@pytest.fixture
def built(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> tuple[Project, Path]:
    """A project whose run stored shop@1.0 signed: (project, public key)."""
    private, public = keygen(capsys, monkeypatch, tmp_path / "ci")
    monkeypatch.setenv("CONVEYOR_SIGNING_KEY", str(private))
    project.pipeline(PIPELINE)
    project.commit()
    ran = project.run("run", "--plain")
    assert ran.code == 0, ran.out + ran.err
    return project, public


def test_publish_to_a_directory_and_s3_at_once_recorded_and_shown(
    built: tuple[Project, Path],
    s3: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project, public = built
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    shelf = tmp_path / "shelf"
    published = project.run(
        "artifacts", "publish", "shop@1.0", "--to", str(shelf), "--to", "s3://releases/team",
        "--key", str(public),
    )  # fmt: skip
    assert published.code == 0, published.out + published.err
    lines = published.out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("✔") and "verified" in line for line in lines)
    assert S3_SECRET not in published.out + published.err

    copied = {p.relative_to(shelf).as_posix() for p in shelf.rglob("*") if p.is_file()}
    assert any(p.endswith(WHEEL) for p in copied)
    assert any(p.endswith(WHEEL + ".sig") for p in copied)
    assert any(p.endswith("shop-1.0.intoto.jsonl") for p in copied)
    keys = s3.keys("releases")
    assert any(k.endswith(WHEEL) for k in keys)
    assert any(k.endswith(WHEEL + ".sig") for k in keys)
    assert any(k.endswith("shop-1.0.intoto.jsonl") for k in keys)

    shown = project.run("artifacts", "show", "shop@1.0")
    published_lines = shown.out.split("  published\n")[1].splitlines()
    assert any(
        line.strip().startswith("directory:") and str(shelf) in line for line in published_lines
    )
    assert any(line.strip().startswith("s3: s3://releases/team") for line in published_lines)
    handoff = project.run("show", "--format", "build-output", "--json")
    assert handoff.code == 0, handoff.err
    (version,) = json.loads(handoff.out)["build_output"]["artifact_versions"]
    assert {p["kind"] for p in version["published"]} == {"directory", "s3"}
    assert [s["name"] for s in version["signatures"]] == [WHEEL + ".sig"]
    assert [p["name"] for p in version["provenance"]] == ["shop-1.0.intoto.jsonl"]
    assert all(Path(s["path"]).is_file() for s in version["provenance"])
    # A signature is kept in the record: the hand-off gives its text, cosign's base64.
    [signature] = version["signatures"]
    assert signature["path"] is None
    assert hashlib.sha256(signature["content"].encode()).hexdigest() == signature["sha256"]
    assert len(base64.b64decode(signature["content"])) > 64  # an ASN.1 ECDSA signature


def test_a_failing_target_is_named_and_the_others_are_done(
    built: tuple[Project, Path], tmp_path: Path
) -> None:
    project, _public = built
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    shelf = tmp_path / "shelf"
    published = project.run(
        "artifacts", "publish", "shop@1.0", "--retries", "0",
        "--to", str(blocker / "under"), "--to", str(shelf),
    )  # fmt: skip
    assert published.code == 1, published.out + published.err
    failed = [line for line in published.out.splitlines() if line.startswith("✘")]
    assert len(failed) == 1
    assert str(blocker / "under") in failed[0]
    assert any(p.name == "shop-1.0-py3-none-any.whl" for p in shelf.rglob("*"))
    record = json.loads(project.run("artifacts", "show", "shop@1.0", "--json").out)
    assert [p["kind"] for p in record["published"]] == ["directory"]


def test_a_version_signed_by_another_key_is_published_nowhere(
    built: tuple[Project, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project, _public = built
    _private, other = keygen(capsys, monkeypatch, tmp_path / "other")
    shelf = tmp_path / "shelf"
    published = project.run(
        "artifacts", "publish", "shop@1.0", "--to", str(shelf), "--key", str(other)
    )
    assert published.code == 1
    assert f"{WHEEL}: the signature" in published.out
    assert "nothing published" in published.out
    assert not shelf.exists()


def test_publish_json_gives_one_object_per_target_with_the_failure_named(
    built: tuple[Project, Path], tmp_path: Path
) -> None:
    project, public = built
    shelf = tmp_path / "shelf"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be\n")
    published = project.run(
        "artifacts", "publish", "shop@1.0", "--to", str(shelf), "--to", str(blocked / "sub"),
        "--key", str(public), "--json", "--retries", "0",
    )  # fmt: skip
    assert published.code == 1, published.out + published.err
    doc = json.loads(published.out)
    assert doc["ok"] is False
    assert doc["signatures_checked"] is True
    good, bad = doc["targets"]
    assert good["ok"] is True
    assert good["verified"] is True
    assert good["error"] is None
    assert good["files"] >= 3
    assert good["bytes"] > 0
    assert good["seconds"] >= 0
    assert str(shelf) in good["location"]
    assert bad["ok"] is False
    assert bad["verified"] is False
    assert bad["error"]
    assert set(good) >= {"target", "ok", "location", "files", "bytes", "seconds", "verified"}
    assert set(bad) >= set(good) - {"already"}


def test_verify_json_says_whether_signatures_were_checked(built: tuple[Project, Path]) -> None:
    project, public = built
    plain = project.run("artifacts", "verify", "shop@1.0", "--json")
    assert plain.code == 0, plain.out + plain.err
    doc = json.loads(plain.out)
    assert doc["signatures_checked"] is False
    assert doc["versions"][0]["signatures_checked"] is False

    keyed = project.run("artifacts", "verify", "shop@1.0", "--json", "--key", str(public))
    assert keyed.code == 0, keyed.out + keyed.err
    doc = json.loads(keyed.out)
    assert doc["signatures_checked"] is True
    assert doc["versions"][0]["signatures_checked"] is True
