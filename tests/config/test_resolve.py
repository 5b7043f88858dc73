"""The expression language in every string field: matrix values at load time, env,
vars and run facts when the run is planned, secrets as the job starts; and the errors
for what a field cannot read."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project


def test_matrix_values_fill_artifacts_caches_and_needs(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            matrix:
              os: [linux, mac]
            run: mkdir -p dist-${{ matrix.os }} && echo ${{ matrix.os }} > dist-${{ matrix.os }}/x
            outputs:
              - dist-${{ matrix.os }}/
            artifacts:
              paths:
                - dist-${{ matrix.os }}/
              name: dist-${{ matrix.os }}
            caches:
              - key: deps-${{ matrix.os }}
                paths:
                  - .deps-${{ matrix.os }}
          test:
            matrix:
              os: [linux, mac]
            needs: ["build (os=${{ matrix.os }})"]
            run: cat dist-${{ matrix.os }}/x
        """
    )
    project.commit()
    listed = project.run("list", "--json")
    assert listed.code == 0, listed.err
    needs = {j["name"]: j["needs"] for j in json.loads(listed.out)}
    # Each test instance waits for its own build only, not every build.
    assert needs["test (os=linux)"] == ["build (os=linux)"]
    assert needs["test (os=mac)"] == ["build (os=mac)"]
    result = project.run("run", "--plain", "-j", "1")
    assert result.code == 0, result.out + result.err
    assert "linux" in result.out
    assert "mac" in result.out
    from conveyor.config import load_pipeline

    pipeline = load_pipeline(str(project.root / "conveyor.yml"), use_cache=False)
    mac = next(j for j in pipeline.jobs if j.name == "build (os=mac)")
    assert mac.artifacts is not None
    assert mac.artifacts.paths == ("dist-mac/",)
    assert mac.artifacts.name == "dist-mac"
    assert mac.caches[0].key == "deps-mac"
    assert mac.caches[0].paths == (".deps-mac",)


def test_a_need_naming_no_instance_is_located(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            matrix:
              os: [linux, mac]
            run: echo
          test:
            needs: ["build (os=windows)"]
            run: echo
        """
    )
    result = project.run("validate")
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith("conveyor.yml:7:13: jobs.test.needs[0]:")
    assert "no instance of 'build'" in first
    assert "build (os=linux), build (os=mac)" in result.err


def test_env_vars_and_run_fill_every_field(project: Project) -> None:
    project.pipeline(
        """
        vars:
          channel: beta
        env:
          OUT: out
        jobs:
          build:
            pass_env: [FLAVOUR]
            dir: ${{ env.OUT }}/..
            run: >-
              echo "${{ vars.channel }} ${{ env.FLAVOUR }} ${{ run.branch }} ${{ run.event }}"
              > ${{ env.OUT }}-${{ vars.channel }}.txt
            outputs:
              - ${{ env.OUT }}-${{ vars.channel }}.txt
        """
    )
    project.commit()
    result = project.run("run", "--plain", "--var", "channel=stable")
    assert result.code == 0, result.out + result.err
    assert (project.root / "out-stable.txt").read_text().split() == ["stable", "main", "push"]
    # An env value of the caller read through pass_env, a var given on the command line:
    # both part of the key, so a new value misses the cache.
    import os

    os.environ["FLAVOUR"] = "spicy"
    try:
        again = project.run("run", "--plain", "--var", "channel=stable")
    finally:
        del os.environ["FLAVOUR"]
    assert again.code == 0
    assert "cached" not in again.out
    assert (project.root / "out-stable.txt").read_text().split() == [
        "stable",
        "spicy",
        "main",
        "push",
    ]
    same = project.run("run", "--plain", "--var", "channel=stable")
    assert "cached" in same.out


def test_a_var_the_file_does_not_declare_is_refused(project: Project) -> None:
    project.pipeline(
        """
        vars:
          channel: beta
        jobs:
          build:
            run: echo ${{ vars.channel }}
        """
    )
    result = project.run("run", "--var", "chanel=x")
    assert result.code == 2
    assert "--var chanel: no such variable (did you mean 'channel'?)" in result.err
    assert "Traceback" not in result.err


def test_run_facts_are_in_the_key_only_of_jobs_that_read_them(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          release:
            run: echo "release ${{ run.branch }}"
          test:
            run: echo test
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    project.git("checkout", "-q", "-b", "other")
    result = project.run("run", "--plain")
    assert result.code == 0
    lines = result.out.splitlines()
    release = next(line for line in lines if line.startswith("✔ release"))
    test = next(line for line in lines if line.startswith("✔ test"))
    assert "cached" not in release
    assert "cached" in test
    assert "release other" in result.out


def test_run_number_counts_up_and_a_dry_run_does_not_take_one(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          stamp:
            cache: false
            run: echo "build n${{ run.number }}"
        """
    )
    project.commit()
    assert "build n1" in project.run("run", "--plain").out
    assert "build n2" in project.run("run", "--plain").out
    plan = project.run("run", "-n", "--json")
    assert "build n3" in json.loads(plan.out)["jobs"][0]["command"]
    assert "build n3" in project.run("run", "--plain").out


