"""GitHub Actions workflows run locally (issue 15): nektos/act's own cases, run with
`conveyor run -f`, must end as act's test table says (pass, or fail), and a planted
workflow shows each feature a user relies on: step outputs, $GITHUB_ENV, job outputs
through `needs`, matrices, `if:` on status and needs, masking, unsupported jobs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.interop.github import expr
from tests.conftest import Project

CORPUS = Path(os.environ.get("CONVEYOR_CORPUS", "/work/shared/corpus")) / "act" / "testdata"

# act's cases that end as its table says when run here. Left out, with the reason:
# defaults-run (checks $SHELL, which act's container leaves unset: not in act's own
# host suite), evalmatrixneeds (a matrix computed from needs: refused, located),
# secrets runs with act's own --secret-file and --env-file (its .actrc).
# uses-nested-composite (asks setup-node for Node 16; this machine has another),
# services and fail (`services:`/`container:`: skipped, said before the run).
CASES = [
    "checkout/push.yml",
    "commands/push.yml",
    "ensure-post-steps/push.yml",
    "env-and-path/push.yaml",
    "environment-files/push.yaml",
    "if-expressions/push.yml",
    "job-needs-context-contains-result/push.yml",
    "job-status-check/push.yml",
    "mask-values/push.yml",
    "matrix-exitcode/push.yml",
    "matrix-include-exclude/push.yml",
    "matrix/push.yml",
    "outputs/push.yml",
    "secrets/push.yml",
    "shells/bash/push.yml",
    "shells/defaults/push.yml",
    "steps-context/conclusion/push.yml",
    "steps-context/outcome/push.yml",
    "uses-composite-with-error/push.yml",
    "uses-composite/push.yml",
    "workdir/push.yml",
    "workflow_dispatch/workflow_dispatch.yml",
]


@pytest.fixture(scope="module")
def testdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"act's cases are not at {CORPUS} (set CONVEYOR_CORPUS)")
    root = tmp_path_factory.mktemp("act") / "testdata"
    shutil.copytree(CORPUS, root, symlinks=True)
    return root


@pytest.mark.parametrize("case", CASES)
def test_acts_case_ends_as_act_says(
    case: str, testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = (testdata / case).parent
    while not (folder / "expected.json").exists():
        folder = folder.parent
    expected = json.loads((folder / "expected.json").read_text())["runs"][0]
    project = Project(testdata, capsys)
    args = ["run", "-f", case, "--plain", "--no-cache", "--no-history"]
    args += ["--event", expected.get("event", "push")]
    if case.startswith("workflow_dispatch"):
        payload = json.loads((folder / "event.json").read_text())["inputs"]
        args += [f"--input={k}={v}" for k, v in payload.items()]
    if case.startswith("secrets"):
        args += ["--secret-file", "secrets/.secrets", "--env-file", "secrets/.env"]

    ran = project.run(*args)

    want = 1 if expected.get("expect_error") else 0
    assert ran.code == want, ran.out[-3000:] + ran.err[-2000:]
    if case.startswith("mask-values"):
        assert "composite secret" not in ran.out
    if case.startswith("secrets"):
        assert "top-secret" not in ran.out, "masked"


WORKFLOW = """
name: ci
on: [push, workflow_dispatch]
env:
  GREETING: hello
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: v
        run: |
          echo "version=1.2.${{ github.run_number }}" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=yes" >> "$GITHUB_ENV"
          echo "::add-mask::s3cr3t-value"
      - run: test "$FROM_ENV" = yes && echo "the token is s3cr3t-value"
  test:
    needs: build
    strategy:
      matrix:
        py: ["3.11", "3.12"]
    runs-on: ubuntu-latest
    steps:
      - run: echo "testing ${{ needs.build.outputs.version }} on ${{ matrix.py }} $GREETING"
      - run: exit 3
        if: matrix.py == '3.12'
        continue-on-error: true
  deploy:
    needs: [build, test]
    if: github.event_name == 'push' && needs.build.outputs.version != ''
    runs-on: ubuntu-latest
    steps:
      - run: echo "deploying ${{ needs.build.outputs.version }}"
  on-failure:
    needs: deploy
    if: failure()
    runs-on: ubuntu-latest
    steps:
      - run: echo "should not run"
  docker:
    runs-on: ubuntu-latest
    container: node:20
    steps:
      - run: echo in a container
