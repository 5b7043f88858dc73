"""The directory target: a version appears whole under <root>/<name>/<version> or not at
all, is verified by reading back, and is never replaced by other bytes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from conveyor.artifacts.publish import PublishFailure, PublishRefused, publish_all, target
from conveyor.artifacts.publish.directory import DirectoryTarget
from tests.artifacts.servers import files_of


def test_a_version_lands_whole_and_verified(tmp_path: Path) -> None:
    files = files_of(tmp_path, {"dist/app-1.0.whl": b"wheel bytes", "README.txt": b"read me"})
    where = target(f"dir://{tmp_path / 'pub'}")
    receipt = where.publish("app@1.0", files)
    dest = tmp_path / "pub" / "app" / "1.0"
    assert (dest / "dist" / "app-1.0.whl").read_bytes() == b"wheel bytes"
    assert (dest / "README.txt").read_bytes() == b"read me"
    assert sorted(os.listdir(tmp_path / "pub" / "app")) == ["1.0"]  # no staging left
    assert [(f.location, f.sha256) for f in receipt.files] == [
        (str(dest / "dist" / "app-1.0.whl"), files[0].sha256),
        (str(dest / "README.txt"), files[1].sha256),
    ]
    assert receipt.bytes == len(b"wheel bytes") + len(b"read me")
    assert not receipt.already
    assert receipt.target == f"dir://{tmp_path / 'pub'}"
    record = receipt.as_record("2026-01-01T00:00:00Z")
    assert record["kind"] == "directory"
    assert record["files"][0] == {
        "name": "dist/app-1.0.whl",
        "location": str(dest / "dist" / "app-1.0.whl"),
        "sha256": files[0].sha256,
    }


def test_publishing_the_same_version_again_is_a_no_op_and_other_bytes_are_refused(
    tmp_path: Path,
) -> None:
    where = DirectoryTarget(str(tmp_path / "pub"))
    files = files_of(tmp_path, {"a.bin": b"one"})
    where.publish("app@1.0", files)
    again = where.publish("app@1.0", files)
    assert again.already
    assert again.bytes == 0
    other = files_of(tmp_path / "other", {"a.bin": b"two"})
    with pytest.raises(PublishRefused, match=r"app@1\.0 is already published at .* \(a\.bin\)"):
        where.publish("app@1.0", other)
    assert (tmp_path / "pub" / "app" / "1.0" / "a.bin").read_bytes() == b"one"


def test_a_failure_half_way_leaves_nothing(tmp_path: Path) -> None:
    """The third of five files is not the bytes it claims: no version directory, no
    staging directory, and the error names the file; then the right bytes publish."""
    files = files_of(tmp_path, {f"f{i}.bin": f"content {i}".encode() * 1000 for i in range(5)})
    Path(files[2].local_path).write_bytes(b"corrupted blob")
    results = publish_all([target(str(tmp_path / "pub"))], "app@2.0", files, backoff=0)
    (failure,) = results
    assert isinstance(failure, PublishFailure)
    assert failure.error.startswith(f"dir://{tmp_path / 'pub'}: f2.bin: the local file ")
    assert "not the bytes to publish" in failure.error
    assert failure.attempts == 1  # a wrong source is not worth retrying
    assert os.listdir(tmp_path / "pub" / "app") == []
    fixed = files_of(
        tmp_path / "fixed", {f"f{i}.bin": f"content {i}".encode() * 1000 for i in range(5)}
    )
    DirectoryTarget(str(tmp_path / "pub")).publish("app@2.0", fixed)
    assert len(os.listdir(tmp_path / "pub" / "app" / "2.0")) == 5


def test_a_file_gone_from_the_store_fails_with_the_path_and_leaves_nothing(tmp_path: Path) -> None:
    files = files_of(tmp_path, {"a.bin": b"a", "b.bin": b"b"})
    files[1] = dataclasses.replace(files[1], local_path=str(tmp_path / "missing"))
    (failure,) = publish_all(
        [DirectoryTarget(str(tmp_path / "pub"))], "app@1", files, retries=1, backoff=0
    )
    assert isinstance(failure, PublishFailure)
    assert "missing" in failure.error
    assert "No such file" in failure.error
    assert failure.attempts == 2
    assert os.listdir(tmp_path / "pub" / "app") == []


@pytest.mark.parametrize(
    ("ref", "name"),
    [("app@1.0", "../escape"), ("app@1.0", "/abs"), ("app@..", "a"), ("noversion", "a")],
)
def test_names_that_could_escape_the_root_are_refused(tmp_path: Path, ref: str, name: str) -> None:
    files = files_of(tmp_path, {name.lstrip("/"): b"x"})
    files = [dataclasses.replace(files[0], name=name)]
    with pytest.raises(PublishRefused):
        DirectoryTarget(str(tmp_path / "pub")).publish(ref, files)
    assert not (tmp_path / "escape").exists()
