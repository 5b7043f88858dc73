"""On a real terminal (a pseudo-terminal here) the live view runs and ends in a table."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

from tests.conftest import Project


def test_live_view_on_a_terminal(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: echo building; sleep 0.5
          test:
            needs: [build]
            run: echo testing
        """
    )
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", "--jobs", "2"],
        cwd=project.root,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=30) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in screen, "a terminal gets the rich (coloured) view"
    assert "building" in screen
    assert "testing" in screen
    # The closing table has a row per job and the verdict.
    assert "✔ build" in screen
    assert "✔ test" in screen
    assert "Run succeeded" in screen
