"""`conveyor artifacts publish NAME@VERSION --to URL...`: a stored version verified
(its digests, and its signatures and provenance with --key), then published to every
target at once (conveyor.artifacts.publish.stored), each success recorded in the
version."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from conveyor.cli import pipeline_file_option
from conveyor.cli.artifacts_store import (
    json_option,
    key_option,
    open_store,
    store_option,
    version_checks,
)


@click.command("publish")
@click.argument("ref", metavar="NAME@VERSION")
@click.option(
    "--to",
    "urls",
    multiple=True,
    required=True,
    help="A target: a directory (a path or dir:///path), s3://bucket/prefix, "
    "pypi+https://index/legacy/. Repeat for several, published at once.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    help="Attempts after a failed one, per target, with backoff (a refusal is not retried).",
)
@key_option
@store_option
@json_option
@pipeline_file_option
@click.pass_context
def publish_command(
    ctx: click.Context,
    ref: str,
    urls: tuple[str, ...],
    retries: int,
    key: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Publish a version to one or more targets at once, each upload read back and
    verified. One line per target; exit 1 when any failed (the others are kept).
    Credentials come from the environment (AWS_*, CONVEYOR_S3_ENDPOINT,
    CONVEYOR_PYPI_*), never from the command line. With --json, one object per target
    (target, ok, location, files, bytes, seconds, verified, error)."""
    from conveyor.artifacts.publish import PublishFailure, PublishRefused, target
    from conveyor.artifacts.store import split_ref
    from conveyor.artifacts.verify import verify
    from conveyor.errors import UsageError

    if split_ref(ref)[1] is None:
        raise UsageError(f"publish {ref}: name the version (NAME@VERSION)")
    try:
        targets = [target(url, environ=os.environ) for url in dict.fromkeys(urls)]
    except PublishRefused as exc:
        raise UsageError(exc.message) from None
    store, _protected = open_store(ctx, store_dir)
    version = store.find(ref)
    checked = verify(store, version, checks=version_checks(ctx))
    if not checked.ok:
        if as_json:
            doc = {
                "ok": False,
                "ref": version.ref,
                "problems": [str(p) for p in checked.problems],
                "targets": [],
            }
            click.echo(json.dumps(doc, indent=2))
            return 1
        click.echo(f"✘ {version.ref}: {len(checked.problems)} problem(s); nothing published")
        for problem in checked.problems:
            click.echo(f"  {problem}")
        return 1
    from conveyor.artifacts.publish.stored import publish_version

    results = publish_version(store, version, targets, retries=retries)
    from conveyor.artifacts.store import now_iso

    failed = 0
    rows: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, PublishFailure):
            failed += 1
            rows.append(
                {
                    "target": result.target,
                    "ok": False,
                    "location": None,
                    "files": 0,
                    "bytes": 0,
                    "seconds": None,
                    "verified": False,
                    "error": result.error,
                }
            )
            if not as_json:
                click.echo(f"✘ {result.error}")
            continue
        receipt = result
        record = {**receipt.as_record(now_iso()), "location": receipt.target}
        store.record_publication(version.ref, record)
        rows.append(
            {
                "target": receipt.target,
                "ok": True,
                "location": receipt.target,
                "files": len(receipt.files),
                "bytes": receipt.bytes,
                "seconds": round(receipt.seconds, 3),
                # A receipt exists only once every file was read back and matched.
                "verified": True,
                "already": receipt.already,
                "error": None,
            }
        )
        if not as_json:
            how = "already there, verified" if receipt.already else "verified"
            click.echo(
                f"✔ {receipt.target}: {len(receipt.files)} file(s), {receipt.bytes} bytes, "
                f"{receipt.seconds:.2f}s, {how}"
            )
    if as_json:
        doc = {
            "ok": not failed,
            "ref": version.ref,
            "signatures_checked": bool(checked.checks),
            "targets": rows,
        }
        click.echo(json.dumps(doc, indent=2))
    return 1 if failed else 0
