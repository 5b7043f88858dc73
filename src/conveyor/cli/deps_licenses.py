"""`conveyor deps licenses` (each dependency's license, judged by `deps.licenses`) and
`conveyor deps outdated` (each dependency's pinned version against the newest its
registry offers)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from conveyor.cli import pipeline_file_option

if TYPE_CHECKING:
    from conveyor.deps.inventory import Inventory


def _inventory(root: str) -> Inventory:
    from conveyor.cli.deps import workspace_files
    from conveyor.deps.inventory import read_inventory

    inventory = read_inventory(root, workspace_files(root))
    for error in inventory.errors:
        click.echo(f"warning: {error.location}: {error.message} (not read)", err=True)
    return inventory


@click.command("licenses")
@click.option("--json", "as_json", is_flag=True, help="Print the licenses as JSON.")
@click.option(
    "--python",
    "python",
    type=click.Path(file_okay=False, exists=True),
    help="Read installed Python packages from this virtualenv or site-packages "
    "directory (default: .venv/ or venv/ in the workspace).",
)
@pipeline_file_option
@click.pass_context
def licenses_command(ctx: click.Context, as_json: bool, python: str | None) -> int:
    """Each dependency's license as an SPDX expression, where it was found, and the
    `deps.licenses` policy's verdict. Exit 1 when a license is denied or unknown."""
    from conveyor.cli.deps import workspace
    from conveyor.deps.license_report import judge, policy
    from conveyor.deps.license_sources import LicenseFinder, site_packages
    from conveyor.deps.licenses import Verdict
    from conveyor.errors import UserError

    root, deps = workspace(ctx)
    if python is not None and not site_packages(python):
        raise UserError(
            f"--python {python}: no site-packages there",
            hint="give a virtualenv's directory (.venv) or a site-packages directory",
        )
    inventory = _inventory(root)
    found = LicenseFinder(root, python=python).find(inventory.components)
    report = judge(found, policy(deps))
    counts = {v: report.count(v) for v in Verdict}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "packages": [p.as_dict() for p in report.packages],
                    "summary": {str(v): n for v, n in counts.items()},
                    "policy": {
                        "allow": list(deps.licenses_allow),
                        "deny": list(deps.licenses_deny),
                        "overrides": dict(deps.licenses_overrides),
                    },
                    "errors": [f"{e.location}: {e.message}" for e in inventory.errors],
                },
                indent=2,
            )
        )
        return 1 if report.violated else 0
    if not report.packages:
        click.echo("no third-party dependencies: no lockfile pins any")
        return 0
    from conveyor.cli.view import table_lines

    rows = []
    for p in report.packages:
        lic, verdict = p.license, p.judgement
        said = str(verdict.verdict) + (f": {verdict.reason}" if verdict.reason else "")
        source = lic.source
        if lic.raw and lic.raw != lic.expression and lic.expression is not None:
            source += f" [{lic.raw}]"
        rows.append((lic.name, lic.version or "-", lic.expression or "-", said, source))
    for line in table_lines(("PACKAGE", "VERSION", "LICENSE", "VERDICT", "SOURCE"), rows):
        click.echo(line)
    total = len(report.packages)
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    click.echo(f"{total} package(s): {summary}")
    if counts[Verdict.UNKNOWN]:
        click.echo(
            "an unknown license fails the policy: install the environment (.venv, "
            "node_modules) so its metadata can be read, or set the license in "
            "deps.licenses.overrides",
            err=True,
        )
    sys.stdout.flush()
    return 1 if report.violated else 0


@click.command("outdated")
@click.option("--json", "as_json", is_flag=True, help="Print every package as JSON.")
@click.option("--index-url", help="A PyPI-compatible index (its simple API, .../simple).")
@click.option("--registry", help="An npm-compatible registry.")
@click.option(
    "--ecosystem",
    "ecosystems",
    type=click.Choice(["pypi", "npm"]),
    multiple=True,
    help="Only this ecosystem's packages (repeatable; default: both).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["major", "minor", "patch"]),
    help="Exit 1 when a package is this far behind or further.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds each request may take.",
)
@pipeline_file_option
@click.pass_context
def outdated_command(
    ctx: click.Context,
    as_json: bool,
    index_url: str | None,
    registry: str | None,
    ecosystems: Sequence[str],
    fail_on: str | None,
    timeout: float,
) -> int:
    """Each PyPI and npm dependency's pinned version against the newest its registry
    offers, and how far behind it is (major, minor, patch). Information: exit 0,
    unless --fail-on says otherwise."""
    from conveyor.cli.deps import workspace
    from conveyor.deps.components import Ecosystem
    from conveyor.deps.outdated import Distance, check
    from conveyor.deps.registries import NPM_HOW, PYPI_HOW, npm_registry, pypi_index
    from conveyor.errors import UserError

    root, deps = workspace(ctx)
    wanted = {Ecosystem.PYPI, Ecosystem.NPM}
    if ecosystems:
        wanted = {Ecosystem.PYPI if e == "pypi" else Ecosystem.NPM for e in ecosystems}
    inventory = _inventory(root)
    present = {c.ecosystem for c in inventory.components if not c.local} & wanted
    pypi = pypi_index(index_url, deps.pypi_index, os.environ) if Ecosystem.PYPI in present else None
    projects = sorted(
        {os.path.dirname(c.lockfile) for c in inventory.components if c.ecosystem is Ecosystem.NPM}
    )
    npm = (
        npm_registry(registry, deps.npm_registry, os.environ, root=root, projects=projects)
        if Ecosystem.NPM in present
        else None
    )
    missing = []
    if Ecosystem.PYPI in present and pypi is None:
        missing.append(f"for the PyPI packages, {PYPI_HOW}")
    if Ecosystem.NPM in present and npm is None:
        missing.append(f"for the npm packages, {NPM_HOW}")
    if missing:
        raise UserError(
            "no package registry is configured to ask for the newest versions",
            hint="; ".join(missing),
        )
    components = [c for c in inventory.components if c.ecosystem in wanted]
    report = check(components, pypi=pypi, npm=npm, timeout=timeout)
    limit = Distance(fail_on).rank if fail_on else None
    failing = [p for p in report.outdated if limit and p.distance and p.distance.rank >= limit]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "registries": {
                        "pypi": None if pypi is None else pypi.url,
                        "npm": None if npm is None else npm.url,
                    },
                    "packages": [p.as_dict() for p in report.packages],
                    "not_checked": report.not_checked,
                },
                indent=2,
            )
        )
        return 1 if failing else 0
    for reg in (pypi, npm):
        if reg is not None:
            click.echo(f"asking {reg.url} (from {reg.origin})", err=True)
    from conveyor.cli.view import table_lines

    rows = [
        (p.name, p.current, p.newest or "-", str(p.distance), p.locations[0])
        for p in report.outdated
    ]
    if rows:
        for line in table_lines(("PACKAGE", "CURRENT", "NEWEST", "BEHIND", "WHERE"), rows):
            click.echo(line)
    for p in report.errors:
        click.echo(f"{p.name} {p.current}: {p.error}", err=True)
    by = {d: sum(1 for p in report.outdated if p.distance is d) for d in Distance}
    spread = ", ".join(f"{n} {d}" for d, n in by.items() if n)
    line = f"{len(report.outdated)} outdated of {len(report.packages)} checked"
    if spread:
        line += f" ({spread})"
    if report.errors:
        line += f"; {len(report.errors)} could not be checked"
    click.echo(line)
    sys.stdout.flush()
    return 1 if failing else 0
