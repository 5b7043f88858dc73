"""`--affected REF`: the jobs whose inputs changed since a git ref, and the jobs that need them."""

from __future__ import annotations

from conveyor.errors import EnvironmentProblem, UsageError
from conveyor.graph import plan as graph
from conveyor.model import Job, Pipeline
from conveyor.workspace import git
from conveyor.workspace.globs import anchor, paths_matcher, patterns_matcher


def changed_files(root: str, ref: str) -> set[str]:
    """Files that differ between `ref` and the working tree, untracked ones included."""
    try:
        known = git.is_commit(root, ref)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run git: {exc.strerror}") from None
    if not known:
        raise UsageError(
            f"unknown git ref '{ref}'", hint="give a branch, tag or commit, e.g. origin/main"
        )
    return {*git.changed_since(root, ref), *git.untracked(root)}


def touches(job: Job, changed: set[str]) -> bool:
    if not job.inputs:
        prefix = "" if job.dir == "." else job.dir.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in changed)
    chosen = patterns_matcher(job.dir, job.inputs)
    return any(chosen(p) for p in changed)


def own_writes(pipeline: Pipeline, changed: set[str]) -> set[str]:
    """Those changed files that are Conveyor's state or some job's declared output: what a
    run itself leaves behind is no change to build from."""
    output = paths_matcher(
        [".conveyor", *(anchor(j.dir, o) for j in pipeline.jobs for o in j.outputs)]
    )
    return {p for p in changed if output(p)}


def affected_jobs(pipeline: Pipeline, root: str, ref: str) -> list[str]:
    """Instance names: the jobs with a changed input, then every job that needs them.
    The runs' own outputs and Conveyor's state are not changes."""
    changed = changed_files(root, ref)
    changed -= own_writes(pipeline, changed)
    direct = {j.name for j in pipeline.jobs if touches(j, changed)}
    users: dict[str, list[str]] = {j.name: [] for j in pipeline.jobs}
    for name, needs in graph.adjacency(pipeline).items():
        for target in needs:
            users[target].append(name)
    out = set(direct)
    stack = list(direct)
    while stack:
        for user in users[stack.pop()]:
            if user not in out:
                out.add(user)
                stack.append(user)
    return [j.name for j in pipeline.jobs if j.name in out]
