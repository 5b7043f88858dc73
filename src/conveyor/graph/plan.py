"""The job graph: needs and stages to edges, cycles, selection, conditions, order.

Pure functions over `model` objects: nothing here runs a process or touches a file.
Edges are between job *instances* (a matrix job has several); needing a matrix job
means needing every instance of it. Stages work as in GitLab: a job in a later stage
needs every job of the earlier stages unless it lists `needs` itself.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.errors import ConfigError, CycleError, UsageError
from conveyor.model import Job, Pipeline, RunContext

if TYPE_CHECKING:
    from conveyor import expressions


@dataclass(frozen=True)
class Edge:
    source: str
    """The job that needs..."""
    target: str
    """...this one."""
    explicit: bool
    """From `needs:` (True) or implied by stage order (False)."""


_EDGES: dict[int, tuple[Pipeline, tuple[Edge, ...]]] = {}


def edges(pipeline: Pipeline) -> tuple[Edge, ...]:
    """Every instance-level dependency, in declaration order. Remembered for the last few
    pipelines (by identity: hashing a frozen pipeline would cost more than this), since a
    run asks several times."""
    known = _EDGES.get(id(pipeline))
    if known is not None and known[0] is pipeline:
        return known[1]
    out = tuple(_edges(pipeline))
    if len(_EDGES) >= 4:
        _EDGES.clear()
    _EDGES[id(pipeline)] = (pipeline, out)
    return out


def _edges(pipeline: Pipeline) -> list[Edge]:
    out: list[Edge] = []
    stage_index = {s: i for i, s in enumerate(pipeline.stages)}
    instances: dict[str, list[str]] = {}
    by_stage: list[list[str]] = [[] for _ in pipeline.stages]
    for job in pipeline.jobs:
        instances.setdefault(job.base, []).append(job.name)
        if job.stage is not None:
            by_stage[stage_index[job.stage]].append(job.name)
    for job in pipeline.jobs:
        if job.needs_explicit:
            for need in job.needs:
                # A job key means every instance; an instance name, that one.
                out.extend(Edge(job.name, dep, True) for dep in instances.get(need, (need,)))
        elif job.stage is not None:
            for earlier in by_stage[: stage_index[job.stage]]:
                out.extend(Edge(job.name, other, False) for other in earlier)
    return out


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in `graph` (node -> nodes it needs) as [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    for start in graph:
        if color[start] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        color[start] = GREY
        while stack:
            node, i = stack[-1]
            succ = graph.get(node, ())
            if i < len(succ):
                stack[-1] = (node, i + 1)
                nxt = succ[i]
                if color.get(nxt, BLACK) == GREY:
                    return [*path[path.index(nxt) :], nxt]
                if color.get(nxt) == WHITE:
                    color[nxt] = GREY
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = BLACK
                stack.pop()
                path.pop()
    return None


def adjacency(pipeline: Pipeline) -> dict[str, list[str]]:
    graph: dict[str, dict[str, None]] = {job.name: {} for job in pipeline.jobs}
    for edge in edges(pipeline):
        graph[edge.source][edge.target] = None
    return {name: list(targets) for name, targets in graph.items()}


def check(pipeline: Pipeline) -> None:
    """Raise CycleError (with the config path of the first edge) if `needs` form a cycle."""
    graph = adjacency(pipeline)
    cycle = find_cycle(graph)
    if cycle is None:
        return
    jobs = {j.name: j for j in pipeline.jobs}
    first, second = jobs[cycle[0]], jobs[cycle[1]]
    bases = [jobs[n].base for n in cycle]
    # Matrix instances of one job would repeat its name; show job keys when all differ.
    shown = bases if len(set(bases[:-1])) == len(bases) - 1 else cycle
    need = next((n for n in (second.base, second.name) if n in first.needs), None)
    if need is not None and first.needs_explicit:
        path: tuple[str | int, ...] = ("jobs", first.base, "needs", first.needs.index(need))
    else:
        path = ("jobs", first.base, "stage")
    raise CycleError(shown, path=path)


def check_outputs(pipeline: Pipeline) -> None:
    """Raise a ConfigError if two jobs that may run at the same time (neither needs the
    other, directly or not; two instances of one matrix job included) declare the same
    output or report file: each would write over the other's, and the cache would store
    whichever came last for both. Files are compared as written, within the workspace
    (`dir:` applied); a directory (`reports/`) or a glob may be shared."""
    import posixpath

    writers: dict[str, list[Job]] = {}
    for job in pipeline.jobs:
        for out in job.outputs:
            if out.endswith("/") or any(c in out for c in "*?["):
                # A directory or a glob: jobs may write their own files into one
                # (`reports/`), as each instance's junit-<shard>.xml.
                continue
            path = posixpath.normpath(posixpath.join(job.dir, out))
            writers.setdefault(path, []).append(job)
    shared = {path: jobs for path, jobs in writers.items() if len(jobs) > 1}
    if not shared:
        return
    graph = adjacency(pipeline)
    reach: dict[str, set[str]] = {}

    def needed_by(name: str) -> set[str]:
        """Every instance `name` waits for, directly or not."""
        if name not in reach:
            seen: set[str] = set()
            stack = list(graph[name])
            while stack:
                cur = stack.pop()
                if cur not in seen:
                    seen.add(cur)
                    stack.extend(graph[cur])
            reach[name] = seen
        return reach[name]

    for path, jobs in shared.items():
        for i, first in enumerate(jobs):
            for second in jobs[i + 1 :]:
                if second.name in needed_by(first.name) or first.name in needed_by(second.name):
                    continue
                raise ConfigError(
                    f"'{first.name}' and '{second.name}' both write {path!r} and may run at "
                    "the same time: one would overwrite the other's file",
                    path=_output_path(second, path),
                    hint="give each its own path (a matrix job: name a matrix value in it, "
                    "e.g. 'reports/junit-${{ matrix.os }}.xml'), or make one need the other",
                )


def _output_path(job: Job, path: str) -> tuple[str | int, ...]:
    """Where in the file `job` declares the output `path` (workspace-relative)."""
    import posixpath

    for kind in ("junit", "coverage", "sarif", "codequality"):
        for i, value in enumerate(getattr(job.reports, kind)):
            if posixpath.normpath(posixpath.join(job.dir, value)) == path:
                return ("jobs", job.base, "reports", kind, i)
    if job.artifacts is not None:
        for i, value in enumerate(job.artifacts.paths):
            if posixpath.normpath(posixpath.join(job.dir, value)) == path:
                return ("jobs", job.base, "artifacts", "paths", i)
    for i, value in enumerate(job.outputs):
        if posixpath.normpath(posixpath.join(job.dir, value)) == path:
            return ("jobs", job.base, "outputs", i)
    return ("jobs", job.base, "outputs")


@dataclass(frozen=True)
class PlannedJob:
    job: Job
    needs: tuple[str, ...]
    """Instance names this job waits for."""
    will_run: bool
    reason: str
    """Why it runs ('selected', 'needed by x') or why not ('if: ... is false')."""
    priority: int
    """Jobs on the longest remaining chain (itself included); higher starts first."""
    conditional: bool = False
    """Whether it runs depends on how the run goes (`if: failure()`, `when: always`...):
    decided when the job is ready to start."""
    left_out: tuple[str, ...] = ()
    """What it needs that this run leaves out (`run --only`): it starts without them,
    and uncached, since its key could not cover what they would have produced."""

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class Plan:
    pipeline: Pipeline
    jobs: tuple[PlannedJob, ...]
    """In the order they would start on one worker: dependencies first, longest chain first."""

    def get(self, name: str) -> PlannedJob:
        for pj in self.jobs:
            if pj.name == name:
                return pj
        raise KeyError(name)

    @property
    def runnable(self) -> tuple[PlannedJob, ...]:
        return tuple(pj for pj in self.jobs if pj.will_run)

    def runnable_names(self) -> list[str]:
        return [pj.name for pj in self.jobs if pj.will_run]

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {pj.name: [] for pj in self.jobs}
        for pj in self.jobs:
            for dep in pj.needs:
                out[dep].append(pj.name)
        return out


def select(pipeline: Pipeline, names: Iterable[str]) -> list[str]:
    """Instance names for job keys or instance names given on the command line."""
    chosen: list[str] = []
    for name in names:
        found = [j.name for j in pipeline.jobs if name in (j.name, j.base)]
        if not found:
            choices = sorted({j.base for j in pipeline.jobs})
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"unknown job '{name}'{hint}", hint="`conveyor list` shows every job")
        chosen.extend(n for n in found if n not in chosen)
    return chosen


def pick_matrix(pipeline: Pipeline, names: Sequence[str], picks: Mapping[str, str]) -> list[str]:
    """`--matrix NAME=VALUE` (as act's): the jobs named (every job when none is), of
    each matrix job only the instances with those values; a job without that matrix key
    is kept. What they need is added by the plan as always."""
    if not picks:
        return list(names)
    axes = {k for j in pipeline.jobs for k, _ in j.matrix}
    for key in picks:
        if key not in axes:
            known = ", ".join(sorted(axes)) or "none"
            raise UsageError(
                f"--matrix {key}=...: no job has a matrix key '{key}'",
                hint=f"matrix keys: {known}",
            )
    pool = select(pipeline, names) if names else [j.name for j in pipeline.jobs]
    by_name = {j.name: j for j in pipeline.jobs}
    chosen = [
        n for n in pool if all(dict(by_name[n].matrix).get(k, v) == v for k, v in picks.items())
    ]
    if not any(by_name[n].matrix for n in chosen):
        wanted = ", ".join(f"{k}={v}" for k, v in picks.items())
        raise UsageError(
            f"--matrix {wanted}: no matrix instance has these values",
            hint="`conveyor list` shows each instance's values",
        )
    return chosen


def select_manual(pipeline: Pipeline, names: Iterable[str]) -> list[str]:
    """Instance names for `--manual NAME`: each must name a manual job (`when: manual`)."""
    chosen = select(pipeline, names)
    jobs = {j.name: j for j in pipeline.jobs}
    for name in chosen:
        if jobs[name].when != "manual":
            manual = sorted({j.base for j in pipeline.jobs if j.when == "manual"})
            raise UsageError(
                f"--manual {jobs[name].base}: '{jobs[name].base}' is not a manual job "
                "(it runs without being asked)",
                hint=f"manual jobs: {', '.join(manual)}" if manual else "this pipeline has none",
            )
    return chosen


def condition_scope(job: Job, pipeline: Pipeline, context: RunContext) -> expressions.Scope:
    # Imported here: only pipelines with `if:` conditions need the expression language.
    from conveyor import expressions

    """What names mean in the job's `if:`; `env` holds what the job's process would get
    for the variables it declares (pass_env and secrets win over `env`, as in the job)."""
    caller = dict(context.env)
    env = {**caller, **dict(pipeline.env), **dict(job.env)}
    env.update({n: caller[n] for n in (*job.pass_env, *job.secrets) if n in caller})
    values = {
        "branch": context.branch,
        "tag": context.tag,
        "commit": context.commit,
        "event": context.event,
        "ci": context.ci,
    }
    return expressions.Scope(
        values=values,
        env=env,
        matrix=dict(job.matrix),
        contexts={"vars": dict(pipeline.vars), "run": context.values()},
    )


def condition_text(condition: str) -> str:
    """`if: ${{ expr }}` is `if: expr`, as on GitHub Actions."""
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}") and text.count("${{") == 1:
        return text[3:-2]
    return condition


def explain_condition(
    job: Job,
    scope: expressions.Scope,
    secrets: frozenset[str],
    status: Mapping[str, bool] | None = None,
) -> str:
    """'if: branch == 'main' is false (branch='dev')': the values the condition read,
    the status functions' first when it is decided as the job is ready (`status`); a
    secret's value shows as ***."""
    from conveyor import expressions

    assert job.condition is not None
    node = expressions.parse(condition_text(job.condition))
    facts: list[str] = []
    calls = expressions.status_calls(node) if status is not None else []
    for call in calls:
        fact = f"{call.func}()={'true' if (status or {}).get(call.func) else 'false'}"
        if fact not in facts:
            facts.append(fact)
    for name in expressions.names_used(node):
        label = f"{name.scope}.{name.name}" if name.scope else name.name
        value = expressions.evaluate(name, scope)
        if value is None:
            fact = f"{label} unset"
        elif name.scope == "env" and name.name in secrets:
            fact = f"{label}=***"
        else:
            fact = f"{label}={value!r}"
        if fact not in facts:
            facts.append(fact)
    detail = f" ({', '.join(facts)})" if facts else ""
    return f"if: {job.condition} is false{detail}"


def runs_on_status(job: Job) -> bool:
    """Whether the job says itself when it runs (`when: on_failure|always`, a status
    function in `if:`), instead of GitHub's and GitLab's default: when all went well."""
    if job.when in ("on_failure", "always"):
        return True
    if not job.late or job.condition is None:
        return False
    from conveyor import expressions

    return bool(expressions.status_calls(expressions.parse(job.condition)))


def matrix_from(job: Job) -> str:
    """'matrix from setup' for a job whose matrix the jobs it needs compute; '' if not."""
    if job.matrix_from is None:
        return ""
    return "matrix from " + ", ".join(dict.fromkeys(need for _, need, _ in job.matrix_from.refs))


def describe_late(job: Job) -> str:
    """What a job's run-time condition is, as the plan shows it."""
    said = [f"when: {job.when}"] if job.when in ("on_failure", "always") else []
    if job.condition is not None:
        said.append(f"if: {job.condition}")
    return ", ".join(said)


_SCENARIOS = (
    {"success": True, "failure": False, "cancelled": False},
    {"success": False, "failure": True, "cancelled": False},
    {"success": False, "failure": False, "cancelled": True},
    {"success": False, "failure": True, "cancelled": True},
)
"""Every way a run can be going for a job, for the status functions."""


def _never_runs(job: Job, pipeline: Pipeline, context: RunContext) -> bool:
    """A run-time condition false however the run goes (`always() && branch == 'main'`
    on another branch): known at plan time. Unknown when it reads `needs.X.result`."""
    if job.condition is None:
        return False
    from conveyor import expressions

    node = expressions.parse(condition_text(job.condition))
    if any(n.scope == "needs" for n in expressions.names_used(node)):
        return False  # needs.X.result or needs.X.values.Y: known only once they ran
    import dataclasses

    scope = condition_scope(job, pipeline, context)
    return not any(
        expressions.truthy(expressions.evaluate(node, dataclasses.replace(scope, status=status)))
        for status in _SCENARIOS
    )


def plan(
    pipeline: Pipeline,
    context: RunContext,
    selected: Sequence[str] = (),
    manual: Sequence[str] = (),
    only: bool = False,
) -> Plan:
    """Decide which instances run, in which order, and why. A manual job (`when:
    manual`) runs only when it is among `selected` or `manual` (instance names).
    `only`: the selected jobs without what they need (Turborepo's `--only`,
    gitlab-ci-local's job without `--needs`)."""
    check(pipeline)
    asked = {*selected, *manual}
    all_edges = edges(pipeline)
    jobs = {j.name: j for j in pipeline.jobs}
    order = {j.name: i for i, j in enumerate(pipeline.jobs)}

    # 1. Which jobs are wanted: the selection and everything it (transitively) needs.
    wanted: dict[str, str] = {}
    if selected and only:
        wanted = dict.fromkeys(selected, "selected (--only: what it needs is not run)")
    elif selected:
        needs_of: dict[str, list[str]] = {name: [] for name in jobs}
        for e in all_edges:
            needs_of[e.source].append(e.target)
        stack = list(selected)
        for name in selected:
            wanted[name] = "selected"
        while stack:
            cur = stack.pop()
            for dep in needs_of[cur]:
                if dep not in wanted:
                    wanted[dep] = f"needed by {cur}"
                    stack.append(dep)
    else:
        wanted = dict.fromkeys(jobs, "in pipeline")

    # 2. Conditions, in dependency order, so a skip can propagate along explicit needs.
    graph = adjacency(pipeline)
    topo = topological([n for n in jobs if n in wanted], graph, order)
    verdict: dict[str, tuple[bool, str]] = {}
    secrets = frozenset(s for j in pipeline.jobs for s in j.secrets)
    kept_edges: dict[str, list[str]] = {n: [] for n in wanted}
    left_out: dict[str, list[str]] = {n: [] for n in wanted}
    by_source: dict[str, list[Edge]] = {n: [] for n in jobs}
    for e in all_edges:
        by_source[e.source].append(e)
    conditional: set[str] = set()
    for name in topo:
        job = jobs[name]
        runs, reason = True, wanted[name]
        on_status = False
        if job.when == "manual" and name not in asked:
            runs, reason = (
                False,
                (
                    f"manual job: runs only when asked (`conveyor run {job.base}` or "
                    f"--manual {job.base})"
                ),
            )
        elif job.late:
            on_status = runs_on_status(job)
            if _never_runs(job, pipeline, context):
                scope = condition_scope(job, pipeline, context)
                runs, reason = False, explain_condition(job, scope, secrets)
            else:
                conditional.add(name)
                reason = f"{reason}; conditional: {describe_late(job)}"
        elif job.condition is not None:
            from conveyor import expressions

            node = expressions.parse(condition_text(job.condition))
            scope = condition_scope(job, pipeline, context)
            if job.reads_values and expressions.reads_needs(node):
                # It reads values of the jobs it needs: decided once they have run.
                reason = f"{reason}; if: decided when its needs have run"
            elif not expressions.truthy(expressions.evaluate(node, scope)):
                runs, reason = False, explain_condition(job, scope, secrets)
        for e in by_source[name]:
            if e.target not in wanted:
                if only:
                    left_out[name].append(e.target)
                continue
            target_runs = verdict[e.target][0]
            if e.explicit:
                kept_edges[name].append(e.target)
                # A job that runs on how the run goes (`if: always()`) may still run
                # after a need that does not: decided when it is ready.
                if runs and not target_runs and not on_status:
                    target = jobs[e.target]
                    if target.when == "manual" and e.target not in asked:
                        why = f"a manual job that was not asked for (--manual {target.base})"
                    else:
                        why = "which will not run"
                    runs, reason = False, f"needs '{e.target}', {why}"
                    conditional.discard(name)
            elif target_runs:
                kept_edges[name].append(e.target)
        if runs and job.matrix_from is not None:
            reason = f"{reason}; {matrix_from(job)} (its instances are made once it has run)"
        verdict[name] = (runs, reason)

    # 3. Priority: the longest chain of running jobs from here to the end of the graph.
    dependents: dict[str, list[str]] = {n: [] for n in wanted}
    for src, targets in kept_edges.items():
        for t in targets:
            dependents[t].append(src)
    priority: dict[str, int] = {}
    for name in reversed(topo):
        below = max((priority[d] for d in dependents[name] if verdict[d][0]), default=0)
        priority[name] = below + (1 if verdict[name][0] else 0)

    final_order = topological(list(topo), kept_edges, order, priority)
    return Plan(
        pipeline=pipeline,
        jobs=tuple(
            PlannedJob(
                job=jobs[n],
                needs=tuple(dict.fromkeys(kept_edges[n])),
                will_run=verdict[n][0],
                reason=verdict[n][1],
                priority=priority[n],
                conditional=n in conditional,
                left_out=tuple(left_out[n]),
            )
            for n in final_order
        ),
    )


def topological(
    names: list[str],
    needs: Mapping[str, Sequence[str]],
    order: Mapping[str, int],
    priority: Mapping[str, int] | None = None,
) -> list[str]:
    """Kahn's algorithm; among ready jobs, highest priority first, then declaration order."""
    present = set(names)
    waiting = {n: len({d for d in needs.get(n, ()) if d in present}) for n in names}
    users: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for d in dict.fromkeys(needs.get(n, ())):
            if d in present:
                users[d].append(n)
    prio = priority or {}
    heap = [(-prio.get(n, 0), order[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        _, _, n = heapq.heappop(heap)
        out.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, (-prio.get(u, 0), order[u], u))
    return out
