"""What keeps a repository trustworthy: verify names a damaged chunk and the files that
use it; a backup SIGKILLed at any moment leaves the earlier ones whole and lists no
partial one; an encrypted repository hides its contents and refuses a wrong password."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.backup.backend import DirectoryBackend
from conveyor.backup.repository import Repository, pack_name
from tests.backup.workspace import backup_json, conveyor_in, make_workspace, snapshots
from tests.conftest import Project


def test_verify_names_a_damaged_chunk_and_the_files_that_use_it(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    repo = tmp_path / "repo"
    made = backup_json(ws.root, capsys, repo)
    assert conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo)).code == 0
    opened = Repository.open(DirectoryBackend(str(repo)), {})
    [snap] = opened.snapshots()
    [entry] = [e for e in opened.manifest(snap) if e["path"] == "conveyor.yml"]
    [chunk] = entry["chunks"]
    loc = opened.index[chunk]
    pack = repo / pack_name(loc.pack)
    data = bytearray(pack.read_bytes())
    data[loc.offset + loc.length // 2] ^= 0x40  # one bit flipped on the disk
    pack.write_bytes(bytes(data))

    checked = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo))
    assert checked.code == 1
    assert f"damaged chunk {chunk}:" in checked.out
    assert f"used by snapshot {made['id'][:8]}: workspace:conveyor.yml" in checked.out
    assert "1 damaged chunks" in checked.out
    as_json = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo), "--json")
    [damage] = json.loads(as_json.out)["damaged"]
    assert damage["chunk"] == chunk
    assert damage["files"] == [[made["id"][:8], "workspace:conveyor.yml"]]
    # A restore that needs the chunk says which, and writes no half file.
    target = tmp_path / "restored"
    failed = conveyor_in(
        tmp_path, capsys, "backup", "restore", "latest", "--repo", str(repo), "--to", str(target)
    )
    assert failed.code == 2
    assert chunk in failed.err
    assert not (target / "conveyor.yml").exists()


def _spawn_backup(root: Path, repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", "backup", "create", "--repo", str(repo), "--json"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _unindexed_packs(repo: Path) -> list[Path]:
    opened = Repository.open(DirectoryBackend(str(repo)), {})
    indexed = {loc.pack for loc in opened.index.values()}
    return [p for p in (repo / "packs").rglob("*") if p.is_file() and p.name not in indexed]


def test_a_backup_killed_at_any_moment_leaves_earlier_ones_whole_and_none_partial(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    repo = tmp_path / "repo"
    complete = [backup_json(ws.root, capsys, repo)["id"]]
    big = ws.root / ".conveyor" / "runs" / "big.bin"
    rng = random.Random(19)
    # How long one backup of 24 MiB of new bytes takes here, start to exit: the kills
    # fall within it.
    big.write_bytes(rng.randbytes(24 << 20))
    began = time.monotonic()
    whole = _spawn_backup(ws.root, repo)
    out, err = whole.communicate(timeout=60)
    assert whole.returncode == 0, err
    span = time.monotonic() - began
    complete.append(json.loads(out)["id"])
    killed = attempts = 0
    traces: list[Path] = []
    while (killed < 2 or not traces) and attempts < 12:
        attempts += 1
        # New bytes each time, so every backup has packs to write when it is killed.
        big.write_bytes(rng.randbytes(24 << 20))
        proc = _spawn_backup(ws.root, repo)
        time.sleep(rng.uniform(0.3, 0.95) * span)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        listed = snapshots(tmp_path, capsys, repo)
        if proc.returncode == -signal.SIGKILL:
            # Killed after its snapshot was written (the commit point), it is complete;
            # killed before, it left nothing listed.
            if listed != complete:
                assert listed[:-1] == complete
                complete.append(listed[-1])
            else:
                killed += 1
        else:
            assert proc.returncode == 0, err
            complete.append(json.loads(out)["id"])
        assert listed == complete
        traces = _unindexed_packs(repo)
    assert killed >= 2, "no backup was killed part way: the test proved nothing"
    # Some kill fell while packs were being written: packs no index names, or a
    # temporary, are its traces (and no snapshot names them).
    assert traces, "every kill fell before the backup wrote anything"
    verified = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo))
    assert verified.code == 0, verified.out
    # And the repository goes on: the next backup completes and restores.
    last = backup_json(ws.root, capsys, repo)
    target = tmp_path / "restored"
    done = conveyor_in(
        tmp_path, capsys, "backup", "restore", last["id"], "--repo", str(repo), "--to", str(target)
    )
    assert done.code == 0, done.err
    assert (target / ".conveyor" / "runs" / "big.bin").read_bytes() == big.read_bytes()


def test_an_encrypted_repository_hides_its_contents_and_refuses_a_wrong_password(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws = make_workspace(project, capsys, monkeypatch, tmp_path, runs=1)
    repo = tmp_path / "repo"
    passphrase = "a long backup passphrase"  # pragma: allowlist secret
    monkeypatch.setenv("CONVEYOR_BACKUP_PASSWORD", passphrase)
    made = backup_json(ws.root, capsys, repo)
    pipeline = (ws.root / "conveyor.yml").read_bytes()
    for path in repo.rglob("*"):
        if path.is_file() and path.name != "config":
            stored = path.read_bytes()
            assert b"shop" not in stored, path
            assert b"testing" not in stored, path
    # Chunk ids are keyed: the plain SHA-256 of a file backed up whole is nowhere.
    plain_id = hashlib.sha256(pipeline).hexdigest()
    assert not any(plain_id in p.name for p in repo.rglob("*"))

    target = tmp_path / "restored"
    done = conveyor_in(
        tmp_path, capsys, "backup", "restore", made["id"], "--repo", str(repo), "--to", str(target)
    )
    assert done.code == 0, done.err
    assert (target / "conveyor.yml").read_bytes() == pipeline
    assert conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo)).code == 0

    other = "another passphrase"  # pragma: allowlist secret
    monkeypatch.setenv("CONVEYOR_BACKUP_PASSWORD", other)
    wrong = conveyor_in(tmp_path, capsys, "backup", "list", "--repo", str(repo))
    assert wrong.code == 2
    assert wrong.err == (
        f"error: {repo}: wrong password (CONVEYOR_BACKUP_PASSWORD) for this repository\n"
    )
    monkeypatch.delenv("CONVEYOR_BACKUP_PASSWORD")
    missing = conveyor_in(tmp_path, capsys, "backup", "list", "--repo", str(repo))
    assert missing.code == 2
    assert "the repository is encrypted" in missing.err
    assert "set CONVEYOR_BACKUP_PASSWORD" in missing.err
