"""Shared by the history, insights and export tests: a two-job pipeline, `conveyor
history --json` as data, and a real PostgreSQL server."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project

PIPELINE = """
name: hist
jobs:
  build:
    run: echo building
  test:
    needs: [build]
    run: echo testing
"""


def history(project: Project, *args: str) -> list[dict[str, Any]]:
    result = project.run("history", "--json", *args)
    assert result.code == 0, result.err
    data: list[dict[str, Any]] = json.loads(result.out)
    return data


def conveyor_argv() -> list[str]:
    """The command line that runs this checkout's Conveyor in a subprocess."""
    return [sys.executable, "-m", "conveyor"]


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- a real PostgreSQL, started for these tests ------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server from the machine's binaries, in a temp directory, on a free
    loopback port; as the `postgres` user when the tests run as root (it refuses root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL's server binaries are needed under /usr/lib/postgresql"
    bindir = os.path.dirname(found[-1])
    base = tempfile.mkdtemp(prefix="conveyor-pg-", dir="/tmp")
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), free_port()

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "conveyor", "--no-sync")
        run(
            f"{bindir}/pg_ctl",
            "-D",
            data,
            "-w",
            "-l",
            os.path.join(base, "log"),
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=conveyor dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE history")
        yield f"postgresql+psycopg://conveyor@127.0.0.1:{port}/history"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)
