"""Stages, needs, matrix, conditions and the plan they make; the inspection commands."""

from __future__ import annotations

import json

import pytest

from conveyor.graph.context import detect
from tests.conftest import Project

PIPELINE = """
name: shop
stages: [check, build, test, deploy]
jobs:
  .base:
    env: {LEVEL: base}
    timeout: 1m
  lint:
    stage: check
    run: echo lint
  build:
    stage: build
    run: echo build
  test:
    extends: .base
    stage: test
    matrix:
      python: ["3.11", "3.12"]
      os: [linux, mac]
      exclude:
        - {python: "3.11", os: mac}
      include:
        - {python: "3.12", os: linux, coverage: "yes"}
        - {python: "3.13", os: linux}
    run: echo ${{ matrix.python }} on ${{ matrix.os }}
  docs:
    stage: test
    needs: []
    run: echo docs
  deploy:
    stage: deploy
    if: event == 'tag' && tag =~ '^v[0-9]'
    run: echo deploy
  notify:
    needs: [deploy]
    run: echo notify
"""


def test_matrix_expands_like_github_actions(project: Project) -> None:
    project.pipeline(PIPELINE)
    result = project.run("list", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    names = [r["name"] for r in rows]
    assert names == [
        "lint",
        "build",
        "test (python=3.11, os=linux)",
        "test (python=3.12, os=linux, coverage=yes)",
        "test (python=3.12, os=mac)",
        "test (python=3.13, os=linux)",
        "docs",
        "deploy",
        "notify",
    ]
    test = next(r for r in rows if r["name"] == "test (python=3.11, os=linux)")
    # A later stage needs every job of the earlier stages...
    assert test["needs"] == ["lint", "build"]
    # ...unless it says what it needs.
    assert next(r for r in rows if r["name"] == "docs")["needs"] == []
    notify = next(r for r in rows if r["name"] == "notify")
    assert notify["needs"] == ["deploy"]


def test_dry_run_explains_each_job(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    result = project.run("run", "--dry-run")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("plan: 7 of 9 job(s) would run (branch main, event push), ")
    assert any(
        line.split()
        == [
            "-",
            "deploy",
            "skip",
            "if:",
            "event",
            "==",
            "'tag'",
            "&&",
            "tag",
            "=~",
            "'^v[0-9]'",
            "is",
            "false",
            "(event='push',",
            "tag",
            "unset)",
        ]
        for line in lines
    ), result.out
    assert any("notify" in line and "needs 'deploy', which will not run" in line for line in lines)
    assert project.runs() == [], "a dry run runs nothing"


def test_tag_event_runs_deploy(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.commit()
    project.git("tag", "v1.2.0")
    plan = json.loads(project.run("run", "--dry-run", "--event", "tag", "--json").out)
    runs = {j["name"]: j["will_run"] for j in plan["jobs"]}
    assert runs["deploy"] is True
    assert runs["notify"] is True
    assert plan["context"]["tag"] == "v1.2.0"


def test_selected_job_plan_says_who_needs_what(project: Project) -> None:
    project.pipeline(PIPELINE)
    plan = json.loads(project.run("run", "--dry-run", "--json", "test").out)
    reasons = {j["name"]: j["reason"] for j in plan["jobs"]}
    assert set(reasons) == {
        "lint",
        "build",
        "test (python=3.11, os=linux)",
        "test (python=3.12, os=linux, coverage=yes)",
        "test (python=3.12, os=mac)",
        "test (python=3.13, os=linux)",
    }
    assert reasons["test (python=3.12, os=mac)"] == "selected"
    assert reasons["lint"].startswith("needed by test (")
    order = [j["name"] for j in plan["jobs"]]
    assert order.index("build") < order.index("test (python=3.11, os=linux)")


def test_skipped_stage_job_does_not_skip_later_stages(project: Project) -> None:
    project.pipeline(
        """
        stages: [a, b]
        jobs:
          maybe:
            stage: a
            if: branch == 'release'
            run: echo maybe
          always:
            stage: b
            run: echo always > always.txt
        """
    )
    result = project.run("run")
    assert result.code == 0
    assert (project.root / "always.txt").exists()


def test_validate_summary(project: Project) -> None:
    project.pipeline(PIPELINE)
    result = project.run("validate")
    assert result.code == 0
    assert result.out.strip() == (
        "conveyor.yml: valid: 6 job(s) (9 with matrix instances), 4 stage(s)"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REF_NAME": "main",
                "GITHUB_REF_TYPE": "branch",
                "GITHUB_SHA": "abc",
            },
            ("main", None, "abc", "push", "github"),
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/tags/v1.0",
                "GITHUB_REF_NAME": "v1.0",
                "GITHUB_REF_TYPE": "tag",
                "GITHUB_SHA": "abc",
            },
            (None, "v1.0", "abc", "tag", "github"),
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_HEAD_REF": "feature",
                "GITHUB_REF_NAME": "7/merge",
                "GITHUB_SHA": "abc",
            },
            ("feature", None, "abc", "pull_request", "github"),
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_SOURCE": "push",
                "CI_COMMIT_BRANCH": "dev",
                "CI_COMMIT_SHA": "def",
            },
            ("dev", None, "def", "push", "gitlab"),
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_SOURCE": "push",
                "CI_COMMIT_TAG": "v2",
                "CI_COMMIT_SHA": "def",
            },
            (None, "v2", "def", "tag", "gitlab"),
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fix",
                "CI_COMMIT_SHA": "def",
            },
            ("fix", None, "def", "pull_request", "gitlab"),
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_SOURCE": "schedule",
                "CI_COMMIT_BRANCH": "main",
                "CI_COMMIT_SHA": "def",
            },
            ("main", None, "def", "schedule", "gitlab"),
        ),
    ],
)
def test_context_from_hosted_ci(
    project: Project, environ: dict[str, str], expected: tuple[object, ...]
) -> None:
    ctx = detect(str(project.root), environ)
    assert (ctx.branch, ctx.tag, ctx.commit, ctx.event, ctx.ci) == expected


