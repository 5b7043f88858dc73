"""The `vulnerabilities` gate: the pipeline's (the workspace's lockfiles, after the run)
and a job's (the lockfiles under its `dir`), per severity, `deps.ignore` applied, and
with a baseline only new vulnerabilities counting; `conveyor gates --write-baseline`
writes that baseline."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Project
from tests.deps.osvdata import OSV

GATED = """
jobs:
  build: {{run: "true"}}
  web:
    dir: web
    run: "true"
    gates:
      vulnerabilities: {{max: {{critical: 0}}, level: {job_level}}}
gates:
  vulnerabilities:
    max: {{critical: 0, high: 0}}
    baseline: {baseline}
{ignore}
"""


def pipeline(
    project: Project, *, baseline: str = "", ignore: str = "", job_level: str = "warn"
) -> None:
    text = GATED.format(baseline=baseline or "null", ignore=ignore, job_level=job_level)
    project.pipeline(text)
    project.commit()


def gates(project: Project) -> dict[tuple[str, str], dict[str, Any]]:
    done = project.run("gates", "--json")
    return {(g["scope"], g["gate"]): g for g in json.loads(done.out)["gates"]}


def test_the_gates_count_per_severity_in_their_scope(workspace: Project) -> None:
    assert workspace.run("deps", "db", "import", str(OSV)).code == 0
    pipeline(workspace)
    done = workspace.run("run", "--plain")
    assert done.code == 1, done.out + done.err
    found = gates(workspace)
    critical = found[("pipeline", "vulnerabilities.critical")]
    assert (critical["passed"], critical["measured"]) == (False, "1")
    assert "minimist 1.2.0 GHSA-xvch-5gv4-984h (web/package-lock.json:20)" in critical["detail"]
    high = found[("pipeline", "vulnerabilities.high")]
    assert (high["passed"], high["measured"]) == (False, "4")
    assert "10 more of severity medium, unknown not limited by this gate" in high["detail"]
    # The job in web/ audits web/'s lockfile only (a warning: the job succeeds).
    job = found[("web", "vulnerabilities.critical")]
    assert (job["passed"], job["measured"]) == (False, "1")
    assert ("web", "vulnerabilities.high") not in found
    kept = json.loads((workspace.runs()[-1] / "vulnerabilities.json").read_text())
    assert set(kept["scopes"]) == {"pipeline", "web"}
    assert len(kept["scopes"]["web"]["found"]) == 5


def test_exceptions_apply_and_an_expired_one_is_said(workspace: Project) -> None:
    assert workspace.run("deps", "db", "import", str(OSV)).code == 0
    ignore = """deps:
  ignore:
    - {id: CVE-2021-44906, reason: "minimist parses our own argv only"}
    - {id: GHSA-35jh-r3h4-6jhm, reason: "templates are ours", until: 2021-01-01}
"""
    pipeline(workspace, ignore=ignore, job_level="error")
    done = workspace.run("run", "--plain")
    assert done.code == 1  # four high remain
    found = gates(workspace)
    assert found[("pipeline", "vulnerabilities.critical")]["passed"]
    assert found[("web", "vulnerabilities.critical")]["passed"]
    high = found[("pipeline", "vulnerabilities.high")]
    assert high["measured"] == "4"
    assert (
        "the exception for GHSA-35JH-R3H4-6JHM expired on 2021-01-01: it counts again"
        in high["detail"]
    )


def test_a_baseline_counts_only_new_vulnerabilities(workspace: Project) -> None:
    assert workspace.run("deps", "db", "import", str(OSV)).code == 0
    pipeline(workspace, baseline="vulnerabilities.baseline.json")
    assert workspace.run("run", "--plain").code == 1
    first = gates(workspace)[("pipeline", "vulnerabilities.high")]
    assert "no baseline at vulnerabilities.baseline.json yet" in first["detail"]

    written = workspace.run("gates", "--write-baseline")
    assert written.code == 0, written.out + written.err
    assert "15 finding(s) written to vulnerabilities.baseline.json" in written.err
    baseline = json.loads((workspace.root / "vulnerabilities.baseline.json").read_text())
    assert baseline["version"] == 1
    entry = next(e for e in baseline["vulnerabilities"] if e["id"] == "GHSA-462w-v97r-4m45")
    assert entry["package"] == "pkg:pypi/jinja2"
    assert entry["ids"] == ["CVE-2019-10906", "GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    workspace.commit()
    assert workspace.run("run", "--plain").code == 0
    assert gates(workspace)[("pipeline", "vulnerabilities.high")]["measured"] == "0 new"

    # minimist 1.2.5: still affected by GHSA-xvch-5gv4-984h, known; body-parser is new.
    lock_path = workspace.root / "web/package-lock.json"
    lock = json.loads(lock_path.read_text())
    lock["packages"]["node_modules/minimist"]["version"] = "1.2.5"
    lock["packages"]["node_modules/body-parser"] = {"version": "1.20.2", "license": "MIT"}
    lock_path.write_text(json.dumps(lock, indent=2) + "\n")
    workspace.commit()
    assert workspace.run("run", "--plain").code == 1
    found = gates(workspace)
    assert found[("pipeline", "vulnerabilities.critical")]["measured"] == "0 new"
    high = found[("pipeline", "vulnerabilities.high")]
    assert high["measured"] == "1 new"
    assert high["detail"].startswith(
        "body-parser 1.20.2 GHSA-qwcr-r2fm-qrc7 (web/package-lock.json:"
    )


def test_without_a_database_the_gate_fails_and_says_why(workspace: Project) -> None:
    pipeline(workspace)
    assert workspace.run("run", "--plain").code == 1
    gate = gates(workspace)[("pipeline", "vulnerabilities")]
    assert gate["measured"] == "not audited"
    assert gate["detail"] == (
        "no advisory database has been imported; import an advisory database first: "
        "conveyor deps db import PATH"
    )


def test_the_pipeline_gate_audits_the_workspace_after_the_run(workspace: Project) -> None:
    """A lockfile a job writes (untracked) is audited by the pipeline's gate."""
    assert workspace.run("deps", "db", "import", str(OSV)).code == 0
    workspace.pipeline(
        """
        jobs:
          lock:
            run: mkdir -p gen && cp web/package-lock.json gen/package-lock.json
        gates:
          vulnerabilities: {max: {critical: 0}}
        """
    )
    workspace.commit()
    assert workspace.run("run", "--plain").code == 1
    critical = gates(workspace)[("pipeline", "vulnerabilities.critical")]
    assert critical["measured"] == "2"
    assert "(gen/package-lock.json:20)" in critical["detail"]
