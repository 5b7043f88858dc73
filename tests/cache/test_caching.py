"""Job caching end to end: skip what did not change, restore outputs, explain misses."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.cache.local import LocalCache
from tests.cache.memory import MemoryStore
from tests.conftest import Project

# Each test runs against the local store and the in-memory one (tests/cache/conftest.py).
pytestmark = pytest.mark.usefixtures("cache_store")

PIPELINE = """
jobs:
  build:
    inputs: [src/**]
    outputs: [dist/]
    run: |
      echo "building"
      mkdir -p dist
      cat src/*.txt | tr a-z A-Z > dist/app.txt
      echo "#!/bin/sh" > dist/tool.sh && chmod +x dist/tool.sh
      echo run >> ../runs.log
  test:
    needs: [build]
    inputs: [tests/**]
    run: |
      echo "testing $(cat dist/app.txt)"
      echo test >> ../runs.log
"""


def jobs(project: Project) -> dict[str, Any]:
    data = json.loads((project.runs()[-1] / "summary.json").read_text())
    return {j["name"]: j for j in data["jobs"]}


def runs_log(project: Project) -> list[str]:
    path = project.root.parent / "runs.log"
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def built(project: Project) -> Project:
    project.pipeline(PIPELINE)
    project.write("src/a.txt", "alpha\n")
    project.write("tests/t.txt", "t\n")
    project.write(".gitignore", "dist/\n")
    project.commit()
    result = project.run("run", "--jobs", "1")
    assert result.code == 0, result.out
    assert runs_log(project) == ["run", "test"]
    return project


def test_second_run_restores_nothing_and_replays_logs(built: Project) -> None:
    result = built.run("run", "--jobs", "1")
    assert result.code == 0
    assert runs_log(built) == ["run", "test"], "nothing ran again"
    assert "✔ build cached (from run " in result.out
    assert "▶ build" not in result.out, "a cache hit is one line, not a start and an end"
    assert "testing ALPHA" in result.out, "the log is replayed"
    status = jobs(built)
    assert status["build"]["cached"] is True
    assert status["build"]["saved"] > 0
    assert "2 cached" in result.out


def test_deleted_outputs_are_restored_with_their_modes(built: Project) -> None:
    import shutil

    shutil.rmtree(built.root / "dist")
    assert built.run("run").code == 0
    assert runs_log(built) == ["run", "test"]
    assert (built.root / "dist/app.txt").read_text() == "ALPHA\n"
    assert os.access(built.root / "dist/tool.sh", os.X_OK)


def test_an_output_changed_in_place_is_restored_even_with_size_and_mtime_kept(
    built: Project,
) -> None:
    """A hit is confirmed from what the workspace recorded (a stat of each output), never
    by trusting a stat that could hide a change: ctime and the racy rule catch this."""
    assert built.run("run", "--jobs", "1").code == 0  # a hit: the record is written
    time.sleep(2.1)  # out of the racy window, so the recorded stat of the output is trusted
    assert built.run("run", "--jobs", "1").code == 0
    app = built.root / "dist/app.txt"
    before = app.stat()
    app.write_text("EVIL!\n")  # same size
    os.utime(app, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    assert built.run("run", "--jobs", "1").code == 0
    assert app.read_text() == "ALPHA\n"
    assert runs_log(built) == ["run", "test"], "restored from the cache, not run again"


def test_the_closing_table_leaves_out_cache_hits_in_large_runs(project: Project) -> None:
    lines = ["jobs:"]
    for i in range(40):
        lines.append(f"  j{i:02}:\n    inputs: [x{i:02}.txt]\n    run: echo {i}")
        project.write(f"x{i:02}.txt", "1")
    project.pipeline("\n".join(lines) + "\n")
    project.commit()
    first = project.run("run", "--jobs", "2")
    assert first.code == 0
    assert "j39" in first.out.split("JOB", 1)[1], "jobs that ran are listed"
    project.write("x05.txt", "2")
    second = project.run("run", "--jobs", "2")
    assert second.code == 0
    table = second.out.split("JOB", 1)[1]
    assert "j05" in table, "a job that ran is listed"
    assert "j00" not in table, "cache hits are counted, not listed, above 30 jobs"
    assert "39 cached" in table


def test_an_input_change_reruns_what_depends_on_it(built: Project) -> None:
    built.write("tests/t.txt", "t2\n")
    assert built.run("run", "--jobs", "1").code == 0
    assert runs_log(built) == ["run", "test", "test"]
    built.write("src/a.txt", "beta\n")
    assert built.run("run", "--jobs", "1").code == 0
    assert runs_log(built) == ["run", "test", "test", "run", "test"]
    assert (built.root / "dist/app.txt").read_text() == "BETA\n"


def test_identical_upstream_outputs_do_not_invalidate_dependents(built: Project) -> None:
    # A second source file that contributes nothing to the output.
    built.write("src/empty.txt", "")
    assert built.run("run", "--jobs", "1").code == 0
    assert runs_log(built) == ["run", "test", "run"], "build re-ran, test stayed cached"


def test_a_failed_job_is_never_cached(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          flaky:
            run: echo x >> ../count; test -f ok
        """
    )
    assert project.run("run").code == 1
    assert project.run("run").code == 1
    assert (project.root.parent / "count").read_text().split() == ["x", "x"]
    (project.root / "ok").touch()
    assert project.run("run").code == 0


def test_no_cache_and_cache_false_run_again(built: Project) -> None:
    assert built.run("run", "--no-cache", "--jobs", "1").code == 0
    assert runs_log(built) == ["run", "test", "run", "test"]
    built.pipeline(PIPELINE.replace("  test:\n", "  test:\n    cache: false\n"))
    assert built.run("run", "--jobs", "1").code == 0
    assert runs_log(built)[-1] == "test"
    assert jobs(built)["build"]["cached"] is True


def test_explain_names_what_changed(built: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    built.write("src/a.txt", "gamma\n")
    built.write("src/new.txt", "n\n")
    result = built.run("run", "--explain", "--jobs", "1")
    assert "  cache miss: input src/a.txt modified" in result.out
    assert "  cache miss: input src/new.txt added" in result.out
    assert "  cache miss: upstream outputs of build modified" in result.out
    built.pipeline(PIPELINE.replace('echo "building"', 'echo "building!"'))
    assert "  cache miss: the command changed" in built.run("run", "--explain").out


def test_env_and_pass_env_are_in_the_key_secrets_only_by_name(
    project: Project, monkeypatch: pytest.MonkeyPatch, cache_store: MemoryStore | None
) -> None:
    project.pipeline(
        """
        jobs:
          show:
            env: {MODE: fast}
            pass_env: [REGION]
            secrets: [TOKEN]
            cache: true          # a job with secrets is cached only when it says so
            run: echo "$MODE $REGION" >> ../seen
        """
    )
    monkeypatch.setenv("REGION", "eu")
    monkeypatch.setenv("TOKEN", "s3cr3t-one")
    assert project.run("run").code == 0
    monkeypatch.setenv("TOKEN", "s3cr3t-two")
    assert project.run("run").code == 0
    assert len((project.root.parent / "seen").read_text().splitlines()) == 1, (
        "a new secret value is not a miss"
    )
    monkeypatch.setenv("REGION", "us")
    result = project.run("run", "--explain")
    assert "  cache miss: env REGION changed: 'eu' -> 'us'" in result.out
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "conveyor"
    stored = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    if cache_store is not None:
        stored += cache_store.everything()
    assert b"s3cr3t" not in stored


@pytest.mark.local_store  # it damages a blob on disk
def test_a_corrupt_blob_makes_the_job_run_again(project: Project) -> None:
    big = "x" * 40_000  # above the inline limit: stored as a CAS blob
    project.pipeline(
        "jobs:\n  build:\n    outputs: [out.txt]\n"
        f"    run: printf {big[:10]}%.0s $(seq 4000) > out.txt; echo run >> ../runs.log\n"
    )
    project.commit()
    assert project.run("run").code == 0
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "conveyor" / "cas"
    corrupted = 0
    for blob in cache.rglob("*"):
        if blob.is_file() and blob.read_bytes() == big.encode():
            blob.write_bytes(b"EVIL!" + big.encode()[5:])
            corrupted += 1
    assert corrupted == 1
    (project.root / "out.txt").unlink()
    assert project.run("run").code == 0
    assert (project.root / "out.txt").read_text() == big
    assert runs_log(project) == ["run", "run"], "it ran again instead of restoring a bad blob"


@pytest.mark.local_store  # it damages an entry on disk
def test_a_corrupt_entry_with_inline_outputs_makes_the_job_run_again(built: Project) -> None:
    """Small outputs ride inside the result entry: damage there fails its checksum."""
    entries = list((Path(os.environ["XDG_CACHE_HOME"]) / "conveyor" / "ac").rglob("*"))
    damaged = 0
    for entry in entries:
        if entry.is_file() and b"ALPHA\n" in entry.read_bytes():
            entry.write_bytes(entry.read_bytes().replace(b"ALPHA\n", b"EVIL!\n"))
            damaged += 1
    assert damaged >= 1  # build's output (and test's log, which quotes it)
    import shutil

    shutil.rmtree(built.root / "dist")
    assert built.run("run", "--jobs", "1").code == 0
    assert (built.root / "dist/app.txt").read_text() == "ALPHA\n"
    assert runs_log(built)[2] == "run", "build ran again instead of restoring a bad entry"


@pytest.mark.local_store  # where the disk store lives
def test_cache_dir_can_be_relocated(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(tmp_path / "elsewhere"))
    project.pipeline("jobs:\n  a:\n    run: echo a\n")
    assert project.run("run").code == 0
    assert list((tmp_path / "elsewhere" / "ac").rglob("*"))


@pytest.mark.local_store  # a separate process
def test_a_run_killed_while_storing_leaves_a_correct_cache(project: Project) -> None:
    lines = ["jobs:"]
    for i in range(30):
        lines += [
            f"  j{i}:",
            f"    outputs: [out{i}.bin]",
            f"    run: head -c 3000000 /dev/urandom > out{i}.bin; sleep 0.05; echo {i}",
        ]
    project.pipeline("\n".join(lines) + "\n")
    proc = project.spawn("run", "--plain", "--jobs", "2")
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    for i in range(30):
        (project.root / f"out{i}.bin").unlink(missing_ok=True)
    result = project.run("run", "--jobs", "2")
    assert result.code == 0
    for i in range(30):
        out = project.root / f"out{i}.bin"
        assert out.stat().st_size == 3000000, f"out{i}.bin restored whole or rebuilt"
    cache = LocalCache(str(Path(os.environ["XDG_CACHE_HOME"]) / "conveyor"))
    assert cache.verify().corrupt == ()


def test_why_says_hit_or_what_changed(built: Project) -> None:
    result = built.run("why", "test")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("hit   build  (action ")
    assert lines[1].startswith("      cached from run ")
    assert lines[2].startswith("hit   test  (action ")
    built.write("src/a.txt", "changed\n")
    data = json.loads(built.run("why", "test", "--json").out)
    assert [(v["job"], v["hit"]) for v in data] == [("build", False), ("test", None)]
    assert data[0]["reasons"] == ["input src/a.txt modified"]
    text = built.run("why", "test").out
    assert "wait  test  (keyed once what it needs has run)" in text
    assert data[1]["reasons"] == [
        "it needs 'build', which will run: its key depends on what that produces"
    ]


@pytest.mark.local_store  # `conveyor cache` maintains the disk store
def test_cache_commands(built: Project) -> None:
    stats = json.loads(built.run("cache", "stats", "--json").out)
    assert stats["actions"] == 2
    assert stats["blobs"] == 0, "small outputs and logs ride inside the two entries"
    verify = built.run("cache", "verify", "--json")
    assert verify.code == 0
    assert json.loads(verify.out)["corrupt"] == []
    ac = Path(stats["root"]) / "ac"
    victim = next(p for p in ac.rglob("*") if p.is_file())
    victim.write_bytes(b"garbage")
    bad = built.run("cache", "verify")
    assert bad.code == 1
    assert "1 corrupt (evicted)" in bad.out
    assert built.run("cache", "prune", "--max-size", "nonsense").code == 2
    pruned = json.loads(built.run("cache", "prune", "--max-size", "0", "--json").out)
    assert pruned["removed"] == 0, "entries used minutes ago are kept"
    assert built.run("cache", "clear").code == 0
    assert json.loads(built.run("cache", "stats", "--json").out)["total_bytes"] == 0
    assert built.run("run", "--jobs", "1").code == 0
    assert runs_log(built) == ["run", "test", "run", "test"]


def test_affected_runs_changed_jobs_and_their_dependents(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          lib:
            dir: lib
            run: echo lib >> ../../ran
          app:
            dir: app
            needs: [lib]
            run: echo app >> ../../ran
          docs:
            inputs: [docs/**]
            run: echo docs >> ../ran
        """
    )
    for path in ("lib/a.c", "app/main.c", "docs/index.md"):
        project.write(path, "x\n")
    project.commit()
    project.git("branch", "base")
    ran = project.root.parent / "ran"
    result = project.run("run", "--affected", "base")
    assert result.code == 0
    assert "no job is affected by changes since base" in result.out
    project.write("app/main.c", "y\n")
    assert project.run("run", "--affected", "base", "--jobs", "1").code == 0
    # app changed; it needs lib, which runs (or is restored) so app can build.
    assert ran.read_text().split() == ["lib", "app"]
    ran.unlink()
    project.write("lib/new.c", "z\n")  # untracked files count too
    project.commit()
    assert project.run("run", "--affected", "base", "--no-cache", "--jobs", "1").code == 0
    assert ran.read_text().split() == ["lib", "app"]
    assert "docs" not in ran.read_text()
    bad = project.run("run", "--affected", "no-such-ref")
    assert bad.code == 2
    assert bad.err.startswith("error: unknown git ref 'no-such-ref'")


def test_dependency_caches_like_actions_cache(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          install:
            caches:
              - key: deps-{{ os }}-{{ hashFiles('requirements*.txt') }}
                restore_keys:
                  - deps-{{ os }}-
                paths: [vendor]
            outputs: [installed.txt]
            run: |
              echo "exact hit: $CONVEYOR_CACHE_HIT_0"
              mkdir -p vendor
              if [ -f vendor/lib.txt ]; then echo "reused $(cat vendor/lib.txt)"; fi
              cp requirements.txt vendor/lib.txt
              ln -sf lib.txt vendor/link.txt
              cat requirements.txt > installed.txt
        """
    )
    project.write("requirements.txt", "flask==3\n")
    project.write(".gitignore", "vendor/\ninstalled.txt\n")
    project.commit()
    first = project.run("run", "--plain")
    assert first.code == 0
    assert "conveyor: cache 'deps-linux-" in first.out
    assert "not found" in first.out
    assert "saved (2 files)" in first.out
    # A new requirement: the exact key misses, the prefix restores the older entry.
    import shutil

    shutil.rmtree(project.root / "vendor")
    project.write("requirements.txt", "flask==3\nrequests\n")
    second = project.run("run", "--plain")
    assert second.code == 0
    assert "reused flask==3" in second.out
    assert "not found; restored 'deps-linux-" in second.out
    assert (project.root / "vendor" / "link.txt").is_symlink()
    # The job is told whether its cache was restored with the exact key: only then.
    assert "exact hit: false" in first.out
    assert "exact hit: false" in second.out, "a restore key's entry is not a hit"
    shutil.rmtree(project.root / "vendor")
    project.write("conveyor.yml", (project.root / "conveyor.yml").read_text() + "\n")
    third = project.run("run", "--plain")
    assert "exact hit: true" in third.out, third.out


def test_a_bad_cache_key_expression_is_a_config_error(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          install:
            caches:
              - key: deps-{{ hashfiles('x') }}
                paths: [vendor]
            run: "true"
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:4:19: jobs.install.caches[0].key: unknown expression "
        "'{{ hashfiles('x') }}' in a cache key"
    )


@pytest.mark.local_store  # the disk store's directory
def test_an_unusable_cache_directory_warns_and_runs_uncached(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(blocker))
    project.pipeline("jobs:\n  a:\n    run: echo ran >> ../ran\n")
    for _ in range(2):
        result = project.run("run")
        assert result.code == 0
    assert "warning: the job cache is off for this run: cannot use " in result.err
    assert (project.root.parent / "ran").read_text().split() == ["ran", "ran"]


def test_the_fingerprint_memo_gives_the_full_action_digest(built: Project) -> None:
    first = jobs(built)
    memo = built.root / ".conveyor" / "cache" / "actions.memo"
    assert memo.exists()
    assert built.run("run", "--jobs", "1").code == 0
    from_memo = jobs(built)
    memo.unlink()
    assert built.run("run", "--jobs", "1").code == 0
    rebuilt = jobs(built)
    for name in ("build", "test"):
        assert first[name]["action_digest"] == from_memo[name]["action_digest"]
        assert from_memo[name]["action_digest"] == rebuilt[name]["action_digest"]
        assert rebuilt[name]["cached"] is True


def test_a_dependency_cache_in_place_is_not_written_again(project: Project) -> None:
    """A cache-hit job's caches are restored on every run: the files the last restore
    (or save) left untouched stay as they are (same inode: not rewritten), one changed
    since is put back, one removed comes back."""
    project.pipeline(
        """
        jobs:
          setup:
            caches:
              - key: venv-{{ hashFiles('requirements.txt') }}
                paths: [.venv]
            run: |
              mkdir -p .venv/lib
              for i in 1 2 3 4 5; do echo "module $i" > .venv/lib/m$i.py; done
          test:
            needs: [setup]
            run: cat .venv/lib/m1.py .venv/lib/m5.py
        """
    )
    project.write("requirements.txt", "flask==3\n")
    project.write(".gitignore", ".venv/\n")
    project.commit()
    assert project.run("run", "--plain").code == 0
    lib = project.root / ".venv" / "lib"
    inodes = {p.name: p.stat().st_ino for p in lib.iterdir()}
    (lib / "m1.py").write_text("changed by hand\n")
    (lib / "m5.py").unlink()
    again = project.run("run", "--plain")
    assert again.code == 0, again.out
    assert "cache 'venv-" in again.out
    assert "restored (5 files)" in again.out
    assert (lib / "m1.py").read_text() == "module 1\n"  # the changed one put back
    assert (lib / "m5.py").read_text() == "module 5\n"  # the removed one back
    for name in ("m2.py", "m3.py", "m4.py"):
        assert (lib / name).stat().st_ino == inodes[name], f"{name} was written again"
