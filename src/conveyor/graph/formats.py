"""The job graph as text: an ASCII tree, Graphviz dot, Mermaid, JSON."""

from __future__ import annotations

import json

from conveyor.graph import plan as graph
from conveyor.model import Pipeline


def reduced_needs(pipeline: Pipeline) -> dict[str, list[str]]:
    """Needs without the edges implied by others (a stage's job needs every job of the
    earlier stages; drawing all of them would bury the picture)."""
    needs = graph.adjacency(pipeline)
    order = graph.topological(list(needs), needs, {n: i for i, n in enumerate(needs)})
    bit = {n: 1 << i for i, n in enumerate(order)}
    ancestors: dict[str, int] = {}
    for n in order:
        acc = 0
        for t in needs[n]:
            acc |= bit[t] | ancestors[t]
        ancestors[n] = acc
    return {
        n: [t for t in targets if not any(ancestors[u] & bit[t] for u in targets if u != t)]
        for n, targets in needs.items()
    }


def _dependents(pipeline: Pipeline) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    needs = reduced_needs(pipeline)
    users: dict[str, list[str]] = {j.name: [] for j in pipeline.jobs}
    for name, targets in needs.items():
        for t in targets:
            users[t].append(name)
    return needs, users


def ascii_tree(pipeline: Pipeline) -> str:
    """Each job without needs is a root; under a job, the jobs that need it.
    A job reached a second time is shown once more as a reference, not expanded."""
    needs, users = _dependents(pipeline)
    lines: list[str] = []
    shown: set[str] = set()

    def walk(name: str, prefix: str, last: bool, top: bool) -> None:
        connector = "" if top else ("└── " if last else "├── ")
        again = name in shown
        extra = ""
        if len(needs[name]) > 1 and not top:
            extra = f"  (needs {', '.join(needs[name])})"
        lines.append(f"{prefix}{connector}{name}{' ↑' if again else ''}{'' if again else extra}")
        if again:
            return
        shown.add(name)
        child_prefix = prefix if top else prefix + ("    " if last else "│   ")
        kids = users[name]
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, False)

    for job in pipeline.jobs:
        if not needs[job.name]:
            walk(job.name, "", True, True)
    if any("↑" in line for line in lines):
        lines.append("")
        lines.append("↑ shown above; each job runs once")
    return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(pipeline: Pipeline) -> str:
    needs, _ = _dependents(pipeline)
    out = ["digraph conveyor {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    by_stage: dict[str, list[str]] = {}
    for job in pipeline.jobs:
        if job.stage:
            by_stage.setdefault(job.stage, []).append(job.name)
    for i, stage in enumerate(pipeline.stages):
        if stage in by_stage:
            out.append(f"  subgraph cluster_{i} {{ label={_q(stage)};")
            out.extend(f"    {_q(n)};" for n in by_stage[stage])
            out.append("  }")
    for job in pipeline.jobs:
        if not job.stage:
            out.append(f"  {_q(job.name)};")
    for name, targets in needs.items():
        out.extend(f"  {_q(t)} -> {_q(name)};" for t in targets)
    out.append("}")
    return "\n".join(out)


def mermaid(pipeline: Pipeline) -> str:
    needs, _ = _dependents(pipeline)
    ids = {j.name: f"j{i}" for i, j in enumerate(pipeline.jobs)}
    out = ["flowchart LR"]
    for job in pipeline.jobs:
        label = job.name.replace('"', "#quot;")
        out.append(f'  {ids[job.name]}["{label}"]')
    for name, targets in needs.items():
        out.extend(f"  {ids[t]} --> {ids[name]}" for t in targets)
    return "\n".join(out)


def json_graph(pipeline: Pipeline) -> str:
    needs, _ = _dependents(pipeline)
    data = {
        "nodes": [
            {
                "name": j.name,
                "job": j.base,
                "stage": j.stage,
                "matrix": dict(j.matrix),
                "if": j.condition,
            }
            for j in pipeline.jobs
        ],
        "edges": [{"from": t, "to": name} for name, targets in needs.items() for t in targets],
    }
    return json.dumps(data, indent=2)
