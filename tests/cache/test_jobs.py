"""The job cache as a user sees it: what a hit restores, what makes a job miss, and that
the workspace's own cache state (`.conveyor/cache/`) can never break a run."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

# Each test runs against the local store and the in-memory one (tests/cache/conftest.py).
pytestmark = pytest.mark.usefixtures("cache_store")


def jobs(project: Project) -> dict[str, Any]:
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    return {j["name"]: j for j in data["jobs"]}


def runs_log(project: Project) -> list[str]:
    path = project.root.parent / "runs.log"
    return path.read_text().split() if path.exists() else []


# Files at three depths under build/, so that `**` has to match zero, one and two
# directories; plus files the pattern must leave alone.
NESTED = """
jobs:
  build:
    outputs: ["build/**/*.txt"]
    run: |
      mkdir -p build/x/y
      printf 'top\\n' > build/a.txt
      printf 'one \\000 level\\n' > build/x/b.txt
      head -c 3000 /dev/zero | tr '\\0' 'z' > build/x/y/c.txt
      printf 'not an output\\n' > build/x/skip.log
      echo build >> ../runs.log
"""


def test_outputs_under_double_star_are_all_restored_byte_for_byte(project: Project) -> None:
    project.pipeline(NESTED)
    project.write(".gitignore", "build/\n")
    project.commit()
    assert project.run("run").code == 0
    made = {
        rel: (project.root / rel).read_bytes()
        for rel in ("build/a.txt", "build/x/b.txt", "build/x/y/c.txt")
    }
    shutil.rmtree(project.root / "build")

    result = project.run("run")
    assert result.code == 0, result.out
    assert "✔ build cached (from run " in result.out
    assert runs_log(project) == ["build"], "the job did not run again"
    for rel, data in made.items():
        assert (project.root / rel).read_bytes() == data, f"{rel} restored as it was made"
    assert not (project.root / "build/x/skip.log").exists(), "only declared outputs are kept"
    restored = sorted(path for path, _sha, _size, _type in jobs(project)["build"]["outputs"])
    assert restored == sorted(made)


TOOLS = """
jobs:
  build:
    tools:
      mytool: cat {version}
    run: echo build >> ../runs.log
"""


def test_a_tool_whose_version_changed_makes_the_job_run_again(
    project: Project, tmp_path: Path
) -> None:
    version = tmp_path / "mytool-version"  # outside the workspace: not an input
    version.write_text("mytool 1.0\n")
    project.pipeline(TOOLS.format(version=version))
    project.commit()
    assert project.run("run").code == 0
    assert runs_log(project) == ["build"]

    # The same version: a hit.
    assert "✔ build cached" in project.run("run").out
    assert runs_log(project) == ["build"]
    assert project.run("why", "build").out.startswith("hit   build")

    # A new version: `why` names the tool and both versions, and the job runs again.
    version.write_text("mytool 2.0\n")
    data = json.loads(project.run("why", "build", "--json").out)
    assert [(v["job"], v["hit"]) for v in data] == [("build", False)]
    [reason] = data[0]["reasons"]
    assert reason.startswith("tool mytool changed: 'mytool 1.0 (")
    assert "-> 'mytool 2.0 (" in reason
    result = project.run("run")
    assert result.code == 0
    assert "build cached" not in result.out
    assert runs_log(project) == ["build", "build"]

    # What the tool prints after its first line counts too (a build number, a patch).
    version.write_text("mytool 2.0\nbuild 7\n")
    assert project.run("run").code == 0
    assert runs_log(project) == ["build", "build", "build"]
    assert "✔ build cached" in project.run("run").out
    assert runs_log(project) == ["build", "build", "build"]


STATE = """
jobs:
  build:
    outputs: [dist/]
    run: |
      mkdir -p dist && cat src/a.txt > dist/out.txt
      echo build >> ../runs.log
  test:
    needs: [build]
    run: |
      cat dist/out.txt
      echo test >> ../runs.log
