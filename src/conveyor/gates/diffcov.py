"""Lines changed since a git ref, for coverage of changed lines only (diff coverage, as
diff-cover measures it): what the branch adds or modifies, committed or not, compared
with where it left the base branch (the merge base), so unrelated commits on the base
are not counted."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from conveyor.workspace import git

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class DiffError(Exception):
    """The base cannot be compared with (not a git repository, unknown ref)."""


def default_base(environ: Mapping[str, str]) -> str:
    """The branch a change will merge into, as the CI says it, else origin/main."""
    if environ.get("GITHUB_BASE_REF"):
        return f"origin/{environ['GITHUB_BASE_REF']}"
    if environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA"):
        return environ["CI_MERGE_REQUEST_DIFF_BASE_SHA"]
    if environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"):
        return f"origin/{environ['CI_MERGE_REQUEST_TARGET_BRANCH_NAME']}"
    return "origin/main"


class ChangedLines:
    """changed_lines, asked once per base for a whole run (jobs ask from several
    threads)."""

    def __init__(self, root: str, environ: Mapping[str, str]) -> None:
        import threading

        self.root = root
        self.environ = environ
        self._lock = threading.Lock()
        self._known: dict[str | None, dict[str, set[int]]] = {}

    def __call__(self, base: str | None) -> dict[str, set[int]]:
        with self._lock:
            if base not in self._known:
                self._known[base] = changed_lines(self.root, base or default_base(self.environ))
            return self._known[base]


def changed_lines(root: str, base: str) -> dict[str, set[int]]:
    """Workspace-relative path -> line numbers (in the working tree) added or changed
    since the merge base of `base` and HEAD."""
    try:
        top = git.toplevel(root)
        merge_base = git.merge_base(root, base, "HEAD")
    except git.GitError as exc:
        raise DiffError(f"cannot compare with '{base}': {exc}") from None
    try:
        diff = git.diff_patch(root, merge_base)
    except git.GitError as exc:
        raise DiffError(str(exc)) from None
    prefix = os.path.relpath(root, top)
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            if target == "/dev/null":
                current = None
                continue
            path = target[2:] if target.startswith("b/") else target
            if prefix != ".":
                path = os.path.relpath(path, prefix)
            current = changed.setdefault(path, set())
        elif current is not None:
            hunk = _HUNK.match(line)
            if hunk:
                start, count = int(hunk.group(1)), int(hunk.group(2) or "1")
                current.update(range(start, start + count))
    return {path: lines for path, lines in changed.items() if lines}
