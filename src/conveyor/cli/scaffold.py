"""`conveyor init` (a pipeline from what the workspace is) and `conveyor plan` (from a
requirements hand-off, combined with the workspace)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

_CI_HELP = "Also write the CI file that runs the pipeline (via `conveyor export`)."


@click.command("init")
@click.option(
    "-y", "--yes", is_flag=True, help="Write without asking (the default without a terminal)."
)
@click.option("--ci", type=click.Choice(["github", "gitlab"]), default=None, help=_CI_HELP)
@click.option("--force", is_flag=True, help="Replace conveyor.yml (and the CI file) if they exist.")
@click.option(
    "-n", "--dry-run", is_flag=True, help="Print the pipeline (and CI file) instead of writing."
)
@click.option(
    "-C",
    "--dir",
    "directory",
    type=click.Path(file_okay=False, exists=True),
    default=".",
    help="The workspace to look at and write in (default: the current directory).",
)
def init_command(yes: bool, ci: str | None, force: bool, dry_run: bool, directory: str) -> int:
    """Write conveyor.yml for this workspace from what it finds: ecosystems, lockfiles,
    monorepo members, test runners, linters, toolchain versions; each choice explained
    in a comment. Never replaces a file without --force. Without a terminal it writes
    without asking, as with --yes."""
    from conveyor.scaffold import output
    from conveyor.scaffold.detect import detect
    from conveyor.scaffold.pipeline import draft, text

    root = os.path.abspath(directory)
    found = draft(detect(root), ci=ci is not None)
    written = text(found, origin="`conveyor init`")
    files = output.files_for(os.path.join(root, "conveyor.yml"), written, ci)
    if dry_run:
        _print(files)
        return 0
    if os.path.exists(os.path.join(root, "conveyor.yaml")) and not force:
        files = [output.File(os.path.join(root, "conveyor.yaml"), ""), *files]
    output.refuse_existing(files, force=force)
    files = [f for f in files if f.text]
    for line in found.summary:
        click.echo(f"found: {line}", err=True)
    if not yes and sys.stdin.isatty() and sys.stdout.isatty():
        names = ", ".join(os.path.relpath(f.path) for f in files)
        if not click.confirm(f"write {names} ({len(found.jobs)} jobs)?", default=True):
            click.echo("nothing written", err=True)
            return 1
    output.write(files)
    _written(files, len(found.jobs))
    return 0


@click.command("plan")
@click.argument("requirements", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--out", default="conveyor.yml", show_default=True, help="Where to write the pipeline."
)
@click.option("--ci", type=click.Choice(["github", "gitlab"]), default=None, help=_CI_HELP)
@click.option("--force", is_flag=True, help="Replace the pipeline (and the CI file) if they exist.")
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="Print the pipeline instead of writing; the report goes to stderr.",
)
def plan_command(requirements: str, out: str, ci: str | None, force: bool, dry_run: bool) -> int:
    """Write the conveyor.yml a requirements hand-off (`build_requirements:` with
    project_type, tech_stack, performance_targets, quality_gates, environments) implies,
    with the workspace's own projects, and report each requirement that could not be
    mapped and why."""
    from conveyor.scaffold import output
    from conveyor.scaffold.detect import detect
    from conveyor.scaffold.pipeline import text
    from conveyor.scaffold.plan import plan
    from conveyor.scaffold.requirements import load

    req = load(requirements)
    target = os.path.abspath(out)
    found, outcome = plan(req, detect(os.path.dirname(target)), ci=ci is not None)
    written = text(found, origin=f"`conveyor plan {os.path.basename(requirements)}`")
    files = output.files_for(target, written, ci)
    if dry_run:
        _print(files)
    else:
        output.refuse_existing(files, force=force)
        output.write(files)
        _written(files, len(found.jobs))
    echo = (lambda s: click.echo(s, err=True)) if dry_run else click.echo
    for what, how in outcome.mapped:
        echo(f"mapped: {what} -> {how}")
    for what, why in outcome.unmapped:
        echo(f"not mapped: {what}: {why}")
    echo(f"{len(outcome.mapped)} mapped, {len(outcome.unmapped)} not mapped")
    return 0


def _print(files: Sequence[object]) -> None:
    from conveyor.scaffold.output import File

    for i, f in enumerate(files):
        assert isinstance(f, File)
        if i:
            click.echo(f"\n# ---- {os.path.relpath(f.path)} ----")
        click.echo(f.text, nl=False)


def _written(files: Sequence[object], jobs: int) -> None:
    from conveyor.scaffold.output import File

    for f in files:
        assert isinstance(f, File)
        click.echo(f"wrote {os.path.relpath(f.path)}", err=True)
    click.echo(
        f"{jobs} jobs; next: `conveyor validate`, `conveyor run --dry-run`, `conveyor run`",
        err=True,
    )
