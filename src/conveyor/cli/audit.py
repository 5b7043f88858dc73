"""`conveyor audit`: GitHub Actions workflows and `.gitlab-ci.yml` checked for security
problems and pipeline anti-patterns (the rules: docs/audit.md)."""

from __future__ import annotations

import os

import click

_FAIL_ON = ("high", "medium", "low", "info", "never")


@click.command("audit")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False),
    help="Also write the findings as SARIF 2.1.0 (for code scanning).",
)
@click.option(
    "--fail-on",
    type=click.Choice(_FAIL_ON),
    default="medium",
    show_default=True,
    help="Exit 1 when a finding is at least this severe.",
)
def audit_command(
    files: tuple[str, ...], as_json: bool, sarif_file: str | None, fail_on: str
) -> int:
    """Audit CI files (default: .github/workflows/*, .github/actions/**/action.yml and
    .gitlab-ci.yml of this repository) for injection, unpinned actions, broad tokens,
    leaked credentials, and missing caches, timeouts and tests."""
    from conveyor import __version__
    from conveyor.errors import UsageError
    from conveyor.interop.audit import audit, default_targets, repository_root
    from conveyor.interop.audit.render import as_json as render_json
    from conveyor.interop.audit.render import line, summary, write_sarif

    cwd = os.getcwd()
    paths = list(files)
    if not paths:
        root = repository_root(cwd)
        paths = default_targets(root)
        if not paths:
            raise UsageError(
                f"no CI files under {root} (.github/workflows/*.yml, .gitlab-ci.yml); "
                "name the files to audit"
            )
    result = audit(paths, cwd=cwd)
    if sarif_file:
        write_sarif(result, sarif_file, __version__)
    if as_json:
        click.echo(render_json(result))
    else:
        for finding in result.findings:
            click.echo(line(finding))
        click.echo(summary(result))
    if fail_on == "never":
        return 0
    return 1 if result.at_least(fail_on) else 0
