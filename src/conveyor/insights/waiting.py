"""What a job that waited was waiting for. Queue time is any time between ready and
finished that was no phase of the job's own: a free slot (more `-j` helps), but also a
resource group, or the scheduler busy serving hits (more `-j` does not). Told apart
from the recorded timelines: the share of a job's waits during which every slot of its
run was busy with a job's worker phases (restoring, running, storing).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, select

from conveyor.history.record import JobRow
from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore

_WORKER_PHASES = frozenset({"restore", "run", "store"})
"""Phases that hold a worker slot: a hit's restore does too (one whose outputs were in
place restores only its log, on the scheduler's thread: a blink, counted all the same)."""


def waits(job: JobRow) -> list[tuple[float, float]]:
    """When the job waited: from ready to its first phase, and between its phases."""
    if job.queued_at is None:
        return []
    out = []
    at = job.queued_at
    for _phase, began, ended in job.phases():
        if began > at:
            out.append((at, began))
        at = max(at, ended)
    return out


def slots_in_use(run_jobs: Iterable[JobRow]) -> tuple[list[float], list[int]]:
    """The run's busy slots as a step function: at times[i] and until times[i + 1],
    counts[i] slots were held."""
    edges: list[tuple[float, int]] = []
    for job in run_jobs:
        held = [(b, e) for phase, b, e in job.phases() if phase in _WORKER_PHASES]
        if held:
            edges += [(held[0][0], 1), (held[-1][1], -1)]
    edges.sort()
    times: list[float] = []
    counts: list[int] = []
    busy = 0
    for at, step in edges:
        busy += step
        if times and times[-1] == at:
            counts[-1] = busy
        else:
            times.append(at)
            counts.append(busy)
    return times, counts


def full_share(
    intervals: Sequence[tuple[float, float]], times: list[float], counts: list[int], slots: int
) -> tuple[float, float]:
    """(seconds every slot was busy, seconds in all) over the intervals."""
    full = total = 0.0
    for began, ended in intervals:
        total += ended - began
        i = max(0, bisect_right(times, began) - 1)
        while i < len(times) and times[i] < ended:
            seg_end = times[i + 1] if i + 1 < len(times) else ended
            lo, hi = max(began, times[i]), min(ended, seg_end)
            if hi > lo and counts[i] >= slots:
                full += hi - lo
            i += 1
    return full, total


def slot_bound(
    store: HistoryStore, pipeline: str, since: float, names: Sequence[str]
) -> dict[str, float]:
    """For each of the jobs `names`: the share of its waiting in the window's runs during
    which all the run's slots were busy (1: it waited for a slot; 0: slots were free and
    it waited for something else). Jobs without recorded phases are left out."""
    if not names:
        return {}
    joined = jobs.join(runs, jobs.c.run_id == runs.c.id)
    in_window = and_(
        runs.c.pipeline == pipeline, runs.c.started_at >= since, runs.c.status != "running"
    )
    waited = (
        select(jobs.c.run_id)
        .select_from(joined)
        .where(and_(in_window, jobs.c.name.in_(names), jobs.c.queue_time > 0))
    )
    query = (
        select(jobs, runs.c.parallelism)
        .select_from(joined)
        .where(and_(in_window, jobs.c.run_id.in_(waited)))
    )
    by_run: dict[str, tuple[int, list[JobRow]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            data = dict(row._mapping)
            slots = int(data.pop("parallelism") or 1)
            by_run.setdefault(data["run_id"], (slots, []))[1].append(JobRow.from_db(data))
    full: dict[str, float] = {}
    total: dict[str, float] = {}
    wanted = set(names)
    for slots, run_jobs in by_run.values():
        times, counts = slots_in_use(run_jobs)
        for job in run_jobs:
            if job.name not in wanted or (job.check_time is None and job.run_time is None):
                continue
            f, t = full_share(waits(job), times, counts, slots)
            full[job.name] = full.get(job.name, 0.0) + f
            total[job.name] = total.get(job.name, 0.0) + t
    return {name: full[name] / total[name] for name in total if total[name] > 0}
