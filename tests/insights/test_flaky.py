"""`conveyor flaky`: jobs and tests that passed and failed on the same inputs."""

from __future__ import annotations

import json
import sys

from tests.conftest import Project


def test_flaky_jobs_and_tests_on_the_same_inputs(project: Project) -> None:
    coin = project.root.parent / "coin"  # outside the workspace: not an input
    project.write(
        "tests/test_coin.py",
        f"""
        from pathlib import Path

        def test_steady():
            assert True

        def test_coin():
            assert Path({str(coin)!r}).read_text() == "heads"
        """,
    )
    project.pipeline(
        f"""
        name: coin
        jobs:
          test:
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=out/junit.xml
            reports:
              junit: out/junit.xml
        """
    )
    project.commit()
    for side, code in (("heads", 0), ("tails", 1), ("heads", 0)):
        coin.write_text(side)
        assert project.run("run", "--no-cache").code == code
    assert project.run("flaky").code == 0
    (project.root / ".conveyor" / "quarantine.json").write_text('{"tests": []}')
    written = project.run("flaky", "--quarantine", "--json")
    assert "1 flaky test(s) written to conveyor.quarantine.json" in written.err
    assert ".conveyor/quarantine.json removed: conveyor.quarantine.json replaces it" in written.err
    found = json.loads(written.out)
    [job] = found["jobs"]
    assert (job["job"], job["flips"], job["passed"], job["failed"]) == ("test", 2, 2, 1)
    [test] = found["tests"]
    assert test["test"].endswith("test_coin")
    assert (test["flips"], test["passed"], test["failed"]) == (2, 2, 1)
    assert test["commit"] == project.git("rev-parse", "HEAD")
    # Beside conveyor.yml, to commit: sorted, a test a line, for a diff a test a line.
    listing = (project.root / "conveyor.quarantine.json").read_text()
    assert listing == (
        '{\n  "version": 1,\n  "tests": [\n'
        f'    {{"job": "test", "test": "{test["test"]}"}}\n'
        "  ]\n}\n"
    )
    assert not (project.root / ".conveyor" / "quarantine.json").exists()
    # A test in the old list that the history does not call flaky is not dropped unsaid.
    old = project.root / ".conveyor" / "quarantine.json"
    old.write_text('{"tests": [{"job": "test", "test": "tests.test_net.test_retry"}]}')
    kept = project.run("flaky", "--quarantine")
    assert (
        ".conveyor/quarantine.json is left in place: 1 of its tests are not flaky in this "
        "history (test: tests.test_net.test_retry); add those to keep to "
        "conveyor.quarantine.json, then remove it"
    ) in kept.err
    assert old.exists()
    text = project.run("flaky").out
    assert "flaky tests (same commit, different outcomes)" in text
    assert "2 flip(s), 2 passed, 1 failed" in text


def test_a_steady_failure_is_not_flaky(project: Project) -> None:
    project.pipeline("name: steady\njobs:\n  broken:\n    run: exit 1\n")
    project.commit()
    for _ in range(3):
        assert project.run("run", "--no-cache").code == 1
    assert json.loads(project.run("flaky", "--json").out) == {"jobs": [], "tests": []}
