"""What set a run's wall time: the longest chain of jobs through their needs, and how
much shorter the run could have been had each job on it taken no time at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def longest_chain(
    durations: Mapping[str, float], needs: Mapping[str, Sequence[str]]
) -> tuple[float, list[str]]:
    """(length, chain): the path through `needs` with the largest sum of durations
    (each job's own work; waiting for a free slot is not counted)."""
    best: dict[str, tuple[float, list[str]]] = {}

    def visit(name: str, stack: frozenset[str]) -> tuple[float, list[str]]:
        if name in best:
            return best[name]
        before: tuple[float, list[str]] = (0.0, [])
        for dep in needs.get(name, ()):
            if dep in durations and dep not in stack:
                candidate = visit(dep, stack | {name})
                if candidate[0] > before[0]:
                    before = candidate
        best[name] = (before[0] + durations[name], [*before[1], name])
        return best[name]

    length, chain = 0.0, []
    for name in durations:
        total, path = visit(name, frozenset())
        if total > length:
            length, chain = total, path
    return length, chain


def critical_path(
    jobs: Sequence[Mapping[str, Any]], needs: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The chain and, for each job on it, how much the chain would shrink if that job
    took no time (the rest of the graph may then become the longest chain)."""
    durations = {
        j["name"]: float(j["duration"] or 0.0)
        for j in jobs
        if j.get("duration") is not None and j.get("status") != "skipped"
    }
    length, chain = longest_chain(durations, needs)
    steps = []
    for name in chain:
        without = dict(durations, **{name: 0.0})
        shorter, _ = longest_chain(without, needs)
        steps.append({"job": name, "duration": durations[name], "could_save": length - shorter})
    return {"length": length, "chain": steps}