def test_secrets_are_filled_in_at_run_time_masked_and_never_in_the_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(
        """
        jobs:
          deploy:
            secrets: [TOKEN]
            cache: true
            env:
              AUTH: "Bearer ${{ secrets.TOKEN }}"
            run: |
              echo "arg=${{ secrets.TOKEN }}"
              echo "env=$AUTH"
              test "$AUTH" = "Bearer $TOKEN"
        """
    )
    project.commit()
    monkeypatch.setenv("TOKEN", "first-secret-value")
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert "first-secret-value" not in result.out
    assert "arg=***" in result.out
    assert "env=Bearer ***" in result.out
    plan = project.run("run", "-n", "--json")
    assert "first-secret-value" not in plan.out
    assert "${{ secrets.TOKEN }}" in json.loads(plan.out)["jobs"][0]["command"]
    # The key holds the secret's name only: a new value is the same key (a hit).
    monkeypatch.setenv("TOKEN", "second-secret-value")
    again = project.run("run", "--plain")
    assert "cached" in again.out


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        (
            "run: echo\n    outputs:\n      - out-${{ secrets.TOKEN }}\n    secrets: [TOKEN]",
            "conveyor.yml:7:17: jobs.build.outputs[0]:",
            "'secrets.TOKEN': the secrets context is not available here; "
            "available: matrix, env, vars, run",
        ),
        (
            "run: echo ${{ secrets.TOKN }}\n    secrets: [TOKEN]",
            "conveyor.yml:5:27: jobs.build.run[0]:",
            "unknown name 'secrets.TOKN' (did you mean 'secrets.TOKEN'?); "
            "the job's secrets: has: TOKEN",
        ),
        (
            "run: echo ${{ vars.chanel }}",
            "conveyor.yml:5:24: jobs.build.run[0]:",
            "unknown name 'vars.chanel' (did you mean 'vars.channel'?); "
            "the top-level vars: has: channel",
        ),
        (
            "run: echo ${{ env.HOME }}",
            "conveyor.yml:5:23: jobs.build.run[0]:",
            "unknown name 'env.HOME'; the job's env (pipeline env, job env, pass_env) has: none",
        ),
        (
            "run: echo\n    env:\n      A: ${{ env.B }}",
            "conveyor.yml:7:14: jobs.build.env.A:",
            "'env.B': the env context is not available here; available: matrix, vars, run, secrets",
        ),
        (
            "run: echo\n    needs: ['x-${{ vars.channel }}']",
            "conveyor.yml:6:20: jobs.build.needs[0]:",
            "'vars.channel': the vars context is not available here; available: matrix",
        ),
        (
            "run: echo\n    inputs:\n      - src/${{ run.numbr }}",
            "conveyor.yml:7:21: jobs.build.inputs[0]:",
            "unknown name 'run.numbr' (did you mean 'run.number'?)",
        ),
        (
            "run: echo\n    caches:\n      - key: k-${{ matrix.os }}\n        paths: [x]",
            "conveyor.yml:7:27: jobs.build.caches[0].key:",
            "unknown matrix value 'matrix.os' (axes: none: the job has no matrix)",
        ),
        (
            "run: echo\n    artifacts:\n      paths: [a]\n      name: a-${{ vars.nope",
            "conveyor.yml:8:15: jobs.build.artifacts.name:",
            "unterminated '${{'",
        ),
        (
            "run: echo ${{ secrets.TOKEN || vars.channel }}\n    secrets: [TOKEN]",
            "conveyor.yml:5:18: jobs.build.run[0]:",
            "an expression that reads secrets may read only secrets and matrix values",
        ),
        (
            "run: echo\n    if: secrets.TOKEN == 'x'\n    secrets: [TOKEN]",
            "conveyor.yml:6:9: jobs.build.if:",
            "the secrets context is not available here",
        ),
    ],
)
def test_an_expression_a_field_cannot_read_is_a_located_error(
    project: Project, body: str, where: str, message: str
) -> None:
    (project.root / "conveyor.yml").write_text(
        "vars:\n  channel: beta\njobs:\n  build:\n    " + body + "\n"
    )
    result = project.run("validate")
    assert result.code == 2, result.out
    first = result.err.splitlines()[0]
    assert first.startswith(where), first
    assert message in first, first
    assert "Traceback" not in result.err


