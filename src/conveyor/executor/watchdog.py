"""The job watchdog: stops every job's process group when Conveyor dies without doing it.

Conveyor stops its jobs itself on a timeout, a cancel, Ctrl-C, SIGTERM or SIGHUP. Only
a death it cannot react to (SIGKILL, the OOM killer, a crash of the interpreter) would
leave them running, and each job being the leader of its own session, nothing else
would stop them. So the local executor starts this script once, with its first job, as a
separate process in its own session, and tells it through a pipe on its standard input
each job's process group as it starts (`+PGID GRACE`) and as it ends (`-PGID`). When the
pipe reaches end of file, every Conveyor that could write to it has exited, so any
group still listed is orphaned: it gets SIGTERM, and SIGKILL after its grace period if
anything of it is still there. A normal exit of Conveyor closes the pipe with no group
listed, and the watchdog exits at once.

Run as a script (`python -I -S watchdog.py`): the standard library only, and nothing
of Conveyor imported, so it starts in milliseconds. It ignores SIGINT, SIGHUP and
SIGTERM: those are meant for Conveyor, which stops the jobs itself, and the watchdog
stays to cover a SIGKILL that may follow them.
"""

from __future__ import annotations

import os
import signal
import time


def main() -> None:
    """Ignore the signals meant for Conveyor, read the pipe to its end, stop what is left."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    groups = listen(0)
    stop(groups)


def listen(fd: int) -> dict[int, float]:
    """Read `+PGID GRACE` and `-PGID` lines until end of file; the groups still listed,
    each with its grace period."""
    groups: dict[int, float] = {}
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            continue
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            try:
                if line.startswith(b"+"):
                    pgid, grace = line[1:].split()
                    groups[int(pgid)] = float(grace)
                elif line.startswith(b"-"):
                    groups.pop(int(line[1:]), None)
            except ValueError:
                continue
    return groups


def stop(groups: dict[int, float]) -> None:
    """SIGTERM to each group, then SIGKILL to what is left of it after its grace."""
    now = time.monotonic()
    deadlines = {
        pgid: now + grace for pgid, grace in groups.items() if _signal(pgid, signal.SIGTERM)
    }
    while deadlines:
        time.sleep(0.05)
        now = time.monotonic()
        for pgid, deadline in list(deadlines.items()):
            if not _signal(pgid, 0):
                del deadlines[pgid]
            elif now >= deadline:
                _signal(pgid, signal.SIGKILL)
                del deadlines[pgid]


def _signal(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


if __name__ == "__main__":
    main()
