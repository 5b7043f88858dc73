"""`conveyor why` and `conveyor run -n` with the team's remote cache, through the real CLI
and a real BuildGrid (issue 14): a job the remote holds is a hit "from the remote cache",
a miss is compared with the job's latest entry there (the pointer uploads keep), a server
that is gone is one warning, and a look writes nothing, here or on the server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.local import LocalCache
from conveyor.cache.remote import RemoteStore
from conveyor.cache.results import MANIFEST_TYPE, describe_execution
from conveyor.cache.tiered import LATEST_TYPE, TieredStore, latest_key, pointed_action
from tests.cache.memory import MemoryStore
from tests.cache.test_remote_runs import machine
from tests.cache.test_tiered import LARGE, Remote, digest_of, remote_with_result, store_result
from tests.conftest import Project
from tests.reapi import Server

PIPELINE = """
name: {name}
remote:
  url: {url}
jobs:
  build:
    inputs: [src/*.txt]
    outputs: [dist/]
    run: mkdir -p dist && cat src/*.txt > dist/all.txt
  test:
    needs: [build]
    inputs: [dist/all.txt]
    outputs: [report.txt]
    run: wc -l < dist/all.txt > report.txt
"""

READS = {"GetCapabilities", "GetActionResult", "FindMissingBlobs"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The REAPI calls every remote store of the test makes, by name, in order."""
    made: list[str] = []
    call = RemoteStore._call

    def spy(self: RemoteStore, what: str, *args: Any, **kwargs: Any) -> Any:
        made.append(what)
        return call(self, what, *args, **kwargs)

    monkeypatch.setattr(RemoteStore, "_call", spy)
    return made


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes (none when it does not exist)."""
    found: dict[str, bytes] = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = Path(base, name)
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


@pytest.fixture
def team(
    buildgrid: Server, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, Project]:
    """CI (machine A) has run the pipeline and uploaded; a developer's clone (machine B,
    its own empty cache) is the current machine when the test starts."""
    # Unique to this test (the server outlives it): the name keys the "latest" pointers.
    project.pipeline(PIPELINE.format(name=f"shop-{os.urandom(4).hex()}", url=buildgrid.url))
    project.write("src/a.txt", f"alpha {os.urandom(8).hex()}\n")
    project.write(".gitignore", "dist/\nreport.txt\n.conveyor/\n")
    project.commit()
    machine(project, monkeypatch, tmp_path / "ci-cache", "upload")
    ci = project.run("run", "--plain")
    assert ci.code == 0, ci.out + ci.err
    assert " results to the remote cache in " in ci.err

    clone = tmp_path / "laptop"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    laptop = Project.__new__(Project)
    laptop.root, laptop.capsys = clone, project.capsys
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    return project, laptop


def ci_run_id(ci: Project) -> str:
    return ci.runs()[-1].name


def test_why_says_a_job_the_remote_holds_is_a_hit_from_it_and_writes_nothing(
    team: tuple[Project, Project],
    buildgrid: Server,
    tmp_path: Path,
    calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ci, laptop = team
    # Even a machine that uploads writes nothing when it only looks.
    monkeypatch.setenv("CONVEYOR_REMOTE_UPLOAD", "1")
    server_before = files_under(buildgrid.directory / "cas")
    said = laptop.run("why", "test")
    assert said.code == 0, said.err
    run = ci_run_id(ci)
    assert said.out.splitlines()[0].startswith("hit   build")
    assert f"cached from the remote cache (run {run})" in said.out
    assert said.out.count("from the remote cache") == 2, "test too: keyed on build's outputs"
    assert said.err == ""
    found = json.loads(laptop.run("why", "build", "--json").out)
    assert found[0]["hit"] is True
    assert found[0]["source"] == "remote"

    assert set(calls) <= READS, calls
    assert files_under(tmp_path / "laptop-cache") == {}, "nothing written to the local cache"
    assert files_under(buildgrid.directory / "cas") == server_before
    assert not (laptop.root / "dist").exists(), "nothing restored"

    # What it said is what a run does.
    served = laptop.run("run", "--plain")
    assert served.code == 0, served.err
    assert "✔ build cached" in served.out
    assert "✔ test cached" in served.out
    # Now written through: the local cache serves it.
    local = laptop.run("why", "build")
    assert f"cached from run {run}\n" in local.out


def test_run_dry_shows_the_remote_hits(
    team: tuple[Project, Project], tmp_path: Path, calls: list[str]
) -> None:
    ci, laptop = team
    plan = laptop.run("run", "-n")
    assert plan.code == 0, plan.err
    assert "2 from the cache" in plan.out
    run = ci_run_id(ci)
    assert f"build  cached  in pipeline; cached from the remote cache (run {run})" in plan.out, (
        plan.out
    )
    assert set(calls) <= READS, calls
    assert files_under(tmp_path / "laptop-cache") == {}
    local_only = laptop.run("run", "-n", "--no-remote")
    assert "0 from the cache" in local_only.out


def test_a_miss_is_compared_with_the_remote_entry(
    team: tuple[Project, Project],
    tmp_path: Path,
    calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ci, laptop = team
    laptop.write("src/a.txt", "changed here\n")
    laptop.write("src/b.txt", "new\n")
    said = laptop.run("why", "test")
    assert said.code == 0, said.err
    run = ci_run_id(ci)
    assert said.out.splitlines()[0].startswith("miss  build")
    assert (
        f"      the remote cache's latest result (run {run}) differs: "
        "input src/a.txt modified; input src/b.txt added\n"
    ) in said.out, said.out
    assert "wait  test" in said.out
    assert set(calls) <= READS, calls
    assert files_under(tmp_path / "laptop-cache") == {}

    # Once the laptop has stored results of its own, both are compared, newer first.
    assert laptop.run("run", "--plain").code == 0
    laptop.write("src/a.txt", "changed again\n")
    said = laptop.run("why", "build")
    lines = said.out.splitlines()
    assert lines[1].startswith("      this machine's last result (run "), said.out
    assert lines[1].endswith(") differs: input src/a.txt modified"), said.out
    assert lines[2] == (
        f"      the remote cache's latest result (run {run}) differs: "
        "input src/a.txt modified; input src/b.txt added"
    ), said.out

    # CI uploads a newer result: its line comes first.
    machine(ci, monkeypatch, tmp_path / "ci-cache", "upload")
    ci.write("src/a.txt", "on CI\n")
    assert ci.run("run", "--plain").code == 0
    newer = ci_run_id(ci)
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    lines = laptop.run("why", "build").out.splitlines()
    assert lines[1] == (
        f"      the remote cache's latest result (run {newer}) differs: "
        "input src/a.txt modified; input src/b.txt added"
    ), lines
    assert lines[2].startswith("      this machine's last result (run "), lines
    explained = laptop.run("run", "--plain", "--explain", "build")
    assert f"cache miss: the remote cache's latest result (run {newer})" in explained.out


def test_a_server_that_is_gone_is_one_warning_and_local_verdicts(
    team: tuple[Project, Project],
) -> None:
    _ci, laptop = team
    assert laptop.run("run", "--plain", "--no-remote").code == 0
    laptop.write("src/a.txt", "changed here\n")
    for args in (("why", "test"), ("run", "-n", "--explain")):
        said = laptop.run(*args, "--remote", "grpc://127.0.0.1:1")
        assert said.code == 0, said.err
        warnings = [line for line in said.err.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, said.err
        assert "remote cache unavailable: cannot reach grpc://127.0.0.1:1" in warnings[0]
        assert "remote cache's" not in said.out
        assert "input src/a.txt modified" in said.out, said.out
    # A job the local cache serves needs no server at all: not even a warning.
    laptop.write("src/a.txt", (laptop.root / "src/a.txt").read_text())
    assert laptop.run("run", "--plain", "--no-remote").code == 0
    said = laptop.run("why", "test", "--remote", "grpc://127.0.0.1:1")
    assert said.err == ""
    assert said.out.count("cached from run ") == 2


def test_upload_keeps_a_pointer_to_the_latest_result_of_each_job(
    team: tuple[Project, Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer moves with each upload, and only with upload on."""
    ci, laptop = team
    first = ci_run_id(ci)
    laptop.write("src/a.txt", "from the laptop\n")
    assert laptop.run("run", "--plain").code == 0  # upload off: the pointer stays
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(laptop.root.parent / "third-cache"))
    said = laptop.run("why", "build")
    assert f"the remote cache's latest result (run {first}) differs" in said.out, said.out

    monkeypatch.setenv("CONVEYOR_REMOTE_UPLOAD", "1")
    assert laptop.run("run", "--plain").code == 0  # it moves
    uploaded = laptop.runs()[-1].name
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(laptop.root.parent / "fourth-cache"))
    monkeypatch.delenv("CONVEYOR_REMOTE_UPLOAD")
    laptop.write("src/a.txt", "fourth\n")
    said = laptop.run("why", "build")
    assert (
        f"the remote cache's latest result (run {uploaded}) differs: input src/a.txt modified"
    ) in said.out, said.out


# -- the tiered store's parts, against a fake remote (no server) ---------------------------


def test_a_dry_look_reads_the_remote_and_writes_nothing(tmp_path: Path) -> None:
    inner, action = remote_with_result()
    remote = Remote(inner)
    local = LocalCache(str(tmp_path / "local"))
    tiered = TieredStore(local, remote, upload=True, on_warning=pytest.fail)

    found = tiered.peek_action_result(action)

    assert found is not None
    assert found[1] is True, "the remote's"
    assert found[0] == inner.get_action_result(action)
    assert set(remote.calls) == {"get_action_result", "find_missing"}
    assert local.stats().actions == local.stats().blobs == 0, "nothing written through"
    assert tiered.summary() is None
    # A result whose blob the remote lost would not be served: no hit.
    del inner.blobs[digest_of(LARGE)]
    assert tiered.peek_action_result(action) is None
    assert tiered.peek_action_result(digest_of(b"nothing")) is None
    # The local tier's own, without asking the remote.
    mine = store_result(local, "mine")
    remote.calls.clear()
    assert tiered.peek_action_result(mine) == (local.get_action_result(mine), False)
    assert remote.calls == []


def test_the_latest_pointer_is_written_after_its_result_and_only_with_upload(
    tmp_path: Path,
) -> None:
    inner = MemoryStore()
    remote = Remote(inner)
    key = latest_key("shop", "build")
    manifest = b'{"job":"build"}'
    for upload in (False, True):
        tiered = TieredStore(
            LocalCache(str(tmp_path / f"local-{upload}")),
            remote,
            upload=upload,
            on_warning=pytest.fail,
        )
        result = re_pb2.ActionResult(exit_code=0)
        describe_execution(
            result,
            worker="conveyor@ci-7 run r1",
            started=1.0,
            finished=2.0,
            manifest=manifest,
            values=(("version", "1.2"),),
        )
        action = digest_of(f"build {upload}".encode())
        tiered.put_action_result(action, result)
        tiered.point_latest(key, action)
        remote.calls.clear()
        tiered.flush()
        pointer = inner.get_action_result(key)
        if not upload:
            assert pointer is None, "a machine that does not upload moves no pointer"
            continue
        assert remote.calls[-2:] == ["put_action_result", "put_action_result"]
        assert pointer is not None
        assert pointed_action(pointer) == action
        assert list(pointer.output_files) == []
        assert not pointer.HasField("stdout_digest")
        meta = pointer.execution_metadata
        assert meta.worker == "conveyor@ci-7 run r1"
        types = [a.type_url for a in meta.auxiliary_metadata]
        assert types == [MANIFEST_TYPE, LATEST_TYPE], "the manifest, not the values"
        assert meta.auxiliary_metadata[0].value == manifest
        summary = tiered.uploads()
        assert summary is not None
        assert summary.results == 1, "the pointer is not a result"

    # A result taken back is never uploaded: nor is its pointer moved.
    tiered = TieredStore(
        LocalCache(str(tmp_path / "local-3")), remote, upload=True, on_warning=pytest.fail
    )
    other = latest_key("shop", "test")
    action = store_result(tiered, "test")
    tiered.point_latest(other, action)
    tiered.remove_action(action)
    tiered.flush()
    assert inner.get_action_result(other) is None


def test_latest_keys_tell_pipelines_and_jobs_apart() -> None:
    keys = {latest_key(p, j) for p in ("shop", "shop2") for j in ("build", "test", "build ")}
    assert len(keys) == 6
    assert latest_key("shop", "build") == latest_key("shop", "build")
