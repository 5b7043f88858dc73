"""The critical path: the chain of jobs through their needs whose own durations add up
to the most, which bounds how short a run can be however many jobs run at once.

This is the one definition: the run reports it as it ends (`RunFinished.critical_path`,
summary.json, history) and `conveyor critical-path` adds, for each job on it, how much
shorter the run could have been had that job taken no time. A job's own duration counts
(start to finish of its attempts); waiting for a free slot does not, so the path is the
same whatever the parallelism was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from conveyor.history.record import JobRow


class Step(NamedTuple):
    """One job on the critical path."""

    job: str
    duration: float
    """The job's own time, in seconds."""
    could_save: float
    """How much the path would shrink if this job took no time (another chain may then
    become the longest, so this can be less than `duration`)."""


class CriticalPath(NamedTuple):
    """The chain, first job first, and its length in seconds."""

    length: float
    steps: tuple[Step, ...]

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(step.job for step in self.steps)

    def to_json(self) -> dict[str, object]:
        """The JSON of `conveyor critical-path --json` (without the run's id)."""
        return {
            "length": self.length,
            "chain": [
                {"job": s.job, "duration": s.duration, "could_save": s.could_save}
                for s in self.steps
            ],
        }


def longest_chain(
    durations: Mapping[str, float], needs: Mapping[str, Sequence[str]]
) -> tuple[float, tuple[str, ...]]:
    """(length, chain): the path through `needs` with the largest sum of durations.

    Only jobs in `durations` take part (a skipped job has none). Of chains equally long
    (a run served from the cache takes no time) the one with more jobs wins, then the
    first in `durations` order, so a run of hits still shows the shape that bounds it.
    Iterative, so a chain thousands of jobs deep does not hit the recursion limit; a
    cycle (impossible in a validated pipeline) is cut where it closes."""
    best: dict[str, tuple[float, int, tuple[str, ...]]] = {}
    for start in durations:
        if start in best:
            continue
        # Depth-first, post-order: a job is settled once all its needs are.
        stack: list[tuple[str, bool]] = [(start, False)]
        on_path: set[str] = set()
        while stack:
            name, expanded = stack.pop()
            if name in best:
                continue
            if not expanded:
                on_path.add(name)
                stack.append((name, True))
                for dep in needs.get(name, ()):
                    if dep in durations and dep not in best and dep not in on_path:
                        stack.append((dep, False))
                continue
            on_path.discard(name)
            before: tuple[float, int, tuple[str, ...]] = (0.0, 0, ())
            for dep in needs.get(name, ()):
                if dep in best and best[dep][:2] > before[:2]:
                    before = best[dep]
            best[name] = (before[0] + durations[name], before[1] + 1, (*before[2], name))
    top: tuple[float, int, tuple[str, ...]] = (0.0, 0, ())
    for name in durations:
        if best[name][:2] > top[:2]:
            top = best[name]
    return top[0], top[2]


def critical_path(
    durations: Mapping[str, float], needs: Mapping[str, Sequence[str]], *, savings: bool = True
) -> CriticalPath:
    """The critical path of jobs with these `durations` and `needs`; with `savings`, what
    each job on it could save (one more pass over the graph per job on the path)."""
    length, chain = longest_chain(durations, needs)
    steps = []
    for name in chain:
        could_save = 0.0
        if savings:
            shorter, _ = longest_chain({**durations, name: 0.0}, needs)
            could_save = length - shorter
        steps.append(Step(job=name, duration=durations[name], could_save=could_save))
    return CriticalPath(length=length, steps=tuple(steps))


def recorded_durations(jobs: Iterable[JobRow]) -> dict[str, float]:
    """The durations of a recorded run's jobs (history rows) that took part: a skipped
    job, or one with no duration recorded, is not on any path."""
    return {
        j.name: float(j.duration) for j in jobs if j.duration is not None and j.status != "skipped"
    }
