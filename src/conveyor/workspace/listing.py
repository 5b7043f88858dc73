"""Which files make up the workspace: what git tracks, plus what is untracked but not
ignored (a walk of the directory when it is not a git checkout), and the checkout's top
directory. The checks before a run (secrets, manifests, lockfiles) and the dependency
inventory list the workspace the same way, through here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.workspace.files import GitScan

# Not walked when the workspace is not a git checkout: git's own directory, Conveyor's
# state and installed JavaScript packages (no one commits those; a walk would read them
# all).
_NOT_WALKED = frozenset({".git", ".conveyor", "node_modules"})


def tracked_files(root: str) -> list[str]:
    """The workspace's files as git knows them (tracked, and untracked but not ignored),
    workspace-relative with '/'; everything under the root when it is not a git
    repository."""
    return sorted(workspace_files(root))


def workspace_files(root: str, scan: GitScan | None = None) -> dict[str, str | None]:
    """Each file of the workspace (as tracked_files) -> its git blob id when git says it
    is unchanged since it was staged (its content named without reading it), else None.
    `scan`: the run's own git scan, when it has one (its git commands are not repeated)."""
    from conveyor.workspace.files import GitScan

    own = scan is None
    git = GitScan(root) if scan is None else scan
    try:
        state = git.result()
        untracked = git.untracked() if state is not None else []
    finally:
        if own:
            git.close()
    if state is None:  # not a git checkout
        out: dict[str, str | None] = {}
        for base, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in _NOT_WALKED]
            rel = os.path.relpath(base, root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            out.update((prefix + name, None) for name in names)
        return out
    tracked, changed = state
    files: dict[str, str | None] = {}
    for path, (blob, _executable) in tracked.items():
        if path not in changed:
            files[path] = blob
        elif os.path.isfile(os.path.join(root, path)):  # modified (a deleted one is gone)
            files[path] = None
    for path in untracked:
        if os.path.isfile(os.path.join(root, path)):
            files[path] = None
    return files


def repository_root(path: str) -> str:
    """The top directory of the git checkout holding `path`, else `path` itself."""
    from conveyor.workspace.git import GitError, toplevel

    try:
        return toplevel(path) or path
    except (GitError, OSError):
        return path
