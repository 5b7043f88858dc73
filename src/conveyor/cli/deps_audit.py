"""`conveyor deps audit` (known vulnerabilities of what the lockfiles pin) and `conveyor
deps db` (the offline advisory database: import, status)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli import pipeline_file_option

if TYPE_CHECKING:
    from conveyor.deps.audit import AuditResult, ComponentFindings, Vulnerability, WorkspaceAudit
    from conveyor.deps.components import Component

_RATINGS = ("critical", "high", "medium", "low", "none")
_IMPORT_HINT = (
    "conveyor deps db import PATH (a zip or directory of OSV records, e.g. OSV's all.zip "
    "of an ecosystem)"
)


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False),
    help="Also write the findings as SARIF 2.1.0, at the lockfile lines (for code scanning).",
)
@click.option(
    "--vex",
    "vex_file",
    type=click.Path(dir_okay=False),
    help="Also write the findings as a CycloneDX 1.6 VEX document.",
)
@click.option(
    "--ignore",
    "ignored",
    multiple=True,
    metavar="ID",
    help="Set an advisory aside (any of its ids); each needs a --reason, in order.",
)
@click.option(
    "--reason", "reasons", multiple=True, metavar="TEXT", help="Why the --ignore before it."
)
@click.option(
    "--online",
    is_flag=True,
    help="Ask the OSV API ($CONVEYOR_OSV_URL, default api.osv.dev) instead of the database.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds one request to the OSV API may take (--online).",
)
@click.option(
    "--severity",
    type=click.Choice(_RATINGS),
    default=None,
    help="Report and count only findings this severe or worse (and those of unknown severity).",
)
@pipeline_file_option
@click.pass_context
def audit_command(
    ctx: click.Context,
    as_json: bool,
    sarif_file: str | None,
    vex_file: str | None,
    ignored: tuple[str, ...],
    reasons: tuple[str, ...],
    online: bool,
    timeout: float,
    severity: str | None,
) -> int:
    """Known vulnerabilities of the packages the workspace's lockfiles pin, from the
    advisory database (`conveyor deps db import`) or the OSV API (--online), with the
    upgrade that fixes them. Exit 1 when a finding counts (not set aside by `deps.ignore`
    or --ignore), 0 when none does, 2 when there is no database to ask or none
    covers any of the packages (nothing audited is not a pass)."""
    from conveyor import __version__
    from conveyor.cli.deps import workspace, workspace_files
    from conveyor.deps.audit import NoDatabase, audit_workspace, exceptions
    from conveyor.errors import UsageError

    if len(ignored) != len(reasons):
        raise UsageError(
            f"{len(ignored)} --ignore but {len(reasons)} --reason: give each --ignore ID "
            "its --reason TEXT (why it is set aside)"
        )
    root, policy = workspace(ctx)
    ignore = exceptions(
        [(i.id, i.reason, i.until) for i in policy.ignore], zip(ignored, reasons, strict=True)
    )
    source, database = _source(online, timeout)
    try:
        done = audit_workspace(root, workspace_files(root), source, ignore)
    except NoDatabase:
        raise UsageError(
            "no advisory database: import one first, or ask the OSV API (--online)",
            hint=_IMPORT_HINT,
        ) from None
    except Exception as exc:
        _online_error(exc)
        raise
    finally:
        if database is not None:
            database.close()
    result = _filtered(done.result, severity)
    if sarif_file:
        from conveyor.export.vulnerabilities import sarif
        from conveyor.fsutil import atomic_write

        atomic_write(sarif_file, json.dumps(sarif(result, __version__), indent=2) + "\n")
    if vex_file:
        from conveyor.export.vulnerabilities import vex
        from conveyor.fsutil import atomic_write

        atomic_write(vex_file, vex(result, __version__) + "\n")
    if as_json:
        click.echo(json.dumps(as_dict(done, result), indent=2))
    else:
        # One write: a report of thousands of lines echoed line by line spent a tenth
        # of the audit in click's per-call checks.
        click.echo("\n".join(render(done, result)))
    if result.audited == 0 and result.no_database and not result.vulnerabilities:
        # "No known vulnerability" in zero components is no answer: a CI step must not
        # pass on it.
        click.echo(
            "nothing was audited: no advisory database covers "
            f"{', '.join(sorted(result.no_database))} (import its OSV records: "
            "conveyor deps db import PATH, or ask the OSV API with --online)",
            err=True,
        )
        return 2
    return 1 if result.vulnerabilities else 0


def _source(online: bool, timeout: float) -> tuple[Any, Any]:
    """(the audit's source, the database to close afterwards)."""
    if online:
        from conveyor.deps.online import OnlineSource, base_url

        return OnlineSource(base_url(os.environ), timeout), None
    from conveyor.deps.advisories import Database, DatabaseError, database_dir
    from conveyor.deps.audit import DatabaseSource
    from conveyor.errors import EnvironmentProblem

    try:
        database = Database(database_dir(os.environ))
    except DatabaseError as exc:
        raise EnvironmentProblem(str(exc)) from None
    return DatabaseSource(database), database


def _online_error(exc: Exception) -> None:
    from conveyor.deps.advisories import DatabaseError
    from conveyor.deps.online import OnlineError
    from conveyor.errors import EnvironmentProblem

    if isinstance(exc, OnlineError):
        raise EnvironmentProblem(
            f"the OSV API could not be asked: {exc}",
            hint=f"check the network or $CONVEYOR_OSV_URL, or audit offline: {_IMPORT_HINT}",
        ) from None
    if isinstance(exc, DatabaseError):
        raise EnvironmentProblem(str(exc)) from None


def _filtered(result: AuditResult, severity: str | None) -> AuditResult:
    """Only the findings `severity` or worse (and of unknown severity)."""
    if severity is None:
        return result
    import dataclasses

    limit = _RATINGS.index(severity)
    kept = []
    for found in result.findings:
        vulns = tuple(
            v
            for v in found.vulnerabilities
            if v.severity.rating == "unknown" or v.severity.rank <= limit
        )
        if vulns:
            kept.append(dataclasses.replace(found, vulnerabilities=vulns))
    return dataclasses.replace(result, findings=tuple(kept))


# -- output ---------------------------------------------------------------------------------


def render(done: WorkspaceAudit, result: AuditResult) -> list[str]:
    """The human report: each affected component with its vulnerabilities and upgrade,
    then what could not be audited, then a summary line."""
    lines: list[str] = []
    for found in result.findings:
        c = found.component
        lines.append(f"{c.name} {c.version} ({c.location})")
        width = max(len(_severity(v)) for v in found.vulnerabilities)
        for v in found.vulnerabilities:
            also = f" ({', '.join(v.aliases)})" if v.aliases else ""
            text = f"  {_severity(v):<{width}}  {v.id}{also}"
            if v.summary:
                text += f": {_short(v.summary)}"
            lines.append(text)
            if v.ignored is not None:
                until = f", until {v.ignored.until}" if v.ignored.until else ""
                lines.append(f"  {'':<{width}}  ignored: {v.ignored.reason}{until}")
            elif v.expired is not None:
                lines.append(
                    f"  {'':<{width}}  the exception for {v.expired.id} expired on "
                    f"{v.expired.until}: it counts again ({v.expired.reason})"
                )
        lines.append("  " + _upgrade(found))
    for c in result.unpinned:
        lines.append(f"not pinned: cannot be audited: {c.name} ({c.location})")
    for c in result.unreadable:
        lines.append(
            f"{c.name} {c.version} ({c.location}): not a {c.ecosystem} version: matched by "
            "the advisories' exact version lists only"
        )
    for ecosystem, count in sorted(result.no_database.items()):
        lines.append(
            f"{ecosystem}: {count} component(s) not audited: no advisory database of "
            f"{ecosystem} (import its OSV records: conveyor deps db import PATH)"
        )
    for error in done.errors:
        lines.append(f"{error} (not audited)")
    lines.append(summary(done, result))
    return lines


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _severity(v: Vulnerability) -> str:
    return v.severity.label()


def _upgrade(found: ComponentFindings) -> str:
    c = found.component
    n = len(found.vulnerabilities)
    if found.fix is not None:
        return f"upgrade {c.name} {c.version} -> {found.fix} fixes {n}"
    unfixed = [v.id for v in found.vulnerabilities if v.fixed_in is None]
    if unfixed:
        return f"no fix: no known version of {c.name} fixes {', '.join(unfixed)}"
    return f"no fix: no one version of {c.name} fixes all {n} (each has its own)"


def summary(done: WorkspaceAudit, result: AuditResult) -> str:
    """'3 vulnerabilities (1 high, 2 unknown) in 2 of 40 components; 1 ignored'."""
    counted = result.vulnerabilities
    ignored = sum(1 for f in result.findings for v in f.vulnerabilities if not v.counts)
    where = f"{result.audited} component(s) of {len(done.lockfiles)} lockfile(s)"
    if not done.lockfiles:
        return "no lockfile found: nothing to audit"
    if not counted:
        text = f"no known vulnerability in {where}"
    else:
        by: dict[str, int] = {}
        for _c, v in counted:
            by[v.severity.rating] = by.get(v.severity.rating, 0) + 1
        parts = ", ".join(f"{by[r]} {r}" for r in (*_RATINGS, "unknown") if r in by)
        affected = len({id(c) for c, _ in counted})
        noun = "vulnerability" if len(counted) == 1 else "vulnerabilities"
        text = f"{len(counted)} {noun} ({parts}) in {affected} of {where}"
    if ignored:
        text += f"; {ignored} ignored"
    if result.no_database:
        text += f"; not audited: {', '.join(sorted(result.no_database))} (no database)"
    return text


def as_dict(done: WorkspaceAudit, result: AuditResult) -> dict[str, Any]:
    """The report as `--json` prints it (version 1 of its shape)."""
    counts: dict[str, int] = dict.fromkeys((*_RATINGS, "unknown"), 0)
    for _c, v in result.vulnerabilities:
        counts[v.severity.rating] += 1
    return {
        "version": 1,
        "lockfiles": list(done.lockfiles),
        "audited": result.audited,
        "counts": counts,
        "findings": [_finding(f) for f in result.findings],
        "unpinned": [_where(c) for c in result.unpinned],
        "unreadable_versions": [_where(c) for c in result.unreadable],
        "not_audited": dict(sorted(result.no_database.items())),
        "expired_exceptions": [
            {"id": e.id, "reason": e.reason, "until": str(e.until)} for e in result.expired
        ],
        "lockfile_errors": list(done.errors),
    }


def _where(c: Component) -> dict[str, Any]:
    return {
        "name": c.name,
        "ecosystem": str(c.ecosystem),
        "version": c.version,
        "lockfile": c.lockfile,
        "line": c.line,
    }


def _finding(found: ComponentFindings) -> dict[str, Any]:
    return {
        **_where(found.component),
        "purl": found.component.purl,
        "fix": found.fix,
        "vulnerabilities": [_vulnerability(v) for v in found.vulnerabilities],
    }


def _vulnerability(v: Vulnerability) -> dict[str, Any]:
    def exception(e: Any) -> dict[str, Any] | None:
        if e is None:
            return None
        return {"id": e.id, "reason": e.reason, "until": str(e.until) if e.until else None}

    return {
        "id": v.id,
        "aliases": list(v.aliases),
        "records": [r.id for r in v.records],
        "severity": {
            "rating": v.severity.rating,
            "score": v.severity.score,
            "vector": v.severity.vector,
        },
        "summary": v.summary,
        "url": v.url,
        "fixed_in": v.fixed_in,
        "counts": v.counts,
        "ignored": exception(v.ignored),
        "expired": exception(v.expired),
    }


# -- the database ---------------------------------------------------------------------------


@click.group("db")
def db_command() -> None:
    """The offline advisory database: OSV records imported into the cache directory."""


@db_command.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def import_command(paths: Sequence[str]) -> int:
    """Import OSV records from PATH (a zip such as OSV's per-ecosystem all.zip, a
    directory of *.json records, or one record): each ecosystem found replaces that
    ecosystem's records, in one step."""
    from conveyor.deps.advisories import DatabaseError, database_dir, import_records
    from conveyor.errors import UsageError

    directory = database_dir(os.environ)
    for path in paths:
        try:
            report = import_records(path, directory)
        except DatabaseError as exc:
            raise UsageError(str(exc)) from None
        for status in report.ecosystems:
            click.echo(
                f"{status.ecosystem}: {status.records} advisories ({status.withdrawn} "
                f"withdrawn) of {status.packages} packages, newest modified {status.newest}"
            )
        if report.skipped:
            click.echo(
                f"{len(report.skipped)} file(s) skipped, not OSV records: "
                + "; ".join(report.skipped[:3])
                + ("; ..." if len(report.skipped) > 3 else ""),
                err=True,
            )
        click.echo(f"imported {path} in {report.seconds:.1f} s into {directory}")
    return 0


@db_command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(as_json: bool) -> int:
    """What the database holds: per ecosystem, the advisories, when they were
    imported and the newest `modified` among them (how current they are)."""
    import dataclasses

    from conveyor.deps.advisories import DatabaseError, database_dir, status
    from conveyor.errors import EnvironmentProblem

    directory = database_dir(os.environ)
    try:
        found = status(directory)
    except DatabaseError as exc:
        raise EnvironmentProblem(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps(
                {"directory": directory, "ecosystems": [dataclasses.asdict(s) for s in found]},
                indent=2,
            )
        )
        return 0
    if not found:
        click.echo(f"no advisory database in {directory}: {_IMPORT_HINT}")
        return 0
    click.echo(f"advisory database in {directory}:")
    for s in found:
        click.echo(
            f"  {s.ecosystem}: {s.records} advisories ({s.withdrawn} withdrawn), "
            f"{s.packages} packages; newest modified {s.newest}; imported {s.imported} "
            f"from {s.source}"
        )
    return 0
