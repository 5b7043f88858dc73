"""`conveyor audit`: the rule, line and column of planted problems, clean files, exit
codes, JSON and SARIF, and the peers' fixtures (CONVEYOR_CORPUS, else
/work/shared/corpus: skipped when absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Project

CLEAN = """
on:
  push:
  pull_request:
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
        with:
          persist-credentials: false
      - uses: actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b
        with:
          python-version: "3.12"
          cache: pip
      - run: pip install -r requirements.txt
      - run: python -m pytest
"""


def _corpus() -> Path:
    base = os.environ.get("CONVEYOR_CORPUS")
    if base:
        return Path(base) / "audit"
    shared = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "audit"
    return shared if shared.is_dir() else Path("/work/shared/corpus/audit")


CORPUS = _corpus()
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the audit corpus is not at {CORPUS} (set CONVEYOR_CORPUS)"
)


def _rules(out: str) -> list[tuple[str, str]]:
    """(FILE:LINE:COL, rule) of each finding line."""
    found = []
    for line in out.splitlines():
        if " [" in line and line.count(":") >= 3:
            where, rest = line.split(": ", 1)
            found.append((where, rest.split("[", 1)[1].split("]", 1)[0]))
    return found


def test_a_clean_workflow_has_no_finding_and_exits_0(project: Project) -> None:
    project.write(".github/workflows/ci.yml", CLEAN)
    result = project.run("audit")
    assert result.code == 0, result.out
    assert result.out == "no findings in 1 file\n"


def test_injection_is_located_at_the_context(project: Project) -> None:
    project.write(
        ".github/workflows/greet.yml",
        """
        on: issues
        permissions: {}
        jobs:
          greet:
            runs-on: ubuntu-latest
            timeout-minutes: 5
            steps:
              - run: |
                  echo "thanks"
                  echo "${{ github.event.issue.title }}"
        """,
    )
    result = project.run("audit")
    assert result.code == 1
    assert _rules(result.out) == [(".github/workflows/greet.yml:10:21", "template-injection")]
    line = result.out.splitlines()[0]
    assert line.startswith(".github/workflows/greet.yml:10:21: high [template-injection] ")
    assert "(fix: pass the value through `env:`" in line
    assert result.out.splitlines()[-1] == "1 finding in 1 file: 1 high"


def test_planted_problems_each_have_their_rule_and_place(project: Project) -> None:
    project.write(
        "wf.yml",
        """
        on: pull_request_target
        permissions: write-all
        env:
          TOKEN: ${{ secrets.DEPLOY_TOKEN }}
        jobs:
          build:
            runs-on: [self-hosted, linux]
            container:
              image: node
              credentials:
                username: me
                password: hunter22
            steps:
              - uses: actions/checkout@v4
                with:
                  ref: ${{ github.event.pull_request.head.sha }}
              - uses: someone/tool@main
              - run: curl -sSL https://example.com/install.sh | sh
              - run: npm ci
              - uses: actions/upload-artifact@v4
          deploy:
            needs: build
            uses: org/repo/.github/workflows/deploy.yml@0123456789abcdef0123456789abcdef01234567
            secrets: inherit
        """,
    )
    result = project.run("audit", "wf.yml", "--fail-on", "high")
    assert result.code == 1
    assert set(_rules(result.out)) == {
        ("wf.yml:2:14", "excessive-permissions"),
        ("wf.yml:4:10", "secrets-at-workflow-level"),
        ("wf.yml:7:14", "self-hosted-runner"),
        ("wf.yml:9:14", "unpinned-image"),
        ("wf.yml:12:19", "hardcoded-credentials"),
        ("wf.yml:14:15", "artipacked"),
        ("wf.yml:14:15", "unpinned-uses"),
        ("wf.yml:16:16", "dangerous-triggers"),
        ("wf.yml:17:15", "unpinned-uses"),
        ("wf.yml:18:14", "curl-pipe-shell"),
        ("wf.yml:19:14", "no-dependency-cache"),
        ("wf.yml:20:15", "no-artifact-retention"),
        ("wf.yml:20:15", "unpinned-uses"),
        ("wf.yml:6:3", "no-timeout"),
        ("wf.yml:24:14", "secrets-inherit"),
    }


def test_needless_needs_but_not_a_gate(project: Project) -> None:
    project.write(
        "wf.yml",
        """
        on: push
        permissions: {}
        jobs:
          lint: {runs-on: ubuntu-latest, timeout-minutes: 5, steps: [{run: make lint}]}
          test:
            needs: [lint]
            runs-on: ubuntu-latest
            timeout-minutes: 5
            steps: [{run: make test}]
          deploy:
            needs: [test]
            runs-on: ubuntu-latest
            timeout-minutes: 5
            environment: production
            steps: [{run: make deploy}]
          notify:
            needs: [deploy]
            if: failure()
            runs-on: ubuntu-latest
            timeout-minutes: 5
            steps: [{run: make page-someone}]
        """,
    )
    result = project.run("audit", "wf.yml")
    assert _rules(result.out) == [("wf.yml:6:13", "needless-needs")]
    assert result.code == 0  # low: below the default --fail-on medium
    assert project.run("audit", "wf.yml", "--fail-on", "low").code == 1


def test_gitlab_rules(project: Project) -> None:
    project.write(
        ".gitlab-ci.yml",
        """
        image: python:latest
        variables:
          DB_PASSWORD: s3cr3t-value
        build:
          script:
            - pip install -r requirements.txt
            - curl https://get.example.com | bash
            - python -m pytest
          artifacts:
            paths: [dist/]
        """,
    )
    result = project.run("audit")
    assert set(_rules(result.out)) == {
        (".gitlab-ci.yml:1:8", "unpinned-image"),
        (".gitlab-ci.yml:3:16", "hardcoded-credentials"),
        (".gitlab-ci.yml:4:1", "no-timeout"),
        (".gitlab-ci.yml:6:7", "no-dependency-cache"),
        (".gitlab-ci.yml:7:7", "curl-pipe-shell"),
        (".gitlab-ci.yml:9:3", "no-artifact-retention"),
    }
    assert result.code == 1


def test_json_output(project: Project) -> None:
    project.write("wf.yml", CLEAN.replace("timeout-minutes: 10", ""))
    result = project.run("audit", "wf.yml", "--json")
    data = json.loads(result.out)
    assert data["files"] == ["wf.yml"]
    assert data["findings"] == [
        {
            "path": "wf.yml",
            "line": 7,
            "col": 3,
            "rule": "no-timeout",
            "severity": "low",
            "message": "job 'test' has no timeout-minutes (a hang holds a runner for 6 h)",
            "fix": "set `timeout-minutes:` (GitHub) or `timeout:` (GitLab) a little above "
            "the usual time",
        }
    ]
    assert data["summary"] == {"high": 0, "medium": 0, "low": 1, "info": 0}
    assert result.code == 0


def test_sarif_is_valid_and_points_at_the_line(project: Project, tmp_path: Path) -> None:
    project.write(".github/workflows/a.yml", CLEAN.replace("persist-credentials: false", ""))
    project.write(
        ".github/workflows/b.yml", CLEAN.replace("@0b93645e9fea7318ecaed2b359559ac225c90a2b", "@v5")
    )
    sarif = tmp_path / "audit.sarif"
    result = project.run("audit", "--sarif", str(sarif))
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "conveyor-audit"
    assert {r["id"] for r in driver["rules"]} == {"artipacked", "unpinned-uses"}
    located = []
    for res in run["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["message"]["text"]
        assert res["level"] in ("error", "warning", "note")
        (loc,) = res["locations"]
        physical = loc["physicalLocation"]
        located.append(
            (
                physical["artifactLocation"]["uri"],
                physical["region"]["startLine"],
                physical["region"]["startColumn"],
                res["ruleId"],
            )
        )
    assert sorted(located) == [
        (".github/workflows/a.yml", 11, 15, "artipacked"),
        (".github/workflows/b.yml", 14, 15, "unpinned-uses"),
    ]
    assert result.code == 0

    from conveyor.reports.sarif import read_sarif  # Conveyor's own reader takes it back

    back = read_sarif(str(sarif), str(project.root), str(project.root))
    assert sorted((f.path, f.line, f.rule) for f in back) == [
        (".github/workflows/a.yml", 11, "artipacked"),
        (".github/workflows/b.yml", 14, "unpinned-uses"),
    ]


def test_a_yaml_syntax_error_is_one_located_line_and_exit_2(project: Project) -> None:
    project.write("wf.yml", "on: push\njobs:\n  a:\n    steps: [\n      - run: x\n")
    result = project.run("audit", "wf.yml")
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("wf.yml:5:7: YAML syntax error: ")
    assert "Traceback" not in result.err


def test_a_file_that_is_not_a_mapping_is_exit_2(project: Project) -> None:
    project.write("wf.yml", "- just\n- a list\n")
    result = project.run("audit", "wf.yml")
    assert (result.code, result.err) == (
        2,
        "wf.yml:1:1: not a CI file (a CommentedSeq, expected a mapping)\n",
    )


def test_no_ci_files_is_a_usage_error(project: Project) -> None:
    result = project.run("audit")
    assert result.code == 2
    assert result.err.startswith("error: no CI files under ")


@needs_corpus
@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (CORPUS / "actionlint" / "ok").glob("*.yaml"))
    if CORPUS.is_dir()
    else [],
)
def test_actionlint_ok_fixtures_have_no_high_or_medium(project: Project, name: str) -> None:
    result = project.run("audit", str(CORPUS / "actionlint" / "ok" / name), "--json")
    serious = [f for f in json.loads(result.out)["findings"] if f["severity"] in ("high", "medium")]
    assert serious == []
    assert result.code == 0


@needs_corpus
def test_actionlint_untrusted_input_lines(project: Project) -> None:
    result = project.run("audit", str(CORPUS / "actionlint" / "untrusted_input.yaml"), "--json")
    found = [
        (f["line"], f["col"])
        for f in json.loads(result.out)["findings"]
        if f["rule"] == "template-injection"
    ]
    # actionlint's .out: 10:24, 19:36, 22:31 (the last an object filter, `.*.body`).
    assert found == [(10, 24), (19, 36), (22, 31)]


@needs_corpus
def test_hazmat_pull_request_target_checkout_is_high(project: Project) -> None:
    path = CORPUS / "gha-hazmat" / "pull-request-target.yml"
    result = project.run("audit", str(path), "--json")
    rules = {(f["rule"], f["severity"]) for f in json.loads(result.out)["findings"]}
    assert ("dangerous-triggers", "high") in rules
    assert result.code == 1
