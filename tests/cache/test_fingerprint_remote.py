"""Results published by fingerprint (issue 14): a machine that uploads also writes each
result under its job's fingerprint key (`keys.fingerprint_key`), naming the action, so
that a fresh clone asks for it before hashing a file. Such an entry is trusted only as
far as the fingerprint is: where git's blob ids name the checkout's bytes (no attribute,
no core.autocrlf converting them); anything else is a miss, and the full key decides."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.jobs import JobCache
from conveyor.cache.keys import BuiltAction, fingerprint_key
from conveyor.cache.local import LocalCache
from conveyor.cache.results import action_of, with_action
from conveyor.cache.tiered import TieredStore
from conveyor.model import Digest
from conveyor.workspace import files as workspace_files
from conveyor.workspace.files import WorkspaceFiles
from tests.cache.memory import MemoryStore
from tests.cache.test_remote_runs import machine
from tests.cache.test_tiered import Remote, digest_of, store_result
from tests.conftest import Project
from tests.reapi import Server

PIPELINE = """
remote:
  url: {url}
jobs:
  build:
    outputs: [dist/]
    run: mkdir -p dist && cat src/*.txt > dist/all.txt && echo built
  test:
    needs: [build]
    inputs: [dist/all.txt]
    outputs: [report.txt]
    run: wc -l < dist/all.txt > report.txt && echo tested
"""


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every workspace file read to compute its digest (by its path)."""
    calls: list[str] = []
    real = workspace_files.digest_file

    def spy(path: str) -> Digest:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(workspace_files, "digest_file", spy)
    return calls


def uploaded(project: Project, server: Server, tmp_path: Path, mp: pytest.MonkeyPatch) -> None:
    """CI's run: the pipeline committed with inputs unique to the test (the server
    outlives it), run once with uploads on."""
    project.pipeline(PIPELINE.format(url=server.url))
    project.write("src/a.txt", f"alpha {os.urandom(8).hex()}\nsecond line\n")
    project.write("src/b.txt", "beta\n")
    project.write(".gitignore", "dist/\nreport.txt\n")
    project.commit()
    machine(project, mp, tmp_path / "ci-cache", "upload")
    ci = project.run("run", "--plain")
    assert ci.code == 0, ci.out + ci.err
    assert "uploaded " in ci.err


def clone(project: Project, to: Path, *git_args: str) -> Project:
    subprocess.run(["git", "clone", "-q", *git_args, str(project.root), str(to)], check=True)
    other = Project.__new__(Project)
    other.root, other.capsys = to, project.capsys
    return other


def test_a_fresh_clone_is_served_by_fingerprint_without_hashing_an_input(
    buildgrid: Server,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hashed: list[str],
) -> None:
    uploaded(project, buildgrid, tmp_path, monkeypatch)
    laptop = clone(project, tmp_path / "laptop")
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    hashed.clear()

    served = laptop.run("run", "--plain")

    assert served.code == 0, served.out + served.err
    assert "✔ build cached" in served.out
    assert "✔ test cached" in served.out
    assert "built" in served.out, "the log replayed"
    assert "2 results (" in served.err
    assert not [p for p in hashed if "/src/" in p], "no tracked input was hashed"
    assert (laptop.root / "dist/all.txt").read_text() == (project.root / "dist/all.txt").read_text()

    # The action the entry named is the one the full key gives: another clone sharing
    # the laptop's cache, local only, hashes its inputs and is served what was written
    # through under that action.
    again = clone(laptop, tmp_path / "again")
    machine(again, monkeypatch, tmp_path / "laptop-cache")
    local = again.run("run", "--plain", "--no-remote")
    assert local.code == 0, local.err
    assert "✔ build cached" in local.out
    assert "✔ test cached" in local.out
    assert [p for p in hashed if "/again/src/" in p], "by the full key"
    said = laptop.run("why", "build")
    assert said.code == 0, said.err
    assert "cached" in said.out, said.out


@pytest.mark.parametrize("how", ["edited", "committed"])
def test_a_clone_whose_input_differs_is_never_served_the_published_result(
    buildgrid: Server,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    uploaded(project, buildgrid, tmp_path, monkeypatch)
    laptop = clone(project, tmp_path / "laptop")
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    path = laptop.root / "src/b.txt"
    path.write_text("bet4\n")  # the same size: only the bytes tell
    if how == "committed":
        who = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]
        subprocess.run(["git", *who, "commit", "-qam", "b"], cwd=laptop.root, check=True)

    ran = laptop.run("run", "--plain", "--explain")

    assert ran.code == 0, ran.out + ran.err
    assert "✔ build cached" not in ran.out
    assert "built" in ran.out, "it ran"
    assert (laptop.root / "dist/all.txt").read_text().endswith("bet4\n")


def test_an_input_written_after_git_was_asked_is_keyed_by_its_content(
    buildgrid: Server,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An editor saves a file after git called it clean, before the remote is asked:
    # the fingerprint (git's blob id) is stale, and the published result must not be
    # served for the new bytes. (The check runs on the thread that asks the remote.)
    uploaded(project, buildgrid, tmp_path, monkeypatch)
    laptop = clone(project, tmp_path / "laptop")
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    real = JobCache.stale_inputs
    edited: list[bool] = []

    def editor_saves_first(self: JobCache, built: BuiltAction) -> list[str]:
        if not edited:
            edited.append(True)
            time.sleep(0.05)  # past the scan's start on a coarse file clock
            (laptop.root / "src/b.txt").write_text("bet4\n")  # same size, other bytes
        return real(self, built)

    monkeypatch.setattr(JobCache, "stale_inputs", editor_saves_first)

    ran = laptop.run("run", "--plain")

    assert ran.code == 0, ran.out + ran.err
    assert edited
    assert "✔ build cached" not in ran.out
    assert "built" in ran.out, "it ran"
    assert (laptop.root / "dist/all.txt").read_text().endswith("bet4\n")


def test_a_checkout_that_converts_line_endings_is_never_served_by_fingerprint(
    buildgrid: Server,
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Same blob ids, other bytes (CRLF): a fingerprint made of blob ids is the same as
    # CI's, the action is not.
    uploaded(project, buildgrid, tmp_path, monkeypatch)
    laptop = clone(project, tmp_path / "laptop", "-c", "core.autocrlf=true")
    assert b"\r\n" in (laptop.root / "src/a.txt").read_bytes()
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")

    ran = laptop.run("run", "--plain")

    assert ran.code == 0, ran.out + ran.err
    assert "✔ build cached" not in ran.out
    assert "built" in ran.out
    assert b"\r\n" in (laptop.root / "dist/all.txt").read_bytes()


def files_of(project: Project) -> WorkspaceFiles:
    return WorkspaceFiles(str(project.root), str(project.root / ".conveyor" / "files.state"))


def test_only_files_no_attribute_converts_are_taken_to_hold_their_blobs(
    project: Project,
) -> None:
    project.write("a.txt", "a\n")
    project.write("img.png", "png\n")
    project.write("doc.md", "doc\n")
    project.write("lfs.bin", "pointer\n")
    project.write(
        ".gitattributes",
        "*.png binary\n*.md text eol=crlf\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
    )
    project.commit()
    files = files_of(project)
    assert files.unconverted(["a.txt", "img.png"]), "binary unsets text: never converted"
    assert not files.unconverted(["a.txt", "doc.md"])
    assert not files.unconverted(["lfs.bin"])
    subprocess.run(["git", "config", "core.autocrlf", "input"], cwd=project.root, check=True)
    assert not files_of(project).unconverted(["a.txt"]), "autocrlf: any text file"


def test_a_result_published_by_fingerprint_names_its_action(tmp_path: Path) -> None:
    inner = MemoryStore()
    tiered = TieredStore(
        LocalCache(str(tmp_path / "ci")), Remote(inner), upload=True, on_warning=pytest.fail
    )
    action = store_result(tiered, "build")
    key = fingerprint_key("f" * 64)
    tiered.publish_fingerprint(action, key)
    retracted = store_result(tiered, "retracted")
    tiered.publish_fingerprint(retracted, fingerprint_key("0" * 64))
    tiered.remove_action(retracted)
    tiered.flush()

    assert inner.get_action_result(fingerprint_key("0" * 64)) is None, "taken back: neither"
    assert key != fingerprint_key("e" * 64)
    laptop = LocalCache(str(tmp_path / "laptop"))
    reader = TieredStore(laptop, Remote(inner), upload=False, on_warning=pytest.fail)
    found = reader.fingerprint_result(key)
    assert found is not None
    assert found[0] == action
    assert laptop.get_action_result(action) == found[1], "written through as the action's"
    assert found[2], "the remote's"
    again = reader.fingerprint_result(key)
    assert again is not None
    assert not again[2], "the local copy is served the second time"
    assert reader.fingerprint_result(fingerprint_key("e" * 64)) is None


def test_with_upload_off_nothing_is_published_by_fingerprint(tmp_path: Path) -> None:
    inner = MemoryStore()
    tiered = TieredStore(
        LocalCache(str(tmp_path / "local")), Remote(inner), upload=False, on_warning=pytest.fail
    )
    action = store_result(tiered, "build")
    tiered.publish_fingerprint(action, fingerprint_key("f" * 64))
    tiered.flush()
    assert inner.actions == {}


def test_the_action_a_result_names_is_read_back_and_taken_out() -> None:
    result = re_pb2.ActionResult(exit_code=0)
    result.execution_metadata.worker = "conveyor@ci run 1"
    action = digest_of(b"action")
    named = with_action(result, action)
    assert len(named.execution_metadata.auxiliary_metadata) == 1
    assert len(result.execution_metadata.auxiliary_metadata) == 0, "a copy"
    assert action_of(named) == action
    assert named == result, "as stored under the action"
    assert action_of(result) is None
    bad = with_action(result, Digest("not hex" * 9 + "z", 3))
    assert action_of(bad) is None
