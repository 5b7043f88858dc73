"""Real servers on 127.0.0.1 for the publish tests, started and stopped by the tests:
moto's S3 server (a separate process, so a test can kill it) and pypiserver
(tests/deps/registries.py's). Plus the files a test publishes."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.artifacts.publish import PublishFile
from tests.deps.registries import free_port, stop, wait_for

# Not a real key: moto accepts any; the tests check it is never shown.
S3_SECRET = "s3-secret-never-shown-4f1c"


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def environ(self, **extra: str) -> dict[str, str]:
        """What the S3 target reads: the endpoint and credentials, nothing else."""
        return {
            "CONVEYOR_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing-key-id",
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            **extra,
        }

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing-key-id",
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        ).client("s3", endpoint_url=self.endpoint)

    def keys(self, bucket: str) -> list[str]:
        reply = self.client().list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in reply.get("Contents", ()))


@contextlib.contextmanager
def moto_s3(work: Path) -> Iterator[S3Server]:
    """moto's server (S3 and the rest of AWS, in memory) on a free loopback port."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        pytest.skip("moto[server] and boto3 are not installed (pip install -e '.[test]')")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(endpoint + "/", proc, 30, log)
        yield S3Server(endpoint, proc)
    finally:
        stop(proc)


def files_of(work: Path, contents: Mapping[str, bytes]) -> list[PublishFile]:
    """Files to publish, written under `work` (as the store's blobs would be)."""
    out = []
    for name, data in contents.items():
        path = work / "blobs" / hashlib.sha256(data).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(PublishFile(name, str(path), hashlib.sha256(data).hexdigest(), len(data)))
    return out


@contextlib.contextmanager
def pypiserver_with_login(work: Path, user: str, password: str) -> Iterator[str]:
    """pypiserver on 127.0.0.1 that lets `user` (and no one else) upload; its root URL.
    The password file holds an `{SHA}` hash, which pypiserver reads through passlib."""
    import base64

    if (
        importlib.util.find_spec("pypiserver") is None
        or importlib.util.find_spec("passlib") is None
    ):
        pytest.skip("pypiserver and passlib are not installed (pip install -e '.[test]')")
    packages = work / "packages"
    packages.mkdir(parents=True)
    sha = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    (work / "htpasswd").write_text(f"{user}:{{SHA}}{sha}\n")
    port = free_port()
    log = work / "pypiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
                "--disable-fallback", "-a", "update", "-P", str(work / "htpasswd"), str(packages),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    root = f"http://127.0.0.1:{port}/"
    try:
        wait_for(root + "simple/", proc, 30, log)
        yield root
    finally:
        stop(proc)
