"""Remote execution as a user meets it: `conveyor run` sending jobs to a real BuildGrid
(its SQL scheduler on a real PostgreSQL) whose `conveyor worker`s run them. Outputs,
logs and values come back into the workspace as if the jobs had run here; Ctrl-C
cancels the operations on the workers; a worker killed mid-job loses nothing; a server
that does not execute never fails the run.

Each test has workers of its own: they offer a `pool` platform property named for the
test, which its jobs ask for (the server has other tests' workers too)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.reapi import ExecServer, Server, workers


def _pool() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout:g} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


PIPELINE = """
remote:
  url: {url}
  execute: true
jobs:
  build:
    inputs: [src/*.txt, tools/*.sh]
    outputs: [dist/]
    platform: {{pool: {pool}}}
    run: |
      sh tools/make.sh
      pwd > dist/where
      echo "version=1.2.$(cat src/a.txt | wc -c)" >> "$CONVEYOR_OUTPUT"
      echo "built for $CONVEYOR_JOB"
  test:
    needs: [build]
    inputs: [src/*.txt]
    outputs: [report.txt]
    platform: {{pool: {pool}}}
    env: {{VERSION: "${{{{ needs.build.values.version }}}}"}}
    run: |
      test -x dist/app
      wc -l < dist/all.txt > report.txt
      echo "tested $VERSION"
  here:
    executor: local
    needs: [test]
    run: cat report.txt && pwd > here.txt
"""


def test_jobs_run_on_workers_and_their_outputs_logs_and_values_come_back(
    execution_server: ExecServer, project: Project, tmp_path: Path
) -> None:
    pool = _pool()
    project.pipeline(PIPELINE.format(url=execution_server.url, pool=pool))
    project.write("src/a.txt", "alpha\n")
    project.write("src/b.txt", "beta\n")
    project.write(
        "tools/make.sh",
        "mkdir -p dist\ncat src/*.txt > dist/all.txt\nprintf '#!/bin/sh\\necho app\\n' > dist/app"
        "\nchmod +x dist/app\n",
    )
    project.write(".gitignore", "dist/\nreport.txt\nhere.txt\n")
    project.commit()
    with workers(execution_server, tmp_path, 1, "--slots", "2", "--platform", f"pool={pool}") as (
        worker,
    ):
        first = project.run("run", "--plain")
        assert first.code == 0, first.out + first.err
        # Where each ran, said in its log and kept in the history.
        assert first.out.count("[conveyor] ran on conveyor-worker@") == 2, first.out
        assert "built for build" in first.out
        assert "tested 1.2.6" in first.out, "the value came back from the worker"
        dist = project.root / "dist"
        assert (dist / "all.txt").read_text() == "alpha\nbeta\n"
        assert os.access(dist / "app", os.X_OK), "the executable bit came back"
        where = (dist / "where").read_text().strip()
        assert not where.startswith(str(project.root)), "it ran in the worker's directory"
        assert (project.root / "report.txt").read_text().strip() == "2"
        assert (project.root / "here.txt").read_text().strip() == str(project.root)
        shown = json.loads(project.run("show", "--json").out)
        ran_on = {j["name"]: j["worker"] for j in shown["jobs"]}
        assert ran_on["build"].startswith("conveyor-worker@")
        assert ran_on["test"].startswith("conveyor-worker@")
        assert ran_on["here"] is None
        assert worker.log().count(" exit 0") == 2, worker.log()

        # Stored like a local run's: nothing changed, nothing sent to the workers.
        second = project.run("run", "--plain")
        assert second.code == 0, second.err
        assert "✔ build cached" in second.out
        assert "✔ test cached" in second.out
        assert worker.log().count(" exit 0") == 2, "no new lease"

        # A change reaches the worker through the input root.
        project.write("src/b.txt", "beta\ngamma\n")
        third = project.run("run", "--plain", "test")
        assert third.code == 0, third.out + third.err
        assert (dist / "all.txt").read_text() == "alpha\nbeta\ngamma\n"
        assert (project.root / "report.txt").read_text().strip() == "3"


def test_a_failed_remote_job_fails_the_run_and_its_retry_runs_again(
    execution_server: ExecServer, project: Project, tmp_path: Path
) -> None:
    pool = _pool()
    tally = tmp_path / "attempts"
    project.pipeline(
        f"""
        remote: {{url: "{execution_server.url}", execute: true}}
        jobs:
          flaky:
            inputs: [conveyor.yml]
            platform: {{pool: {pool}}}
            retries: 1
            run: echo attempt >> {tally} && echo "it broke" && exit 3
        """
    )
    project.commit()
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool}"):
        result = project.run("run", "--plain")
        assert result.code == 1, result.out + result.err
        assert "it broke" in result.out
        assert "exit code 3" in result.out
        # The server keeps failed results; the retry skipped its cache and really ran.
        assert tally.read_text().count("attempt") == 2
        # The next run (another machine, say) runs it again too: a failure is never
        # replayed from the server's cache.
        again = project.run("run", "--plain")
        assert again.code == 1, again.out + again.err
        assert tally.read_text().count("attempt") == 4


def test_ctrl_c_cancels_the_operations_and_the_workers_stop_the_jobs(
    execution_server: ExecServer, project: Project, tmp_path: Path
) -> None:
    pool = _pool()
    pidfile = tmp_path / "pid"
    project.pipeline(
        f"""
        remote: {{url: "{execution_server.url}", execute: true}}
        jobs:
          slow:
            inputs: [conveyor.yml]
            platform: {{pool: {pool}}}
            run: echo $$ > {pidfile} && sleep 60
        """
    )
    project.commit()
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool}") as (worker,):
        proc = project.spawn("run", "--plain")
        pid = int(_wait_for(pidfile))
        assert _alive(pid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, out + err
        assert "slow cancelled" in out or "cancelled" in out, out
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the job kept running on the worker"
        worker.wait_for("cancelled", timeout=10)


def test_a_worker_killed_mid_job_loses_nothing(
    execution_server: ExecServer, project: Project, tmp_path: Path
) -> None:
    pool = _pool()
    starts = tmp_path / "starts"
    project.pipeline(
        f"""
        remote: {{url: "{execution_server.url}", execute: true}}
        jobs:
          work:
            inputs: [conveyor.yml]
            outputs: [out.txt]
            platform: {{pool: {pool}}}
            run: echo start >> {starts} && sleep 2 && echo done > out.txt
        """
    )
    project.commit()
    with workers(execution_server, tmp_path, 2, "--platform", f"pool={pool}") as both:
        proc = project.spawn("run", "--plain")
        _wait_for(starts)
        # The worker with a lease directory is the one running the job.
        busy = [w for w in both if any((w.directory / "work").glob("*"))]
        assert len(busy) == 1, [w.log() for w in both]
        time.sleep(0.5)  # past the job's registration with the worker's watchdog
        busy[0].signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
    assert (project.root / "out.txt").read_text() == "done\n"
    assert starts.read_text().count("start") == 2, "requeued and run by the other worker"


def test_a_server_that_does_not_execute_never_fails_the_run(
    buildgrid: Server, project: Project
) -> None:
    project.pipeline(
        f"""
        remote: {{url: "{buildgrid.url}"}}
        jobs:
          build:
            inputs: [conveyor.yml]
            outputs: [out.txt]
            executor: remote
            run: echo here > out.txt
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert (project.root / "out.txt").read_text() == "here\n"
    assert "remote execution at " in result.err
    assert "is unavailable" in result.err
    assert result.err.count("remote execution at ") == 1, "one warning"


def test_executor_remote_without_a_remote_runs_here_with_a_warning(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build: {inputs: [conveyor.yml], executor: remote, run: echo ran > out.txt}
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.err
    assert (project.root / "out.txt").exists()
    assert "job 'build' says `executor: remote` but no remote is set" in result.err


@pytest.mark.parametrize("flag", ["--no-remote"])
def test_no_remote_runs_remote_jobs_here(
    execution_server: ExecServer, project: Project, flag: str
) -> None:
    project.pipeline(
        f"""
        remote: {{url: "{execution_server.url}", execute: true}}
        jobs:
          build: {{inputs: [conveyor.yml], run: pwd > where.txt}}
        """
    )
    project.commit()
    result = project.run("run", "--plain", flag)
    assert result.code == 0, result.err
    assert (project.root / "where.txt").read_text().strip() == str(project.root)
    assert "ran on" not in result.out


def test_a_server_restarted_mid_job_is_followed_again(
    execution_server: ExecServer, project: Project, tmp_path: Path
) -> None:
    """The operation lives in the server's database: after a restart, the run asks for
    it by name (WaitExecution) and gets the job's result."""
    pool = _pool()
    started = tmp_path / "started"
    project.pipeline(
        f"""
        remote: {{url: "{execution_server.url}", execute: true}}
        jobs:
          work:
            inputs: [conveyor.yml]
            outputs: [out.txt]
            platform: {{pool: {pool}}}
            run: echo go > {started} && sleep 4 && echo done > out.txt
        """
    )
    project.commit()
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool}"):
        proc = project.spawn("run", "--plain")
        _wait_for(started)
        execution_server.stop()
        execution_server.start()
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err
    assert "following the operation again (WaitExecution)" in out, out
    assert (project.root / "out.txt").read_text() == "done\n"
