"""Files written whole or not at all, and Conveyor's state directory.

`atomic_write` / `atomic_file` are the one way Conveyor replaces a file: the bytes go to
a temporary file beside the target (the same filesystem, so the rename is atomic) whose
(hidden) name is unique to the process and thread, so two runs writing the same file never share
a temporary; a failure (a full disk, an exception, a kill) leaves the old file as it
was and no temporary behind, except after SIGKILL, where only a hidden `.*.tmp` remains.

`.conveyor/` in the workspace holds Conveyor's state and ignores itself in git.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import IO

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


def log_tail(path: str, lines: int = 20) -> list[str] | None:
    """The last lines of a job's log, or None when it is gone (runs are pruned)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in fh.readlines()[-lines:]]
    except OSError:
        return None


@contextlib.contextmanager
def atomic_file(
    path: str, *, fsync: bool = False, perms: int | None = None, makedirs: bool = False
) -> Iterator[IO[bytes]]:
    """A binary file to write; on a clean exit it replaces `path` in one rename.

    `perms` sets the mode (default: 0666 less the umask, as `open` would); `fsync`
    flushes the data to disk before the rename (for records that must survive a power
    cut, not for caches that can be rebuilt); `makedirs` creates the directory."""
    directory = os.path.dirname(path) or "."
    if makedirs:
        os.makedirs(directory, exist_ok=True)
    # Hidden, short (a long name plus a suffix could pass NAME_MAX) and unique to this
    # process and thread.
    base = os.path.basename(path)[:64]
    tmp = os.path.join(directory, f".{base}.{os.getpid()}-{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if perms is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if perms is not None:
            os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(
    path: str,
    data: bytes | str,
    *,
    fsync: bool = False,
    perms: int | None = None,
    makedirs: bool = False,
) -> None:
    """Replace `path` with `data` (str is written as UTF-8) in one rename; see `atomic_file`."""
    with atomic_file(path, fsync=fsync, perms=perms, makedirs=makedirs) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
