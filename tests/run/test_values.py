"""Values between jobs: written to $CONVEYOR_OUTPUT, read as ${{ needs.JOB.values.NAME }}
in run, env, dir and if; keyed, cached, withheld when secret, recorded and shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.executor.values import parse
from tests.conftest import Project


def summary(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.runs()[-1] / "summary.json").read_text())
    return data


def job(project: Project, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(j for j in summary(project)["jobs"] if j["name"] == name)
    return found


def log(project: Project, name: str) -> str:
    return (project.runs()[-1] / "logs" / f"{name}.log").read_text()


def test_the_file_format_is_githubs() -> None:
    text = (
        "version=1.2.3\n"
        "empty=\n"
        "eq=a=b\n"
        "notes<<EOF\nline one\n\nline=three\nEOF\n"
        "\n"
        "no separator here\n"
        "9lives=x\n"
        "last<<END\nnever closed\n"
    )
    values, warnings = parse(text)
    assert values == {
        "version": "1.2.3",
        "empty": "",
        "eq": "a=b",
        "notes": "line one\n\nline=three",
    }
    assert warnings == [
        "line 10: 'no separator here': expected NAME=value or NAME<<DELIMITER",
        "line 11: '9lives=x': '9lives' is not a value name "
        "(letters, digits, _ and -, not starting with a digit)",
        "line 12: 'last<<END': no line 'END' ends the value",
    ]


PIPELINE = """
jobs:
  setup:
    run: |
      echo "version=$(cat VERSION)" >> "$CONVEYOR_OUTPUT"
      echo "where=sub" >> "$CONVEYOR_OUTPUT"
      printf 'notes<<EOF\\nfirst line\\nsecond line\\nEOF\\n' >> "$CONVEYOR_OUTPUT"
      echo "this is no value" >> "$CONVEYOR_OUTPUT"
  build:
    needs: [setup]
    dir: ${{ needs.setup.values.where }}
    env:
      VERSION: v${{ needs.setup.values.version }}
    run: |
      echo "building ${{ needs.setup.values.version }} as $VERSION in $(basename $PWD)"
      echo "[${{ needs.setup.values.notes }}]"
      echo "unset=[${{ needs.setup.values.nope }}]"
  release:
    needs: [setup]
    if: needs.setup.values.version == '2.0' && branch == 'main'
    run: echo releasing
  after-release:
    needs: [release]
    run: echo after
