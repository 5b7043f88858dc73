"""`conveyor gates` (a past run's gates, evaluated again against the gates as they are
now) and `conveyor check` (the checks before the build, and after it, on demand)."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from conveyor.cli import load, pipeline_file_option


@click.command("gates")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also as JUnit XML.")
@click.option(
    "--write-baseline",
    is_flag=True,
    help="Record the run's findings in the findings gates' baseline files (known, not new).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the gates as JSON.")
@pipeline_file_option
@click.pass_context
def gates_command(
    ctx: click.Context,
    run_id: str | None,
    junit_file: str | None,
    write_baseline: bool,
    as_json: bool,
) -> int:
    """Evaluate a run's gates again (default: the latest run), with the thresholds as
    `conveyor.yml` has them now, against what that run measured."""
    from conveyor.cli.view import gate_table
    from conveyor.gates.review import review
    from conveyor.run.rundir import find_run_dir, gate_dict, read_summary

    pipeline = load(ctx)
    run_dir = find_run_dir(pipeline.root, run_id)
    summary = read_summary(run_dir)
    found = review(
        pipeline,
        run_dir,
        wall_time=summary.wall_time,
        ran=summary.ran,
        environ=os.environ,
        write_baseline=write_baseline,
    )
    for written in found.baselines:
        click.echo(f"{written.findings} finding(s) written to {written.path}", err=True)
    for note in found.left_out:
        click.echo(f"warning: {note}", err=True)
    results = found.results
    if junit_file:
        from conveyor.gates.junit import write

        write(junit_file, results)
    run = summary.run_id
    if as_json:
        click.echo(json.dumps({"run_id": run, "gates": [gate_dict(g) for g in results]}, indent=2))
    elif not results:
        click.echo(f"run {run}: no gates to evaluate (none declared, or nothing measured)")
    else:
        click.echo(f"run {run}, gates as conveyor.yml has them now:")
        for line in gate_table(results):
            click.echo(line)
    return 1 if found.blocking else 0


@click.command("check")
@click.option("--after", "after", is_flag=True, help="Also the checks after the build, now.")
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False),
    help="Write the secrets found as SARIF 2.1.0 (for code scanning).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pipeline_file_option
@click.pass_context
def check_command(ctx: click.Context, after: bool, sarif_file: str | None, as_json: bool) -> int:
    """The checks before the build (tool versions, disk, environment, manifests,
    lockfiles, committed secrets), as `conveyor run` does them first. Without `checks:`
    in the file: manifests, lockfiles and secrets with their defaults."""
    from conveyor.checks.standalone import check_workspace
    from conveyor.cli.view import check_lines
    from conveyor.events import ChecksFinished
    from conveyor.run.rundir import check_dict

    checked = check_workspace(load(ctx), os.environ, after=after)
    if sarif_file and checked.scanned:
        from conveyor.reports.sarif import write_sarif

        write_sarif(list(checked.findings), "conveyor-secrets", "1", sarif_file)
    if as_json:
        click.echo(json.dumps([check_dict(c) for c in checked.results], indent=2))
    else:
        for phase, items in (("before", checked.before), ("after", checked.after)):
            if items:
                for line in check_lines(ChecksFinished(phase, items, time.time())):
                    click.echo(line)
        if not checked.results:
            click.echo("nothing to check: no `requires:` or `checks:` in the file")
    failed = checked.failed
    if failed and not as_json:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(c.check for c in failed)}", err=True)
    sys.stdout.flush()
    return 1 if failed else 0
