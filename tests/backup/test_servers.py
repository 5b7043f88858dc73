"""The two outside systems a backup reaches, each a real server started by the test: a
PostgreSQL history dumped with pg_dump and restored with pg_restore into an empty
database, and a repository in an S3 bucket (moto's server on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.backup import backend
from conveyor.backup.backend import S3Backend
from tests.artifacts.servers import S3Server, moto_s3
from tests.backup.workspace import backup_json, conveyor_in, make_workspace, snapshots
from tests.conftest import Project
from tests.history.conftest import postgres  # noqa: F401  (the fixture, shared)


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> str:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("PostgreSQL's server binaries are not under /usr/lib/postgresql")
    url: str = request.getfixturevalue("postgres")
    return url


def _create_database(url: str, name: str) -> str:
    import psycopg

    server = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_a_postgresql_history_is_dumped_and_restored_into_an_empty_database(
    pg_url: str,
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("CONVEYOR_DB_URL", pg_url)
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=2)
    before = conveyor_in(ws.root, capsys, "history", "--json")
    assert len(json.loads(before.out)) == 2
    stats_before = conveyor_in(ws.root, capsys, "stats")
    repo = tmp_path / "repo"
    made = backup_json(ws.root, capsys, repo)
    listed = json.loads(
        conveyor_in(tmp_path, capsys, "backup", "list", "--repo", str(repo), "--json").out
    )
    assert listed[0]["history"] == {"kind": "postgresql"}

    fresh = _create_database(pg_url, "restored")
    target = tmp_path / "restored"
    done = conveyor_in(
        tmp_path, capsys, "backup", "restore", made["id"], "--repo", str(repo),
        "--to", str(target), "--db-url", fresh,
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "history: postgresql into" in done.out
    monkeypatch.setenv("CONVEYOR_DB_URL", fresh)
    assert conveyor_in(target, capsys, "history", "--json").out == before.out
    assert conveyor_in(target, capsys, "stats").out == stats_before.out

    # The database now holds a history: a second restore into it is refused.
    again = conveyor_in(
        tmp_path, capsys, "backup", "restore", made["id"], "--repo", str(repo),
        "--to", str(tmp_path / "other"), "--db-url", fresh,
    )  # fmt: skip
    assert again.code == 2
    assert "restore would overwrite the database" in again.err
    assert "(it has tables)" in again.err


@contextlib.contextmanager
def _bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with a bucket `backups`, its endpoint and keys in
    the environment."""
    with moto_s3(tmp_path / "moto") as server:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        server.client().create_bucket(Bucket="backups")
        yield server


def test_a_repository_in_an_s3_bucket_round_trips(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    with _bucket(tmp_path, monkeypatch) as server:
        repo = "s3://backups/team/shop"
        first = backup_json(ws.root, capsys, repo)
        second = backup_json(ws.root, capsys, repo)
        assert snapshots(tmp_path, capsys, repo) == [first["id"], second["id"]]
        keys = server.keys("backups")
        assert all(k.startswith("team/shop/") for k in keys)
        assert any(k.startswith("team/shop/snapshots/") for k in keys)
        checked = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", repo)
        assert checked.code == 0, checked.out + checked.err
        target = tmp_path / "restored"
        done = conveyor_in(
            tmp_path, capsys, "backup", "restore", "latest", "--repo", repo, "--to", str(target)
        )
        assert done.code == 0, done.err
        history = conveyor_in(target, capsys, "history", "--json").out
        assert history == conveyor_in(ws.root, capsys, "history", "--json").out


def _lock_time(server: Any, key: str) -> float:
    body = server.client().get_object(Bucket="backups", Key=key)["Body"].read()
    return float(json.loads(body)["time"])


def _put_lock(server: Any, key: str, **lock: object) -> None:
    server.client().put_object(Bucket="backups", Key=key, Body=json.dumps(lock).encode())


def test_a_bucket_is_locked_as_a_directory_is(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A bucket has no flock: lock objects do the same work. A prune is refused while a
    backup holds the bucket and a backup while a prune does; backups share it; a lock
    its holder was killed with stops counting; none of Conveyor's is left behind."""
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    with _bucket(tmp_path, monkeypatch) as server:
        repo = "s3://backups/team/shop"
        backup_json(ws.root, capsys, repo)
        prune = ("backup", "prune", "--repo", repo, "--keep-daily", "1")
        bucket = S3Backend(repo, os.environ)

        monkeypatch.setattr(backend, "LOCK_RENEW", 0.05)
        with bucket.lock(exclusive=False):
            busy = conveyor_in(tmp_path, capsys, *prune)
            assert busy.code == 2
            assert "a backup is using the repository now" in busy.err
            assert f"pid {os.getpid()}" in busy.err
            assert "Traceback" not in busy.err
            backup_json(ws.root, capsys, repo)  # another backup shares it
            # Held longer than its renewal period: rewritten, so it never looks stale.
            [held] = [k for k in server.keys("backups") if "/locks/" in k]
            first = _lock_time(server, held)
            time.sleep(0.3)
            assert _lock_time(server, held) > first
        with bucket.lock(exclusive=True):
            refused = conveyor_in(ws.root, capsys, "backup", "create", "--repo", repo)
            assert refused.code == 2
            assert "a prune is using the repository now" in refused.err
        assert [k for k in server.keys("backups") if "/locks/" in k] == []

        # Left by a process of this host that is gone, and by another host an hour ago.
        gone = subprocess.Popen(["true"])
        gone.wait()
        _put_lock(server, "team/shop/locks/gone", exclusive=False, host=socket.gethostname(),
                  pid=gone.pid, time=time.time())  # fmt: skip
        _put_lock(server, "team/shop/locks/old", exclusive=False, host="runner-7", pid=1,
                  time=time.time() - 3600)  # fmt: skip
        pruned = conveyor_in(tmp_path, capsys, *prune)
        assert pruned.code == 0, pruned.err
        # Another host's, renewed a minute ago: it counts.
        _put_lock(server, "team/shop/locks/live", exclusive=False, host="runner-7", pid=1,
                  time=time.time() - 60)  # fmt: skip
        busy = conveyor_in(tmp_path, capsys, *prune)
        assert busy.code == 2
        assert "host runner-7, pid 1" in busy.err
