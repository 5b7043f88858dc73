"""A second backup reads only what changed and lists only the folders that changed, and
still finds every change: a file edited in place, a file added to a folder that was
empty, a file renamed over another, a file removed, a file added to a folder whose mtime
was then set back by hand (its ctime gives it away), a mode changed alone. What it
restores is the workspace as it is now, empty folders included."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from conveyor.backup.backend import DirectoryBackend
from conveyor.backup.prune import prune as run_prune
from conveyor.backup.repository import Repository
from tests.backup.workspace import backup_json, conveyor_in

PAST = time.time() - 600


def _tree(root: Path) -> dict[str, tuple[str, bytes | int]]:
    """Every file's bytes and every folder's mode under `root`, by relative path; not
    `.conveyor/cache/` (rebuilt on demand: never backed up)."""
    found: dict[str, tuple[str, bytes | int]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".conveyor/cache"):
            continue
        if path.is_dir():
            found[rel] = ("dir", stat.S_IMODE(path.stat().st_mode))
        else:
            found[rel] = ("file", path.read_bytes())
    return found


def _age(root: Path) -> None:
    """Every file and folder under `root` made ten minutes old (the deepest first, so
    touching a folder's files does not make it new again): no mtime is racy."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        os.utime(path, (PAST, PAST))


def _restore(tmp_path: Path, capsys: pytest.CaptureFixture[str], repo: Path, snap: str) -> Path:
    """The snapshot restored into an empty directory: where."""
    target = tmp_path / "restored"
    done = conveyor_in(
        tmp_path, capsys, "backup", "restore", snap, "--repo", str(repo), "--to", str(target)
    )
    assert done.code == 0, done.err
    return target


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    state = ws / ".conveyor"
    for run in ("r1", "r2"):
        (state / "runs" / run / "logs").mkdir(parents=True)
        (state / "runs" / run / "run.json").write_text(f'{{"id": "{run}"}}\n')
        (state / "runs" / run / "summary.json").write_text('{"status": "success"}\n')
        (state / "runs" / run / "logs" / "build.log").write_text(f"built {run}\n" * 50)
    (state / "runs" / "empty").mkdir()
    (state / "runs" / "stays-empty").mkdir(mode=0o750)
    (state / "artifacts" / "blobs").mkdir(parents=True)
    (state / "artifacts" / "blobs" / "ab12").write_bytes(os.urandom(5000))
    (ws / "conveyor.yml").write_text("name: ws\njobs:\n  build:\n    run: echo hi\n")
    (state / ".gitignore").write_text("*\n")  # as Conveyor writes it on first use
    _age(ws)
    return ws


def test_a_second_backup_lists_only_changed_folders_and_finds_every_change(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "repo"
    runs = workspace / ".conveyor" / "runs"
    first = backup_json(workspace, capsys, repo)
    assert first["read_files"] == first["files"] == 9

    # Edited in place: same size, its folder untouched; an mtime of its own.
    (runs / "r1" / "run.json").write_text('{"id": "R1"}\n')
    os.utime(runs / "r1" / "run.json", (PAST + 1, PAST + 1))
    # Added to a folder that was empty.
    (runs / "empty" / "new.log").write_text("new\n")
    # Renamed over another file, and a file removed, in r2.
    (runs / "r2" / "summary.tmp").write_text('{"status": "failure"}\n')
    os.replace(runs / "r2" / "summary.tmp", runs / "r2" / "summary.json")
    (runs / "r2" / "run.json").unlink()
    # Added to r2/logs, whose mtime is then set back to what the first backup saw.
    logs = runs / "r2" / "logs"
    folder_mtime = logs.stat().st_mtime_ns
    (logs / "test.log").write_text("tested\n")
    os.utime(logs, ns=(folder_mtime, folder_mtime))
    # Only its mode changed.
    (runs / "r1" / "summary.json").chmod(0o600)
    for path in (runs / "empty", runs / "r2", runs / "r2" / "summary.json"):
        os.utime(path, (PAST + 2, PAST + 2))

    listed: list[str] = []
    scandir = os.scandir

    def spy(path: object) -> object:
        if isinstance(path, str) and path.startswith(str(runs)):
            listed.append(os.path.relpath(path, runs))
        return scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", spy)
    second = backup_json(workspace, capsys, repo)
    monkeypatch.undo()
    # The folders that changed are listed again, and only they: runs/ itself, r1 and
    # the empty folder left alone are stat'ed, not listed.
    assert sorted(listed) == ["empty", "r2", "r2/logs"]
    # Read again: the edited file, the new ones, the one renamed over; not the chmod'ed.
    assert second["read_files"] == 4
    assert second["files"] == 10

    target = _restore(tmp_path, capsys, repo, second["id"])
    assert _tree(target) == _tree(workspace)
    assert (target / ".conveyor/runs/r2/logs/test.log").read_text() == "tested\n"
    assert stat.S_IMODE((target / ".conveyor/runs/r1/summary.json").stat().st_mode) == 0o600
    assert (target / ".conveyor/runs/stays-empty").is_dir()
    assert (target / ".conveyor/runs/r1").stat().st_mtime == pytest.approx(PAST, abs=1e-3)


def test_a_file_whose_chunk_the_index_lost_is_read_again(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The previous backup's line vouches for a file only while its chunks are indexed:
    with one chunk gone from the index, the next backup stores that file again instead
    of naming a chunk no index has, and `verify` passes on it."""
    repo = tmp_path / "repo"
    first = backup_json(workspace, capsys, repo)
    opened = Repository.open(DirectoryBackend(str(repo)), {})
    blob = next(e for e in opened.manifest(opened.snapshots()[-1]) if e["path"].endswith("ab12"))
    opened.rewrite_index(set(opened.index) - set(blob["chunks"]))

    second = backup_json(workspace, capsys, repo)
    assert second["read_files"] == 1
    assert second["files"] == first["files"]
    checked = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo))
    assert checked.code == 0, checked.out + checked.err
    target = _restore(tmp_path, capsys, repo, second["id"])
    assert _tree(target) == _tree(workspace)


def test_an_artifact_store_that_is_a_link_is_followed_and_restored_as_a_folder(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`.conveyor/artifacts` linked to another disk is backed up through the link (as
    the pipeline file is); links inside the workspace's folders are not followed."""
    state = workspace / ".conveyor"
    elsewhere = tmp_path / "big-disk" / "artifacts"
    elsewhere.parent.mkdir()
    (state / "artifacts").rename(elsewhere)
    (state / "artifacts").symlink_to(elsewhere)
    (state / "runs" / "r1" / "escape").symlink_to(tmp_path / "big-disk")
    repo = tmp_path / "repo"
    first = backup_json(workspace, capsys, repo)
    assert first["files"] == 9
    target = _restore(tmp_path, capsys, repo, first["id"])
    restored = target / ".conveyor" / "artifacts"
    assert restored.is_dir()
    assert not restored.is_symlink()
    blob = ("blobs", "ab12")
    assert restored.joinpath(*blob).read_bytes() == elsewhere.joinpath(*blob).read_bytes()
    assert not (target / ".conveyor" / "runs" / "r1" / "escape").exists()


def _unused(repo: Path) -> tuple[int, int]:
    """(bytes of indexed chunks no snapshot uses, bytes of those it uses)."""
    opened = Repository.open(DirectoryBackend(str(repo)), {})
    used: set[str] = set()
    for snap in opened.snapshots():
        used.update(snap.tree)
        for entry in opened.manifest(snap):
            used.update(entry["chunks"])
    sizes = {c: loc.length for c, loc in opened.index.items()}
    return sum(n for c, n in sizes.items() if c not in used), sum(
        n for c, n in sizes.items() if c in used
    )


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_prune_repacks_packs_mostly_unused_and_a_killed_prune_loses_nothing(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "repo"
    blobs = workspace / ".conveyor" / "artifacts" / "blobs"
    for n in range(20):
        (blobs / f"b{n:02d}").write_bytes(os.urandom(50_000))
    first = backup_json(workspace, capsys, repo)
    for n in range(15):  # three quarters of the first pack's bytes replaced
        (blobs / f"b{n:02d}").write_bytes(os.urandom(50_000))
    newest = backup_json(workspace, capsys, repo)

    def prune(*extra: str) -> dict[str, object]:
        done = conveyor_in(
            tmp_path, capsys, "backup", "prune", "--repo", str(repo), "--keep-daily", "1",
            "--json", *extra,
        )  # fmt: skip
        assert done.code == 0, done.err
        return dict(json.loads(done.out))

    # Told to leave any unused share: the first snapshot is forgotten, its pack stays.
    lax = prune("--max-unused", "100")
    assert (lax["forgotten"], lax["packs_repacked"]) == ([first["id"]], 0)
    unused, used = _unused(repo)
    assert unused > 700_000
    before = _du(repo)

    # A prune that dies once the chunks are copied and indexed, as it deletes the old
    # indexes: two indexes name the chunks in two packs, and every snapshot is whole.
    real_delete = DirectoryBackend.delete

    def dying(self: DirectoryBackend, name: str) -> None:
        if name.startswith("index/"):
            raise OSError("killed")
        real_delete(self, name)

    monkeypatch.setattr(DirectoryBackend, "delete", dying)
    with pytest.raises(OSError, match="killed"):
        run_prune(Repository.open(DirectoryBackend(str(repo)), {}), daily=1, weekly=0,
                  dry_run=False)  # fmt: skip
    monkeypatch.undo()
    checked = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo))
    assert checked.code == 0, checked.out + checked.err

    assert len(list((repo / "index").iterdir())) > 1
    done = prune()
    unused, used = _unused(repo)
    assert unused <= 0.05 * used
    assert _du(repo) < before - 600_000
    assert int(str(done["bytes_freed"])) > 0
    checked = conveyor_in(tmp_path, capsys, "backup", "verify", "--repo", str(repo))
    assert checked.code == 0, checked.out + checked.err
    target = _restore(tmp_path, capsys, repo, newest["id"])
    assert _tree(target) == _tree(workspace)


def _grow(db: Path, rows: int) -> None:
    """`rows` more rows in a history-like table whose index has random keys (as the
    jobs' action digests are): each insert lands on a page anywhere in the index."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS jobs (digest TEXT, log BLOB)")
        conn.execute("CREATE INDEX IF NOT EXISTS ix_digest ON jobs (digest)")
        conn.executemany(
            "INSERT INTO jobs VALUES (?, ?)",
            [(os.urandom(16).hex(), os.urandom(150)) for _ in range(rows)],
        )
    conn.close()


def test_the_history_is_backed_up_by_the_pages_that_changed_and_restored_reading_each_pack_once(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1% more rows change pages all over a SQLite history: chunked by the page, a second
    backup stores those pages, not the database again. Restored after a dozen backups,
    each with its pages in a pack of its own, each pack is read once, not once per
    page that comes from it."""
    db = workspace / ".conveyor" / "history.db"
    _grow(db, 20_000)
    size = db.stat().st_size
    repo = tmp_path / "repo"
    backup_json(workspace, capsys, repo)
    _grow(db, 200)
    second = backup_json(workspace, capsys, repo)
    # Pages of 4 KiB: about 300 changed (1.2 MB); in chunks of 64 KiB nearly all.
    assert int(second["added_bytes"]) < 0.5 * size
    for _ in range(10):
        _grow(db, 200)
        last = backup_json(workspace, capsys, repo)

    # The history's chunks read as restore reads a file: each pack once, though its
    # pages alternate between a dozen packs (eight are kept).
    opened = Repository.open(DirectoryBackend(str(repo)), {})
    entry = next(e for e in opened.manifest(opened.snapshots()[-1]) if e["path"].endswith(".db"))
    packs = {opened.index[c].pack for c in entry["chunks"]}
    assert len(packs) > 10
    reads: list[str] = []
    for method in ("read", "read_range"):
        real = getattr(DirectoryBackend, method)

        def counted(self: DirectoryBackend, name: str, *args: int, _real=real) -> bytes:  # type: ignore[no-untyped-def]
            reads.append(name)
            return bytes(_real(self, name, *args))

        monkeypatch.setattr(DirectoryBackend, method, counted)
    data = b"".join(opened.chunks(list(entry["chunks"])))
    monkeypatch.undo()
    names = {f"packs/{p[:2]}/{p}" for p in packs}
    # Each at most once (the newest pack is kept from reading the manifest).
    assert len(reads) == len(set(reads)), sorted(reads)
    assert set(reads) <= names
    assert len(reads) >= len(names) - 1
    target = _restore(tmp_path, capsys, repo, last["id"])
    assert (target / ".conveyor" / "history.db").read_bytes() == data
    restored = target / ".conveyor" / "history.db"
    with sqlite3.connect(restored) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (22_200,)
    conn.close()
    with sqlite3.connect(db) as conn:
        want = conn.execute("SELECT digest, log FROM jobs ORDER BY rowid").fetchall()
    conn.close()
    with sqlite3.connect(restored) as conn:
        assert conn.execute("SELECT digest, log FROM jobs ORDER BY rowid").fetchall() == want
    conn.close()
