"""`conveyor artifacts`: the versions a build stored (list, show, verify, fetch,
promote, prune), their signing keys (keygen) and their publication (publish). Each
subcommand lives in its own module, imported only when it runs."""

from __future__ import annotations

from typing import ClassVar

import click

from conveyor.cli import LazyGroup


class _ArtifactsGroup(LazyGroup):
    commands_by_module: ClassVar[dict[str, str]] = {
        # subcommand -> module (one per concern: the store, keys, publishing)
        "keygen": "conveyor.cli.artifacts_keys",
        "sign-blob": "conveyor.cli.artifacts_keys",
        "verify-blob": "conveyor.cli.artifacts_keys",
        "list": "conveyor.cli.artifacts_store",
        "show": "conveyor.cli.artifacts_store",
        "verify": "conveyor.cli.artifacts_store",
        "fetch": "conveyor.cli.artifacts_store",
        "promote": "conveyor.cli.artifacts_store",
        "prune": "conveyor.cli.artifacts_store",
        "publish": "conveyor.cli.artifacts_publish",
    }


@click.group("artifacts", cls=_ArtifactsGroup)
def artifacts_command() -> None:
    """What builds produced, versioned, checksummed, signed and attested: list, show,
    verify, fetch, promote, prune, keygen, publish."""
