"""`conveyor artifacts publish NAME@VERSION --to URL...`: a stored version verified
(its digests, and its signatures and provenance with --key), then published to every
target at once (conveyor.artifacts.publish.stored), each success recorded in the
version."""

from __future__ import annotations

import os

import click

from conveyor.cli import pipeline_file_option
from conveyor.cli.artifacts_store import key_option, open_store, store_option, version_checks


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
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@key_option
@store_option
@pipeline_file_option
@click.pass_context
def publish_command(
    ctx: click.Context,
    ref: str,
    urls: tuple[str, ...],
    retries: int,
    key: str | None,
    store_dir: str | None,
) -> int:
    """Publish a version to one or more targets at once, each upload read back and
    verified. One line per target; exit 1 when any failed (the others are kept).
    Credentials come from the environment (AWS_*, CONVEYOR_S3_ENDPOINT,
    CONVEYOR_PYPI_*), never from the command line."""
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
        click.echo(f"✘ {version.ref}: {len(checked.problems)} problem(s); nothing published")
        for problem in checked.problems:
            click.echo(f"  {problem}")
        return 1
    from conveyor.artifacts.publish.stored import publish_version

    results = publish_version(store, version, targets, retries=retries)
    from conveyor.artifacts.store import now_iso

    failed = 0
    for result in results:
        if isinstance(result, PublishFailure):
            failed += 1
            click.echo(f"✘ {result.error}")
            continue
        receipt = result
        record = {**receipt.as_record(now_iso()), "location": receipt.target}
        store.record_publication(version.ref, record)
        how = "already there, verified" if receipt.already else "verified"
        click.echo(
            f"✔ {receipt.target}: {len(receipt.files)} file(s), {receipt.bytes} bytes, "
            f"{receipt.seconds:.2f}s, {how}"
        )
    return 1 if failed else 0
