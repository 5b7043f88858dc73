"""The two outside systems a backup reaches, each a real server started by the test: a
PostgreSQL history dumped with pg_dump and restored with pg_restore into an empty
database, and a repository in an S3 bucket (moto's server on 127.0.0.1)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from tests.artifacts.servers import moto_s3
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


def test_a_repository_in_an_s3_bucket_round_trips(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    with moto_s3(tmp_path / "moto") as server:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        server.client().create_bucket(Bucket="backups")
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
