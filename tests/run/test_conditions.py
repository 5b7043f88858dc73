"""Conditions on how the run is going (`if: failure()`, `always()`, `cancelled()`,
`needs.X.result`, GitLab's `when:`), a job's `finally:` commands and manual jobs: each
in real runs."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

from tests.conftest import Project
from tests.executor.test_signals import kill, spawn, stop


def summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def jobs_of(project: Project) -> dict[str, Any]:
    return {j["name"]: j for j in summary(project)["jobs"]}


def log_of(project: Project, name: str) -> str:
    return (project.runs()[-1] / "logs" / f"{name}.log").read_text()


# 'build' fails once 'slow' is running, so fail-fast has something to cancel (a job it
# stops before it starts is skipped, "not started"), however loaded the machine is.
FAILING = """
jobs:
  build:
    run: while [ ! -f slow.started ]; do sleep 0.05; done; exit 3
  slow:
    run: touch slow.started; sleep 30
  test:
    needs: [build]
    run: touch test.ran
  cleanup:
    needs: [build, slow]
    if: always()
    run: touch cleanup.ran
  notify:
    needs: [test]
    if: failure()
    run: echo "build broke" > notify.txt
  happy:
    needs: [build]
    if: success()
    run: touch happy.ran
"""


def test_always_and_failure_jobs_run_after_a_failure_and_the_run_still_fails(
    project: Project,
) -> None:
    project.pipeline(FAILING)
    started = time.monotonic()
    result = project.run("run", "--plain", "--jobs", "4")
    assert result.code == 1, result.out  # the run failed, though notify succeeded
    assert time.monotonic() - started < 20, "fail-fast did not cancel 'slow'"
    jobs = jobs_of(project)
    assert jobs["build"]["status"] == "failed"
    assert jobs["slow"]["status"] == "cancelled"  # fail-fast cancels the others...
    assert jobs["cleanup"]["status"] == "success"  # ...but not the cleanup
    assert (project.root / "cleanup.ran").exists()
    # 'notify' needs 'test', which was skipped because 'build' failed: failure() looks
    # at everything before it, as GitHub's does.
    assert jobs["notify"]["status"] == "success"
    assert (project.root / "notify.txt").read_text() == "build broke\n"
    assert jobs["test"]["status"] == "skipped"
    assert not (project.root / "test.ran").exists()
    assert jobs["happy"]["status"] == "skipped"
    assert jobs["happy"]["reason"] == "if: success() is false (success()=false)"
    assert summary(project)["status"] == "failed"


def test_a_failure_job_is_skipped_with_its_reason_when_nothing_failed(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: echo ok
          notify:
            needs: [build]
            if: failure()
            run: touch notify.ran
          report:
            needs: [build]
            when: on_failure
            run: touch report.ran
          cleanup:
            needs: [build]
            when: always
            run: touch cleanup.ran
        """
    )
    result = project.run("run", "--plain")
    assert result.code == 0, result.out
    jobs = jobs_of(project)
    assert jobs["notify"]["status"] == "skipped"
    assert jobs["notify"]["reason"] == "if: failure() is false (failure()=false)"
    assert jobs["report"]["reason"] == "when: on_failure, and nothing it needs failed"
    assert not (project.root / "notify.ran").exists()
    assert not (project.root / "report.ran").exists()
    assert (project.root / "cleanup.ran").exists()


def test_when_on_failure_runs_after_a_transitive_failure_with_keep_going(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          a:
            run: exit 1
          b:
            needs: [a]
            run: touch b.ran
          c:
            needs: [b]
            when: on_failure
            run: touch c.ran
          other:
            run: touch other.ran
        """
    )
    assert project.run("run", "--plain", "--keep-going").code == 1
    jobs = jobs_of(project)
    assert jobs["b"]["reason"] == "needs 'a', which failed"
    assert jobs["c"]["status"] == "success"
    assert (project.root / "c.ran").exists()
    assert (project.root / "other.ran").exists()


def test_an_allowed_failure_does_not_count_as_a_failure_but_its_result_says_failure(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            run: exit 1
            allow_failure: true
          on-fail:
            needs: [flaky]
            if: failure()
            run: touch on-fail.ran
          saw-it:
            needs: [flaky]
            if: needs.flaky.result == 'failure'
            run: touch saw-it.ran
          next:
            needs: [flaky]
            run: touch next.ran
        """
    )
    assert project.run("run", "--plain").code == 0
    jobs = jobs_of(project)
    assert jobs["on-fail"]["status"] == "skipped"
    assert (project.root / "saw-it.ran").exists()
    assert (project.root / "next.ran").exists()


