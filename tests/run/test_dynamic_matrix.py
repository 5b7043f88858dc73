"""A dynamic matrix: a job computes the matrix of another (`${{ fromJSON(needs.X.values.Y) }}`),
expanded when X has run into instances that run, cache and are waited for like any."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Project


def summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def log(project: Project, name: str) -> str:
    return (project.runs()[-1] / "logs" / name).read_text()


def jobs(project: Project) -> dict[str, dict[str, Any]]:
    return {j["name"]: j for j in summary(project)["jobs"]}


PIPELINE = """
jobs:
  setup:
    inputs: [TARGETS]
    run: echo "targets=$(cat TARGETS)" >> "$CONVEYOR_OUTPUT"
  build:
    needs: [setup]
    matrix:
      target: ${{ fromJSON(needs.setup.values.targets) }}
      mode: [fast]
    env:
      TARGET: ${{ matrix.target }}
    outputs: ["out-${{ matrix.target }}.txt"]
    run: |
      echo "FOR ${{ matrix.target }}/${{ matrix.mode }} env=$TARGET"
      echo "$TARGET" > out-${{ matrix.target }}.txt
  package:
    needs: [build]
    run: cat out-a.txt out-b.txt
"""


def test_a_job_computes_the_matrix_of_another(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.write("TARGETS", '["a","b"]\n')
    project.commit()

    plan = project.run("run", "-n")
    assert plan.code == 0, plan.out + plan.err
    line = next(x for x in plan.out.splitlines() if " build " in x)
    assert "matrix from setup" in line, plan.out
    listed = project.run("list")
    assert "(matrix from setup)" in listed.out, listed.out

    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    ran = jobs(project)
    assert set(ran) == {
        "setup",
        "build (target=a, mode=fast)",
        "build (target=b, mode=fast)",
        "package",
    }
    assert all(j["status"] == "success" for j in ran.values())
    assert "FOR a/fast env=a" in log(project, "build_target=a_mode=fast.log")
    assert "FOR b/fast env=b" in log(project, "build_target=b_mode=fast.log")
    # The job needing the matrix job waited for both instances.
    assert "a\nb" in log(project, "package.log")
    assert (project.root / "out-b.txt").read_text() == "b\n"

    # The same value: every job, instances included, is served from the cache.
    again = project.run("run", "--plain")
    assert again.code == 0, again.out + again.err
    assert all(j["cached"] for j in jobs(project).values()), jobs(project)

    # A changed value: the new instance runs (and, as for any job that needs the one
    # that wrote a value, a changed value is a changed key for every instance).
    project.write("TARGETS", '["a","c"]\n')
    project.pipeline(PIPELINE.replace("out-a.txt out-b.txt", "out-a.txt out-c.txt"))
    project.commit()
    third = project.run("run", "--plain")
    assert third.code == 0, third.out + third.err
    ran = jobs(project)
    assert set(ran) == {
        "setup",
        "build (target=a, mode=fast)",
        "build (target=c, mode=fast)",
        "package",
    }
    assert not ran["build (target=c, mode=fast)"]["cached"]
    assert "FOR c/fast env=c" in log(project, "build_target=c_mode=fast.log")


def test_include_entries_computed_by_a_job(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: |
              echo 'shards=[{"shard": 1, "of": 2}, {"shard": 2, "of": 2}]' >> "$CONVEYOR_OUTPUT"
          test:
            needs: [setup]
            matrix:
              include: ${{ fromJSON(needs.setup.values.shards) }}
            run: echo "shard ${{ matrix.shard }} of ${{ matrix.of }}"
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert set(jobs(project)) == {"setup", "test (shard=1, of=2)", "test (shard=2, of=2)"}
    assert "shard 1 of 2" in log(project, "test_shard=1_of=2.log")
    assert "shard 2 of 2" in log(project, "test_shard=2_of=2.log")


def _failing(project: Project, value: str) -> dict[str, Any]:
    project.pipeline(
        f"""
        jobs:
          setup:
            run: |
              echo 'targets={value}' >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            matrix:
              target: ${{{{ fromJSON(needs.setup.values.targets) }}}}
            run: echo "${{{{ matrix.target }}}}"
          after:
            needs: [build]
            run: echo after
        """
    )
    project.commit()
    result = project.run("run", "--plain", "--keep-going")
    assert result.code == 1, result.out + result.err
    ran = jobs(project)
    assert ran["after"]["status"] == "skipped"
    assert ran["after"]["reason"] == "needs 'build', which failed"
    assert ran["build"]["status"] == "failed"
    return ran["build"]


def test_a_value_that_is_no_matrix_fails_the_job_with_the_reason(project: Project) -> None:
    build = _failing(project, "[a, b")
    assert "needs.setup.values.targets is not valid JSON" in build["reason"]
    assert "'[a, b'" in build["reason"]


def test_an_empty_list_or_no_list_fails(project: Project) -> None:
    assert "is an empty list" in _failing(project, "[]")["reason"]
    assert "must be a JSON list of strings" in _failing(project, '{"a": 1}')["reason"]


def test_the_instance_limit_applies(project: Project) -> None:
    project.pipeline(
        """
        limits: {matrix: 3}
        jobs:
          setup:
            run: echo 'n=[1,2,3,4]' >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            matrix:
              n: ${{ fromJSON(needs.setup.values.n) }}
            run: echo "${{ matrix.n }}"
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    reason = jobs(project)["build"]["reason"]
    assert "would expand to 4 instances" in reason
    assert "limit of 3" in reason


def test_the_matrix_must_come_from_a_job_it_needs(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: echo 'n=[1]' >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            matrix:
              n: ${{ fromJSON(needs.setpu.values.n) }}
            run: echo "${{ matrix.n }}"
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert "conveyor.yml:7:29:" in result.err
    assert "'setpu' is not among the jobs this one needs (did you mean 'setup'?)" in result.err
    assert "Traceback" not in result.err


def test_only_fromjson_of_a_value_computes_a_matrix(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: echo 'n=[1]' >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            matrix:
              n: ${{ needs.setup.values.n }}
            run: echo "${{ matrix.n }}"
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert "conveyor.yml:7:10:" in result.err
    assert "must be one '${{ fromJSON(needs.JOB.values.NAME) }}'" in result.err


def test_fields_of_a_computed_matrix_job_are_checked_when_loaded(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: echo 'n=[1]' >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            matrix:
              n: ${{ fromJSON(needs.setup.values.n) }}
            run: echo "${{ matrix.m }}"
        """
    )
    result = project.run("validate")
    assert result.code == 2, result.out
    assert "conveyor.yml:8:27:" in result.err
    assert "unknown matrix value 'matrix.m' (axes: n)" in result.err
