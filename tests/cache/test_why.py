"""`conveyor why` and `run --explain` agree with what `run` then does, over random
sequences of edits (issue 10): why says hit exactly when the run serves the job from the
cache, and a job it says runs (or waits for a job that runs) is not served."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Project

# Each test runs against the local store and the in-memory one (tests/cache/conftest.py).
pytestmark = pytest.mark.usefixtures("cache_store")

# Every job writes what it read, tagged by file name, so new inputs always mean new
# outputs: a job after one that runs can then only miss.
PIPELINE = """
jobs:
  a:
    inputs: [src/a.txt, src/shared.txt]
    outputs: [out/a.txt]
    run: mkdir -p out && for f in src/a.txt src/shared.txt; do echo "$f:$(cat $f)"; done > out/a.txt
  b:
    needs: [a]
    inputs: [out/a.txt, src/b.txt]
    outputs: [out/b.txt]
    run: mkdir -p out && for f in out/a.txt src/b.txt; do echo "$f:$(cat $f)"; done > out/b.txt
  c:
    needs: [b]
    cache: {c_cache}
    outputs: [out/c.txt]
    inputs: [out/b.txt]
    run: mkdir -p out && cat out/b.txt > out/c.txt
  d:
    inputs: [src/shared.txt]
    env: {{MODE: "{mode}"}}
    outputs: [out/d.txt]
    run: mkdir -p out && echo "$MODE $(cat src/shared.txt)" > out/d.txt
"""

FILES = ["src/a.txt", "src/b.txt", "src/shared.txt"]

edit = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(FILES), st.sampled_from(["x", "y", "z"])),
    st.tuples(st.just("mode"), st.sampled_from(["fast", "slow"]), st.just("")),
    st.tuples(st.just("cache"), st.sampled_from(["true", "false"]), st.just("")),
    st.tuples(st.just("rm-outputs"), st.just(""), st.just("")),
    st.tuples(st.just("commit"), st.just(""), st.just("")),
)


def summary(project: Project) -> dict[str, bool]:
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    return {j["name"]: j["cached"] for j in data["jobs"]}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=st.lists(edit, min_size=1, max_size=5))
def test_why_says_hit_exactly_when_the_run_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edits: list[tuple[str, str, str]]
) -> None:
    root = tmp_path / "ws"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    project = Project(root, capsys)
    settings_now = {"mode": "fast", "c_cache": "true"}
    project.pipeline(PIPELINE.format(**settings_now))
    for f in FILES:
        project.write(f, "x\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    assert project.run("run").code == 0
    for kind, what, value in edits:
        if kind == "write":
            project.write(what, value + "\n")
        elif kind in ("mode", "cache"):
            settings_now["mode" if kind == "mode" else "c_cache"] = what
            project.pipeline(PIPELINE.format(**settings_now))
        elif kind == "rm-outputs":
            shutil.rmtree(root / "out", ignore_errors=True)
        else:
            subprocess.run(["git", "commit", "-qam", "edit", "--allow-empty"], cwd=root, check=True)
        said = json.loads(project.run("why", "c", "d", "--json").out)
        result = project.run("run", "--explain", "--plain")
        assert result.code == 0, result.out
        ran = summary(project)
        for verdict in said:
            name = verdict["job"]
            if verdict["hit"] is True:
                assert ran[name], f"why said {name} hits, the run ran it: {verdict}"
            else:
                assert not ran[name], f"why said {name} runs, the run served it: {verdict}"
            if verdict["hit"] is False:
                # --explain gives the same reasons why gave.
                for reason in verdict["reasons"]:
                    assert f"cache miss: {reason}" in result.out, (reason, result.out)
