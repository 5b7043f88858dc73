"""`conveyor gates` (a past run's gates, evaluated again against the gates as they are
now) and `conveyor check` (the checks before the build, and after it, on demand)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from conveyor.cli import load


def _run_dir(root: str, run_id: str | None) -> str:
    from conveyor.errors import UsageError

    base = os.path.join(root, ".conveyor", "runs")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    if run_id is None:
        finished = [n for n in names if os.path.exists(os.path.join(base, n, "summary.json"))]
        if not finished:
            raise UsageError("no finished run here yet", hint="`conveyor run` makes one")
        return os.path.join(base, finished[-1])
    matches = [n for n in names if n.startswith(run_id)]
    if len(matches) != 1:
        hint = (
            f"it matches {len(matches)} runs: {', '.join(matches[:5])}"
            if matches
            else "`conveyor history` lists the runs"
        )
        raise UsageError(f"no single run '{run_id}' in {base}", hint=hint)
    return os.path.join(base, matches[0])


@click.command("gates")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also as JUnit XML.")
@click.option(
    "--write-baseline",
    is_flag=True,
    help="Record the run's findings in the findings gates' baseline files (known, not new).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the gates as JSON.")
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
    from conveyor.gates.diffcov import ChangedLines
    from conveyor.gates.evaluate import Context, evaluate, judged_when_partial
    from conveyor.gates.evaluate import write_baseline as save_baseline
    from conveyor.gates.keeper import load_quarantine
    from conveyor.gates.measure import Measurements, load_all
    from conveyor.run.rundir import gate_dict

    pipeline = load(ctx)
    run_dir = _run_dir(pipeline.root, run_id)
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as fh:
        summary = json.load(fh)
    parts = load_all(run_dir)
    by_scope = {m.scope: m for m in parts}
    own: list[Any] = []
    scanned = os.path.exists(os.path.join(run_dir, "secrets.sarif"))
    if scanned:
        from conveyor.reports.sarif import read_sarif

        own = read_sarif(os.path.join(run_dir, "secrets.sarif"), pipeline.root, pipeline.root)
    context = Context(
        root=pipeline.root,
        quarantine=load_quarantine(pipeline.root),
        changed=ChangedLines(pipeline.root, dict(os.environ)),
        command=None,
        own_findings=own,
        own_scanned=scanned,
    )
    if write_baseline:
        # Before evaluating: the gates then count only findings newer than these.
        findings = [f for m in parts if m.scope != "pipeline" for f in m.findings] + own
        for scope_gates in [pipeline.gates, *(j.gates for j in pipeline.jobs)]:
            if scope_gates.findings is not None and scope_gates.findings.baseline:
                n = save_baseline(pipeline.root, scope_gates.findings.baseline, findings)
                click.echo(f"{n} finding(s) written to {scope_gates.findings.baseline}", err=True)
    results = []
    for job in pipeline.jobs:
        m = by_scope.get(job.name)
        if job.gates and m is not None:
            results += evaluate(_without_commands(job.gates), m, context)
    if pipeline.gates:
        jobs = [m for m in parts if m.scope != "pipeline"]
        whole = by_scope.get("pipeline") or Measurements.combined(jobs, summary.get("wall_time"))
        whole.duration = summary.get("wall_time")
        ran = {j["name"] for j in summary.get("jobs", []) if j.get("status") != "skipped"}
        judged, notes = judged_when_partial(
            evaluate(_without_commands(pipeline.gates), whole, context),
            ran,
            {j.name for j in pipeline.jobs},
        )
        for note in notes:
            click.echo(f"warning: {note}", err=True)
        results += judged
    if junit_file:
        from conveyor.gates.junit import write

        write(junit_file, results)
    run = os.path.basename(run_dir)
    if as_json:
        click.echo(json.dumps({"run_id": run, "gates": [gate_dict(g) for g in results]}, indent=2))
    elif not results:
        click.echo(f"run {run}: no gates to evaluate (none declared, or nothing measured)")
    else:
        click.echo(f"run {run}, gates as conveyor.yml has them now:")
        for line in gate_table(results):
            click.echo(line)
    return 1 if any(g.blocking for g in results) else 0


def _without_commands(gates: Any) -> Any:
    """Command gates ran against the workspace as it was: not re-run for a past run."""
    import dataclasses

    return dataclasses.replace(gates, commands=())


@click.command("check")
@click.option("--after", "after", is_flag=True, help="Also the checks after the build, now.")
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(dir_okay=False),
    help="Write the secrets found as SARIF 2.1.0 (for code scanning).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def check_command(ctx: click.Context, after: bool, sarif_file: str | None, as_json: bool) -> int:
    """The checks before the build (tool versions, disk, environment, manifests,
    lockfiles, committed secrets), as `conveyor run` does them first. Without `checks:`
    in the file: manifests, lockfiles and secrets with their defaults."""
    from conveyor.cache.local import default_root
    from conveyor.checks.before import run_before
    from conveyor.cli.view import check_lines
    from conveyor.events import ChecksFinished
    from conveyor.graph import context as run_context
    from conveyor.graph import plan as graph
    from conveyor.run.rundir import check_dict

    pipeline = load(ctx)
    environ = dict(os.environ)
    plan = graph.plan(pipeline, run_context.detect(pipeline.root, environ, None), [])
    found = run_before(
        pipeline,
        [pj.job for pj in plan.runnable],
        environ,
        cache_dir=default_root(environ),
        defaults=True,
    )
    results = list(found.results)
    phases = [("before", list(found.results))]
    if after and pipeline.checks.after is not None:
        from conveyor.checks.after import run_after
        from conveyor.model import RunContext

        later = run_after(
            pipeline.root, pipeline.checks.after, (), RunContext(None, None, None, "push")
        )
        later = [c for c in later if c.check != "build report"]
        results += later
        phases.append(("after", later))
    if sarif_file and found.scanned:
        from conveyor.reports.sarif import write_sarif

        write_sarif(found.findings, "conveyor-secrets", "1", sarif_file)
    if as_json:
        click.echo(json.dumps([check_dict(c) for c in results], indent=2))
    else:
        for phase, items in phases:
            if items:
                for line in check_lines(ChecksFinished(phase, tuple(items), time.time())):
                    click.echo(line)
        if not results:
            click.echo("nothing to check: no `requires:` or `checks:` in the file")
    failed = [c for c in results if c.blocking]
    if failed and not as_json:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(c.check for c in failed)}", err=True)
    sys.stdout.flush()
    return 1 if failed else 0