"""


def test_a_workflow_runs_with_outputs_env_matrix_conditions_and_masks(project: Project) -> None:
    project.write(".github/workflows/ci.yml", WORKFLOW)
    project.commit()

    ran = project.run("run", "-f", ".github/workflows/ci.yml", "--plain", "--no-cache")

    assert ran.code == 0, ran.out + ran.err
    assert "job 'docker' cannot run on this machine: `container:`" in ran.err
    assert "testing 1.2.1 on 3.11 hello" in ran.out
    assert "testing 1.2.1 on 3.12 hello" in ran.out
    assert "deploying 1.2.1" in ran.out
    assert "should not run" not in ran.out
    assert "the token is ***" in ran.out
    assert "s3cr3t-value" not in ran.out
    assert "(continue-on-error)" in ran.out


def test_an_unsupported_job_fails_the_run_when_asked(project: Project) -> None:
    project.write(".github/workflows/ci.yml", WORKFLOW)
    project.commit()

    ran = project.run(
        "run", "-f", ".github/workflows/ci.yml", "--plain", "--no-cache", "--on-unsupported=fail"
    )

    assert ran.code == 1
    assert "not runnable locally: `container:`" in ran.out


def test_a_workflow_not_triggered_by_the_event_is_a_located_error(project: Project) -> None:
    project.write(
        ".github/workflows/rel.yml",
        "on:\n  release: {}\njobs:\n  a:\n    runs-on: x\n    steps: [{run: 'true'}]\n",
    )
    project.commit()

    ran = project.run("run", "-f", ".github/workflows/rel.yml", "--plain")

    assert ran.code == 2
    assert ".github/workflows/rel.yml:1:1" in ran.err or "rel.yml:2:" in ran.err, ran.err
    assert "does not run on push" in ran.err
    assert "Traceback" not in ran.err


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'abc' == 'ABC'", True),
        ("1 == '1'", True),
        ("null == 0", True),
        ("format('{0}-{{x}}-{1}', 'a', 2)", "a-{x}-2"),
        ("join(fromJSON('[1,2,3]'), '+')", "1+2+3"),
        ("contains(fromJSON('[\"a\",\"b\"]'), 'B')", True),
        ("github.event.commits.*.id", ["1", "2"]),
        ("github['event_name'] || 'none'", "push"),
        ("!startsWith(github.ref, 'refs/tags/')", True),
        ("0.1 < 1 && 'x'", "x"),
    ],
)
def test_expressions_follow_githubs_semantics(source: str, value: object) -> None:
    env = expr.Env(
        {
            "github": {
                "event_name": "push",
                "ref": "refs/heads/main",
                "event": {"commits": [{"id": "1"}, {"id": "2"}]},
            }
        }
    )
    assert expr.evaluate(expr.parse(source), env) == value


def test_a_jobs_if_keeps_only_what_the_run_can_tell() -> None:
    env = expr.Env({"github": {"event_name": "push"}, "inputs": {}, "vars": {}})
    outputs = {"build": ["version"]}
    got = expr.residual("github.event_name == 'push' && needs.build.outputs.version", env, outputs)
    assert got == "(true && needs.build.values.version)"
    assert expr.residual("${{ always() }}", env, outputs) == "always()"
    assert expr.residual("github.event_name == 'push'", env, outputs) is None


def test_every_real_workflow_plans_or_says_where_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = CORPUS.parent.parent / "github"
    if not source.is_dir():
        pytest.skip(f"no real workflows at {source}")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for path in sorted(source.glob("*.yml")):
        shutil.copy(path, workflows / path.name)
    project = Project(tmp_path, capsys)
    project.git("init", "-q")
    planned = 0
    for path in sorted(workflows.glob("*.yml")):
        ran = project.run("run", "-f", f".github/workflows/{path.name}", "-n", "--plain")
        assert "Traceback" not in ran.err, ran.err
        if ran.code == 0:
            planned += 1
            assert "plan:" in ran.out, ran.out
        else:
            assert ran.code == 2, ran.err
            # Located: the file, a line and a column.
            assert f".github/workflows/{path.name}:" in ran.err, ran.err
    # 22 plan; the others are refused, located: not triggered by push (7), a matrix
    # computed from needs (1), a local reusable workflow the corpus keeps under another
    # file name (3).
    assert planned >= 22


CACHED = """
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        py: ["3.11"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/cache@v4
        id: deps
        with:
          path: deps
          key: ${{ runner.os }}-deps-${{ matrix.py }}-${{ hashFiles('reqs.txt') }}
          restore-keys: |
            ${{ runner.os }}-deps-
      - run: |
          if [ -f deps/installed ]; then echo "deps restored"
          else mkdir -p deps && echo yes > deps/installed && echo "deps installed"; fi
      - run: echo "cache-hit=${{ steps.deps.outputs.cache-hit }}"
"""


def test_actions_cache_is_conveyors_dependency_cache(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(tmp_path / "cache"))
    project.write(".github/workflows/ci.yml", CACHED)
    project.write("reqs.txt", "requests==2.0\n")
    project.write(".gitignore", "deps/\n")
    project.commit()

    first = project.run("run", "-f", ".github/workflows/ci.yml", "--plain")
    shutil.rmtree(project.root / "deps")
    second = project.run("run", "-f", ".github/workflows/ci.yml", "--plain")
    project.write("reqs.txt", "requests==2.1\n")
    shutil.rmtree(project.root / "deps")
    changed = project.run("run", "-f", ".github/workflows/ci.yml", "--plain")

    assert first.code == second.code == changed.code == 0, first.out + second.out + changed.out
    assert "deps installed" in first.out
    assert "deps restored" in second.out
    # Another lock file: not the exact key, but a restore key's entry.
    assert "deps restored" in changed.out
    # `cache-hit` is true only for the exact key, as actions/cache says it.
    assert "cache-hit=false" in first.out
    assert "cache-hit=true" in second.out
    assert "cache-hit=false" in changed.out


REUSABLE = """
on:
  workflow_call:
    inputs:
      name: {required: true, type: string}
      flag: {type: boolean, default: false}
      level: {type: number, default: 2}
      fail: {type: boolean, default: false}
    secrets:
      token: {required: true}
    outputs:
      greeting:
        value: ${{ jobs.build.outputs.greeting }}
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.g.outputs.greeting }}
    steps:
      - id: g
        run: |
          echo "hello ${{ inputs.name }} flag=${{ inputs.flag }} \\
            level=${{ inputs.level }} token=${{ secrets.token }}"
          echo "greeting=hi-${{ inputs.name }}" >> "$GITHUB_OUTPUT"
          test "${{ inputs.fail }}" = false
  check:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: test "${{ needs.build.outputs.greeting }}" = "hi-${{ inputs.name }}"