"""


def test_a_job_reads_the_values_of_a_job_it_needs(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.write("VERSION", "1.5\n")
    project.write("sub/README", "x\n")
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    build = log(project, "build")
    assert "building 1.5 as v1.5 in sub" in build
    assert "[first line\nsecond line]" in build
    # A value no job wrote is an empty string, and the log says so.
    assert "unset=[]" in build
    assert "conveyor: needs.setup.values.nope is empty: 'setup' did not write it" in build
    # A malformed line is a warning naming it, not a failure.
    assert "$CONVEYOR_OUTPUT line 7: 'this is no value'" in log(project, "setup")
    # if: on a value, decided when the job is ready; what needs it is skipped too.
    release = job(project, "release")
    assert release["status"] == "skipped"
    assert "needs.setup.values.version='1.5'" in release["reason"]
    assert job(project, "after-release")["status"] == "skipped"
    assert job(project, "after-release")["reason"] == "needs 'release', which was skipped"
    assert job(project, "setup")["values"] == {
        "version": "1.5",
        "where": "sub",
        "notes": "first line\nsecond line",
    }

    project.write("VERSION", "2.0\n")
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert job(project, "release")["status"] == "success"
    assert job(project, "after-release")["status"] == "success"


def test_values_key_the_jobs_after_and_come_back_from_the_cache(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            inputs: [VERSION]
            run: echo "version=$(cat VERSION)" >> "$CONVEYOR_OUTPUT"
          use:
            needs: [setup]
            run: echo "got ${{ needs.setup.values.version }}"
          plain:
            needs: [setup]
            run: echo "does not read it"
        """
    )
    project.write("VERSION", "1\n")
    project.commit()
    assert project.run("run", "--plain").code == 0
    again = project.run("run", "--plain")
    assert again.code == 0
    assert all(j["cached"] for j in summary(project)["jobs"])
    # The writer was a hit: its values came back with it.
    assert job(project, "setup")["values"] == {"version": "1"}

    # The reader changes while the writer hits: it still gets the restored value.
    project.pipeline(
        """
        jobs:
          setup:
            inputs: [VERSION]
            run: echo "version=$(cat VERSION)" >> "$CONVEYOR_OUTPUT"
          use:
            needs: [setup]
            run: echo "now got ${{ needs.setup.values.version }}"
          plain:
            needs: [setup]
            run: echo "does not read it"
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert job(project, "setup")["cached"]
    assert not job(project, "use")["cached"]
    assert "now got 1" in log(project, "use")

    # A changed value misses every job that needs the writer.
    project.write("VERSION", "2\n")
    project.commit()
    changed = project.run("run", "--plain", "--explain")
    assert changed.code == 0
    assert not job(project, "plain")["cached"], changed.out
    assert "now got 2" in log(project, "use")


def test_a_value_holding_a_secret_is_withheld(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cr3t-t0ken-value"
    monkeypatch.setenv("API_TOKEN", token)
    project.pipeline(
        """
        jobs:
          login:
            secrets: [API_TOKEN]
            run: |
              echo "session=abc-$API_TOKEN" >> "$CONVEYOR_OUTPUT"
              echo "user=robot" >> "$CONVEYOR_OUTPUT"
          use:
            needs: [login]
            env: {USER_NAME: "${{ needs.login.values.user }}"}
            run: echo "session=[${{ needs.login.values.session }}] user=$USER_NAME"
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert "value 'session' is not passed on: it contains a secret" in log(project, "login")
    assert "session=[] user=robot" in log(project, "use")
    assert job(project, "login")["values"] == {"user": "robot"}
    shown = project.run("show", "--json")
    assert token not in shown.out
    everything = "".join(
        p.read_text(errors="replace")
        for p in project.root.joinpath(".conveyor").rglob("*")
        if p.is_file() and p.suffix != ".db"
    )
    assert token not in everything


def test_show_lists_the_values(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: |
              echo "version=3.1" >> "$CONVEYOR_OUTPUT"
              printf 'notes<<X\\na\\nb\\nX\\n' >> "$CONVEYOR_OUTPUT"
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    shown = project.run("show")
    assert shown.code == 0, shown.err
    assert "values ($CONVEYOR_OUTPUT):" in shown.out
    assert "setup: version=3.1" in shown.out
    assert "setup: notes=a  (2 lines)" in shown.out
    data = json.loads(project.run("show", "--json").out)
    assert {"job": "setup", "name": "version", "value": "3.1"} in data["values"]


def test_a_fresh_file_for_each_attempt(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            retries: {max: 1, delay: 0}
            run: |
              if [ ! -e tried ]; then
                touch tried
                echo "from=first" >> "$CONVEYOR_OUTPUT"
                exit 1
              fi
              echo "second=yes" >> "$CONVEYOR_OUTPUT"
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    assert job(project, "flaky")["values"] == {"second": "yes"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            """
            jobs:
              setup: {run: "true"}
              build:
                needs: [setup]
                run: echo ${{ needs.stup.values.version }}
            """,
            "conveyor.yml:5:25: jobs.build.run[0]: 'stup' is not among the jobs this one "
            "needs (did you mean 'setup'?)",
        ),
        (
            """
            jobs:
              setup: {run: "true"}
              build:
                run: echo ${{ needs.setup.values.version }}
            """,
            "jobs.build.run[0]: 'setup' is not among the jobs this one needs: only the "
            "values and results of jobs listed in `needs:` can be read (needs: none)",
        ),
        (
            """
            jobs:
              setup: {run: "true"}
              build:
                needs: [setup]
                if: needs.setp.values.ok == 'yes'
                run: "true"
            """,
            "conveyor.yml:5:15: jobs.build.if: invalid expression: 'setp' is not among the "
            "jobs this one needs (did you mean 'setup'?)",
        ),
        (
            """
            jobs:
              setup: {run: "true"}
              build:
                needs: [setup]
                outputs: ["dist/${{ needs.setup.values.name }}"]
                run: "true"
            """,
            "jobs.build.outputs[0]: '${{ needs.setup.values.name }}' cannot be used here",
        ),
        (
            """
            jobs:
              setup: {run: "true"}
              build:
                needs: [setup]
                run: echo ${{ needs.setup.version }}
            """,
            "unknown field 'version' of needs.setup; known: result, values.NAME",
        ),
    ],
)
def test_reading_a_value_is_checked_when_the_file_is_read(
    project: Project, body: str, message: str
) -> None:
    project.pipeline(body)
    result = project.run("validate")
    assert result.code == 2
    assert message in result.err, result.err
    assert "Traceback" not in result.err


def test_a_dir_from_a_value_must_stay_in_the_workspace(project: Project, tmp_path: Path) -> None:
    project.pipeline(
        """
        jobs:
          setup:
            run: echo "where=../.." >> "$CONVEYOR_OUTPUT"
          build:
            needs: [setup]
            dir: ${{ needs.setup.values.where }}
            run: touch escaped
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    assert (
        "dir '../..' is not a relative path inside the workspace" in job(project, "build")["reason"]
    )
    assert not (tmp_path / "escaped").exists()


def test_the_plan_does_not_guess_the_key_of_a_job_reading_values(project: Project) -> None:
    """A reader's command holds what its needs write: `run -n` and `why` cannot know its
    key before they run, even when they would come from the cache."""
    project.pipeline(PIPELINE)
    project.write("VERSION", "1.5\n")
    project.write("sub/README", "x\n")
    project.commit()
    assert project.run("run", "--plain", "setup", "build").code == 0
    plan = project.run("run", "-n", "setup", "build")
    lines = {
        line.split()[1]: line for line in plan.out.splitlines()[1:] if line.strip()[:1].isdigit()
    }
    assert "cached" in lines["setup"]
    assert "run?" in lines["build"]
    assert "it reads values of the jobs it needs" in plan.out


def test_a_condition_on_the_status_and_a_value_reads_both(project: Project) -> None:
    # `success() && needs.X.values.Y` was decided twice, the second time without the
    # run's status: always false (found translating GitHub workflows' job if:).
    project.pipeline(
        """
jobs:
  build:
    run: echo "version=1.2" >> "$CONVEYOR_OUTPUT"
  deploy:
    needs: [build]
    if: success() && needs.build.values.version == '1.2'
    run: echo deploying
  never:
    needs: [build]
    if: success() && needs.build.values.version == '9.9'
    run: echo wrong
  cleanup:
    needs: [build]
    if: always() && needs.build.values.version != ''
    run: echo cleaning
"""
    )
    project.commit()

    ran = project.run("run", "--plain")

    assert ran.code == 0, ran.out + ran.err
    assert "deploying" in ran.out
    assert "cleaning" in ran.out
    assert "wrong" not in ran.out
    assert job(project, "never")["status"] == "skipped"