def test_needs_result_reads_what_became_of_a_need(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          gate:
            if: branch == 'nope'
            run: echo never
          build:
            run: exit 2
          after:
            needs: [gate, build]
            if: always() && needs.gate.result == 'skipped' && needs.build.result == 'failure'
            run: touch after.ran
          wrong:
            needs: [build]
            if: always() && needs.build.result == 'success'
            run: touch wrong.ran
        """
    )
    assert project.run("run", "--plain").code == 1
    jobs = jobs_of(project)
    assert (project.root / "after.ran").exists()
    assert jobs["wrong"]["status"] == "skipped"
    assert jobs["wrong"]["reason"] == (
        "if: always() && needs.build.result == 'success' is false "
        "(always()=true, needs.build.result='failure')"
    )


def test_always_and_cancelled_jobs_run_after_ctrl_c(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          hang:
            run: |
              touch hang.started
              sleep 300
          next:
            needs: [hang]
            run: touch next.ran
          cleanup:
            needs: [hang]
            if: always()
            run: echo cleaned > cleanup.txt
          on-cancel:
            needs: [hang]
            if: cancelled()
            run: touch on-cancel.ran
          on-fail:
            needs: [hang]
            if: failure()
            run: touch on-fail.ran
        """
    )
    proc = spawn(project, "run", "--plain", "--kill-grace", "2s")
    try:
        end = time.monotonic() + 20
        while not (project.root / "hang.started").exists():
            assert time.monotonic() < end, "the job never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = stop(proc)
    finally:
        kill(proc)
    assert proc.returncode == 130, err
    jobs = jobs_of(project)
    assert summary(project)["status"] == "interrupted"
    assert jobs["hang"]["status"] == "cancelled"
    assert jobs["cleanup"]["status"] == "success", out
    assert (project.root / "cleanup.txt").read_text() == "cleaned\n"
    assert (project.root / "on-cancel.ran").exists()
    assert jobs["next"]["status"] == "skipped"
    assert jobs["next"]["reason"] == "not started: the run was interrupted"
    assert jobs["on-fail"]["status"] == "skipped"


def test_finally_runs_whatever_the_commands_did_with_the_job_status(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          fails:
            dir: sub
            env: {WHO: fails}
            run: echo main; exit 4
            finally:
              - echo "after $WHO status=$CONVEYOR_JOB_STATUS in $(basename "$PWD")"
          passes:
            run: echo main
            finally: echo "after status=$CONVEYOR_JOB_STATUS"
          slow:
            timeout: 1s
            run: sleep 30
            finally: echo "after status=$CONVEYOR_JOB_STATUS"
          broken-cleanup:
            run: echo main
            finally: exit 9
        """
    )
    (project.root / "sub").mkdir()
    (project.root / "sub" / ".keep").touch()
    result = project.run("run", "--plain", "--keep-going")
    assert result.code == 1
    jobs = jobs_of(project)
    assert jobs["fails"]["status"] == "failed"
    assert jobs["fails"]["exit_code"] == 4  # the main commands' result, not finally's
    fails = log_of(project, "fails")
    assert "conveyor: finally (job status: failed)" in fails
    assert "after fails status=failed in sub" in fails
    assert fails.index("main") < fails.index("conveyor: finally")
    assert "after status=success" in log_of(project, "passes")
    assert jobs["slow"]["status"] == "timed_out"
    assert "after status=timed_out" in log_of(project, "slow")
    # A failing finally: does not change the job's result (GitLab's after_script).
    assert jobs["broken-cleanup"]["status"] == "success"
    assert "conveyor: finally: exit code 9" in log_of(project, "broken-cleanup")


def test_finally_runs_after_ctrl_c_within_the_grace(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          hang:
            run: |
              touch hang.started
              sleep 300
            finally: echo "$CONVEYOR_JOB_STATUS" > finally.txt
        """
    )
    proc = spawn(project, "run", "--plain", "--kill-grace", "2s")
    try:
        end = time.monotonic() + 20
        while not (project.root / "hang.started").exists():
            assert time.monotonic() < end, "the job never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = stop(proc)
    finally:
        kill(proc)
    assert proc.returncode == 130, err
    assert (project.root / "finally.txt").read_text() == "cancelled\n"