"""

CALLER = """
on: push
jobs:
  prepare:
    runs-on: ubuntu-latest
    steps: [{run: echo preparing}]
  call:
    needs: prepare
    uses: ./.github/workflows/reusable.yml
    with:
      name: world
      flag: ${{ true }}
      fail: FAIL
    secrets:
      token: ${{ secrets.MY_TOKEN }}
  after:
    needs: call
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "got ${{ needs.call.outputs.greeting }} (${{ needs.call.result }})"
"""


@pytest.mark.parametrize("fail", [False, True])
def test_a_local_reusable_workflow_runs_with_inputs_secrets_and_outputs(
    project: Project, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    monkeypatch.setenv("MY_TOKEN", "s3cret-token-value")
    project.write(".github/workflows/reusable.yml", REUSABLE)
    project.write(".github/workflows/ci.yml", CALLER.replace("FAIL", str(fail).lower()))
    project.commit()

    ran = project.run("run", "-f", ".github/workflows/ci.yml", "--plain", "--no-cache")

    assert "hello world flag=true level=2 token=***" in " ".join(ran.out.split())
    assert "s3cret-token-value" not in ran.out
    if not fail:
        assert ran.code == 0, ran.out + ran.err
        assert "got hi-world (success)" in ran.out
    else:
        assert ran.code == 1
        # Outputs written before the failing command are kept, as on GitHub.
        assert "got hi-world (failure)" in ran.out, "the caller failed with its workflow"


def test_matrix_picks_one_combination(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(testdata, capsys)
    args = ["run", "-f", "matrix/push.yml", "--plain", "--no-cache", "--no-history"]

    ran = project.run(*args, "--matrix", "node=8", "--matrix", "os=macos-latest")
    wrong = project.run(*args, "--matrix", "nodes=8")

    assert ran.code == 0, ran.out + ran.err
    assert "✔ build (os=macos-latest, node=8)" in ran.out
    assert "node=6" not in ran.out
    assert "os=ubuntu-18.04" not in ran.out
    assert "test (node=" not in ran.out
    assert wrong.code == 2
    assert "no job has a matrix key 'nodes'" in wrong.err
    assert "hint: matrix keys: node, os" in wrong.err


CONTEXT_WORKFLOW = """
name: Ctx
on: [push]
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: >-
          echo "ref=$GITHUB_REF type=${{ github.ref_type }} sha=${{ github.sha }}
          repo=${{ github.repository }} wf=${{ github.workflow }} ev=${{ github.event_name }}"
