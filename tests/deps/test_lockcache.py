"""Lockfiles read before come from the workspace's cache only while nothing their
parser looked at has changed: the lockfile, a sibling it read (go.sum, package.json),
the members a workspace glob matches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conveyor.deps.inventory import read_lockfiles
from tests.deps.lockdata import DATA


def entries(root: Path) -> list[Path]:
    return sorted((root / ".conveyor" / "cache" / "lockfiles").glob("*.pickle"))


def hashes(root: Path, path: str) -> dict[str, tuple[str, ...]]:
    (lock,) = read_lockfiles(str(root), [path]).lockfiles
    return {c.name: c.hashes for c in lock.components}


def test_a_changed_sibling_is_read_again(tmp_path: Path) -> None:
    shutil.copyfile(DATA / "prometheus-remote-storage.go.mod", tmp_path / "go.mod")
    go_sum = (DATA / "prometheus-remote-storage.go.sum").read_text()
    (tmp_path / "go.sum").write_text(go_sum)
    first = hashes(tmp_path, "go.mod")
    (entry,) = entries(tmp_path)
    written = entry.stat().st_ino
    assert hashes(tmp_path, "go.mod") == first
    assert entry.stat().st_ino == written  # read from the cache, not parsed and stored

    old = first["github.com/go-kit/log"][0]
    (tmp_path / "go.sum").write_text(go_sum.replace(old, "h1:" + "A" * 43 + "="))
    assert hashes(tmp_path, "go.mod")["github.com/go-kit/log"] == ("h1:" + "A" * 43 + "=",)
    (tmp_path / "go.sum").unlink()
    assert hashes(tmp_path, "go.mod")["github.com/go-kit/log"] == ()


def test_a_new_workspace_member_is_seen(tmp_path: Path) -> None:
    shutil.copytree(DATA / "yarn/v1", tmp_path, dirs_exist_ok=True)
    manifest = json.loads((tmp_path / "package.json").read_text())
    manifest["workspaces"] = ["packages/*"]
    (tmp_path / "package.json").write_text(json.dumps(manifest))

    def direct_is_number_6() -> bool | None:
        (lock,) = read_lockfiles(str(tmp_path), ["yarn.lock"]).lockfiles
        return next(c.direct for c in lock.components if c.ref == "pkg:npm/is-number@6.0.0")

    assert direct_is_number_6() is False
    assert direct_is_number_6() is False  # the cached read
    (tmp_path / "packages/legacy").mkdir()
    (tmp_path / "packages/legacy/package.json").write_text(
        json.dumps({"name": "legacy", "dependencies": {"is-number": "^6.0.0"}})
    )
    assert direct_is_number_6() is True


def test_a_changed_lockfile_and_a_broken_entry_are_parsed_again(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("click==8.1.8\n")
    assert hashes(tmp_path, "requirements.txt") == {"click": ()}
    (tmp_path / "requirements.txt").write_text("click==8.1.7\nsix==1.17.0\n")
    (lock,) = read_lockfiles(str(tmp_path), ["requirements.txt"]).lockfiles
    assert [(c.name, c.version) for c in lock.components] == [
        ("click", "8.1.7"),
        ("six", "1.17.0"),
    ]
    for entry in entries(tmp_path):
        entry.write_bytes(b"not a pickle")
    (lock,) = read_lockfiles(str(tmp_path), ["requirements.txt"]).lockfiles
    assert [c.version for c in lock.components] == ["8.1.7", "1.17.0"]


def test_an_unwritable_workspace_is_read_without_a_cache(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("click==8.1.8\n")
    (tmp_path / ".conveyor").write_text("a file where the state directory would be")
    assert hashes(tmp_path, "requirements.txt") == {"click": ()}
