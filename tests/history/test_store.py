"""Build history: runs recorded whole (SQLite by default, a real PostgreSQL when named),
read back by `conveyor history` and `conveyor show`."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
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


def test_every_run_is_recorded_newest_first(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run").code == 0  # all cached
    project.write("conveyor.yml", PIPELINE.replace("echo testing", "exit 4"))
    assert project.run("run").code == 1
    runs = history(project)
    assert [r["status"] for r in runs] == ["failed", "success", "success"]
    assert [r["jobs_cached"] for r in runs] == [0, 2, 0]
    assert all(r["jobs_total"] == 2 for r in runs)
    newest = runs[0]
    assert newest["pipeline"] == "hist"
    assert newest["branch"] == "main"
    assert newest["commit"] == project.git("rev-parse", "HEAD")
    assert newest["event"] == "push"
    assert newest["trigger"] == "local"
    assert newest["host"] == os.uname().nodename
    assert newest["critical_path"] == ["build", "test"]
    assert newest["wall_time"] > 0
    # Recorded once: asking again adds nothing.
    assert len(history(project)) == 3


def test_show_has_every_job_with_times_and_the_failure(project: Project) -> None:
    project.pipeline(PIPELINE.replace("echo testing", "echo 'assert 1 == 2' && exit 4"))
    project.commit()
    assert project.run("run").code == 1
    result = project.run("show", "--json")
    assert result.code == 0
    run = json.loads(result.out)
    jobs = {j["name"]: j for j in run["jobs"]}
    assert jobs["build"]["status"] == "success"
    assert jobs["test"]["status"] == "failed"
    assert jobs["test"]["exit_code"] == 4
    assert jobs["test"]["attempts"] == 1
    assert jobs["build"]["queue_time"] >= 0
    assert jobs["build"]["duration"] > 0
    assert jobs["build"]["action_digest"]
    text = project.run("show", run["id"][:17]).out
    assert "✘ test" in text
    assert "exit code 4" in text
    assert "│ assert 1 == 2" in text, "the failed job's log tail"
    bars = [line for line in text.splitlines() if line.endswith("|") and "|" in line[:-1]]
    assert len(bars) == 2, text
    # build ran before test: its bar starts further left.
    start = {line.split()[1]: line.index("█") for line in bars}
    assert start["build"] < start["test"]


def test_no_history_keeps_a_run_out(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run", "--no-history").code == 0
    assert len(history(project)) == 1


def test_unknown_or_ambiguous_runs_are_usage_errors(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("show").code == 2  # nothing recorded yet
    assert project.run("run").code == 0
    assert project.run("run").code == 0
    missing = project.run("show", "19990101")
    assert missing.code == 2
    assert "no single run '19990101'" in missing.err
    assert "Traceback" not in missing.err
    prefix = history(project)[0]["id"][:4]
    ambiguous = project.run("show", prefix)
    assert ambiguous.code == 2
    assert "matches 2 runs" in ambiguous.err


def test_a_killed_run_is_recorded_as_interrupted(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          quick:
            run: echo done
          slow:
            needs: [quick]
            run: echo $$ > slow.pid; sleep 60
        """
    )
    project.commit()
    proc = project.spawn("run", "--plain", "--jobs", "1")
    pid_file = project.root / "slow.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # the event log is flushed at most every 0.1 s
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)  # its job, in its own group
    runs = history(project)
    assert [r["status"] for r in runs] == ["interrupted"]
    shown = json.loads(project.run("show", "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["quick"], "what finished before the kill"


def test_a_killed_run_is_recorded_by_the_next_run_in_a_shared_history(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conveyor.history.store import HistoryStore

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(
        """
        jobs:
          slow:
            run: if [ -n "$SLOW" ]; then echo $$ > slow.pid; sleep 60; fi
            pass_env: [SLOW]
        """
    )
    project.commit()
    monkeypatch.setenv("SLOW", "1")
    proc = project.spawn("run", "--plain")
    monkeypatch.delenv("SLOW")
    pid_file = project.root / "slow.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    store = HistoryStore(url)
    try:
        assert store.statuses() == {}, "a killed run cannot record itself"
        assert project.run("run").code == 0
        assert sorted(store.statuses().values()) == ["interrupted", "success"]
    finally:
        store.close()


def test_a_run_still_going_is_not_recorded_yet(project: Project) -> None:
    project.pipeline("jobs:\n  slow:\n    run: echo $$ > slow.pid; sleep 60\n")
    project.commit()
    proc = project.spawn("run", "--plain")
    try:
        pid_file = project.root / "slow.pid"
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert history(project) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert [r["status"] for r in history(project)] == ["interrupted"]


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
            [*_conveyor(), "run", "--plain", "-q"],
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
    monkeypatch.setenv("CONVEYOR_DB_URL", f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/x")
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


def _conveyor() -> list[str]:
    import sys

    return [sys.executable, "-m", "conveyor"]


def _free_port() -> int:
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
    data, port = os.path.join(base, "data"), _free_port()

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


def test_postgresql_history_shared_by_two_workspaces(
    postgres: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_DB_URL", postgres)
    first = tmp_path / "runner1"
    second = tmp_path / "runner2"
    projects = []
    for root in (first, second):
        root.mkdir()
        p = Project(root, capsys)
        p.pipeline(PIPELINE)
        p.commit()
        projects.append(p)
    # Two CI runners at once, each recording into the one database.
    threads = [
        threading.Thread(
            target=subprocess.run,
            args=([*_conveyor(), "run", "--plain", "-q"],),
            kwargs={"cwd": p.root, "check": True, "stdout": subprocess.DEVNULL},
        )
        for p in projects
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = history(projects[0])
    assert len(runs) == 2
    assert {r["workspace"] for r in runs} == {str(first), str(second)}
    shown = json.loads(projects[1].run("show", runs[0]["id"], "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["build", "test"]
    assert all(j["status"] == "success" for j in shown["jobs"])


# -- test cases from JUnit reports -------------------------------------------------------

TESTS = """
import pytest

def test_adds():
    assert 1 + 1 == 2

def test_subtracts():
    assert 2 - 1 == 1

def test_divides():
    assert 1 / 1 == 2, "one over one is not two"

@pytest.mark.skip(reason="not today")
def test_later():
    pass
"""


def test_junit_reports_are_recorded_with_every_case(project: Project) -> None:
    import sys

    project.write("tests/test_math.py", TESTS)
    project.pipeline(
        f"""
        jobs:
          test:
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=out/junit.xml
            reports:
              junit: out/*.xml
        """
    )
    project.commit()
    result = project.run("run")
    assert result.code == 1  # a test failed
    shown = json.loads(project.run("show", "--json").out)
    cases = {c["name"].rsplit(".", 1)[-1]: c for c in shown["tests"]}
    assert {n: c["status"] for n, c in cases.items()} == {
        "test_adds": "passed",
        "test_subtracts": "passed",
        "test_divides": "failed",
        "test_later": "skipped",
    }
    assert all(c["job"] == "test" for c in cases.values())
    assert "one over one is not two" in cases["test_divides"]["message"]
    assert cases["test_adds"]["duration"] is not None
    text = project.run("show").out
    assert "tests: 2 passed, 1 failed, 1 skipped (4 in all)" in text
    assert "✘ test: tests.test_math.test_divides: AssertionError: one over one is not two" in text


def test_a_hostile_report_is_refused_and_the_run_goes_on(project: Project) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        '<testsuite name="x"><testcase name="&lol2;"/></testsuite>\n'
    )
    project.write("junit.xml", bomb)
    project.pipeline("jobs:\n  test:\n    run: 'true'\n    reports:\n      junit: junit.xml\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert "warning: a report was not read: test:" in result.err
    assert json.loads(project.run("show", "--json").out)["tests"] == []


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


# -- stats -------------------------------------------------------------------------------


def _generate(url: str, pipeline: str, n: int) -> None:
    """n recorded runs of three jobs: `build` taking 1..n s (slower over time), `test`
    2 s and served from the cache every other run, `lint` failing in the last run."""
    from conveyor.history.record import RunRecord
    from conveyor.history.store import HistoryStore

    store = HistoryStore(url)
    now = time.time()
    for i in range(n):
        start = now - (n - i) * 60
        last = i == n - 1
        job_rows: list[dict[str, Any]] = [
            {"name": "build", "status": "success", "cached": False, "duration": float(i + 1)},
            {"name": "test", "status": "success", "cached": i % 2 == 1, "duration": 2.0},
            {"name": "lint", "status": "failed" if last else "success", "cached": False},
        ]
        for j in job_rows:
            j.setdefault("duration", 0.5)
            j.update(
                reason="",
                attempts=1,
                queued_at=start,
                started_at=start + 1,
                finished_at=start + 1 + j["duration"],
                queue_time=1.0,
                saved=2.0 if j["cached"] else None,
            )
        store.record(
            RunRecord(
                {
                    "id": f"{pipeline}-{i:05d}",
                    "pipeline": pipeline,
                    "workspace": "/w",
                    "trigger": "local",
                    "host": "h",
                    "conveyor_version": "0.1.0",
                    "started_at": start,
                    "finished_at": start + 30,
                    "status": "failed" if last else "success",
                    "wall_time": 30.0,
                    "critical_path": "[]",
                    "jobs_total": 3,
                    "jobs_cached": 1 if i % 2 == 1 else 0,
                },
                job_rows,
            )
        )
    store.close()


def test_stats_per_job_and_for_the_pipeline(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'gen.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(PIPELINE)  # name: hist
    _generate(url, "hist", 20)
    _generate(url, "other", 5)  # another pipeline in the same database: not counted
    result = project.run("stats", "--json")
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    pipe = figures["pipeline"]
    assert pipe["runs"] == 20
    assert pipe["success_rate"] == pytest.approx(0.95)
    assert pipe["saved"] == pytest.approx(20.0)  # 10 hits of 2 s
    jobs = {j["job"]: j for j in figures["jobs"]}
    assert figures["jobs"][0]["job"] == "build", "slowest first"
    build = jobs["build"]
    assert build["p50"] == pytest.approx(10.5)  # median of 1..20
    assert build["p95"] == pytest.approx(19.05)
    assert build["trend"] == pytest.approx(15.5 / 5.5 - 1)  # later half vs earlier half
    assert jobs["test"]["cache_hit_rate"] == pytest.approx(0.5)
    assert jobs["test"]["executed"] == 10
    assert jobs["lint"]["success_rate"] == pytest.approx(0.95)
    assert jobs["lint"]["queue_time"] == pytest.approx(1.0)
    assert [(a["kind"], a["job"]) for a in figures["advice"]] == [
        ("reliability", None),
        ("cache", "build"),  # never cached, 10.5 s median: worth a look
        ("trend", "build"),
        ("queue", None),
    ]
    advice = [a["message"] for a in figures["advice"]]
    assert advice[0].startswith(
        "95.0% of 20 runs succeeded, under the 99% target; failures by job: lint (1);"
    )
    assert advice[1].startswith("build executed in 20 of 20 runs (cache hit rate 0%), 10.5s each")
    assert advice[2].startswith("build got 182% slower")
    assert "build (1.0s), lint (1.0s), test (1.0s) on average" in advice[3]
    text = project.run("stats").out
    assert "success rate 95.0% (below the 99% target)" in text
    assert "what to look at:\n  - 95.0% of 20 runs succeeded" in text
    only = json.loads(project.run("stats", "--job", "test", "--json").out)
    assert [j["job"] for j in only["jobs"]] == ["test"]
    recent = json.loads(project.run("stats", "--since", "5m", "--json").out)
    assert recent["pipeline"]["runs"] == 4  # started 60, 120, 180, 240 s ago


def test_stats_capacity_from_real_runs(project: Project) -> None:
    import sys

    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    project.write("burn.py", burn)
    project.pipeline(
        f"""
        name: cap
        jobs:
          burn:
            run: {sys.executable} burn.py
            cache: false
        """
    )
    project.commit()
    assert project.run("run", "--jobs", "1").code == 0
    run = json.loads(project.run("show", "--json").out)
    assert run["cpus"] == os.cpu_count()
    assert run["memory_bytes"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert run["parallelism"] == 1
    assert run["platform"].startswith("Linux-")
    figures = json.loads(project.run("stats", "--json").out)
    [burner] = figures["jobs"]
    assert burner["cpu_time"] >= 0.6
    assert burner["peak_memory"] > 1 << 20, "a Python process: more than a MiB"
    cpus = os.cpu_count() or 1
    used = figures["pipeline"]["cpu_utilisation"]
    wall = figures["pipeline"]["mean_wall_time"]
    assert used == pytest.approx(burner["cpu_time"] / (wall * cpus))
    assert 0.6 / (wall * cpus) <= used <= 1.0 / cpus + 0.05, "one busy job: one CPU's worth"
    text = project.run("stats").out
    assert f"of the CPU time of {cpus} CPUs while runs were going" in text


def test_stats_advice_on_long_runs_and_jobs_that_vary() -> None:
    from conveyor.insights.stats import advise

    def job(name: str, p50: float, p95: float, hits: float) -> dict[str, Any]:
        return {
            "job": name,
            "runs": 10,
            "executed": round(10 * (1 - hits)),
            "failed": 0,
            "cache_hit_rate": hits,
            "p50": p50,
            "p95": p95,
            "trend": 0.0,
            "queue_time": 0.0,
        }

    pipeline = {"runs": 10, "success_rate": 1.0, "target": 0.99, "mean_wall_time": 720.0}
    figures = {
        "pipeline": pipeline,
        "jobs": [
            job("e2e", 300.0, 650.0, 0.0),  # slow, uncached, and all over the place
            job("unit", 20.0, 25.0, 0.0),  # under 5% of the wall time: left alone
            job("build", 200.0, 210.0, 0.9),  # mostly cached
        ],
    }
    assert [(a["kind"], a["job"]) for a in advise(figures)] == [
        ("duration", None),
        ("cache", "e2e"),
        ("variance", "e2e"),
    ]
    assert advise(figures)[0]["message"].startswith("runs take 12m00s on average, over the")
    pipeline["mean_wall_time"] = 300.0  # now unit's 20 s is over 5% of a run
    assert [(a["kind"], a["job"]) for a in advise(figures)] == [
        ("cache", "e2e"),
        ("cache", "unit"),
        ("variance", "e2e"),
    ]
    busy = {"pipeline": {**pipeline, "cpu_utilisation": 0.9}, "jobs": []}
    assert [a["kind"] for a in advise(busy)] == ["capacity"]
    assert advise(busy)[0]["message"].startswith("jobs kept the CPUs 90% busy")
    assert advise({"pipeline": {**pipeline, "runs": 0}, "jobs": []}) == []


def test_critical_path_and_what_each_job_could_save(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.history.record import RunRecord
    from conveyor.history.store import HistoryStore

    project.pipeline(
        """
        name: cp
        jobs:
          a: {run: 'true'}
          b: {run: 'true', needs: [a]}
          c: {run: 'true', needs: [a]}
          d: {run: 'true', needs: [b, c]}
        """
    )
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    store = HistoryStore(url)
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    store.record(
        RunRecord(
            {
                "id": "cp-1",
                "pipeline": "cp",
                "workspace": "/w",
                "trigger": "local",
                "host": "h",
                "conveyor_version": "0.1.0",
                "started_at": 100.0,
                "finished_at": 108.0,
                "status": "success",
                "wall_time": 8.0,
                "critical_path": "[]",
                "jobs_total": 4,
                "jobs_cached": 0,
            },
            [
                {"name": n, "status": "success", "reason": "", "cached": False, "attempts": 1}
                | {"duration": d}
                for n, d in durations.items()
            ],
        )
    )
    store.close()
    result = json.loads(project.run("critical-path", "cp-1", "--json").out)
    assert result["length"] == pytest.approx(7.0)
    assert [(s["job"], s["could_save"]) for s in result["chain"]] == [
        ("a", pytest.approx(1.0)),
        ("b", pytest.approx(3.0)),  # without b, a -> c -> d (4 s) is the longest
        ("d", pytest.approx(1.0)),
    ]
    text = project.run("critical-path").out
    assert "the longest chain of jobs through their needs takes 7.0s" in text
    assert project.run("critical-path", "nope").code == 2


# -- Prometheus metrics ------------------------------------------------------------------


def _families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], name: str, sample: str, **labels: str) -> float:
    for s in families[name].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no {sample} {labels}")


def test_metrics_count_runs_jobs_and_cache_hits(project: Project, tmp_path: Path) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run").code == 0  # both jobs from the cache
    result = project.run("metrics")
    assert result.code == 0, result.err
    families = _families(result.out)
    assert _value(families, "conveyor_runs", "conveyor_runs_total", status="success") == 2
    assert (
        _value(families, "conveyor_cache_requests", "conveyor_cache_requests_total", result="hit")
        == 2
    )
    assert (
        _value(families, "conveyor_cache_requests", "conveyor_cache_requests_total", result="miss")
        == 2
    )
    assert (
        _value(
            families,
            "conveyor_job_duration_seconds",
            "conveyor_job_duration_seconds_count",
            job="build",
        )
        == 1
    ), "only the execution, not the cache hit"
    assert (
        _value(families, "conveyor_jobs", "conveyor_jobs_total", job="test", status="success") == 2
    )
    textfile = tmp_path / "collector" / "conveyor.prom"
    textfile.parent.mkdir()
    assert project.run("metrics", "--textfile", str(textfile)).code == 0
    assert _families(textfile.read_text()).keys() == families.keys()
    cpu = _value(families, "conveyor_job_cpu_seconds", "conveyor_job_cpu_seconds_total", job="test")
    assert cpu >= 0
    as_json = json.loads(project.run("metrics", "--json").out)
    assert {f["name"] for f in as_json} == set(families)
    [runs] = [f for f in as_json if f["name"] == "conveyor_runs"]
    assert runs["type"] == "counter"
    assert [s["value"] for s in runs["samples"] if s["labels"].get("status") == "success"] == [2]


def _selectors(node: Any) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names it is filtered or grouped by) in a parsed PromQL tree."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        yield node.name, {m.name for m in node.matchers.matchers}
        return
    children = {
        "BinaryExpr": ("lhs", "rhs"),
        "AggregateExpr": ("expr", "param"),
        "ParenExpr": ("expr",),
        "MatrixSelector": ("vector_selector",),
    }.get(kind, ())
    grouped = set(node.modifier.labels) if kind == "AggregateExpr" and node.modifier else set()
    parts = [getattr(node, c) for c in children] + (list(node.args) if kind == "Call" else [])
    for part in parts:
        for name, labels in _selectors(part):
            yield name, labels | grouped


def test_grafana_dashboard_asks_only_for_what_conveyor_exports(
    project: Project, tmp_path: Path
) -> None:
    import promql_parser

    project.pipeline(
        PIPELINE.replace("echo building", "sleep 0.3").replace("echo testing", "exit 3")
        + "gates:\n  time: {max: 10m}\n  commands: {fails: {run: 'exit 1'}}\n"
    )
    project.commit()
    assert project.run("run").code == 1
    samples: dict[str, set[str]] = {}
    for family in _families(project.run("metrics").out).values():
        for s in family.samples:
            samples.setdefault(s.name, set()).update(s.labels)
    board_file = tmp_path / "board.json"
    done = project.run("metrics", "--grafana-dashboard", str(board_file))
    assert done.code == 0, done.err
    assert done.out == "", "the dashboard written: the metrics are not printed too"
    board = json.loads(board_file.read_text())
    assert board["templating"]["list"][1]["query"] == "label_values(conveyor_runs_total, pipeline)"
    titles = [p["title"] for p in board["panels"]]
    for wanted in ("Success rate", "Build duration (p50, p95)", "Queue time (p95)"):
        assert wanted in titles
    seen = set()
    for panel in board["panels"]:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            tree = promql_parser.parse(target["expr"])  # raises on a syntax error
            for name, labels in _selectors(tree):
                assert name in samples, f"{panel['title']}: {name} is not exported"
                assert labels <= samples[name], f"{panel['title']}: {labels - samples[name]}"
                seen.add(name)
    assert {
        "conveyor_job_cpu_seconds_total",
        "conveyor_job_peak_memory_bytes_bucket",
        "conveyor_gates_total",
    } <= seen
    families = _families(project.run("metrics").out)
    assert (
        _value(
            families,
            "conveyor_job_peak_memory_bytes",
            "conveyor_job_peak_memory_bytes_count",
            job="build",
        )
        == 1
    ), "the 0.3 s job's peak memory, sampled"
    saved = _value(families, "conveyor_cache_saved_seconds", "conveyor_cache_saved_seconds_total")
    assert saved == 0, "no hit yet: the series is there, at zero"
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]]
    assert len(set(boxes)) == len(boxes), "no two panels in the same place"


def test_metrics_pushed_to_a_pushgateway(project: Project) -> None:
    import http.server

    received: list[tuple[str, str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        project.pipeline(PIPELINE)
        project.commit()
        assert project.run("run").code == 0
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = project.run("metrics", "--push", url)
        assert result.code == 0, result.err
    finally:
        server.shutdown()
        server.server_close()
    assert [(m, p) for m, p, _ in received] == [("PUT", "/metrics/job/conveyor")]
    families = _families(received[0][2].decode())
    assert _value(families, "conveyor_runs", "conveyor_runs_total", status="success") == 1
    unreachable = project.run("metrics", "--push", f"http://127.0.0.1:{_free_port()}")
    assert unreachable.code == 2
    assert "cannot push the metrics to http://127.0.0.1:" in unreachable.err


# -- flaky -------------------------------------------------------------------------------


def test_flaky_jobs_and_tests_on_the_same_inputs(project: Project) -> None:
    import sys

    coin = project.root.parent / "coin"  # outside the workspace: not an input
    project.write(
        "tests/test_coin.py",
        f"""
        from pathlib import Path

        def test_steady():
            assert True

        def test_coin():
            assert Path({str(coin)!r}).read_text() == "heads"
        """,
    )
    project.pipeline(
        f"""
        name: coin
        jobs:
          test:
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=out/junit.xml
            reports:
              junit: out/junit.xml
        """
    )
    project.commit()
    for side, code in (("heads", 0), ("tails", 1), ("heads", 0)):
        coin.write_text(side)
        assert project.run("run", "--no-cache").code == code
    assert project.run("flaky").code == 0
    found = json.loads(project.run("flaky", "--quarantine", "--json").out)
    [job] = found["jobs"]
    assert (job["job"], job["flips"], job["passed"], job["failed"]) == ("test", 2, 2, 1)
    [test] = found["tests"]
    assert test["test"].endswith("test_coin")
    assert (test["flips"], test["passed"], test["failed"]) == (2, 2, 1)
    assert test["commit"] == project.git("rev-parse", "HEAD")
    quarantined = json.loads((project.root / ".conveyor" / "quarantine.json").read_text())
    assert quarantined == {"tests": [{"job": "test", "test": test["test"]}]}
    text = project.run("flaky").out
    assert "flaky tests (same commit, different outcomes)" in text
    assert "2 flip(s), 2 passed, 1 failed" in text


def test_a_steady_failure_is_not_flaky(project: Project) -> None:
    project.pipeline("name: steady\njobs:\n  broken:\n    run: exit 1\n")
    project.commit()
    for _ in range(3):
        assert project.run("run", "--no-cache").code == 1
    assert json.loads(project.run("flaky", "--json").out) == {"jobs": [], "tests": []}


# -- traces ------------------------------------------------------------------------------


def test_chrome_trace_has_a_span_per_job_on_separate_rows_when_parallel(
    project: Project, tmp_path: Path
) -> None:
    project.pipeline(
        """
        name: tr
        jobs:
          a: {run: sleep 0.3}
          b: {run: sleep 0.3}
          c: {run: 'true', needs: [a, b]}
        """
    )
    project.commit()
    assert project.run("run", "--jobs", "2").code == 0
    out = tmp_path / "trace.json"
    said = project.run("trace", "--chrome", str(out), "--json")
    assert said.code == 0
    assert json.loads(said.out)["spans"] == 4
    events = json.loads(out.read_text())["traceEvents"]
    spans = {e["name"]: e for e in events if e["ph"] == "X" and e["cat"] != "run"}
    assert set(spans) == {"a", "b", "c"}
    assert spans["a"]["tid"] != spans["b"]["tid"], "a and b ran at once: two rows"
    assert spans["a"]["dur"] >= 250_000  # microseconds
    assert spans["c"]["ts"] >= spans["a"]["ts"] + spans["a"]["dur"]
    assert spans["c"]["args"]["status"] == "success"
    [run] = [e for e in events if e.get("cat") == "run"]
    assert run["dur"] >= spans["c"]["ts"] + spans["c"]["dur"] - 1000


def test_otlp_trace_sent_to_a_collector(project: Project) -> None:
    import http.server

    received: list[tuple[str, str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project.pipeline(PIPELINE.replace("echo testing", "exit 2"))
        project.commit()
        assert project.run("run").code == 1
        port = server.server_address[1]
        result = project.run("trace", "--otlp", f"http://127.0.0.1:{port}")
        assert result.code == 0, result.err
    finally:
        server.shutdown()
        server.server_close()
    [(path, ctype, body)] = received
    assert (path, ctype) == ("/v1/traces", "application/json")
    spans = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root = spans[0]
    assert len(root["traceId"]) == 32
    assert len(root["spanId"]) == 16
    assert root["status"]["code"] == 2  # the run failed
    by_name = {s["name"]: s for s in spans[1:]}
    assert set(by_name) == {"build", "test"}
    assert all(s["parentSpanId"] == root["spanId"] for s in by_name.values())
    assert all(s["traceId"] == root["traceId"] for s in by_name.values())
    assert by_name["test"]["status"]["code"] == 2
    assert int(by_name["build"]["endTimeUnixNano"]) > int(by_name["build"]["startTimeUnixNano"])
    attrs = {a["key"]: a["value"] for a in by_name["test"]["attributes"]}
    assert attrs["conveyor.exit_code"] == {"intValue": "2"}
    assert project.run("trace").code == 2, "no destination is a usage error"
    gone = project.run("trace", "--otlp", f"http://127.0.0.1:{_free_port()}")
    assert gone.code == 2
    assert "cannot send the trace to" in gone.err


# -- the HTML report ---------------------------------------------------------------------


def test_html_report_is_self_contained_and_complete(project: Project, tmp_path: Path) -> None:
    import sys
    from html.parser import HTMLParser

    project.write(
        "tests/test_x.py",
        """
        def test_fine():
            pass

        def test_hostile_message():
            assert False, "<script>alert(1)</script>"
        """,
    )
    project.pipeline(
        f"""
        name: rep
        jobs:
          build:
            run: echo built
          test:
            needs: [build]
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=j.xml
            reports: {{junit: j.xml}}
        """
    )
    project.commit()
    assert project.run("run").code == 1
    out = tmp_path / "scan.html"
    said = project.run("report", "--html", str(out), "--json")
    assert said.code == 0
    assert json.loads(said.out) == {
        "run_id": history(project)[0]["id"],
        "html": str(out),
        "bytes": out.stat().st_size,
    }
    text = out.read_text()

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.urls: list[str] = []
            self.jobs: list[str] = []
            self.status = ""
            self._in_status = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            values = dict(attrs)
            self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
            if values.get("data-job"):
                self.jobs.append(values["data-job"] or "")
            self._in_status = values.get("id") == "status"

        def handle_data(self, data: str) -> None:
            if self._in_status:
                self.status += data
                self._in_status = False

    page = Collect()
    page.feed(text)
    assert "script" not in page.tags, "no script, and the hostile message is escaped"
    assert page.urls == [], "nothing fetched from anywhere"
    assert page.jobs == ["build", "test"]
    assert page.status == "failed"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "1 failed, 1 passed" in text
    assert "critical path" in text


# The page as Chromium lays it out: a script added to a copy of the report measures every
# bar against its lane and writes the figures into the DOM that --dump-dom prints.
_PROBE = """<script>
const out = {bars: {}, resources: performance.getEntriesByType('resource').length,
  overflow: document.documentElement.scrollWidth > innerWidth};
for (const row of document.querySelectorAll('tr[data-job]')) {
  const lane = row.querySelector('.lane').getBoundingClientRect();
  const bar = row.querySelector('.bar');
  const r = bar.getBoundingClientRect();
  out.bars[row.dataset.job] = {left: r.left - lane.left, right: r.right - lane.left,
    lane: lane.width, height: r.height, color: getComputedStyle(bar).backgroundColor};
}
out.failures = [...document.querySelectorAll('h3[id^="failure-"]')].map(
  h => [h.textContent, h.nextElementSibling.nextElementSibling.textContent]);
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(out);
document.body.append(pre);
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CONVEYOR_TESTS_NEED_BROWSER"):
        pytest.fail("CI installs Chromium; it is not on PATH")
    pytest.skip("Chromium is not installed (.ci/run installs it)")


def _laid_out(page: Path, tmp_path: Path) -> dict[str, Any]:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1280,900",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    start = done.stdout.find('<pre id="probe">')
    assert start >= 0, f"Chromium did not render the page: {done.stderr[-2000:]}"
    import html

    body = done.stdout[start + len('<pre id="probe">') : done.stdout.index("</pre>", start)]
    data: dict[str, Any] = json.loads(html.unescape(body))
    return data


def test_html_report_as_chromium_lays_it_out(project: Project, tmp_path: Path) -> None:
    _chromium()
    project.pipeline(
        f"""
        name: rep
        jobs:
          build:
            run: sleep 0.4
          test:
            needs: [build]
            run: sleep 0.3; echo '{"word " * 150}' >&2; echo {"x" * 600}; exit 1
        """
    )
    project.commit()
    assert project.run("run").code == 1
    assert project.run("run").code == 1, "the second run takes build from the cache"
    first, second = (r["id"] for r in reversed(history(project)))
    pages = {}
    for run in (first, second):
        out = tmp_path / f"{run}.html"
        assert project.run("report", run, "--html", str(out)).code == 0
        pages[run] = _laid_out(out, tmp_path)

    for page in pages.values():
        assert page["resources"] == 0, "the page loads nothing"
        assert not page["overflow"], "nothing runs off the side of a 1280-pixel window"
        build, test = page["bars"]["build"], page["bars"]["test"]
        assert test["color"] == "rgb(207, 34, 46)", "a failed job is red"
        assert test["lane"] >= 300
        assert build["right"] - build["left"] >= 1, "even an instant job shows"
        assert build["right"] <= test["left"] + 1, "test starts after the build it needs"
        assert build["left"] >= 0
        assert test["right"] <= test["lane"] + 0.5
        [(heading, log)] = page["failures"]
        assert heading == "test: exit code 1"
        assert "x" * 600 in log, "the log tail, wrapped to fit"
        assert "word word" in log
    built, cached = pages[first]["bars"]["build"], pages[second]["bars"]["build"]
    assert built["color"] == "rgb(9, 105, 218)", "a job that ran is blue"
    assert cached["color"] == "rgb(140, 149, 159)", "a cached job is grey"
    assert built["right"] - built["left"] > built["lane"] / 3, "the 0.4 s build fills its share"
    assert cached["right"] - cached["left"] < cached["lane"] / 10, "a cache hit is a sliver"


# -- the build_output hand-off -----------------------------------------------------------


def test_build_output_hands_over_every_artifact_with_its_digest(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from ruamel.yaml import YAML

    project.pipeline(
        """
        name: shop
        jobs:
          build:
            run: mkdir -p dist && echo "app $RANDOM" > dist/shop.tar.gz && echo x > dist/log.txt
            outputs: [dist/]
            artifacts: {paths: ["dist/*.tar.gz"]}
          manifests:
            run: mkdir -p deploy && echo kind=Deployment > deploy/shop.yaml
            outputs: [deploy/]
            artifacts: {paths: [deploy/], type: deployment-manifest}
          docs:
            run: mkdir -p site && echo '<h1>shop</h1>' > site/index.html
            outputs: [site/index.html]
            artifacts: {paths: [site/], type: documentation}
          test:
            needs: [build]
            run: test -s dist/shop.tar.gz && test "$FAIL" != 1
            pass_env: [FAIL]
        """
    )
    project.commit()
    project.git("tag", "v1.4.0")
    monkeypatch.setenv("FAIL", "1")
    assert project.run("run").code == 1
    monkeypatch.delenv("FAIL")
    assert project.run("run").code == 0
    for path in ("dist", "deploy", "site"):
        shutil.rmtree(project.root / path)
    assert project.run("run").code == 0, "the third run restores everything from the cache"

    shown = project.run("show", "--format", "build-output")
    assert shown.code == 0, shown.err
    doc = YAML(typ="safe").load(shown.out)["build_output"]
    as_json = project.run("show", "--format", "build-output", "--json")
    assert json.loads(as_json.out) == {"build_output": doc}, "the same hand-off either way"

    latest = history(project)[0]
    assert doc["pipeline"] == "shop"
    assert doc["pipeline_config"] == "conveyor.yml"
    assert doc["run"]["id"] == latest["id"]
    assert doc["run"]["tag"] == "v1.4.0"
    by_location = {a["location"]: a for a in doc["artifacts"]}
    assert sorted(by_location) == [
        "deploy/shop.yaml",
        "dist/log.txt",
        "dist/shop.tar.gz",
        "site/index.html",
    ]
    for location, artifact in by_location.items():
        data = (project.root / location).read_bytes()  # restored by the cache
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest(), location
        assert artifact["size_bytes"] == len(data)
        assert artifact["metadata"] == {
            "version": "v1.4.0",
            "commit_hash": latest["commit"],
            "build_number": 3,
            "run_id": latest["id"],
        }
    assert by_location["dist/shop.tar.gz"]["type"] == "application"
    assert by_location["dist/log.txt"]["type"] == "output", "an output not among artifacts"
    assert by_location["dist/shop.tar.gz"]["job"] == "build"
    assert doc["deployment_manifests"] == ["deploy/shop.yaml"]
    assert doc["documentation"] == ["site/index.html"]
    metrics = doc["metrics"]
    assert metrics["success_rate"] == "66.7%", "two of the three runs succeeded"
    assert metrics["success_rate_runs"] == 3
    assert metrics["success_rate_target"] == "99%"
    assert metrics["jobs"] == 4
    assert metrics["jobs_cached"] == 4
    assert metrics["build_time_seconds"] == pytest.approx(latest["wall_time"], abs=0.001)

    first = history(project)[-1]["id"]
    early = json.loads(project.run("show", first, "--format", "build-output", "--json").out)
    early_doc = early["build_output"]
    assert early_doc["run"]["status"] == "failed"
    assert early_doc["metrics"]["success_rate"] == "0.0%", "only the runs up to that one count"
    assert {a["metadata"]["build_number"] for a in early_doc["artifacts"]} == {1}
    assert "dist/shop.tar.gz" in {a["location"] for a in early_doc["artifacts"]}, (
        "the build succeeded in the failed run: its artifact was produced"
    )

    assert project.run("run").code == 0, "outputs in place: the hits this workspace recorded"
    again = json.loads(project.run("show", "--format", "build-output", "--json").out)
    assert {
        a["location"]: (a["sha256"], a["type"]) for a in again["build_output"]["artifacts"]
    } == {k: (a["sha256"], a["type"]) for k, a in by_location.items()}


# -- gates in the history ----------------------------------------------------------------


def test_gates_are_recorded_shown_reported_and_counted(project: Project, tmp_path: Path) -> None:
    project.pipeline(
        """
        name: gated
        gates:
          time: {max: 10m}
        jobs:
          build:
            run: mkdir -p dist && head -c 3000 /dev/zero > dist/app.js
            outputs: [dist/]
            gates:
              sizes: {files: {"*.js": 1KB}, level: warn}
              commands: {ok: {run: "true"}, broken: {run: "exit 4"}}
        """
    )
    project.commit()
    assert project.run("run").code == 1
    shown = json.loads(project.run("show", "--json").out)
    assert [(g["scope"], g["gate"], g["passed"], g["level"]) for g in shown["gates"]] == [
        ("build", "command:broken", False, "error"),
        ("build", "command:ok", True, "error"),
        ("build", "sizes[*.js]", False, "warn"),
        ("pipeline", "time", True, "error"),
    ]
    text = project.run("show").out
    assert "command:broken  build     exit 4" in text
    assert "FAILED" in text
    assert "failed (warn)" in text

    out = tmp_path / "scan.html"
    assert project.run("report", "--html", str(out)).code == 0
    page = out.read_text()
    assert '<tr data-gate="build:command:broken">' in page
    assert "(2 of 4 passed)" in page

    families = _families(project.run("metrics").out)
    assert _value(families, "conveyor_gates", "conveyor_gates_total", gate="time") == 1
    assert (
        _value(
            families, "conveyor_gates", "conveyor_gates_total", gate="sizes[*.js]", result="warned"
        )
        == 1
    )
    assert (
        _value(
            families,
            "conveyor_gates",
            "conveyor_gates_total",
            gate="command:broken",
            result="failed",
        )
        == 1
    )


def test_old_run_directories_go_once_recorded(project: Project) -> None:
    project.pipeline(
        """
        name: kept
        history: {keep_runs: 3}
        jobs:
          build:
            run: echo building
            cache: false
        """
    )
    project.commit()
    counts = []
    for _ in range(6):
        assert project.run("run").code == 0
        counts.append(len(project.runs()))
    # Pruned to 3 when a fifth appeared (not at every run: a tenth over, at least one).
    assert counts == [1, 2, 3, 4, 3, 4]
    recorded = history(project)
    assert len(recorded) == 6, "the two removed were recorded first"
    oldest = recorded[-1]["id"]
    assert not (project.root / ".conveyor" / "runs" / oldest).exists()
    shown = json.loads(project.run("show", oldest, "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["build"]
