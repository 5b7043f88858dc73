"""What a run is decided to be before it starts: which jobs it runs (named ones, those
affected by changes since a git ref), where it records itself, and which files the
workspace scan reads. Whatever starts a run (`conveyor run`, the dashboard) asks here,
so the same words give the same run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.model import Pipeline, RunContext

if TYPE_CHECKING:
    from conveyor.workspace.files import GitScan


@dataclass(frozen=True)
class Selection:
    """The jobs a run is asked to run."""

    jobs: tuple[str, ...]
    """These and what they need; empty for every job."""
    nothing_affected: bool = False
    """Asked for the jobs affected since a ref, and no job is: there is nothing to run."""


def select_jobs(
    pipeline: Pipeline,
    context: RunContext,
    names: Sequence[str] = (),
    *,
    affected_since: str | None = None,
) -> Selection:
    """The jobs named (ConfigError for a name no job has), narrowed, with
    `affected_since`, to those whose inputs changed since that git ref and the jobs that
    need them."""
    from conveyor.graph import plan as graph

    selected = graph.select(pipeline, names) if names else []
    if affected_since is None:
        return Selection(jobs=tuple(selected))
    from conveyor.graph.affected import affected_jobs

    touched = affected_jobs(pipeline, pipeline.root, affected_since)
    if selected:
        wanted = set(graph.plan(pipeline, context, selected).runnable_names())
        touched = [name for name in touched if name in wanted]
    return Selection(jobs=tuple(touched), nothing_affected=not touched)


def shared_history(pipeline: Pipeline, environ: Mapping[str, str]) -> str | None:
    """The database a run records itself in as it ends, when one is named
    ($CONVEYOR_DB_URL or `history.url`: a history shared by CI runners); None for the
    workspace's own, which the next history command fills from the run directory."""
    from conveyor.history.location import database_url, explicit_url

    if not explicit_url(pipeline.history_url, environ):
        return None
    return database_url(pipeline.root, pipeline.history_url, environ)


def start_scan(pipeline: Pipeline) -> GitScan:
    """The workspace's git scan, started now so that git reads the workspace while the
    rest of the run starts up; the caller closes it."""
    from conveyor.workspace.files import GitScan, workspace_index_cache

    # Untracked files can only be inputs through `inputs:` globs (or `caches:` keys).
    return GitScan(
        pipeline.root,
        untracked=any(job.inputs or job.caches for job in pipeline.jobs),
        index_cache=workspace_index_cache(pipeline.root),
    )
