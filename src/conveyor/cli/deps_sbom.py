"""`conveyor deps sbom`: the workspace's software bill of materials, CycloneDX 1.6 or
SPDX 2.3 JSON, from its lockfiles (conveyor.deps.sbom draws it)."""

from __future__ import annotations

import os

import click

from conveyor.cli import pipeline_file_option
from conveyor.deps.sbom import FORMATS


@click.command("sbom")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="cyclonedx-json",
    show_default=True,
    help="CycloneDX 1.6 JSON or SPDX 2.3 JSON.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the SBOM to this file (replaced in one rename) instead of stdout.",
)
@click.option(
    "--no-dev",
    is_flag=True,
    help="Leave out the packages only development needs (dev scope in every lockfile).",
)
@click.option(
    "--python",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A virtualenv (or site-packages) whose installed distributions give Python "
    "packages' licenses (default: .venv/ or venv/ in the workspace).",
)
@pipeline_file_option
@click.pass_context
def sbom_command(
    ctx: click.Context, fmt: str, output: str | None, no_dev: bool, python: str | None
) -> int:
    """Write the workspace's SBOM: every package its lockfiles pin, with package URLs,
    the hashes and licenses the lockfiles record, and who depends on whom; the project
    (named by pyproject.toml, package.json or Cargo.toml, else its directory) at the
    root.

    The workspace is the directory of conveyor.yml (here or above), else the git
    checkout's top, else this directory; its lockfiles are found as `conveyor deps`
    finds them. SOURCE_DATE_EPOCH, when set, fixes the document's time and makes its
    identity derive from its content (the same input, the same bytes).

    A lockfile that cannot be read is reported on stderr with its location; the SBOM is
    still written from the others, and the exit code is 2, so an incomplete SBOM does
    not pass unnoticed."""
    from conveyor.cli.deps import workspace_files, workspace_root
    from conveyor.deps.inventory import read_inventory
    from conveyor.deps.license_sources import spdx_licenses
    from conveyor.deps.sbom import project_of, render
    from conveyor.errors import UsageError
    from conveyor.fsutil import atomic_write

    root = workspace_root(ctx)
    inventory = read_inventory(root, workspace_files(root))
    for error in inventory.errors:
        where = _shown(root, error.path) + error.location[len(error.path) :]
        click.echo(f"{where}: {error.message}", err=True)
    # What the installed environments say (.venv, node_modules, Cargo's sources) beside
    # what the lockfiles do, as `deps licenses` finds it.
    licenses = spdx_licenses(root, inventory.components, python=python)
    text = render(fmt, inventory, project=project_of(root), licenses=licenses, dev=not no_dev)
    if output is None or output == "-":
        click.echo(text, nl=False)
    else:
        try:
            atomic_write(output, text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    if not inventory.lockfiles and not inventory.errors:
        click.echo(
            f"conveyor: no lockfiles under {root}; the SBOM lists the project alone", err=True
        )
    if inventory.errors:
        count = len(inventory.errors)
        plural = count > 1
        click.echo(
            f"conveyor: {count} lockfile{'s' if plural else ''} could not be read; "
            f"the SBOM leaves out what {'they pin' if plural else 'it pins'}",
            err=True,
        )
        return 2
    return 0


def _shown(root: str, path: str) -> str:
    """A workspace-relative path as a path from the current directory (when it is below
    it; else as it is)."""
    shown = os.path.relpath(os.path.join(root, path))
    return path if shown.startswith("..") else shown
