"""`conveyor deps`: the workspace's dependencies (inventory, vulnerabilities, licenses,
outdated packages, SBOM). Each subcommand lives in its own module, imported only when
it runs."""

from __future__ import annotations

from typing import ClassVar

import click

from conveyor.cli import LazyGroup


class _DepsGroup(LazyGroup):
    commands_by_module: ClassVar[dict[str, str]] = {
        # subcommand -> module (one per concern: inventory, audit, licenses, sbom)
        "list": "conveyor.cli.deps_inventory",
        "audit": "conveyor.cli.deps_audit",
        "db": "conveyor.cli.deps_audit",
        "licenses": "conveyor.cli.deps_licenses",
        "outdated": "conveyor.cli.deps_licenses",
        "sbom": "conveyor.cli.deps_sbom",
    }


@click.group("deps", cls=_DepsGroup)
def deps_command() -> None:
    """The workspace's dependencies: what the lockfiles pin (list), known
    vulnerabilities (audit, db), licenses, outdated packages and the SBOM."""