def test_if_may_be_written_in_the_expression_syntax(project: Project) -> None:
    project.pipeline(
        """
        vars:
          deploy: "no"
        jobs:
          deploy:
            if: ${{ vars.deploy == 'yes' && run.branch == 'main' }}
            run: echo deploying
        """
    )
    project.commit()
    plan = project.run("run", "-n")
    assert "deploy  skip" in plan.out
    assert "if: ${{ vars.deploy == 'yes' && run.branch == 'main' }} is false" in plan.out
    assert "vars.deploy='no'" in plan.out
    plan = project.run("run", "-n", "--var", "deploy=yes")
    assert "1 of 1 job(s) would run" in plan.out


def test_jobs_that_may_run_at_once_cannot_write_one_path(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          test:
            matrix:
              py: ["3.11", "3.12"]
            run: echo
            reports:
              junit: reports/junit.xml
        """
    )
    result = project.run("validate")
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith("conveyor.yml:7:14: jobs.test.reports.junit[0]:")
    assert "'test (py=3.11)' and 'test (py=3.12)' both write 'reports/junit.xml'" in first
    assert "matrix.os" in result.err  # the hint shows the fix


def test_one_path_is_fine_for_jobs_that_run_one_after_the_other(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          a:
            run: echo a > out.txt
            outputs: [out.txt]
          b:
            needs: [a]
            run: echo b > out.txt
            outputs: [out.txt]
          c:
            run: echo c > out.txt
            outputs: [out.txt]
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert "'a' and 'c' both write 'out.txt'" in result.err
    assert "'a' and 'b'" not in result.err
    project.pipeline(
        """
        jobs:
          a:
            run: echo a > out.txt
            outputs: [out.txt]
          b:
            needs: [a]
            run: echo b > out.txt
            outputs: [out.txt]
        """
    )
    assert project.run("validate").code == 0


def test_a_value_that_takes_a_path_outside_the_workspace_is_refused(project: Project) -> None:
    project.pipeline(
        """
        vars:
          where: dist
        jobs:
          build:
            run: echo
            outputs:
              - ${{ vars.where }}/
        """
    )
    project.commit()
    result = project.run("run", "--var", "where=/etc")
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith("conveyor.yml:7:9: jobs.build.outputs[0]:")
    assert "'/etc/' is an absolute path" in first


def test_instances_may_share_a_directory_of_their_own_files(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          test:
            matrix:
              shard: ["1", "2"]
            run: mkdir -p reports && echo > reports/junit-${{ matrix.shard }}.xml
            outputs: [reports/]
            reports:
              junit: reports/junit-${{ matrix.shard }}.xml
        """
    )
    assert project.run("validate").code == 0
