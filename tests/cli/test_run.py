"""`conveyor run` on real processes: parallelism, failures, retries, timeouts, logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project


def summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def by_name(data: dict[str, Any]) -> dict[str, Any]:
    return {j["name"]: j for j in data["jobs"]}


def test_two_sleeping_jobs_overlap(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          a:
            run: date +%s.%N > a.start; sleep 0.6; date +%s.%N > a.end
          b:
            run: date +%s.%N > b.start; sleep 0.6; date +%s.%N > b.end
        """
    )
    result = project.run("run", "--jobs", "2")
    assert result.code == 0, result.out + result.err
    t = {n: float((project.root / n).read_text()) for n in ("a.start", "a.end", "b.start", "b.end")}
    # Each started before the other ended: they really ran at the same time.
    assert t["a.start"] < t["b.end"]
    assert t["b.start"] < t["a.end"]


def test_jobs_1_runs_one_at_a_time_in_dependency_order(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          c:
            needs: [a, b]
            run: echo c >> order
          a:
            run: echo a >> order; sleep 0.2
          b:
            run: echo b >> order
        """
    )
    result = project.run("run", "--jobs", "1")
    assert result.code == 0
    assert (project.root / "order").read_text().split() == ["a", "b", "c"]


def test_longest_chain_starts_first(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          short:
            run: echo short >> order
          long1:
            run: echo long1 >> order
          long2:
            needs: [long1]
            run: echo long2 >> order
          long3:
            needs: [long2]
            run: echo long3 >> order
        """
    )
    assert project.run("run", "--jobs", "1").code == 0
    assert (project.root / "order").read_text().split()[0] == "long1"


def test_fail_fast_cancels_running_and_skips_the_rest(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          bad:
            run: sleep 0.2; echo broken; exit 3
          slow:
            run: sleep 30
          after:
            needs: [bad]
            run: echo never
          other:
            needs: [slow]
            run: echo never
        """
    )
    result = project.run("run", "--jobs", "2", "--kill-grace", "1s")
    assert result.code == 1
    jobs = by_name(summary(project))
    assert jobs["bad"]["status"] == "failed"
    assert jobs["bad"]["exit_code"] == 3
    assert jobs["bad"]["reason"] == "exit code 3"
    assert jobs["slow"]["status"] == "cancelled"
    assert jobs["slow"]["reason"].startswith("cancelled: 'bad' failed (fail-fast")
    assert jobs["after"]["status"] == "skipped"
    assert jobs["other"]["status"] == "skipped"
    assert jobs["slow"]["duration"] < 10
    assert "Run failed" in result.out


def test_fail_fast_starts_nothing_after_the_failure_even_if_handed_over(
    project: Project,
) -> None:
    """Workers are given their next job ahead of time; a failure still stops it."""
    project.pipeline(
        """
        jobs:
          bad:
            run: exit 3
          b:
            run: touch b.ran
          c:
            run: touch c.ran
          d:
            run: touch d.ran
        """
    )
    result = project.run("run", "--jobs", "1")
    assert result.code == 1
    jobs = by_name(summary(project))
    assert jobs["bad"]["status"] == "failed"
    for name in ("b", "c", "d"):
        assert jobs[name]["status"] == "skipped", name
        assert jobs[name]["reason"].startswith("not started: 'bad' failed (fail-fast"), name
        assert not (project.root / f"{name}.ran").exists(), f"{name} ran after the failure"


def test_keep_going_still_runs_what_was_handed_over(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          bad:
            run: exit 3
          b:
            run: touch b.ran
          c:
            run: touch c.ran
        """
    )
    assert project.run("run", "--jobs", "1", "--keep-going").code == 1
    assert (project.root / "b.ran").exists()
    assert (project.root / "c.ran").exists()


def test_keep_going_runs_independent_branches(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          bad:
            run: exit 1
          good:
            run: sleep 0.3; echo fine
          after-bad:
            needs: [bad]
            run: echo never
          after-after:
            needs: [after-bad]
            run: echo never
          after-good:
            needs: [good]
            run: echo yes > after-good.txt
        """
    )
    result = project.run("run", "--keep-going", "--jobs", "2")
    assert result.code == 1
    jobs = by_name(summary(project))
    assert jobs["good"]["status"] == "success"
    assert jobs["after-good"]["status"] == "success"
    assert (project.root / "after-good.txt").exists()
    assert jobs["after-bad"]["status"] == "skipped"
    assert jobs["after-bad"]["reason"] == "needs 'bad', which failed"
    assert jobs["after-after"]["reason"] == (
        "needs 'after-bad', which was skipped because 'bad' failed"
    )


def test_allow_failure_does_not_fail_the_run(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            run: exit 4
            allow_failure: true
          next:
            needs: [flaky]
            run: echo ran > next.txt
        """
    )
    result = project.run("run")
    assert result.code == 0
    jobs = by_name(summary(project))
    assert jobs["flaky"]["status"] == "failed"
    assert jobs["flaky"]["allowed_failure"] is True
    assert (project.root / "next.txt").exists()
    assert "failed (allowed)" in result.out


