"""`conveyor why` and `conveyor cache stats|prune|verify|clear`."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from conveyor.cli import load, pipeline_file_option

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conveyor.cache.local import LocalCache
    from conveyor.model import Remote


def _store() -> LocalCache:
    """The local cache, which `conveyor cache` maintains (whatever store runs use)."""
    from conveyor.cache.local import LocalCache, default_root

    return LocalCache(default_root())


@click.command("why")
@click.argument("jobs", nargs=-1, required=True)
@click.option(
    "--event",
    type=click.Choice(["push", "pull_request", "tag", "schedule", "manual"]),
    help="The event to key the jobs for (default: from the CI's variables, else push).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option(
    "--remote",
    "remote_url",
    metavar="URL",
    default=None,
    help="Also look in this REAPI remote cache (grpc://host:port, grpcs://host[:port]),"
    " instead of `remote.url` (also CONVEYOR_REMOTE). Only read: nothing is written to"
    " it or to the local cache.",
)
@click.option(
    "--no-remote", is_flag=True, help="Look in the local cache only, whatever `remote:` says."
)
@pipeline_file_option
@click.pass_context
def why_command(
    ctx: click.Context,
    jobs: tuple[str, ...],
    event: str | None,
    as_json: bool,
    remote_url: str | None,
    no_remote: bool,
) -> int:
    """Say whether the cache would serve JOBS (and what they need) now, and if not, why.

    With a remote cache (`remote:`, --remote), a job it holds is a hit "from the remote
    cache", and a miss is also compared with the latest result of the job there (CI's,
    say). A remote that cannot be reached is a warning: the verdicts are then the local
    cache's."""
    from conveyor.cache.jobs import JobCache
    from conveyor.cache.local import default_root
    from conveyor.cache.stores import open_store
    from conveyor.cache.why import why
    from conveyor.graph import context as run_context
    from conveyor.graph import plan as graph
    from conveyor.workspace.files import WorkspaceFiles, workspace_state_file

    pipeline = load(ctx)
    environ = dict(os.environ)
    remote = dry_remote(pipeline.remote, environ, remote_url, off=no_remote)
    context = run_context.detect(pipeline.root, environ, event)
    from conveyor.cli.run import for_this_run

    pipeline, context = for_this_run(ctx, pipeline, context, environ, take=False)
    selected = graph.select(pipeline, jobs)
    files = WorkspaceFiles(pipeline.root, workspace_state_file(pipeline.root))
    from conveyor.executor.local import LocalExecutor
    from conveyor.graph.context import run_facts

    root = default_root(environ)
    warnings: list[str] = []
    jobcache = JobCache(
        open_store(root, remote, environ, warnings.append),
        files,
        pipeline,
        environ,
        run_id="why",
        facts=run_facts(context),
        probe=LocalExecutor().probe,
        local_dir=root,
    )
    verdicts = why(pipeline, context, environ, jobcache, selected)
    jobcache.save()
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in verdicts], indent=2, default=list))
        return 0
    for v in verdicts:
        if v.hit is None:
            click.echo(f"wait  {v.job}  (keyed once what it needs has run)")
        else:
            mark = "hit " if v.hit else "miss"
            click.echo(f"{mark}  {v.job}  (action {v.action[:12]})")
        for reason in v.reasons:
            click.echo(f"      {reason}")
    return 0


def dry_remote(
    configured: Remote | None, environ: Mapping[str, str], url: str | None, *, off: bool
) -> Remote | None:
    """The remote cache a run would use (`remote:`, --remote, CONVEYOR_REMOTE, --no-remote),
    for a look that only reads it (`why`, `run -n`): with `upload` off, so that the store
    refuses any write to the team's cache even if one were attempted."""
    if url is None and not off and configured is None and "CONVEYOR_REMOTE" not in environ:
        return None
    from conveyor.config.remote import resolve

    remote = resolve(configured, environ, url=url, off=off)
    return None if remote is None else remote._replace(upload=False)


@click.group("cache")
def cache_command() -> None:
    """Inspect and maintain the local cache ($CONVEYOR_CACHE_DIR, default ~/.cache/conveyor)."""


@cache_command.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(as_json: bool) -> int:
    """Entries and sizes."""
    from conveyor.units import format_bytes

    store = _store()
    st = store.stats()
    data = {
        "root": store.root,
        "blobs": st.blobs,
        "blob_bytes": st.blob_bytes,
        "actions": st.actions,
        "action_bytes": st.action_bytes,
        "total_bytes": st.total_bytes,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"cache: {store.root}")
        click.echo(
            f"  {st.actions} job results, {st.blobs} blobs, {format_bytes(st.total_bytes)} in all"
        )
    return 0


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from conveyor.units import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cache_command.command("prune")
@click.option("--max-size", callback=_size, required=True, help="Size to shrink to, e.g. 5GB.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def prune(max_size: int, as_json: bool) -> int:
    """Remove least recently used entries until the cache fits (entries used in the last
    10 minutes are kept: a running build may be restoring them)."""
    from conveyor.units import format_bytes

    report = _store().prune(max_size)
    if as_json:
        click.echo(json.dumps(report._asdict()))
    else:
        click.echo(
            f"removed {report.removed} entries ({format_bytes(report.freed_bytes)}); "
            f"{format_bytes(report.kept_bytes)} kept"
        )
    return 0


@cache_command.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print what was checked as JSON.")
def verify(as_json: bool) -> int:
    """Hash every entry; evict (and list) the corrupt ones. Exit 1 if any was corrupt."""
    report = _store().verify()
    if as_json:
        click.echo(json.dumps({"checked": report.checked, "corrupt": list(report.corrupt)}))
    else:
        click.echo(f"checked {report.checked} entries: {len(report.corrupt)} corrupt (evicted)")
        for path in report.corrupt:
            click.echo(f"  {path}")
    return 1 if report.corrupt else 0


@cache_command.command("clear")
@click.option("--json", "as_json", is_flag=True, help="Print what was freed as JSON.")
def clear(as_json: bool) -> int:
    """Remove everything from the cache."""
    store = _store()
    before = store.stats().total_bytes
    store.clear()
    if as_json:
        click.echo(json.dumps({"freed_bytes": before}))
    else:
        click.echo(f"cleared {store.root}")
    return 0