def test_manual_jobs_run_only_when_asked(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: echo build
          deploy:
            needs: [build]
            when: manual
            run: touch deploy.ran
          smoke:
            needs: [deploy]
            run: touch smoke.ran
        """
    )
    project.commit()
    plan = project.run("run", "-n")
    assert "deploy  manual  manual job: runs only when asked" in plan.out
    assert project.run("run", "--plain").code == 0
    jobs = jobs_of(project)
    assert jobs["deploy"]["status"] == "skipped"
    assert jobs["smoke"]["reason"] == (
        "needs 'deploy', a manual job that was not asked for (--manual deploy)"
    )
    assert not (project.root / "deploy.ran").exists()

    assert project.run("run", "--plain", "--manual", "deploy").code == 0
    assert (project.root / "deploy.ran").exists()
    assert (project.root / "smoke.ran").exists()
    (project.root / "deploy.ran").unlink()
    assert project.run("run", "--plain", "deploy").code == 0
    assert (project.root / "deploy.ran").exists()

    wrong = project.run("run", "--manual", "build")
    assert wrong.code == 2
    assert "--manual build: 'build' is not a manual job" in wrong.err
    assert "manual jobs: deploy" in wrong.err


def test_the_plan_and_the_list_show_conditional_jobs_as_conditional(project: Project) -> None:
    project.pipeline(FAILING)
    project.commit()
    plan = project.run("run", "-n")
    assert "3 depending on how the run goes" in plan.out
    lines = {line.split()[1]: line for line in plan.out.splitlines()[1:]}
    assert "maybe" in lines["cleanup"]
    assert "conditional: if: always()" in lines["cleanup"]
    assert "maybe" in lines["notify"]
    assert "maybe" not in lines["test"]
    assert " run" in lines["test"], "not conditional: it runs (run? while its key waits on build)"
    data = json.loads(project.run("run", "-n", "--json").out)
    conditional = {j["name"]: j["conditional"] for j in data["jobs"]}
    assert conditional == {
        "build": False,
        "slow": False,
        "test": False,
        "cleanup": True,
        "notify": True,
        "happy": True,
    }
    listed = project.run("list").out
    assert "if: failure()  (conditional" in listed
    # Known false however the run goes: skipped at plan time.
    project.pipeline(
        """
        jobs:
          build:
            run: echo
          deploy-cleanup:
            needs: [build]
            if: always() && branch == 'release'
            run: echo
        """
    )
    plan = project.run("run", "-n")
    assert "skip    if: always() && branch == 'release' is false (branch='main')" in plan.out


def test_a_status_dependent_job_is_never_served_a_wrong_cache_hit(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            inputs: [src.txt]
            run: test "$(cat src.txt)" = good
          notify:
            needs: [build]
            if: failure()
            cache: true
            run: echo sent >> notified.txt
          cleanup:
            needs: [build]
            if: always()
            run: echo done >> cleaned.txt
          summary:
            needs: [build]
            if: always()
            cache: true
            run: echo summary >> summary.txt
        """
    )
    project.write(".gitignore", "notified.txt\ncleaned.txt\nsummary.txt\n")
    project.write("src.txt", "bad\n")
    project.commit()
    assert project.run("run", "--plain").code == 1
    assert project.run("run", "--plain").code == 1
    # A failure job runs on every failure: its need failed, so it has no key to hit.
    assert (project.root / "notified.txt").read_text() == "sent\nsent\n"
    assert (project.root / "cleaned.txt").read_text() == "done\ndone\n"
    project.write("src.txt", "good\n")
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert project.run("run", "--plain").code == 0
    jobs = jobs_of(project)
    assert jobs["notify"]["status"] == "skipped"
    assert (project.root / "notified.txt").read_text() == "sent\nsent\n"
    # Not cached unless it says so: a cleanup runs for what it does.
    assert (project.root / "cleaned.txt").read_text() == "done\ndone\ndone\ndone\n"
    # With cache: true, a hit only when every need succeeded, as when it was stored.
    assert jobs["summary"]["cached"] is True
    assert (project.root / "summary.txt").read_text() == "summary\nsummary\nsummary\n"


def test_finally_is_part_of_the_cache_key(project: Project) -> None:
    pipeline = """
        jobs:
          build:
            run: echo build
            finally: echo {word}
        """
    project.pipeline(pipeline.format(word="one"))
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert project.run("run", "--plain").code == 0
    assert jobs_of(project)["build"]["cached"] is True
    project.pipeline(pipeline.format(word="two"))
    assert project.run("run", "--plain").code == 0
    assert jobs_of(project)["build"]["cached"] is False
    assert "two" in log_of(project, "build")


def test_a_needs_result_in_a_command_is_how_the_need_ended(project: Project) -> None:
    """`${{ needs.JOB.result }}` in `run`, as GitHub Actions allows: filled in when the
    job is ready (a matrix job: its worst instance)."""
    project.pipeline(
        """
        jobs:
          test:
            matrix: {n: ["1", "2"]}
            run: test "${{ matrix.n }}" = 1
          report:
            needs: [test]
            if: always()
            run: 'echo "tests ended: ${{ needs.test.result }}"'
        """
    )
    project.commit()
    result = project.run("run", "--plain", "--keep-going")
    assert result.code == 1
    assert "│ tests ended: failure" in result.out


def test_a_condition_on_how_the_run_goes_reads_values_too(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: echo "channel=beta" >> "$CONVEYOR_OUTPUT"
          notify:
            needs: [setup]
            if: always() && needs.setup.values.channel == 'beta'
            run: echo notified
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out
    assert "│ notified" in result.out


def test_allow_failure_exit_codes_allows_only_those_codes(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            run: exit 3
            allow_failure: {exit_codes: [3, 137]}
          after:
            needs: [flaky]
            run: echo after
          broken:
            run: exit 4
            allow_failure: {exit_codes: 3}
          slow:
            run: sleep 5
            timeout: 1s
            allow_failure: {exit_codes: [3]}
        """
    )

    result = project.run("run", "--plain", "--keep-going")

    jobs = jobs_of(project)
    assert result.code == 1, result.out  # 'broken' and 'slow' are not allowed
    assert jobs["flaky"]["status"] == "failed"
    assert jobs["flaky"]["allowed_failure"] is True
    assert jobs["after"]["status"] == "success"
    assert jobs["broken"]["allowed_failure"] is False
    assert jobs["slow"]["status"] == "timed_out"
    assert jobs["slow"]["allowed_failure"] is False
    assert "failed (allowed)" in result.out