def test_retries_with_backoff_until_success(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            run: |
              n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
              echo "attempt $n"
              test $n -ge 3
            retries: {max: 3, delay: 50ms, backoff: 2}
        """
    )
    result = project.run("run")
    assert result.code == 0, result.out
    job = by_name(summary(project))["flaky"]
    assert job["status"] == "success"
    assert job["attempts"] == 3
    assert result.out.count("retrying in") == 2
    log = Path(job["log_path"]).read_text()
    assert "attempt 1" in log
    assert "attempt 3" in log
    assert "--- conveyor: attempt 2 ---" in log


def test_retries_exhausted_reports_attempts(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          broken:
            run: exit 2
            retries: {max: 1, delay: 10ms}
        """
    )
    assert project.run("run").code == 1
    job = by_name(summary(project))["broken"]
    assert job["attempts"] == 2
    assert job["reason"] == "exit code 2 (after 2 attempts)"


def test_secrets_are_masked_everywhere(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value-42")
    project.pipeline(
        """
        jobs:
          leak:
            secrets: [API_TOKEN]
            run: |
              echo "token is $API_TOKEN"
              echo "again:$API_TOKEN:" >&2
        """
    )
    result = project.run("run", "--json")
    assert result.code == 0
    run_dir = project.runs()[-1]
    everything = result.out + result.err
    everything += "".join(p.read_text() for p in run_dir.rglob("*") if p.is_file())
    assert "s3cr3t-value-42" not in everything
    log = (run_dir / "logs" / "leak.log").read_text()
    assert log.splitlines() == ["token is ***", "again:***:"]


def test_missing_secret_stops_before_anything_runs(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          deploy:
            secrets: [DEPLOY_KEY]
            run: touch ran
        """
    )
    result = project.run("run")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "error: job 'deploy' needs the secret DEPLOY_KEY, which is not set in the environment"
    )
    assert not (project.root / "ran").exists()


def test_jobs_get_only_declared_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSED", "yes")
    monkeypatch.setenv("NOT_PASSED", "leak")
    project.pipeline(
        """
        env: {TOP: top}
        jobs:
          show:
            env: {OWN: own, TOP: overridden}
            pass_env: [PASSED]
            matrix: {py: ["3.12"]}
            run: echo "$TOP $OWN $PASSED ${NOT_PASSED:-unset} $CONVEYOR_JOB $CONVEYOR_MATRIX_PY"
        """
    )
    result = project.run("run")
    assert result.code == 0
    assert "overridden own yes unset show (py=3.12) 3.12" in result.out


def test_dir_sets_the_working_directory(project: Project) -> None:
    (project.root / "sub" / "deeper").mkdir(parents=True)
    project.pipeline(
        """
        jobs:
          where:
            dir: sub/deeper
            run: pwd > here.txt
        """
    )
    assert project.run("run").code == 0
    assert (project.root / "sub" / "deeper" / "here.txt").read_text().strip().endswith("sub/deeper")


def test_missing_dir_fails_the_job_clearly(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          where:
            dir: nowhere
            run: pwd
        """
    )
    assert project.run("run").code == 1
    job = by_name(summary(project))["where"]
    assert job["reason"].startswith("working directory does not exist:")


def test_run_selected_jobs_and_what_they_need(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: touch built
          test:
            needs: [build]
            run: touch tested
          docs:
            run: touch docs
        """
    )
    assert project.run("run", "test").code == 0
    assert (project.root / "built").exists()
    assert (project.root / "tested").exists()
    assert not (project.root / "docs").exists()


def test_only_runs_the_named_jobs_alone_and_uncached(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: echo "v=7" >> "$CONVEYOR_OUTPUT"; echo built >> built.log
          test:
            needs: [build]
            inputs: [conveyor.yml]
            run: echo "tested with v=${{ needs.build.values.v }}" | tee -a tested.log
        """
    )
    project.commit()

    planned = project.run("run", "--dry-run", "--only", "test")
    ran = project.run("run", "--plain", "--only", "test")
    again = project.run("run", "--plain", "--only", "test")

    assert "selected (--only: what it needs is not run)" in planned.out, planned.out
    assert "not cached: --only left out what it needs (build)" in planned.out
    assert ran.code == 0, ran.out + ran.err
    assert not (project.root / "built.log").exists(), "build was not run"
    assert "needs.build.values.v is empty: 'build' is not in this run (--only)" in ran.out
    # Never served from the cache, nor stored: its key could not cover build's outputs.
    assert again.code == 0
    assert (project.root / "tested.log").read_text().splitlines() == ["tested with v="] * 2
    whole = project.run("run", "--plain", "test")
    assert "tested with v=7" in whole.out, "without --only, build runs and test reruns"
    bare = project.run("run", "--only")
    assert bare.code == 2
    assert "--only runs the jobs named" in bare.err


PY = sys.executable  # never a python3 from PATH: a fresh virtualenv may lack what it has


def test_summary_events_and_logs_are_written(project: Project) -> None:
    project.pipeline(
        f"""
        jobs:
          hello:
            run: echo hello; {PY} -c "x = bytearray(30_000_000); import time; time.sleep(0.8)"
        """
    )
    result = project.run("run", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    run_dir = project.runs()[-1]
    assert data == json.loads((run_dir / "summary.json").read_text())
    job = data["jobs"][0]
    assert job["status"] == "success"
    assert job["exit_code"] == 0
    assert job["attempts"] == 1
    assert job["peak_rss"] > 30_000_000
    assert job["cpu_time"] > 0
    assert job["duration"] >= 0.8
    assert data["context"]["branch"] == "main"
    assert "env" not in data["context"]
    types = [
        json.loads(line)["type"] for line in (run_dir / "events.jsonl").read_text().splitlines()
    ]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert {"job_queued", "job_started", "job_output", "job_finished"} <= set(types)
    assert (run_dir / "logs" / "hello.log").read_text() == "hello\n"
    assert (project.root / ".conveyor" / ".gitignore").read_text().strip().endswith("*")


def test_output_is_prefixed_when_jobs_interleave(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          alpha:
            run: echo from-alpha
          beta:
            run: echo from-beta
        """
    )
    result = project.run("run", "--jobs", "2")
    lines = result.out.splitlines()
    assert any(line.startswith("alpha") and line.endswith("│ from-alpha") for line in lines)
    single = project.run("run", "--jobs", "1", "alpha")
    assert "from-alpha" in single.out.splitlines()


def test_simple_commands_and_missing_commands(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          direct:
            run: env
          missing:
            run: no-such-program-xyz --flag
        """
    )
    result = project.run("run", "--keep-going")
    assert result.code == 1
    jobs = by_name(summary(project))
    assert jobs["direct"]["status"] == "success"
    assert "CONVEYOR_JOB=direct" in Path(jobs["direct"]["log_path"]).read_text()
    assert jobs["missing"]["exit_code"] == 127
    assert "no-such-program-xyz" in Path(jobs["missing"]["log_path"]).read_text()


def test_quiet_run_still_shows_why_a_job_failed(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          chatty:
            run: echo lots of noise
          broken:
            run: |
              echo "step 1 fine"
              echo "error: the widget is bent" >&2
              exit 5
        """
    )
    result = project.run("run", "--quiet", "--keep-going")
    assert result.code == 1
    assert "lots of noise" not in result.out
    assert "  │ error: the widget is bent" in result.out.splitlines()


def test_unwritable_workspace_is_a_clear_error(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          a:
            run: touch ran
        """
    )
    (project.root / ".conveyor").write_text("a file where the state directory should be")
    result = project.run("run")
    assert result.code == 2
    assert result.err.startswith("error: cannot create the run directory in ")
    assert "Traceback" not in result.err
    assert not (project.root / "ran").exists()


def test_the_event_log_never_hangs_on_close_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() racing the background flush (a flush clearing the 'pending' flag that
    close() had just set) left runs waiting forever at their very end."""
    import threading
    import time

    from conveyor.events import JobQueued
    from conveyor.run.rundir import EventLogSink

    monkeypatch.setattr(EventLogSink, "FLUSH_EVERY", 0.0005)
    for i in range(300):
        run_dir = tmp_path / f"r{i}"
        run_dir.mkdir()
        sink = EventLogSink(str(run_dir))
        sink.handle(JobQueued("a", 1.0))
        time.sleep((i % 7) * 0.0002)  # land close() at every point of the flusher's turn
        sink.handle(JobQueued("b", 2.0))
        closer = threading.Thread(target=sink.close)
        closer.start()
        closer.join(timeout=5)
        assert not closer.is_alive(), f"close() hung (iteration {i})"
        lines = (run_dir / "events.jsonl").read_text().splitlines()
        assert [json.loads(line)["name"] for line in lines] == ["a", "b"]


def test_a_secret_that_starts_another_leaks_nothing_from_a_job(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORT_TOKEN", "tok-5f2a9")
    monkeypatch.setenv("LONG_TOKEN", "tok-5f2a9-and-its-tail")
    project.pipeline(
        """
        jobs:
          deploy:
            secrets: [SHORT_TOKEN, LONG_TOKEN]
            run: |
              echo "short=$SHORT_TOKEN long=$LONG_TOKEN"
              echo "long=$LONG_TOKEN short=$SHORT_TOKEN" >&2
        """
    )
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    run_dir = project.runs()[-1]
    kept = "".join(p.read_text() for p in run_dir.rglob("*") if p.is_file())
    for where in (result.out + result.err, kept):
        assert "tok-5f2a9" not in where
        assert "and-its-tail" not in where
    log = (run_dir / "logs" / "deploy.log").read_text()
    assert log.splitlines() == ["short=*** long=***", "long=*** short=***"]


def test_file_option_after_the_command(project: Project) -> None:
    project.write("ci/other.yml", "jobs:\n  hello:\n    run: echo from-other > hello.txt\n")
    result = project.run("run", "-f", "ci/other.yml")
    assert result.code == 0, result.out + result.err
    assert (project.root / "ci" / "hello.txt").read_text().strip() == "from-other"
    for command in (["validate"], ["list"], ["graph"], ["run", "-n"], ["history"]):
        result = project.run(*command, "--file", "ci/other.yml")
        assert result.code == 0, (command, result.out + result.err)
    assert "hello" in project.run("list", "-f", "ci/other.yml").out


def test_file_given_before_and_after_the_command_must_agree(project: Project) -> None:
    project.write("a.yml", "jobs:\n  a:\n    run: 'true'\n")
    project.write("b.yml", "jobs:\n  b:\n    run: 'true'\n")
    assert project.run("-f", "a.yml", "validate", "-f", "a.yml").code == 0
    result = project.run("-f", "a.yml", "validate", "-f", "b.yml")
    assert result.code == 2
    assert "two pipeline files given" in result.err
    assert "Traceback" not in result.err


def test_kill_grace_takes_plain_seconds(project: Project) -> None:
    project.pipeline("jobs:\n  a:\n    run: 'true'\n")
    for grace in ("5", "0.5", "5s", "1m"):
        result = project.run("run", "--kill-grace", grace)
        assert result.code == 0, (grace, result.err)
    result = project.run("run", "--kill-grace", "soon")
    assert result.code == 2
    assert "a number of seconds such as '5'" in result.err
    result = project.run("run", "--kill-grace", "9" * 400)
    assert result.code == 2
    assert "too long" in result.err


def test_gates_junit_is_written_even_without_gates(project: Project) -> None:
    project.pipeline("jobs:\n  a:\n    run: 'true'\n")
    result = project.run("run", "--gates-junit", "gates.xml")
    assert result.code == 0, result.err
    import xml.etree.ElementTree as ET

    root = ET.parse(project.root / "gates.xml").getroot()
    assert root.tag == "testsuites"
    assert root.attrib["tests"] == "0"
    assert [s.attrib["name"] for s in root] == ["conveyor gates"]


def test_dry_run_says_which_jobs_the_cache_would_serve(project: Project) -> None:
    project.write(".gitignore", "out.txt\n.conveyor/\n")
    project.write("src.txt", "one\n")
    project.pipeline(
        """
        jobs:
          make:
            inputs: [src.txt]
            outputs: [out.txt]
            run: cat src.txt > out.txt
          use:
            needs: [make]
            run: cat out.txt
          other:
            inputs: [conveyor.yml]
            run: echo other
        """
    )
    project.commit()
    result = project.run("run", "-n")
    assert result.code == 0, result.err
    assert "0 from the cache" in result.out
    assert project.run("run", "-q").code == 0
    result = project.run("run", "-n")
    assert "3 from the cache" in result.out
    lines = {line.split()[1]: line for line in result.out.splitlines() if line[3:4] == "."}
    assert all(lines[name].split()[2] == "cached" for name in ("make", "use", "other")), lines

    # A changed input: `make` runs, `use` depends on what it makes, `other` is served.
    (project.root / "src.txt").write_text("two\n")
    (project.root / "out.txt").unlink()
    state = {p.name: p.stat().st_mtime_ns for p in (project.root / ".conveyor").rglob("*")}
    result = project.run("run", "-n", "--explain")
    lines = {line.split()[1]: line for line in result.out.splitlines() if line[3:4] == "."}
    assert {name: line.split()[2] for name, line in lines.items()} == {
        "make": "run",
        "use": "run?",
        "other": "cached",
    }
    assert "input src.txt modified" in result.out
    assert "1 from the cache" in result.out
    # Nothing ran, nothing was restored, the workspace's state was not written.
    assert not (project.root / "out.txt").exists()
    after = {p.name: p.stat().st_mtime_ns for p in (project.root / ".conveyor").rglob("*")}
    assert after == state
    data = json.loads(project.run("run", "-n", "--json").out)
    assert {j["name"]: j["cache"] for j in data["jobs"]} == {
        "make": "miss",
        "use": "unknown",
        "other": "hit",
    }
