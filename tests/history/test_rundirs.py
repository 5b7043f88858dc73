"""Runs read from their directories: finished, killed, still going, and their test cases."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.history.conftest import history


def test_a_killed_run_is_recorded_as_interrupted(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          quick:
            run: echo done
          slow:
            needs: [quick]
            run: echo $$ > slow.pid; sleep 60
        """
    )
    project.commit()
    proc = project.spawn("run", "--plain", "--jobs", "1")
    pid_file = project.root / "slow.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)  # the event log is flushed at most every 0.1 s
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)  # its job, in its own group
    runs = history(project)
    assert [r["status"] for r in runs] == ["interrupted"]
    shown = json.loads(project.run("show", "--json").out)
    assert [j["name"] for j in shown["jobs"]] == ["quick"], "what finished before the kill"


def test_a_killed_run_is_recorded_by_the_next_run_in_a_shared_history(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conveyor.history.store import HistoryStore

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("CONVEYOR_DB_URL", url)
    project.pipeline(
        """
        jobs:
          slow:
            run: if [ -n "$SLOW" ]; then echo $$ > slow.pid; sleep 60; fi
            pass_env: [SLOW]
        """
    )
    project.commit()
    monkeypatch.setenv("SLOW", "1")
    proc = project.spawn("run", "--plain")
    monkeypatch.delenv("SLOW")
    pid_file = project.root / "slow.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    store = HistoryStore(url)
    try:
        assert store.statuses() == {}, "a killed run cannot record itself"
        assert project.run("run").code == 0
        assert sorted(store.statuses().values()) == ["interrupted", "success"]
    finally:
        store.close()


def test_a_run_still_going_is_not_recorded_yet(project: Project) -> None:
    project.pipeline("jobs:\n  slow:\n    run: echo $$ > slow.pid; sleep 60\n")
    project.commit()
    proc = project.spawn("run", "--plain")
    try:
        pid_file = project.root / "slow.pid"
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert history(project) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert [r["status"] for r in history(project)] == ["interrupted"]


TESTS = """
import pytest

def test_adds():
    assert 1 + 1 == 2

def test_subtracts():
    assert 2 - 1 == 1

def test_divides():
    assert 1 / 1 == 2, "one over one is not two"

@pytest.mark.skip(reason="not today")
def test_later():
    pass
"""


def test_junit_reports_are_recorded_with_every_case(project: Project) -> None:
    project.write("tests/test_math.py", TESTS)
    project.pipeline(
        f"""
        jobs:
          test:
            run: {sys.executable} -m pytest tests -q -p no:cacheprovider --junitxml=out/junit.xml
            reports:
              junit: out/*.xml
        """
    )
    project.commit()
    result = project.run("run")
    assert result.code == 1  # a test failed
    shown = json.loads(project.run("show", "--json").out)
    cases = {c["name"].rsplit(".", 1)[-1]: c for c in shown["tests"]}
    assert {n: c["status"] for n, c in cases.items()} == {
        "test_adds": "passed",
        "test_subtracts": "passed",
        "test_divides": "failed",
        "test_later": "skipped",
    }
    assert all(c["job"] == "test" for c in cases.values())
    assert "one over one is not two" in cases["test_divides"]["message"]
    assert cases["test_adds"]["duration"] is not None
    text = project.run("show").out
    assert "tests: 2 passed, 1 failed, 1 skipped (4 in all)" in text
    assert "✘ test: tests.test_math.test_divides: AssertionError: one over one is not two" in text


def test_a_hostile_report_is_refused_and_the_run_goes_on(project: Project) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        '<testsuite name="x"><testcase name="&lol2;"/></testsuite>\n'
    )
    project.write("junit.xml", bomb)
    project.pipeline("jobs:\n  test:\n    run: 'true'\n    reports:\n      junit: junit.xml\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert "warning: a report was not read: test:" in result.err
    assert json.loads(project.run("show", "--json").out)["tests"] == []
