"""The history database: written whole by concurrent runs, shared, migrated, and a
run that cannot reach it warns and goes on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.history.schema import HEAD
from tests.conftest import Project
from tests.history.conftest import PIPELINE, conveyor_argv, free_port, history


def test_a_named_database_is_written_by_the_run_itself(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    shutil.rmtree(project.root / ".conveyor" / "runs")  # nothing left to pick up later
    assert [r["status"] for r in history(project)] == ["success"]


def test_concurrent_runs_sharing_one_database_all_land(project: Project, tmp_path: Path) -> None:
    project.pipeline(
        "jobs:\n" + "".join(f"  j{i}:\n    cache: false\n    run: echo {i}\n" for i in range(20))
    )
    project.commit()
    env = dict(os.environ, CONVEYOR_DB_URL=f"sqlite:///{tmp_path / 'shared.db'}")
    procs = [
        subprocess.Popen(
            [*conveyor_argv(), "run", "--plain", "-q"],
            cwd=project.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert not any("not recorded" in e for e in errors), errors
    shutil.rmtree(project.root / ".conveyor" / "runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVEYOR_DB_URL", env["CONVEYOR_DB_URL"])
        runs = history(project)
    assert len(runs) == 4
    assert all(r["jobs_total"] == 20 for r in runs)


def test_an_unreachable_database_warns_and_the_run_still_succeeds(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DB_URL", f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    project.pipeline(PIPELINE)
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert "warning: the run was not recorded in the history" in result.err
    broken = project.run("history")
    assert broken.code == 2
    assert "cannot use the history database postgresql+psycopg://nobody@127.0.0.1" in broken.err
    assert "Traceback" not in broken.err

    # The database is back (here: another one): the next run records the one it missed.
    from conveyor.history.store import HistoryStore

    url = f"sqlite:///{project.root.parent / 'back.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    assert project.run("run").code == 0
    store = HistoryStore(url)
    try:
        assert sorted(store.statuses().values()) == ["success", "success"]
    finally:
        store.close()


def test_an_older_database_is_migrated_and_keeps_its_runs(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from conveyor.history.schema import HEAD

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the schema as the first release made it
        config = Config()
        config.set_main_option("script_location", "conveyor.history:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO runs (id, pipeline, workspace, trigger, host, conveyor_version,"
                " started_at, status, critical_path, jobs_total, jobs_cached)"
                " VALUES ('19990101-000000.000-abcd', 'hist', '/w', 'local', 'h', '0.1.0',"
                " 915148800, 'success', '[]', 0, 0)"
            )
        )
    engine.dispose()
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    runs = history(project)
    assert [r["id"][:8] for r in runs] == [runs[0]["id"][:8], "19990101"]
    with create_engine(url).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    old = project.run("show", "19990101", "--format", "build-output", "--json")
    assert old.code == 0, old.err
    handoff = json.loads(old.out)["build_output"]
    assert handoff["pipeline_config"] is None, "not recorded before 0003: not invented"
    assert handoff["artifacts"] == []


def test_a_database_a_newer_conveyor_wrote_is_refused_with_a_clear_error(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A team's shared history migrated by a colleague's newer Conveyor: one clear line
    saying so (exit 2), not alembic's traceback; the database is left as it was."""
    from sqlalchemy import create_engine, text

    from conveyor.history.store import HistoryStore

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    HistoryStore(url).close()
    newer = f"{int(HEAD) + 1:04d}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(PIPELINE)
    project.commit()
    result = project.run("history")
    assert result.code == 2, result.err
    assert f"was written by a newer Conveyor (its schema is {newer}" in result.err
    assert "upgrade Conveyor" in result.err
    assert "Traceback" not in result.err
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == newer
    engine.dispose()
