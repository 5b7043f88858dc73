"""`.conveyor/` in the workspace: Conveyor's state, which ignores itself in git."""

from __future__ import annotations

import os

STATE_DIR = ".conveyor"


def ensure_state_dir(root: str, *parts: str) -> str:
    """Create `<root>/.conveyor/<parts...>` (and the `.gitignore` that keeps all of
    `.conveyor/` out of git) and return its path."""
    state = os.path.join(root, STATE_DIR)
    path = os.path.join(state, *parts)
    os.makedirs(path, exist_ok=True)
    marker = os.path.join(state, ".gitignore")
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write("# created by conveyor: its state is never committed\n*\n")
    return path