def test_context_from_git(project: Project) -> None:
    project.commit()
    project.git("checkout", "-q", "-b", "feature/x")
    project.git("tag", "v3")
    ctx = detect(str(project.root), {})
    assert ctx.branch == "feature/x"
    assert ctx.tag == "v3"
    assert ctx.commit == project.git("rev-parse", "HEAD")
    assert ctx.event == "push"
    assert ctx.ci is None
    assert detect(str(project.root), {}, "schedule").event == "schedule"


def test_include_only_matrix_makes_one_job_per_entry(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          test:
            matrix:
              include:
                - {python: "3.12", os: linux}
                - {python: "3.13", os: linux}
            run: echo ${{ matrix.python }}
          other:
            matrix: {python: ["3.12"], include: [{python: "3.14"}, {python: "3.15"}]}
            run: echo ${{ matrix.python }}
        """
    )
    names = [r["name"] for r in json.loads(project.run("list", "--json").out)]
    assert names == [
        "test (python=3.12, os=linux)",
        "test (python=3.13, os=linux)",
        "other (python=3.12)",
        "other (python=3.14)",
        "other (python=3.15)",
    ]


def test_a_secret_never_appears_in_a_skip_reason(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "staging-s3cr3t")
    project.pipeline(
        """
        jobs:
          deploy:
            secrets: [DEPLOY_TOKEN]
            if: startsWith(env.DEPLOY_TOKEN, 'prod-')
            run: ./deploy.sh
          other:
            run: "true"
        """
    )
    result = project.run("run", "--json")
    assert result.code == 0
    run_dir = project.runs()[-1]
    everything = result.out + result.err + (run_dir / "events.jsonl").read_text()
    assert "staging-s3cr3t" not in everything
    assert "env.DEPLOY_TOKEN=***" in result.err


def test_condition_sees_what_the_job_gets(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY", "yes")
    project.pipeline(
        """
        jobs:
          show:
            env: {DEPLOY: "no"}
            pass_env: [DEPLOY]
            if: env.DEPLOY == 'yes'
            run: echo "DEPLOY=$DEPLOY"
        """
    )
    result = project.run("run")
    assert result.code == 0
    assert "DEPLOY=yes" in result.out


def test_a_job_with_secrets_is_cached_only_when_it_says_so(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job with secrets talks to the outside world (a deploy): running it again must
    not be skipped behind the user's back; `cache: true` opts in, templates and matrix
    instances included (issue 10)."""
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-12345678")
    project.pipeline(
        """
        jobs:
          .cached:
            cache: true
          deploy:
            secrets: [DEPLOY_TOKEN]
            matrix: {env: [staging]}
            run: echo deploy >> ../ran
          upload:
            extends: .cached
            secrets: [DEPLOY_TOKEN]
            run: echo upload >> ../ran
          build:
            run: echo build >> ../ran
        """
    )
    project.commit()
    for _ in range(2):
        result = project.run("run", "--json")
        assert result.code == 0, result.err
    ran = (project.root.parent / "ran").read_text().split()
    assert sorted(ran) == ["build", "deploy", "deploy", "upload"]
    jobs = {j["name"]: j for j in json.loads(result.out)["jobs"]}
    assert jobs["deploy (env=staging)"]["cached"] is False
    assert jobs["upload"]["cached"] is True
    assert jobs["build"]["cached"] is True
    why = project.run("why", "deploy")
    assert "caching is off for this job: it has secrets (say cache: true to cache it)" in why.out
