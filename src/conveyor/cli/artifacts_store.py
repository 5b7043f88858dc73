"""`conveyor artifacts list|show|verify|fetch|promote|prune`: the versions in the artifact
store (conveyor.artifacts.store), as a person or a script (`--json`) reads them.

The store is `--store DIR`, else the pipeline's `artifacts.dir`, else the workspace's
`.conveyor/artifacts/` (the workspace: conveyor.yml's directory, else the git checkout's
top, else here)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli import pipeline_file_option

if TYPE_CHECKING:
    from conveyor.artifacts.backend import Store
    from conveyor.artifacts.record import ArtifactVersion
    from conveyor.artifacts.verify import Verification, VersionCheck

store_option = click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The artifact store's directory or s3://bucket/prefix (default: the pipeline's "
    "artifacts.dir, else .conveyor/artifacts/ in the workspace).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def open_store(ctx: click.Context, store_dir: str | None) -> tuple[Store, tuple[str, ...]]:
    """The store and the protected channels (the pipeline's, else `prod`)."""
    from conveyor.config import find_pipeline_file
    from conveyor.model import ArtifactStoreSpec

    shared = ctx.find_root().obj
    named = shared.get("pipeline_file") if isinstance(shared, dict) else None
    path = named or find_pipeline_file()
    spec = ArtifactStoreSpec()
    root: str | None = None
    if named or os.path.isfile(path):
        from conveyor.cli import load

        pipeline = load(ctx)
        spec, root = pipeline.artifacts, pipeline.root
    if root is None:
        from conveyor.workspace.listing import repository_root

        root = repository_root(os.getcwd())
    from conveyor.artifacts.s3store import open_store as open_at

    return open_at(store_dir or spec.dir, root), spec.protected_channels


def _short(sha: str) -> str:
    return sha.removeprefix("sha256:")[:12]


def _when(iso: str | None) -> str:
    return "-" if not iso else iso[:19].replace("T", " ")


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _described(store: Store, v: ArtifactVersion) -> dict[str, Any]:
    data = v.as_dict()
    data["ref"] = v.ref
    data["size"] = v.size
    for f in data["files"]:
        f["blob"] = store.blob_location(f["sha256"])
    for a in data["attachments"]:
        # An inline one (a signature) is in the record: its text is `content`.
        a["blob"] = store.blob_location(a["sha256"]) if a.get("content") is None else None
    return data


@click.command("list")
@click.option("--name", default=None, help="Only this artifact's versions.")
@click.option("--branch", default=None, help="Only versions built on this branch.")
@click.option("--channel", default=None, help="Only versions in this channel.")
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def list_command(
    ctx: click.Context,
    name: str | None,
    branch: str | None,
    channel: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """The stored versions, oldest first for each name: channel, branch, build number,
    commit, files, size, when stored and when they expire."""
    store, _protected = open_store(ctx, store_dir)
    found = store.versions(name, branch=branch, channel=channel)
    if as_json:
        click.echo(
            json.dumps(
                {"store": store.root, "versions": [_described(store, v) for v in found]}, indent=2
            )
        )
        return 0
    if not found:
        what = " matching" if (name or branch or channel) else ""
        click.echo(f"no{what} artifact versions in {store.root}")
        return 0
    rows = [
        ["ARTIFACT", "CHANNEL", "BRANCH", "BUILD", "COMMIT", "FILES", "SIZE", "STORED", "EXPIRES"]
    ]
    from conveyor.units import format_size

    for v in found:
        rows.append(
            [
                v.ref,
                v.channel,
                v.branch or "-",
                "-" if v.build_number is None else str(v.build_number),
                (v.commit or "-")[:10],
                str(len(v.files)),
                format_size(v.size),
                _when(v.created),
                _when(v.expires) if v.expires else "never",
            ]
        )
    _table(rows)
    return 0


@click.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def show_command(ctx: click.Context, ref: str, store_dir: str | None, as_json: bool) -> int:
    """One version (default: the artifact's newest): where it came from, its files with
    their digests, size and media type, its signatures, provenance and SBOM, where it
    was published and how it was promoted."""
    from conveyor.units import format_size

    store, protected = open_store(ctx, store_dir)
    v = store.find(ref)
    if as_json:
        click.echo(json.dumps(_described(store, v), indent=2))
        return 0
    kept = " (protected)" if v.channel in protected else ""
    click.echo(f"{v.ref}  {v.type}, channel {v.channel}{kept}")
    click.echo(f"  digest     {v.digest}")
    origin = f"run {v.run_id or '-'}"
    if v.build_number is not None:
        origin += f" (build {v.build_number})"
    click.echo(
        f"  stored     {_when(v.created)} by {origin} of {v.pipeline or '-'}, job {v.job or '-'}"
    )
    source = f"{v.commit or '-'}"
    if v.branch:
        source += f" on {v.branch}"
    if v.tag:
        source += f", tag {v.tag}"
    click.echo(f"  commit     {source}")
    click.echo(f"  version    from {v.metadata.get('version_source', '-')}")
    click.echo(f"  expires    {_when(v.expires) if v.expires else 'never'}")
    if v.keep_last is not None:
        per = " per branch" if v.keep_per == "branch" else ""
        click.echo(f"  retention  the newest {v.keep_last}{per} are kept")
    if v.keep_latest:
        click.echo(f"  retention  the newest on {v.branch or 'its branch'} outlives its expiry")
    click.echo(f"  files      {len(v.files)}, {format_size(v.size)}")
    rows = [[f.path, format_size(f.size), f.media_type, f"sha256:{f.sha256}"] for f in v.files]
    widths = [max(len(r[i]) for r in rows) for i in range(4)] if rows else []
    for row in rows:
        click.echo(
            "    " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
    for kind, title in (
        ("signature", "signatures"),
        ("provenance", "provenance"),
        ("sbom", "sbom"),
    ):
        found = v.attachments_of(kind)
        if not found:
            click.echo(f"  {title:<10} none")
            continue
        click.echo(f"  {title}")
        for a in found:
            about = f" (of {a.subject})" if a.subject else ""
            where = "in the record" if a.content is not None else store.blob_location(a.sha256)
            click.echo(f"    {a.name}{about}  sha256:{_short(a.sha256)}  {where}")
    others = v.attachments_of("other")
    for a in others:
        click.echo(
            f"  attachment {a.name}  sha256:{_short(a.sha256)}  {store.blob_location(a.sha256)}"
        )
    if not v.attachments_of("signature"):
        click.echo("  unsigned   stored without a signing key")
    if v.published:
        click.echo("  published")
        for p in v.published:
            when = _when(str(p.get("when", "")))
            where = p.get("location") or p.get("target", "?")
            click.echo(f"    {p.get('kind', '?')}: {where} ({when})")
    else:
        click.echo("  published  nowhere yet")
    for step in v.promotions:
        click.echo(
            f"  promoted   {step.get('from')} -> {step.get('to')} at {_when(step.get('when'))}"
        )
    return 0


key_option = click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also verify the signatures and provenance with this public key (.pub); "
    "default: $CONVEYOR_VERIFY_KEY.",
)


def version_checks(ctx: click.Context) -> list[VersionCheck]:
    """The checks beyond the digests that `verify`, `fetch` and `publish` run: the
    signatures and provenance against the public key named by `--key`, else by
    CONVEYOR_VERIFY_KEY; none without one."""
    from conveyor.artifacts.signed import VERIFY_KEY_VARIABLE, signature_check

    path = ctx.params.get("key") or os.environ.get(VERIFY_KEY_VARIABLE)
    return [signature_check(path)] if path else []


def _say_verification(result: Verification) -> None:
    v = result.version
    if result.ok:
        extra = (
            f"; {', '.join(result.checks)} verified"
            if result.checks
            else "; signatures not checked (no --key)"
        )
        click.echo(f"✔ {v.ref}: {result.files} digest(s) match their bytes{extra}")
        return
    click.echo(f"✘ {v.ref}: {len(result.problems)} problem(s)")
    for problem in result.problems:
        click.echo(f"  {problem}")


@click.command("verify")
@click.argument("refs", metavar="[NAME[@VERSION]]...", nargs=-1)
@key_option
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def verify_command(
    ctx: click.Context,
    refs: tuple[str, ...],
    key: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Recompute every digest of these versions (default: every version) from the
    bytes in the store: its files and attachments. A changed, truncated or missing blob
    is named with its file and both digests, and the exit code is 1. With --key (or
    CONVEYOR_VERIFY_KEY), each file's signature and the provenance are verified too."""
    from conveyor.artifacts.verify import verify

    store, _protected = open_store(ctx, store_dir)
    versions = [store.find(r) for r in refs] if refs else store.versions()
    checks = version_checks(ctx)
    results = [verify(store, v, checks=checks) for v in versions]
    ok = all(r.ok for r in results)
    if as_json:
        doc = {
            "ok": ok,
            "signatures_checked": bool(checks),
            "versions": [
                {
                    "ref": r.version.ref,
                    "ok": r.ok,
                    "files": r.files,
                    "bytes": r.bytes,
                    "checks": list(r.checks),
                    # Whether a public key was given: without one, "ok" covers the
                    # digests only, and a script must not take it for a signature check.
                    "signatures_checked": bool(r.checks),
                    "problems": [
                        {
                            "subject": p.subject,
                            "message": p.message,
                            "expected": p.expected,
                            "actual": p.actual,
                        }
                        for p in r.problems
                    ],
                }
                for r in results
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        if not results:
            click.echo(f"no artifact versions in {store.root}")
        for r in results:
            _say_verification(r)
    return 0 if ok else 1


@click.command("fetch")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False),
    default=None,
    help="Copy the files into this directory.",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write them as one archive instead (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz).",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option("--with-attachments", is_flag=True, help="Also the signatures, provenance and SBOM.")
@key_option
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def fetch_command(
    ctx: click.Context,
    ref: str,
    to: str | None,
    archive: str | None,
    force: bool,
    with_attachments: bool,
    key: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Copy a version's files out of the store, verified first: into a directory (their
    paths as stored) or as one archive. Nothing is written when a digest does not match
    (exit 1), nor over an existing file without --force. With --key (or
    CONVEYOR_VERIFY_KEY), nothing is written unless the signatures and provenance verify."""
    from conveyor.artifacts.fetch import fetch_archive, fetch_to
    from conveyor.errors import UsageError

    if (to is None) == (archive is None):
        raise UsageError("fetch needs one of --to DIR or --archive FILE")
    store, _protected = open_store(ctx, store_dir)
    version = store.find(ref)
    checks = version_checks(ctx)
    if archive is not None:
        result, written = fetch_archive(
            store, version, archive, force=force, checks=checks, attachments=with_attachments
        )
    else:
        assert to is not None
        result, written = fetch_to(
            store, version, to, force=force, checks=checks, attachments=with_attachments
        )
    if not result.ok:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "ref": version.ref,
                        "ok": False,
                        "problems": [str(p) for p in result.problems],
                    },
                    indent=2,
                )
            )
        else:
            _say_verification(result)
            click.echo("nothing was fetched", err=True)
        return 1
    if as_json:
        click.echo(
            json.dumps(
                {"ref": version.ref, "ok": True, "to": to, "archive": archive, "files": written},
                indent=2,
            )
        )
    else:
        where = archive if archive is not None else to
        click.echo(f"✔ {version.ref}: {len(written)} file(s) verified and written to {where}")
    return 0


@click.command("promote")
@click.argument("ref", metavar="NAME@VERSION")
@click.option(
    "--to", "channel", required=True, help="The channel: dev, staging, prod or any other."
)
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def promote_command(
    ctx: click.Context, ref: str, channel: str, store_dir: str | None, as_json: bool
) -> int:
    """Move a version to another channel (dev -> staging -> prod), its bytes verified
    and unchanged. A version in a protected channel never expires."""
    from conveyor.artifacts.store import split_ref
    from conveyor.artifacts.verify import verify
    from conveyor.errors import UsageError

    if split_ref(ref)[1] is None:
        raise UsageError(f"promote {ref}: name the version (NAME@VERSION)")
    store, protected = open_store(ctx, store_dir)
    version = store.find(ref)
    result = verify(store, version, checks=version_checks(ctx))
    if not result.ok:
        _say_verification(result)
        click.echo(f"{version.ref} was not promoted", err=True)
        return 1
    before = version.channel
    moved = store.promote(version.ref, channel)
    if as_json:
        click.echo(json.dumps(_described(store, moved), indent=2))
    elif before == channel:
        click.echo(f"{moved.ref} is in {channel} already")
    else:
        kept = " (protected: it never expires)" if channel in protected else ""
        click.echo(f"✔ {moved.ref}: {before} -> {channel}{kept}")
    return 0


@click.command("prune")
@click.option("--dry-run", "-n", is_flag=True, help="Say what would be removed; remove nothing.")
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def prune_command(ctx: click.Context, dry_run: bool, store_dir: str | None, as_json: bool) -> int:
    """Apply retention: versions past their expiry (`expire_in`) and beyond the newest N
    (`keep: {last: N, per: branch}`) go, unless in a protected channel or, with
    `keep: {latest: true}`, the newest on their branch; then the blobs no version names
    any more."""
    from conveyor.artifacts.retention import prune
    from conveyor.units import format_size

    store, protected = open_store(ctx, store_dir)
    report = prune(store, protected=protected, dry_run=dry_run)
    if as_json:
        doc = {
            "dry_run": dry_run,
            "removed": [{"ref": r.version.ref, "reason": r.reason} for r in report.removed],
            "held": [{"ref": r.version.ref, "reason": r.reason} for r in report.held],
            "blobs": len(report.blobs),
            "freed_bytes": report.freed,
            "kept": report.kept,
        }
        click.echo(json.dumps(doc, indent=2))
        return 0
    verb = "would remove" if dry_run else "removed"
    for r in report.removed:
        click.echo(f"{verb} {r.version.ref}: {r.reason}")
    for r in report.held:
        click.echo(f"kept {r.version.ref}: {r.reason}")
    click.echo(
        f"{verb} {len(report.removed)} version(s) and {len(report.blobs)} blob(s), "
        f"{format_size(report.freed)}; {report.kept} version(s) kept"
    )
    return 0