"""


def test_import_prints_a_conveyor_yml_that_runs_as_the_workflow_does(project: Project) -> None:
    # The imported file holds the steps, not this run's facts: the commit, run id and
    # workspace are read as the job starts, so the file stays true after the next commit.
    project.write(".github/workflows/ctx.yml", CONTEXT_WORKFLOW)
    project.commit()
    direct = project.run("run", "-f", ".github/workflows/ctx.yml", "--plain")
    imported = project.run("import", ".github/workflows/ctx.yml")
    assert imported.code == 0, imported.err
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True
    ).stdout.strip()
    assert sha not in imported.out, "the commit is not written into the file"
    assert str(project.root) not in imported.out, "nor this workspace's place"
    assert '"workflow": "Ctx"' in imported.out
    project.write("conveyor.yml", imported.out)
    project.commit()  # a new commit: the file must not say the old one
    new_sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True
    ).stdout.strip()

    ran = project.run("run", "--plain")

    assert ran.code == 0, ran.out + ran.err
    expected = f"ref=refs/heads/main type=branch sha={new_sha} repo=local/{project.root.name}"
    assert expected in ran.out, ran.out
    assert "wf=Ctx ev=push" in ran.out
    assert f"sha={sha}" in direct.out, direct.out


@pytest.mark.parametrize(
    ("have", "wanted", "ok"),
    [
        ("3.11.7", "3.11", True),
        ("3.11.7", "3.12", False),
        ("3.11.7", ">=3.9", True),  # pyproject.toml's requires-python
        ("3.11.7", ">=3.12", False),
        ("3.11.7", "~=3.11", True),
        ("20.20.2", "20.x", True),
        ("20.20.2", "v20", True),
        ("20.20.2", "^20", True),
        ("20.20.2", "^18", False),
        ("20.20.2", "~20.1", False),
        ("20.20.2", ">=18 <21", True),
        ("20.20.2", "16 || 20", True),
        ("20.20.2", "=20.20.2", True),
        ("1.21.5", "1.21", True),
    ],
)
def test_a_setup_stand_in_compares_versions_as_the_action_reads_them(
    have: str, wanted: str, ok: bool
) -> None:
    from conveyor.interop.github.actions import satisfies

    assert satisfies(have, wanted) is ok


@pytest.mark.parametrize(
    ("kind", "name", "text", "wanted"),
    [
        ("setup-python", "pyproject.toml", '[project]\nrequires-python = ">=3.9"\n', ">=3.9"),
        ("setup-python", ".python-version", "# pinned\n3.12.1\n", "3.12.1"),
        ("setup-python", ".tool-versions", "nodejs 20.1.0\npython 3.11.4\n", "3.11.4"),
        ("setup-node", "package.json", '{"engines": {"node": ">=18"}}', ">=18"),
        ("setup-node", ".nvmrc", "v20\n", "v20"),
        ("setup-go", "go.mod", "module x\n\ngo 1.21\n\ntoolchain go1.22.3\n", "1.22.3"),
        ("setup-uv", "pyproject.toml", '[tool.uv]\nrequired-version = ">=0.5"\n', ">=0.5"),
    ],
)
def test_a_version_file_is_read_as_the_setup_action_reads_it(
    tmp_path: Path, kind: str, name: str, text: str, wanted: str
) -> None:
    # setup-python with `python-version-file: pyproject.toml` had taken its first line,
    # '[project]', for the version, and warned on flask's own workflow.
    from conveyor.interop.github.actions import version_from_file

    (tmp_path / name).write_text(text)

    assert version_from_file(kind, str(tmp_path / name)) == wanted


UPLOADS = """
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir -p dist && date +%s%N > dist/app.txt
      - uses: actions/upload-artifact@v4
        with: {name: app, path: dist/}
      - uses: actions/upload-artifact@v4
        with: {name: logs, path: dist/app.txt, retention-days: 5}
  use:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with: {name: app}
      - run: test -s dist/app.txt && echo downloaded
