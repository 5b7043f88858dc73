"""`conveyor deps`: the workspace's dependencies (inventory, vulnerabilities, licenses,
outdated packages, SBOM). Each subcommand lives in its own module, imported only when
it runs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

import click

from conveyor.cli import LazyGroup

if TYPE_CHECKING:
    from conveyor.model import DepsPolicy


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


def workspace_root(ctx: click.Context) -> str:
    """Where the workspace is, as other commands find it: the directory of the pipeline
    file (-f, or conveyor.yml here or in a parent); without one (dependencies need no
    pipeline), the git checkout's top directory, else the current directory."""
    from conveyor.config import find_pipeline_file
    from conveyor.workspace.listing import repository_root

    shared = ctx.find_root().obj
    named = shared.get("pipeline_file") if isinstance(shared, dict) else None
    if isinstance(named, str) and named:
        return os.path.dirname(os.path.abspath(named))
    found = find_pipeline_file()
    if os.path.isfile(found):
        return os.path.dirname(found)
    return repository_root(os.getcwd())


def workspace(ctx: click.Context) -> tuple[str, DepsPolicy]:
    """The workspace's root (`workspace_root`) and its `deps:` policy: the pipeline
    file's, validated like any command's; none without a pipeline file."""
    from conveyor.config import find_pipeline_file
    from conveyor.model import DepsPolicy

    shared = ctx.find_root().obj
    named = shared.get("pipeline_file") if isinstance(shared, dict) else None
    if named or os.path.isfile(find_pipeline_file()):
        from conveyor.cli import load

        pipeline = load(ctx)
        return pipeline.root, pipeline.deps
    return workspace_root(ctx), DepsPolicy()


def workspace_files(root: str) -> list[str]:
    """The workspace's files, sorted: tracked, and untracked but not ignored."""
    from conveyor.workspace.listing import tracked_files

    return tracked_files(root)
