"""`conveyor remote check`: whether the remote cache a run would use works from here."""

from __future__ import annotations

import json
import os

import click

from conveyor.cli import load, pipeline_file_option
from conveyor.errors import UsageError


@click.group("remote")
def remote_command() -> None:
    """The remote cache (REAPI: BuildGrid, Buildbarn, BuildBuddy...)."""


@remote_command.command("check")
@click.option(
    "--remote",
    "remote_url",
    metavar="URL",
    default=None,
    help="Check this server instead of the pipeline's `remote.url` (also CONVEYOR_REMOTE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was found as JSON.")
@pipeline_file_option
@click.pass_context
def check(ctx: click.Context, remote_url: str | None, as_json: bool) -> int:
    """Reach the remote cache: its capabilities (digest function, batch size, whether it
    takes results and executes), one round trip, and a probe of its CAS (a blob written
    and read back when this machine uploads, else a read). Exit 2, with what is wrong in
    one line, when it cannot be used."""
    from conveyor.config.remote import resolve

    environ = dict(os.environ)
    remote = resolve(None, environ, url=remote_url)
    if remote is None:
        remote = resolve(load(ctx).remote, environ)
    if remote is None:
        raise UsageError(
            "no remote cache to check",
            hint="add `remote: {url: grpc://host:port}` to conveyor.yml, or give --remote URL",
        )
    from conveyor.cache.remote import check as check_remote

    found = check_remote(remote, environ)  # StoreUnavailable: what is wrong, exit 2
    if "SHA256" not in found.digest_functions:
        raise UsageError(
            f"{remote.url} does not hash with SHA-256 (it offers "
            f"{', '.join(found.digest_functions) or 'none'}): Conveyor's digests cannot be "
            "used there"
        )
    if as_json:
        click.echo(json.dumps(found._asdict(), indent=2))
        return 0
    instance = f' (instance "{found.instance_name}")' if found.instance_name else ""
    click.echo(f"remote cache {found.url}{instance}: REAPI {found.api_version}")
    click.echo(f"✔ reachable: a round trip took {found.round_trip * 1000:.1f} ms")
    batch = f"{found.max_batch_bytes:,} bytes" if found.max_batch_bytes else "not limited"
    click.echo(f"✔ digest function SHA256; largest batch {batch}")
    if found.probe == "write+read":
        click.echo(f"✔ a blob written and read back in {found.probe_time * 1000:.1f} ms")
    else:
        click.echo(f"✔ the CAS answered a read in {found.probe_time * 1000:.1f} ms")
    takes = "takes results" if found.update_enabled else "does not take results from clients"
    executes = "executes actions" if found.exec_enabled else "does not execute actions"
    click.echo(f"  the server {takes} and {executes}")
    if remote.upload:
        if not found.update_enabled:
            click.echo("✘ upload is on, but the server refuses results from clients")
            return 2
        click.echo(
            "  upload is on: this machine writes the team's cache. A shared cache is only as "
            "trustworthy as its least trusted writer: upload from CI on protected branches, "
            "and give pull requests an instance of their own (remote.instance_name)."
        )
    else:
        click.echo("  upload is off: this machine only reads (CONVEYOR_REMOTE_UPLOAD=1 to write)")
    return 0
