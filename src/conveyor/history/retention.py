"""How many run directories `.conveyor/runs/` keeps (`history.keep_runs`, default 200):
each run leaves its logs and event log there, and a busy workspace would otherwise grow
without end. The oldest go once the newest `keep_runs` are left, and only after the
history has them: the workspace's own database is filled from these directories, so a
run is recorded before its directory is removed. A run still going is never removed.

Checked at the end of every run (one listing of the directory), acted on only when the
count passes the limit by a tenth, so the cost of recording (SQLAlchemy's import) is paid
once per many runs, not by each.
"""

from __future__ import annotations

import os
import shutil


def over_limit(root: str, keep: int) -> list[str]:
    """The run directories beyond the newest `keep`, oldest first, when there are enough
    of them to act on; [] otherwise."""
    base = os.path.join(root, ".conveyor", "runs")
    try:
        names = sorted(n for n in os.listdir(base) if not n.startswith("."))
    except OSError:
        return []
    if len(names) <= keep + max(1, keep // 10):
        return []
    return [os.path.join(base, n) for n in names[: len(names) - keep]]


def prune(root: str, keep: int, url: str) -> int:
    """Remove the oldest run directories beyond `keep`, each once the database at `url`
    has it (recording it now when it does not); returns how many were removed."""
    from conveyor.history.location import NO_HISTORY
    from conveyor.history.rundirs import read_run
    from conveyor.history.store import HistoryStore

    doomed = over_limit(root, keep)
    if not doomed:
        return 0
    store = HistoryStore(url)
    removed = 0
    try:
        known = store.statuses_of([os.path.basename(d) for d in doomed])
        for run_dir in doomed:
            status = known.get(os.path.basename(run_dir))
            if not os.path.exists(os.path.join(run_dir, NO_HISTORY)) and status in (
                None,
                "running",
            ):
                record = read_run(run_dir)
                if record is None:
                    continue  # still going: kept
                store.record(record)
            shutil.rmtree(run_dir, ignore_errors=True)
            removed += 1
    finally:
        store.close()
    return removed