"""


def test_uploads_are_stored_versions_that_expire_as_githubs_do(
    project: Project, tmp_path: Path
) -> None:
    from datetime import datetime

    import conveyor

    # The step runner is the job's own process: it imports the Conveyor under test.
    offered = tmp_path / "offered.env"
    offered.write_text(f"PYTHONPATH={Path(conveyor.__file__).parent.parent}\n")
    project.write(".github/workflows/ci.yml", UPLOADS)
    project.write(".gitignore", "dist/\n")
    project.commit()
    args = ("run", "-f", ".github/workflows/ci.yml", "--plain", "--no-cache")
    ran = project.run(*args, "--secret-file", str(offered))
    assert ran.code == 0, ran.out + ran.err
    assert "downloaded" in ran.out
    assert "stored as logs@" in ran.out
    again = project.run(*args, "--secret-file", str(offered), "build")
    assert again.code == 0, again.out + again.err

    listed = project.run("artifacts", "list", "--json")
    versions = json.loads(listed.out)["versions"]
    kept: dict[str, set[int]] = {}
    for v in versions:
        span = datetime.fromisoformat(v["expires"]) - datetime.fromisoformat(v["created"])
        kept.setdefault(v["name"], set()).add(round(span.total_seconds() / 86400))
    assert kept == {"app": {90}, "logs": {5}}  # GitHub's default, and retention-days
    assert len(versions) == 4  # one version of each upload per run
    # What only a run's downloads read is not kept past it: its versions are.
    assert len(os.listdir(project.root / ".conveyor" / "gha-artifacts")) == 1
    dry = project.run("artifacts", "prune", "--dry-run")
    assert "would remove 0 version(s) and 0 blob(s), 0 B; 4 version(s) kept" in dry.out
