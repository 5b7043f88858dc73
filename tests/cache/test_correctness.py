"""A hit is only ever served when running the job would have produced the same result,
and a restore reproduces the workspace without damaging it (issue 10)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cache.memory import MemoryStore
from tests.conftest import Project

# Each test runs against the local store and the in-memory one (tests/cache/conftest.py).
pytestmark = pytest.mark.usefixtures("cache_store")


def summary(project: Project) -> dict[str, Any]:
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    return {j["name"]: j for j in data["jobs"]}


def clone(project: Project, name: str = "clone") -> Project:
    """A fresh clone of the project beside it (same cache: the home directory)."""
    dest = project.root.parent / name
    subprocess.run(
        ["git", "clone", "-q", str(project.root), str(dest)], check=True, capture_output=True
    )
    other = Project.__new__(Project)
    other.root, other.capsys = dest, project.capsys
    return other


def test_an_input_a_needed_job_generates_is_keyed_when_the_job_is_ready(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(
        """
        jobs:
          version:
            cache: false            # like `git describe`: always runs
            pass_env: [VERSION]
            run: mkdir -p gen && echo "$VERSION" > gen/version.txt
          build:
            needs: [version]
            inputs: [gen/version.txt, src/**]
            outputs: [dist/]
            run: mkdir -p dist && cp gen/version.txt dist/version.txt
        """
    )
    project.write("src/app.txt", "app\n")
    project.write(".gitignore", "gen/\ndist/\n")
    project.commit()
    monkeypatch.setenv("VERSION", "1.0")
    assert project.run("run").code == 0
    assert (project.root / "dist/version.txt").read_text() == "1.0\n"

    monkeypatch.setenv("VERSION", "2.0")
    assert project.run("run").code == 0
    assert summary(project)["build"]["cached"] is False
    assert (project.root / "dist/version.txt").read_text() == "2.0\n"

    # A fresh clone with the same cache: gen/ does not exist when the run starts.
    other = clone(project)
    monkeypatch.setenv("VERSION", "1.0")
    assert other.run("run").code == 0
    assert (other.root / "dist/version.txt").read_text() == "1.0\n", "not the 2.0 result"
    assert summary(other)["build"]["cached"] is True, "1.0's result, keyed by its input"


def test_two_jobs_with_one_command_never_share_a_result(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          deploy-eu:
            run: echo "$CONVEYOR_JOB" >> ../deployed
          deploy-us:
            run: echo "$CONVEYOR_JOB" >> ../deployed
        """
    )
    project.commit()
    assert project.run("run", "deploy-eu").code == 0
    assert project.run("run", "deploy-us").code == 0
    assert summary(project)["deploy-us"]["cached"] is False
    assert (project.root.parent / "deployed").read_text().split() == ["deploy-eu", "deploy-us"]


def test_a_job_reading_the_tag_is_keyed_on_it_and_others_are_not(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          release:
            outputs: [out/]
            run: mkdir -p out && echo "release $CONVEYOR_TAG" > out/release.txt
          test:
            run: echo tested >> ../tested
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    project.git("tag", "v1.0")
    assert project.run("run", "--event", "tag").code == 0
    assert (project.root / "out/release.txt").read_text() == "release v1.0\n"

    project.git("commit", "-q", "--allow-empty", "-m", "next")
    project.git("tag", "v1.1")
    assert project.run("run", "--event", "tag").code == 0
    assert (project.root / "out/release.txt").read_text() == "release v1.1\n"
    jobs = summary(project)
    assert jobs["release"]["cached"] is False
    assert jobs["test"]["cached"] is True, "a job that does not read the tag still hits"


PRODUCER = """
jobs:
  gen:
    inputs: [src.txt]
    outputs: [gen/]
    run: mkdir -p gen && tr a-z A-Z < src.txt > gen/out.txt
  use:
    needs: [gen]
    outputs: [final/]
    run: mkdir -p final && cp gen/out.txt final/out.txt
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 1 MiB tmpfs (a real filesystem that fills up), unmounted after the test."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.local_store  # the disk store on a full disk
def test_a_full_cache_disk_runs_on_uncached_and_never_serves_stale(
    project: Project, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(small_disk / "cache"))
    project.pipeline(PRODUCER)
    project.write("src.txt", "one\n")
    project.write(".gitignore", "gen/\nfinal/\n")
    project.commit()
    assert project.run("run").code == 0
    assert (project.root / "final/out.txt").read_text() == "ONE\n"

    # Fill the disk: every write to the cache now fails with ENOSPC.
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={small_disk / 'filler'}", "bs=64k"], capture_output=True
    )
    assert shutil.disk_usage(small_disk).free == 0
    project.write("src.txt", "two\n")
    result = project.run("run", "--plain")
    assert result.code == 0, result.out + result.err
    assert (project.root / "final/out.txt").read_text() == "TWO\n", "never the stale ONE"
    jobs = summary(project)
    assert jobs["gen"]["cached"] is False
    assert jobs["use"]["cached"] is False
    assert result.out.count("the cache cannot be written (No space left on device") == 1
    assert "results from then on were not stored" in result.err
    # Nothing half-written was left behind: with room again, the same run hits nothing
    # stale and stores both.
    (small_disk / "filler").unlink()
    project.write("src.txt", "one\n")
    assert project.run("run").code == 0
    assert (project.root / "final/out.txt").read_text() == "ONE\n"
    assert summary(project)["use"]["cached"] is True


def test_an_input_changed_while_its_job_runs_is_not_stored(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          slow:
            inputs: [src/a.txt]
            outputs: [out/]
            run: |
              touch ../started
              while [ ! -e ../go ]; do sleep 0.05; done
              mkdir -p out && cp src/a.txt out/a.txt
        """
    )
    project.write("src/a.txt", "old\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    started, go = project.root.parent / "started", project.root.parent / "go"

    def editor() -> None:
        deadline = time.time() + 30
        while not started.exists() and time.time() < deadline:
            time.sleep(0.02)
        (project.root / "src/a.txt").write_text("new\n")  # saved while the job runs
        go.touch()

    thread = threading.Thread(target=editor)
    thread.start()
    result = project.run("run", "--plain")
    thread.join()
    assert result.code == 0
    assert "not cached: inputs changed while it ran: src/a.txt" in result.out
    # Back to what the key was made of: the job must run again, not restore "new".
    (project.root / "src/a.txt").write_text("old\n")
    assert project.run("run").code == 0
    assert summary(project)["slow"]["cached"] is False
    assert (project.root / "out/a.txt").read_text() == "old\n"


def test_an_input_a_job_before_it_rewrote_is_keyed_by_its_new_content(project: Project) -> None:
    # `fmt` rewrites a tracked file that `check` reads: git's view of it at the start
    # of the run is out of date by the time `check` is keyed.
    project.pipeline(
        """
        jobs:
          fmt:
            cache: false
            pass_env: [STYLE]
            run: echo "$STYLE" > src/code.txt
          check:
            needs: [fmt]
            inputs: [src/code.txt]
            outputs: [out/]
            run: mkdir -p out && cp src/code.txt out/checked.txt
        """
    )
    project.write("src/code.txt", "plain\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    os.environ["STYLE"] = "plain"  # what is committed: `check` is stored for "plain"
    try:
        assert project.run("run").code == 0
        assert (project.root / "out/checked.txt").read_text() == "plain\n"
        # git's index still says "plain" when the run starts; fmt then writes "tabs".
        os.environ["STYLE"] = "tabs"
        assert project.run("run").code == 0
        assert (project.root / "out/checked.txt").read_text() == "tabs\n", "not plain's hit"
        project.git("checkout", "src/code.txt")
        os.environ["STYLE"] = "spaces"
        assert project.run("run").code == 0
        assert (project.root / "out/checked.txt").read_text() == "spaces\n"
    finally:
        del os.environ["STYLE"]


NODE = """
jobs:
  install:
    outputs: [node_modules/]
    run: |
      mkdir -p node_modules/pkg/lib node_modules/.bin
      printf '#!/bin/sh\\necho tool ran\\n' > node_modules/pkg/lib/cli.js
      chmod 755 node_modules/pkg/lib/cli.js
      echo private > node_modules/pkg/secret.key && chmod 600 node_modules/pkg/secret.key
      ln -s ../pkg/lib/cli.js node_modules/.bin/tool
      ln -s pkg node_modules/alias
      echo installed >> ../installs
  use:
    needs: [install]
    cache: false
    run: node_modules/.bin/tool && cat node_modules/alias/secret.key
"""


def check_node_modules(root: Path) -> None:
    nm = root / "node_modules"
    assert os.readlink(nm / ".bin/tool") == "../pkg/lib/cli.js"
    assert os.readlink(nm / "alias") == "pkg"
    assert stat.S_IMODE(os.stat(nm / "pkg/lib/cli.js").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(nm / "pkg/secret.key").st_mode) == 0o600
    assert not (nm / "alias").is_symlink() or not (nm / "alias/secret.key").is_symlink()


def test_restored_outputs_keep_their_symlinks_and_modes(project: Project) -> None:
    project.pipeline(NODE)
    project.write(".gitignore", "node_modules/\n")
    project.commit()
    assert project.run("run").code == 0
    check_node_modules(project.root)

    shutil.rmtree(project.root / "node_modules")
    result = project.run("run", "--plain")
    assert result.code == 0, result.out
    assert "tool ran" in result.out
    assert summary(project)["install"]["cached"] is True
    check_node_modules(project.root)

    other = clone(project)
    result = other.run("run", "--plain")
    assert result.code == 0, result.out
    check_node_modules(other.root)
    # Served by a full lookup (no hit record in a fresh clone): the time the run that
    # stored it took is read from the entry.
    assert summary(other)["install"]["saved"] > 0
    assert (project.root.parent / "installs").read_text().split() == ["installed"]


def test_an_output_symlink_pointing_outside_the_workspace_is_not_stored(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          link:
            outputs: [out/]
            run: mkdir -p out && ln -sf /etc/hostname out/host && echo ran >> ../ran
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0
    assert "not cached: an output is a symlink pointing outside the workspace: out/host" in (
        result.out
    )
    assert project.run("run").code == 0
    assert (project.root.parent / "ran").read_text().split() == ["ran", "ran"]


def test_a_cached_job_still_restores_its_dependency_caches(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          deps:
            caches:
              - key: venv-{{ hashFiles('requirements.txt') }}
                paths: [.venv]
            run: |
              mkdir -p .venv/bin
              printf '#!/bin/sh\\necho venv tool\\n' > .venv/bin/tool && chmod +x .venv/bin/tool
          test:
            needs: [deps]
            cache: false
            run: .venv/bin/tool
        """
    )
    project.write("requirements.txt", "click\n")
    project.write(".gitignore", ".venv/\n")
    project.commit()
    assert project.run("run").code == 0

    other = clone(project)
    result = other.run("run", "--plain")
    assert result.code == 0, result.out
    assert summary(other)["deps"]["cached"] is True
    assert "venv tool" in result.out


JUNIT_ONE_FAILURE = """<?xml version="1.0"?>
<testsuite name="s" tests="2" failures="1">
  <testcase classname="t" name="ok"/>
  <testcase classname="t" name="flaky"><failure message="boom"/></testcase>
</testsuite>
"""


def test_failures_a_tests_gate_tolerates_are_stored_like_a_success(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          test:
            reports: {junit: reports/junit.xml}
            gates:
              tests: {max_failures: 1}
            run: |
              echo ran >> ../ran
              mkdir -p reports && cp junit.xml reports/junit.xml
              exit 1
        """
    )
    project.write("junit.xml", JUNIT_ONE_FAILURE)
    project.write(".gitignore", "reports/\n")
    project.commit()
    assert project.run("run").code == 0
    result = project.run("run")
    assert result.code == 0, result.out
    job = summary(project)["test"]
    assert job["cached"] is True, "not run again while nothing changed"
    assert job["exit_code"] == 1
    assert (project.root.parent / "ran").read_text().split() == ["ran"]


def test_affected_ignores_the_runs_own_outputs(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:                  # its inputs: every tracked file (dist/ is not)
            outputs: [dist/]
            run: mkdir -p dist && cp src/a.txt dist/a.txt
        """
    )
    project.write("src/a.txt", "a\n")
    project.commit()
    assert project.run("run").code == 0
    assert (project.root / "dist/a.txt").exists()  # untracked and not ignored
    result = project.run("run", "--affected", "HEAD")
    assert result.code == 0
    assert "no job is affected by changes since HEAD" in result.out


def test_undeclared_writes_are_named_and_not_cached(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            outputs: [dist/]
            run: |
              mkdir -p dist && echo app > dist/app.txt
              echo stray > build.log
              mkdir -p src/__pycache__ && echo pyc > src/__pycache__/m.pyc
              echo ran >> ../ran
          opted:
            cache: true
            run: echo stray > scratch.txt
            dir: opted
        """
    )
    project.write("opted/keep.txt", "k\n")
    project.write(".gitignore", "dist/\n")
    project.commit()
    result = project.run("run", "-j", "1")
    assert result.code == 0
    assert (
        "job 'build' wrote files it does not declare: build.log; its result was not cached"
        in result.err
    )
    assert "job 'opted' wrote files it does not declare: opted/scratch.txt; stored anyway" in (
        result.err
    )
    assert "__pycache__" not in result.err, "a tool's own cache is no undeclared output"
    assert project.run("run").code == 0
    jobs = summary(project)
    assert jobs["build"]["cached"] is False, "run again: a hit would not give build.log back"
    assert jobs["opted"]["cached"] is True
    assert (project.root.parent / "ran").read_text().split() == ["ran", "ran"]


def test_an_input_pattern_matching_nothing_is_reported_at_run(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            inputs: [src/mian.py]
            run: echo built
        """
    )
    project.write("src/main.py", "print()\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert (
        "warning: conveyor.yml:3:14: jobs.build.inputs[0]: 'src/mian.py' matches no file "
        "(did you mean 'src/main.py'?)"
    ) in result.err


def test_a_glob_input_an_upstream_writes_undeclared_is_never_keyed_without_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(
        """
        jobs:
          gen:
            cache: false
            pass_env: [VALUE]
            run: mkdir -p gen && echo "$VALUE" > gen/a.txt
          use:
            needs: [gen]
            inputs: [gen/*.txt]
            outputs: [out/]
            run: mkdir -p out && cat gen/*.txt > out/all.txt
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    monkeypatch.setenv("VALUE", "one")
    result = project.run("run")
    assert result.code == 0
    assert "job 'use' was not cached: its inputs include gen/a.txt, written during the run" in (
        result.err
    )
    assert project.run("run").code == 0  # gen/a.txt is there from the start now
    assert summary(project)["use"]["cached"] is False
    monkeypatch.setenv("VALUE", "two")
    assert project.run("run").code == 0
    assert (project.root / "out/all.txt").read_text() == "two\n"
    monkeypatch.setenv("VALUE", "one")
    assert project.run("run").code == 0
    assert summary(project)["use"]["cached"] is True
    assert (project.root / "out/all.txt").read_text() == "one\n"


def test_a_glob_over_ignored_upstream_outputs_is_keyed_alike_on_a_hit(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            inputs: [src/*]
            outputs: [dist/]
            run: mkdir -p dist && cp src/* dist/
          package:
            needs: [build]
            inputs: [dist/**]
            outputs: [pkg/]
            run: mkdir -p pkg && cat dist/* > pkg/all.txt
        """
    )
    project.write("src/a.txt", "a\n")
    project.write(".gitignore", "dist/\npkg/\n")
    project.commit()
    assert project.run("run").code == 0
    assert project.run("run").code == 0
    assert summary(project)["package"]["cached"] is True
    other = clone(project)
    assert other.run("run").code == 0
    assert summary(other)["package"]["cached"] is True
    project.write("src/a.txt", "changed\n")
    assert project.run("run").code == 0
    assert (project.root / "pkg/all.txt").read_text() == "changed\n"


def test_matrix_values_in_inputs_and_outputs_key_each_instance_on_its_own_files(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          t:
            matrix:
              suite: [a, b]
            inputs: ["src/${{ matrix.suite }}.txt"]
            outputs: ["out/${{ matrix.suite }}.txt"]
            run: mkdir -p out && cp src/${{ matrix.suite }}.txt out/${{ matrix.suite }}.txt
        """
    )
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert "matches no file" not in result.err
    project.write("src/a.txt", "a2\n")
    assert project.run("run").code == 0
    jobs = summary(project)
    assert jobs["t (suite=a)"]["cached"] is False
    assert jobs["t (suite=b)"]["cached"] is True
    shutil.rmtree(project.root / "out")
    assert project.run("run").code == 0
    assert (project.root / "out/a.txt").read_text() == "a2\n"
    assert (project.root / "out/b.txt").read_text() == "b\n"


def test_an_input_rewritten_with_the_same_bytes_while_the_job_runs_is_stored(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          fmt:
            inputs: [src/a.txt]
            outputs: [out/]
            run: |
              cp src/a.txt /dev/null && cat src/a.txt > src/tmp && mv src/tmp src/a.txt
              mkdir -p out && cp src/a.txt out/a.txt
        """
    )
    project.write("src/a.txt", "same\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 0
    assert "not cached" not in result.out
    assert project.run("run").code == 0
    assert summary(project)["fmt"]["cached"] is True


def test_explain_says_when_the_last_result_of_a_job_is_gone_from_the_cache(
    project: Project, cache_store: MemoryStore | None
) -> None:
    project.pipeline(
        """
        jobs:
          build:
            inputs: [src/a.txt]
            run: cat src/a.txt
        """
    )
    project.write("src/a.txt", "one\n")
    project.commit()
    assert project.run("run").code == 0
    if cache_store is None:
        assert project.run("cache", "clear").code == 0
    else:
        cache_store.clear()
    project.write("src/a.txt", "two\n")
    result = project.run("run", "--explain", "--plain")
    assert result.code == 0
    assert "cache miss: its earlier result is no longer in the cache (pruned, cleared or" in (
        result.out
    )


def test_an_undeclared_write_outside_the_jobs_dir_is_blamed_on_the_job_that_wrote_it(
    project: Project,
) -> None:
    project.pipeline(
        """
        jobs:
          root:
            outputs: [out/]
            run: mkdir -p out && echo root > out/root.txt
          sub:
            dir: sub
            needs: [root]
            run: mkdir -p ../other && echo stray > ../other/x.txt
        """
    )
    project.write("sub/keep.txt", "k\n")
    project.write(".gitignore", "out/\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0
    assert "job 'sub' wrote files it does not declare: other/x.txt" in result.err
    assert "job 'root' wrote" not in result.err


def test_undeclared_writes_are_listed_five_at_most(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          five:
            run: for i in 1 2 3 4 5; do echo $i > f$i.txt; done
          seven:
            dir: more
            run: for i in 1 2 3 4 5 6 7; do echo $i > g$i.txt; done
        """
    )
    project.write("more/keep.txt", "k\n")
    project.commit()
    result = project.run("run", "-j", "1")
    assert result.code == 0
    assert (
        "job 'five' wrote files it does not declare: f1.txt, f2.txt, f3.txt, f4.txt, f5.txt;"
    ) in result.err
    assert (
        "job 'seven' wrote files it does not declare: more/g1.txt, more/g2.txt, more/g3.txt, "
        "more/g4.txt, more/g5.txt and 2 more;"
    ) in result.err


@pytest.mark.parametrize("size", [16383, 16384, 16385])
def test_outputs_at_the_inline_size_limit_are_restored_byte_for_byte(
    project: Project, size: int
) -> None:
    # Outputs up to 16 KiB ride inside the cache entry, larger ones are blobs.
    project.pipeline(
        f"""
        jobs:
          make:
            outputs: [out/]
            run: mkdir -p out && head -c {size} /dev/urandom > out/blob.bin
        """
    )
    project.write(".gitignore", "out/\n")
    project.commit()
    assert project.run("run").code == 0
    made = (project.root / "out/blob.bin").read_bytes()
    assert len(made) == size
    shutil.rmtree(project.root / "out")
    assert project.run("run").code == 0
    assert summary(project)["make"]["cached"] is True
    assert (project.root / "out/blob.bin").read_bytes() == made
