"""`outputs.inside`: a restore never writes through a directory that a link sends out of
the workspace, and takes the short path (an lstat per directory) when none does."""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.cache.outputs import inside


def test_a_directory_linked_out_of_the_workspace_is_not_inside(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "packages/a/dist").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "packages/b").mkdir(parents=True)
    os.symlink(outside, root / "packages/b/dist")
    os.symlink(root / "packages/a", root / "packages/c")  # a link that stays inside

    assert inside(str(root), str(root / "packages/a/dist/out.txt"))
    assert inside(str(root), str(root / "packages/new/dir/out.txt")), "not made yet"
    assert not inside(str(root), str(root / "packages/b/dist/out.txt"))
    assert inside(str(root), str(root / "packages/c/dist/out.txt"))
    assert not inside(str(root), str(root / "packages/a/../../../outside/x.txt"))
    assert inside(str(root), f"{root}/packages/./a/out.txt")


def test_a_workspace_reached_through_a_link_is_still_itself(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "dist").mkdir(parents=True)
    os.symlink(real, tmp_path / "ws")
    root = str(tmp_path / "ws")

    assert inside(root, f"{root}/dist/out.txt")
    os.rename(real / "dist", real / "old")
    os.symlink(tmp_path, real / "dist")  # now a link up and out
    assert not inside(root, f"{root}/dist/out.txt")
