"""Real package registries on 127.0.0.1 for the `deps outdated` tests, started and
stopped by the tests: pypiserver (a PyPI-compatible index, from PyPI) with wheels the
tests build with hatchling and upload over HTTP as twine does, and Verdaccio (an
npm-compatible registry, from npm) with packages the tests publish with `npm publish`.
Neither is given an upstream: a name they do not hold is a 404, never a request
elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- PyPI: pypiserver --------------------------------------------------------------------
def build_wheel(work: Path, name: str, version: str, license: str | None = "MIT") -> Path:
    """A real wheel of a one-module project, built by hatchling (offline)."""
    src = work / f"src-{name}-{version}"
    module = name.replace("-", "_")
    (src / module).mkdir(parents=True)
    (src / module / "__init__.py").write_text(f"VERSION = {version!r}\n")
    lic = f'license = "{license}"\n' if license else ""
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "{name}"
            version = "{version}"
            """
        )
        + lic
        + f'[tool.hatch.build.targets.wheel]\npackages = ["{module}"]\n'
    )
    out = work / "dist"
    # Made here: hatchling makes it if missing, which races when wheels build at once.
    out.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=src,
        check=True,
        capture_output=True,
    )
    found = list(out.glob(f"{module}-{version}-*.whl"))
    assert len(found) == 1, found
    return found[0]


def upload(index_root: str, wheel: Path) -> None:
    """Upload a distribution as twine does (multipart POST, `:action=file_upload`)."""
    boundary = uuid.uuid4().hex
    name, version = wheel.name.split("-")[:2]
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version}
    body = b""
    for key, value in fields.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        ).encode()
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body += wheel.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        index_root,
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200, reply.status


@dataclass
class PypiServer:
    root: str
    """http://127.0.0.1:PORT/"""

    @property
    def simple(self) -> str:
        return self.root + "simple/"


@contextlib.contextmanager
def pypiserver(work: Path) -> Iterator[PypiServer]:
    """pypiserver on 127.0.0.1 serving `work/packages`, uploads open, no fallback."""
    import importlib.util

    # Found, not imported: it imports the deprecated cgi module, and warnings are errors.
    if importlib.util.find_spec("pypiserver") is None:
        pytest.skip("pypiserver is not installed (pip install -e '.[test]')")
    packages = work / "packages"
    packages.mkdir(parents=True)
    port = free_port()
    log = work / "pypiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pypiserver",
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "--disable-fallback",
                "-a",
                ".",
                "-P",
                ".",
                str(packages),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}/"
    try:
        wait_for(root + "simple/", proc, 30, log)
        yield PypiServer(root)
    finally:
        stop(proc)


# -- npm: Verdaccio ---------------------------------------------------------------------------
@dataclass
class NpmRegistry:
    url: str
    """http://127.0.0.1:PORT/"""
    token: str
    """A user's token (publishing, and the scope that needs it)."""
    npmrc: Path
    """A user config holding that token for this registry."""


def _verdaccio() -> str | None:
    found = os.environ.get("CONVEYOR_VERDACCIO")
    if found and os.access(found, os.X_OK):
        return found
    return None


def need_verdaccio() -> str:
    """The verdaccio program (.ci/run installs it and names it in CONVEYOR_VERDACCIO);
    skips without it, or fails with CONVEYOR_TESTS_NEED_VERDACCIO=1."""
    found = _verdaccio()
    if found is None or shutil.which("node") is None or shutil.which("npm") is None:
        why = (
            "Verdaccio is not installed: .ci/run installs verdaccio@6.8.0 from npm (the "
            "last 6.x that runs on Node 20) and sets CONVEYOR_VERDACCIO to its program"
        )
        if os.environ.get("CONVEYOR_TESTS_NEED_VERDACCIO") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return found


@contextlib.contextmanager
def verdaccio(work: Path) -> Iterator[NpmRegistry]:
    """Verdaccio on 127.0.0.1: storage in `work`, no uplinks, anyone may read and
    publish except the `@private` scope, which needs a logged-in user."""
    program = need_verdaccio()
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = work / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            storage: {work / "storage"}
            auth:
              htpasswd:
                file: {work / "htpasswd"}
                max_users: 10
            uplinks: {{}}
            packages:
              '@private/*':
                access: $authenticated
                publish: $authenticated
              '**':
                access: $all
                publish: $authenticated
            log: {{type: stdout, format: pretty, level: warn}}
            """
        )
    )
    log = work / "verdaccio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [program, "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url + "-/ping", proc, 60, log)
        request = urllib.request.Request(
            url + "-/user/org.couchdb.user:tester",
            data=json.dumps({"name": "tester", "password": "test-password-1"}).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            token = json.load(reply)["token"]
        npmrc = work / "npmrc"
        npmrc.write_text(f"//127.0.0.1:{port}/:_authToken={token}\n")
        yield NpmRegistry(url, token, npmrc)
    finally:
        stop(proc)


def publish(registry: NpmRegistry, work: Path, name: str, version: str) -> None:
    """`npm publish` a package.json-only package to the registry."""
    pkg = work / f"pkg-{name.replace('/', '-')}-{version}"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(
        json.dumps({"name": name, "version": version, "license": "MIT"})
    )
    (pkg / "index.js").write_text("module.exports = 1;\n")
    subprocess.run(
        [
            "npm",
            "publish",
            "--registry",
            registry.url,
            "--userconfig",
            str(registry.npmrc),
            "--access",
            "public",
            "--no-audit",
            "--no-fund",
        ],
        cwd=pkg,
        check=True,
        capture_output=True,
        timeout=60,
    )
