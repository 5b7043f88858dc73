"""`conveyor backup create | list | verify | restore | prune`."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli import pipeline_file_option

if TYPE_CHECKING:
    from conveyor.backup.repository import Repository, Snapshot

_REPO_HELP = (
    "The backup repository: a directory or s3://bucket/prefix (default: $CONVEYOR_BACKUP_REPO)."
    " Encrypted when $CONVEYOR_BACKUP_PASSWORD is set as it is made."
)
repo_option = click.option(
    "--repo", default=None, metavar="DIR|s3://BUCKET/PREFIX", help=_REPO_HELP
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _open(repo: str | None, *, create: bool = False, compression: str = "zstd") -> Repository:
    from conveyor.backup.backend import open_backend
    from conveyor.backup.repository import Repository

    return Repository.open(
        open_backend(repo, os.environ), os.environ, create=create, compression=compression
    )


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _size(n: int) -> str:
    from conveyor.units import format_size

    return format_size(n)


@click.group("backup")
def backup_command() -> None:
    """Back up everything Conveyor keeps for this workspace, and restore it.

    A backup holds the pipeline file, the history (SQLite through its online backup API,
    PostgreSQL through pg_dump), the run directories, the artifact store and its index,
    and the cache's action-cache index (its blobs with --include-cache-blobs), in
    content-addressed chunks: a second backup stores only what changed."""


@backup_command.command("create")
@repo_option
@click.option(
    "--include-cache-blobs", is_flag=True, help="Also back up the local cache's blobs (cas/)."
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Leave the local cache out altogether (its action-cache index is backed up by default).",
)
@click.option(
    "--compression",
    type=click.Choice(["zstd", "zlib", "none"]),
    default="zstd",
    show_default=True,
    help="How chunks are compressed (a chunk that does not shrink is stored as it is).",
)
@json_option
@pipeline_file_option
@click.pass_context
def create_command(
    ctx: click.Context,
    repo: str | None,
    include_cache_blobs: bool,
    no_cache: bool,
    compression: str,
    as_json: bool,
) -> int:
    """Back up the workspace into the repository (made on first use)."""
    from conveyor.backup.create import create
    from conveyor.backup.sources import Plan
    from conveyor.cache.local import default_root
    from conveyor.config import find_pipeline_file
    from conveyor.history.location import database_url

    named: str | None = ctx.find_root().obj.get("pipeline_file") if ctx.find_root().obj else None
    path = os.path.abspath(named or find_pipeline_file())
    if not os.path.isfile(path):
        from conveyor.errors import UsageError

        raise UsageError(f"{path}: no pipeline file here", hint="run in the workspace, or -f FILE")
    root = os.path.dirname(path)
    history_url, artifacts_dir = _configured(path)
    plan = Plan(
        workspace=root,
        pipeline_file=path,
        history_url=database_url(root, history_url, os.environ),
        artifacts_dir=artifacts_dir,
        cache_dir=None if no_cache else default_root(),
        cache_blobs=include_cache_blobs,
    )
    repository = _open(repo, create=True, compression=compression)
    with repository.backend.lock(exclusive=False):
        made = create(repository, plan, os.environ)
    if as_json:
        click.echo(json.dumps({"id": made.snapshot.id, **dict(made.snapshot.summary)}, indent=2))
        return 0
    click.echo(
        f"snapshot {made.snapshot.short_id} saved to {repository.backend.where}: "
        f"{made.files} files, {_size(made.bytes)}; read {made.read_files} files "
        f"({_size(made.read_bytes)}), added {made.added_chunks} chunks "
        f"({_size(made.added_bytes)} stored) in {made.seconds:.2f}s"
    )
    return 0


def _configured(path: str) -> tuple[str | None, str | None]:
    """The pipeline's `history.url` and `artifacts.dir`; a pipeline that does not load
    is still backed up, with the default places (said as a warning)."""
    from conveyor.config import load_pipeline
    from conveyor.errors import ConfigError

    try:
        pipeline = load_pipeline(path)
    except ConfigError as exc:
        click.echo(f"conveyor: warning: {exc.render()}; backing up the default places", err=True)
        return None, None
    artifacts = pipeline.artifacts.dir
    if artifacts and artifacts.startswith("s3://"):
        click.echo(
            f"conveyor: warning: the artifact store {artifacts} is a bucket: not backed up",
            err=True,
        )
        artifacts = None
    return pipeline.history_url, artifacts


def _row(snap: Snapshot) -> dict[str, Any]:
    return {
        "id": snap.id,
        "time": snap.time,
        "host": snap.host,
        "workspace": snap.workspace,
        "history": dict(snap.history),
        **dict(snap.summary),
    }


@backup_command.command("list")
@repo_option
@json_option
def list_command(repo: str | None, as_json: bool) -> int:
    """List the complete snapshots, oldest first."""
    snaps = _open(repo).snapshots()
    if as_json:
        click.echo(json.dumps([_row(s) for s in snaps], indent=2))
        return 0
    if not snaps:
        click.echo("no snapshots")
        return 0
    click.echo(f"{'ID':<10}{'TIME':<21}{'HOST':<16}{'FILES':>8}{'SIZE':>11}  WORKSPACE")
    for s in snaps:
        click.echo(
            f"{s.short_id:<10}{_when(s.time):<21}{s.host[:15]:<16}"
            f"{s.summary.get('files', 0):>8}{_size(int(s.summary.get('bytes', 0))):>11}  "
            f"{s.workspace}"
        )
    return 0


@backup_command.command("verify")
@repo_option
@json_option
def verify_command(repo: str | None, as_json: bool) -> int:
    """Read every chunk back and check it against its id; name any damaged chunk and the
    files that use it (exit 1)."""
    from conveyor.backup.verify import verify

    report = verify(_open(repo))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "snapshots": report.snapshots,
                    "packs": report.packs,
                    "chunks": report.chunks,
                    "bytes": report.bytes,
                    "damaged": [
                        {"chunk": d.chunk, "why": d.why, "files": [list(f) for f in d.files]}
                        for d in report.damage
                    ],
                },
                indent=2,
            )
        )
    else:
        for d in report.damage:
            click.echo(f"damaged chunk {d.chunk}: {d.why}")
            for snap, path in d.files:
                click.echo(f"  used by snapshot {snap}: {path}")
        verdict = "ok" if report.ok else f"{len(report.damage)} damaged chunks"
        click.echo(
            f"checked {report.chunks} chunks in {report.packs} packs ({_size(report.bytes)}), "
            f"{report.snapshots} snapshots: {verdict}"
        )
    return 0 if report.ok else 1


@backup_command.command("restore")
@click.argument("snapshot_id", metavar="ID")
@repo_option
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False),
    default=None,
    help="The directory to restore the workspace into (default: where it was backed up from).",
)
@click.option(
    "--force", is_flag=True, help="Overwrite files (and a database) that hold other data."
)
@click.option(
    "--cache-dir",
    default=None,
    help="The cache to merge the backed-up cache entries into "
    "(default: $CONVEYOR_CACHE_DIR or ~/.cache/conveyor).",
)
@click.option("--no-cache", is_flag=True, help="Do not restore the cache's entries.")
@click.option(
    "--db-url",
    default=None,
    help="The PostgreSQL database to restore a PostgreSQL history into "
    "(default: $CONVEYOR_DB_URL).",
)
@json_option
def restore_command(
    snapshot_id: str,
    repo: str | None,
    to: str | None,
    force: bool,
    cache_dir: str | None,
    no_cache: bool,
    db_url: str | None,
    as_json: bool,
) -> int:
    """Restore snapshot ID (an id, its first characters, or `latest`). Refuses to
    overwrite anything that holds other data unless --force (exit 2)."""
    from conveyor.backup.restore import restore
    from conveyor.cache.local import default_root

    repository = _open(repo)
    snap = repository.find(snapshot_id)
    done = restore(
        repository,
        snap,
        to=to or snap.workspace,
        cache_dir=None if no_cache else (cache_dir or default_root()),
        db_url=db_url,
        force=force,
        environ=os.environ,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": snap.id,
                    "to": done.to,
                    "files": done.files,
                    "bytes": done.bytes,
                    "unchanged": done.unchanged,
                    "cache_files": done.cache_files,
                    "history": done.history,
                },
                indent=2,
            )
        )
        return 0
    click.echo(
        f"restored snapshot {snap.short_id} into {done.to}: {done.files} files "
        f"({_size(done.bytes)}), {done.unchanged} already there; {done.cache_files} cache "
        f"entries; history: {done.history}"
    )
    return 0


@backup_command.command("prune")
@repo_option
@click.option(
    "--keep-daily",
    type=click.IntRange(min=0),
    default=0,
    help="Keep the newest snapshot of each of the N most recent days that have one.",
)
@click.option(
    "--keep-weekly",
    type=click.IntRange(min=0),
    default=0,
    help="Keep the newest snapshot of each of the M most recent weeks that have one.",
)
@click.option(
    "--max-unused",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    metavar="PERCENT",
    help="Repack partly used packs, the most unused first, until what stays unused is at "
    "most this share of what is used.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be forgotten; change nothing.")
@json_option
def prune_command(
    repo: str | None,
    keep_daily: int,
    keep_weekly: int,
    max_unused: float,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Forget the snapshots the policy does not keep and delete what no snapshot uses."""
    from conveyor.backup.prune import prune
    from conveyor.errors import UsageError

    if keep_daily == 0 and keep_weekly == 0:
        raise UsageError(
            "prune needs a policy: it would forget every snapshot",
            hint="give --keep-daily N and/or --keep-weekly M",
        )
    repository = _open(repo)
    with repository.backend.lock(exclusive=not dry_run):
        done = prune(
            repository,
            daily=keep_daily,
            weekly=keep_weekly,
            dry_run=dry_run,
            max_unused=max_unused / 100,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": done.dry_run,
                    "kept": [s.id for s in done.kept],
                    "forgotten": [s.id for s in done.forgotten],
                    "packs_deleted": done.packs_deleted,
                    "packs_repacked": done.packs_repacked,
                    "bytes_freed": done.bytes_freed,
                },
                indent=2,
            )
        )
        return 0
    verb = "would forget" if dry_run else "forgot"
    for s in done.forgotten:
        click.echo(f"{verb} {s.short_id} {_when(s.time)} {s.workspace}")
    click.echo(
        f"kept {len(done.kept)} snapshots, {verb} {len(done.forgotten)}"
        + (
            ""
            if dry_run
            else f", deleted {done.packs_deleted} packs ({done.packs_repacked} repacked), "
            f"freed {_size(done.bytes_freed)}"
        )
    )
    return 0