"""


def damage_state_file(project: Project, name: str, how: str) -> None:
    """Truncate or fill with garbage one file of the workspace's cache state, which a
    crash, a full disk or another tool can leave behind."""
    path = project.root / ".conveyor" / "cache" / name
    assert path.exists(), f"a run leaves {name} in .conveyor/cache"
    path.write_bytes(b"" if how == "empty" else b"\x80\x04garbage, not a pickle \xff" * 40)


def check_damaged_state_is_harmless(project: Project, name: str, how: str) -> None:
    """A run after the damage hits what did not change and re-runs what did."""
    project.pipeline(STATE)
    project.write("src/a.txt", "alpha\n")
    project.write(".gitignore", "dist/\n")
    project.commit()
    assert project.run("run").code == 0
    if name == "files.state":
        # The stat of a file is only recorded once it is older than the racy window (2 s).
        time.sleep(2.1)
    assert project.run("run").code == 0  # the second run writes the hit records
    assert runs_log(project) == ["build", "test"]

    damage_state_file(project, name, how)
    result = project.run("run")
    assert result.code == 0, result.out + result.err
    assert "✔ build cached" in result.out
    assert "✔ test cached" in result.out
    assert runs_log(project) == ["build", "test"]
    assert (project.root / "dist/out.txt").read_text() == "alpha\n"

    damage_state_file(project, name, how)
    project.write("src/a.txt", "beta\n")
    result = project.run("run")
    assert result.code == 0, result.out + result.err
    assert runs_log(project) == ["build", "test", "build", "test"]
    assert (project.root / "dist/out.txt").read_text() == "beta\n"
    assert "beta" in result.out


@pytest.mark.parametrize("how", ["empty", "garbage"])
@pytest.mark.parametrize("name", ["actions.memo", "hits"])
def test_a_damaged_action_memo_or_hit_record_is_only_a_slower_run(
    project: Project, name: str, how: str
) -> None:
    check_damaged_state_is_harmless(project, name, how)


def test_a_long_log_is_replayed_whole_by_every_later_hit(project: Project) -> None:
    """Logs over 64 KiB are not kept in the workspace's hit records but read from the
    cache: a hit served from a record must still replay every line."""
    project.pipeline(
        """
        jobs:
          chatty:
            run: |
              seq 0 2999 | sed 's/.*/line & of a long log, padded to be long/'
              echo chatty >> ../runs.log
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    for _ in range(3):  # a hit from the cache entry, then hits from the record
        result = project.run("run", "--plain")
        assert result.code == 0
        assert "✔ chatty cached" in result.out
        log = (project.runs()[-1] / "logs" / "chatty.log").read_text().splitlines()
        assert log[0] == "line 0 of a long log, padded to be long"
        assert log[-1] == "line 2999 of a long log, padded to be long"
        assert len(log) == 3000
    assert runs_log(project) == ["chatty"]


def test_a_symlink_output_pointed_elsewhere_is_restored_by_a_hit(project: Project) -> None:
    """A hit puts a declared symlink back as the job made it, also when the workspace's
    hit record would otherwise serve the hit from stats alone."""
    project.pipeline(
        """
        jobs:
          link:
            outputs: [out/]
            run: |
              mkdir -p out && echo a > out/a.txt && echo b > out/b.txt
              ln -sfn a.txt out/current
              echo link >> ../runs.log
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    assert project.run("run").code == 0
    assert "✔ link cached" in project.run("run").out  # the hit record is written
    current = project.root / "out" / "current"
    current.unlink()
    current.symlink_to("b.txt")

    result = project.run("run")
    assert result.code == 0
    assert "✔ link cached" in result.out
    assert runs_log(project) == ["link"]
    assert current.is_symlink()
    assert str(current.readlink()) == "a.txt"
    assert current.read_text() == "a\n"
