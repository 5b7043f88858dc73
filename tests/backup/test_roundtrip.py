"""A real workspace backed up and restored into an empty directory: `conveyor history`,
`show`, `stats` and `artifacts verify --key` there say what they say in the original;
a second backup adds almost nothing; a restore never overwrites without --force."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conveyor.backup.backend import DirectoryBackend
from tests.backup.workspace import backup_json, conveyor_in, make_workspace, snapshots
from tests.conftest import Project

READS = [
    ("history",),
    ("history", "--json"),
    ("stats",),
    ("artifacts", "list"),
]


def test_restore_into_an_empty_directory_reproduces_history_show_stats_and_artifacts(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    # A file changed in the second before a backup is read again by the next one (its
    # mtime cannot vouch for it): let the second pass.
    time.sleep(1.1)
    first = backup_json(ws.root, capsys, repo)
    assert first["files"] > 10
    run_ids = [r["id"] for r in json.loads(project.run("history", "--json").out)]
    reads = [
        *READS,
        *(("show", rid) for rid in run_ids),
        ("show", run_ids[0], "--json"),
        ("artifacts", "verify", "shop@1.0.1", "--key", str(ws.public_key)),
        ("artifacts", "verify", "shop@1.0.2", "--key", str(ws.public_key)),
    ]
    before = [conveyor_in(ws.root, capsys, *args) for args in reads]
    assert all(r.code == 0 for r in before), [r.err for r in before]

    second = backup_json(ws.root, capsys, repo)
    # Nothing changed: the second backup reads only the history's fresh copy, and
    # stores no more than its manifest's chunks.
    assert second["read_files"] <= 1
    assert second["added_bytes"] < first["added_bytes"] / 10

    target = tmp_path / "restored"
    restored = conveyor_in(
        tmp_path, capsys, "backup", "restore", second["id"][:8], "--repo", str(repo),
        "--to", str(target),
    )  # fmt: skip
    assert restored.code == 0, restored.err
    assert "restored snapshot" in restored.out
    after = [conveyor_in(target, capsys, *args) for args in reads]
    for args, old, new in zip(reads, before, after, strict=True):
        assert (new.code, new.out) == (old.code, old.out), args
    assert "signature" in after[-1].out

    # The restored workspace goes on: its next run is number 3.
    ran = conveyor_in(target, capsys, "run", "--plain")
    assert ran.code == 0, ran.err
    assert "shop@1.0.3" in conveyor_in(target, capsys, "artifacts", "list").out


def test_a_restore_never_overwrites_other_data_without_force(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    repo = tmp_path / "repo"
    backup_json(ws.root, capsys, repo)
    (ws.root / "conveyor.yml").write_text("name: changed since\njobs: {}\n")
    refused = conveyor_in(ws.root, capsys, "backup", "restore", "latest", "--repo", str(repo))
    assert refused.code == 2
    assert refused.err.startswith(f"error: restore would overwrite {ws.root / 'conveyor.yml'}")
    assert "--force" in refused.err
    assert "Traceback" not in refused.err
    assert (ws.root / "conveyor.yml").read_text() == "name: changed since\njobs: {}\n"
    forced = conveyor_in(
        ws.root, capsys, "backup", "restore", "latest", "--repo", str(repo), "--force"
    )
    assert forced.code == 0, forced.err
    assert "name: shop" in (ws.root / "conveyor.yml").read_text()


def test_prune_keeps_the_newest_of_the_day_and_what_it_needs(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    repo = tmp_path / "repo"
    backup_json(ws.root, capsys, repo)
    ws.project.run("run", "--plain")
    newest = backup_json(ws.root, capsys, repo)
    dry = conveyor_in(
        tmp_path, capsys, "backup", "prune", "--repo", str(repo), "--keep-daily", "1",
        "--dry-run", "--json",
    )  # fmt: skip
    assert json.loads(dry.out)["kept"] == [newest["id"]]
    assert len(snapshots(tmp_path, capsys, repo)) == 2
    prune = ("backup", "prune", "--repo", str(repo), "--keep-daily", "1")
    # A backup holding the repository (as `backup create` does while it runs): a prune
    # could delete a pack it counts on, so it is refused.
    with DirectoryBackend(str(repo)).lock(exclusive=False):
        busy = conveyor_in(tmp_path, capsys, *prune)
    assert busy.code == 2
    assert busy.err == f"error: {repo}: a backup or a prune is using the repository now\n" + (
        "  hint: try again when it has finished\n"
    )
    assert len(snapshots(tmp_path, capsys, repo)) == 2
    pruned = conveyor_in(tmp_path, capsys, *prune)
    assert pruned.code == 0, pruned.err
    assert "forgot 1" in pruned.out
    assert snapshots(tmp_path, capsys, repo) == [newest["id"]]
    assert conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo)).code == 0
    target = tmp_path / "restored"
    done = conveyor_in(
        tmp_path, capsys, "backup", "restore", "latest", "--repo", str(repo), "--to", str(target)
    )
    assert done.code == 0, done.err
    assert len(json.loads(conveyor_in(target, capsys, "history", "--json").out)) == 2


def test_an_artifact_store_outside_the_workspace_is_backed_up_and_restored_where_it_was(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    store = tmp_path / "team-store"
    project.pipeline(
        f"""
        name: shop
        artifacts:
          dir: {store}
        jobs:
          build:
            run: mkdir -p dist && echo wheel > dist/shop.whl
            artifacts:
              paths: [dist/]
              name: shop
              version: "1.0"
        """
    )
    project.commit()
    assert project.run("run", "--plain").code == 0
    listed = project.run("artifacts", "list").out
    assert "shop@1.0" in listed
    repo = tmp_path / "repo"
    backup_json(project.root, capsys, repo)
    shutil.rmtree(store)
    shutil.rmtree(project.root)
    done = conveyor_in(tmp_path, capsys, "backup", "restore", "latest", "--repo", str(repo))
    assert done.code == 0, done.err
    assert conveyor_in(project.root, capsys, "artifacts", "list").out == listed
    verified = conveyor_in(project.root, capsys, "artifacts", "verify", "shop@1.0")
    assert verified.code == 0, verified.out + verified.err
