"""The remote cache as a team uses it, through the real CLI and a real BuildGrid: CI
uploads, a developer's fresh clone is served from it, a server that is gone never fails a
run, and `conveyor remote check` says what is wrong in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.reapi import Server

PIPELINE = """
remote:
  url: {url}
jobs:
  build:
    inputs: [src/*.txt]
    outputs: [dist/]
    run: mkdir -p dist && cat src/*.txt > dist/all.txt && ln -sf all.txt dist/latest
  test:
    needs: [build]
    inputs: [dist/all.txt]
    outputs: [report.txt]
    run: wc -l < dist/all.txt > report.txt && echo tested
"""


def machine(project: Project, monkeypatch: pytest.MonkeyPatch, cache: Path, *upload: str) -> None:
    """Which machine the next runs are on: its own local cache; `upload` writes."""
    monkeypatch.setenv("CONVEYOR_CACHE_DIR", str(cache))
    if upload:
        monkeypatch.setenv("CONVEYOR_REMOTE_UPLOAD", "1")
    else:
        monkeypatch.delenv("CONVEYOR_REMOTE_UPLOAD", raising=False)


def test_ci_uploads_and_a_fresh_clone_is_served_from_the_remote(
    buildgrid: Server, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(PIPELINE.format(url=buildgrid.url))
    # Unique to this test: the server outlives it.
    project.write("src/a.txt", f"alpha {os.urandom(8).hex()}\n")
    project.write(".gitignore", "dist/\nreport.txt\n")
    project.commit()

    machine(project, monkeypatch, tmp_path / "ci-cache", "upload")
    ci = project.run("run", "--plain")
    assert ci.code == 0, ci.out + ci.err
    assert "uploaded " in ci.err
    assert " results to the remote cache in " in ci.err

    clone = tmp_path / "laptop"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    laptop = Project.__new__(Project)
    laptop.root, laptop.capsys = clone, project.capsys
    machine(laptop, monkeypatch, tmp_path / "laptop-cache")
    served = laptop.run("run", "--plain")
    assert served.code == 0, served.out + served.err
    assert "✔ build cached" in served.out
    assert "✔ test cached" in served.out
    assert "tested" in served.out, "the log replayed"
    assert "2 results (" in served.err
    assert "came from the remote cache" in served.err
    assert "uploaded" not in served.err, "a laptop does not write the team's cache"
    assert (clone / "dist/all.txt").read_text() == (project.root / "dist/all.txt").read_text()
    assert os.readlink(clone / "dist/latest") == "all.txt"
    assert "build cached (the remote cache, from run " in served.out
    # The history keeps which cache served each job.
    shown = laptop.run("show")
    assert shown.code == 0, shown.err
    rows = {line.split()[1]: line for line in shown.out.splitlines() if "|" in line}
    assert "cached (remote)" in rows["build"], shown.out
    assert "cached (remote)" in rows["test"], shown.out
    runs = json.loads(laptop.run("show", "--json").out)
    assert {j["name"]: j["cache_tier"] for j in runs["jobs"]} == {
        "build": "remote",
        "test": "remote",
    }

    # Written through: the laptop's own cache serves it now, the remote not even named.
    shutil.rmtree(clone / "dist")
    local = laptop.run("run", "--plain", "--no-remote")
    assert local.code == 0, local.err
    assert "✔ build cached" in local.out
    assert "remote" not in local.err
    assert "remote" not in local.out, "served by the local cache this time"

    # Another fresh clone on the laptop, the remote on: its key is unknown until its
    # inputs are hashed, but then the laptop's own cache has the result, and says so.
    second = tmp_path / "laptop-2"
    subprocess.run(["git", "clone", "-q", str(project.root), str(second)], check=True)
    other = Project.__new__(Project)
    other.root, other.capsys = second, project.capsys
    warm = other.run("run", "--plain")
    assert warm.code == 0, warm.err
    assert "✔ build cached (from run" in warm.out, warm.out
    assert "the remote cache" not in warm.out
    tiers = {
        j["name"]: j["cache_tier"] for j in json.loads(other.run("show", "--json").out)["jobs"]
    }
    assert tiers == {"build": "local", "test": "local"}


def test_a_server_that_is_gone_never_fails_the_run(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(PIPELINE.format(url="grpc://127.0.0.1:1"))
    project.write("src/a.txt", "alpha\n")
    project.commit()
    machine(project, monkeypatch, tmp_path / "cache", "upload")
    ran = project.run("run", "--plain")
    assert ran.code == 0, ran.out + ran.err
    warnings = [line for line in ran.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, ran.err
    assert "remote cache unavailable: cannot reach grpc://127.0.0.1:1" in warnings[0]
    assert "uses the local cache only" in warnings[0]
    again = project.run("run", "--plain")
    assert "✔ build cached" in again.out, "stored locally all the same"


@pytest.mark.slow  # a server of its own, started after the first run: 5-10 s
def test_what_a_run_could_not_upload_the_next_run_sends(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.cache.remote import RemoteStore
    from conveyor.model import Digest, Remote
    from tests.history.conftest import free_port
    from tests.reapi import buildgrid as start_buildgrid

    port = free_port()
    url = f"grpc://127.0.0.1:{port}"
    project.pipeline(PIPELINE.format(url=url))
    project.write("src/a.txt", f"alpha {os.urandom(8).hex()}\n")
    project.write(".gitignore", "dist/\nreport.txt\n")
    project.commit()
    machine(project, monkeypatch, tmp_path / "ci-cache", "upload")
    # CI runs while the server is down: stored here, one warning, not uploaded.
    down = project.run("run", "--plain")
    assert down.code == 0, down.out + down.err
    assert "remote cache unavailable" in down.err
    (run_dir,) = project.runs()
    actions = [
        j["action_digest"] for j in json.loads((run_dir / "summary.json").read_text())["jobs"]
    ]
    # Back up (on the same port): the next run has nothing to run, and sends them.
    monkeypatch.setattr("tests.reapi.free_port", lambda: port)
    with start_buildgrid(tmp_path / "bgd") as server:
        assert server.url == url
        again = project.run("run", "--plain")
        assert again.code == 0, again.out + again.err
        assert "✔ build cached" in again.out
        assert "and 2 results to the remote cache" in again.err, again.err
        assert "(2 left by earlier runs)" in again.err
        reader = RemoteStore(Remote(url=url), {})
        try:
            index = json.loads(next((tmp_path / "ci-cache" / "jobs").glob("*.json")).read_text())
            for name in ("build", "test"):
                key = Digest(index[name]["action"], index[name]["action_size"])
                assert key.hash in actions
                assert reader.get_action_result(key) is not None, name
        finally:
            reader.close()
        # Sent once: the run after has nothing left to send.
        third = project.run("run", "--plain")
        assert "results to the remote cache" not in third.err, third.err


def test_a_missing_credential_is_one_warning_and_the_local_cache_works(
    buildgrid: Server, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(
        PIPELINE.format(url=buildgrid.url).replace(
            "remote:\n", "remote:\n  auth: {env: TEAM_CACHE_TOKEN}\n"
        )
    )
    project.write("src/a.txt", "alpha\n")
    project.commit()
    machine(project, monkeypatch, tmp_path / "cache")
    monkeypatch.delenv("TEAM_CACHE_TOKEN", raising=False)
    ran = project.run("run", "--plain")
    assert ran.code == 0, ran.err
    assert "TEAM_CACHE_TOKEN is not set" in ran.err
    assert "the local cache only" in ran.err


def test_remote_check_reports_a_working_server(
    buildgrid: Server, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(PIPELINE.format(url=buildgrid.url))
    monkeypatch.delenv("CONVEYOR_REMOTE_UPLOAD", raising=False)
    said = project.run("remote", "check")
    assert said.code == 0, said.err
    assert said.out.startswith(f"remote cache {buildgrid.url}: REAPI 2.")
    assert "✔ digest function SHA256" in said.out
    assert "upload is off: this machine only reads" in said.out
    monkeypatch.setenv("CONVEYOR_REMOTE_UPLOAD", "1")
    said = project.run("remote", "check", "--json")
    found = json.loads(said.out)
    assert found["probe"] == "write+read"
    assert found["update_enabled"] is True


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("grpc://127.0.0.1:1", "cannot reach grpc://127.0.0.1:1"),
        ("grpc:/nowhere", "--remote: expected grpc://host:port"),
    ],
)
def test_remote_check_says_what_is_wrong_in_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    project.pipeline("jobs:\n  a: {run: 'true'}\n")
    failed = project.run("remote", "check", "--remote", url)
    assert failed.code == 2
    assert said in failed.err.splitlines()[0]
    assert "Traceback" not in failed.err
    nothing = project.run("remote", "check")
    assert nothing.code == 2
    assert "no remote cache to check" in nothing.err
