"""The PyPI target against pypiserver on 127.0.0.1: a real wheel built by hatchling is
uploaded, verified from the simple page, installed back with pip and imported; the
same file again is a no-op, other bytes under its name are refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.publish import PublishFile, PublishRefused, target
from conveyor.artifacts.publish.interface import sha256_file
from conveyor.artifacts.publish.pypi import PypiTarget
from tests.deps.registries import PypiServer, build_wheel, pypiserver


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    with pypiserver(tmp_path_factory.mktemp("pypi")) as server:
        yield server


def as_file(path: Path, name: str | None = None) -> PublishFile:
    digest, size = sha256_file(str(path))
    return PublishFile(name or f"dist/{path.name}", str(path), digest, size)


def test_a_wheel_is_uploaded_verified_and_installs_back(index: PypiServer, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "pubdemo", "1.2.0")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a distribution")
    where = target(f"pypi+{index.root}", environ={})
    receipt = where.publish("pubdemo@1.2.0", [as_file(wheel), as_file(notes, "notes.txt")])
    (published,) = receipt.files  # only the distribution
    assert published.location == f"{index.root}packages/{wheel.name}"
    assert published.sha256 == sha256_file(str(wheel))[0]
    assert receipt.bytes == wheel.stat().st_size
    assert not receipt.already
    out = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--disable-pip-version-check", "--no-cache-dir",
            "--index-url", index.simple, "--target", str(out), "pubdemo==1.2.0",
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    version = subprocess.run(
        [sys.executable, "-c", "import pubdemo; print(pubdemo.VERSION)"],
        env={"PYTHONPATH": str(out)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == "1.2.0"


def test_the_same_file_again_is_a_no_op_and_other_bytes_are_refused(
    index: PypiServer, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "a", "pubagain", "0.1")
    where = PypiTarget(index.root, environ={})
    where.publish("pubagain@0.1", [as_file(wheel)])
    again = where.publish("pubagain@0.1", [as_file(wheel)])
    assert again.already
    assert again.bytes == 0
    # The same name, other bytes (another build: another module text).
    other = tmp_path / "b" / wheel.name
    other.parent.mkdir()
    other.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(
        PublishRefused, match=rf"{wheel.name} is already on {index.simple} with other bytes"
    ):
        where.publish("pubagain@0.1", [as_file(other)])


def test_nothing_is_sent_when_one_file_is_refused(index: PypiServer, tmp_path: Path) -> None:
    """A wheel already there with other bytes is found before the first upload: the new
    sdist beside it is not uploaded either."""
    wheel = build_wheel(tmp_path / "a", "pubhalf", "1.0")
    where = PypiTarget(index.root, environ={})
    where.publish("pubhalf@1.0", [as_file(wheel)])
    changed = tmp_path / "b" / wheel.name
    changed.parent.mkdir()
    changed.write_bytes(wheel.read_bytes() + b"\0")
    sdist = tmp_path / "pubhalf-1.0.tar.gz"
    sdist.write_bytes(b"")  # never read: refused before
    with pytest.raises(PublishRefused):
        where.publish("pubhalf@1.0", [as_file(sdist), as_file(changed)])
    listing = PypiTarget(index.root, environ={})._listing("pubhalf")
    assert sorted(listing) == [wheel.name]


def test_credentials_from_the_environment_log_in_and_are_never_shown(tmp_path: Path) -> None:
    from conveyor.artifacts.publish import PublishFailure, PublishReceipt, publish_all
    from tests.artifacts.servers import pypiserver_with_login

    secret = "right-password-7c1a"
    wheel = build_wheel(tmp_path, "publogin", "1.0")
    with pypiserver_with_login(tmp_path / "index", "ci", secret) as root:
        wrong = {"CONVEYOR_PYPI_USERNAME": "ci", "CONVEYOR_PYPI_PASSWORD": "wrong-password-3b"}
        (failure,) = publish_all(
            [target(f"pypi+{root}", environ=wrong)], "publogin@1.0", [as_file(wheel)], backoff=0
        )
        assert isinstance(failure, PublishFailure)
        assert failure.error.startswith(f"pypi+{root}: uploading {wheel.name}: 403")
        assert failure.attempts == 1  # a refused login is not retried
        assert "wrong-password-3b" not in repr(failure)
        right = {"TWINE_USERNAME": "ci", "TWINE_PASSWORD": secret}
        (receipt,) = publish_all(
            [target(f"pypi+{root}", environ=right)], "publogin@1.0", [as_file(wheel)], backoff=0
        )
        assert isinstance(receipt, PublishReceipt)
        assert receipt.files[0].sha256 == sha256_file(str(wheel))[0]
        assert secret not in repr(receipt)


def test_a_wheel_and_its_sdist_are_published_together(index: PypiServer, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "pubboth", "3.1")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path / "sd")],
        cwd=tmp_path / "src-pubboth-3.1",
        check=True,
        capture_output=True,
    )
    (sdist,) = (tmp_path / "sd").glob("pubboth-3.1.tar.gz")
    receipt = PypiTarget(index.root, environ={}).publish(
        "pubboth@3.1", [as_file(sdist), as_file(wheel)]
    )
    assert [f.location for f in receipt.files] == [
        f"{index.root}packages/{sdist.name}",
        f"{index.root}packages/{wheel.name}",
    ]
    assert receipt.bytes == sdist.stat().st_size + wheel.stat().st_size
