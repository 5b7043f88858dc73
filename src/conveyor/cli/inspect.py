"""`conveyor validate`, `conveyor list` and `conveyor graph`: look without running."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from conveyor.cli import load, pipeline_file_option

if TYPE_CHECKING:
    from conveyor.model import Pipeline


@click.command("validate")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pipeline_file_option
@click.pass_context
def validate_command(ctx: click.Context, as_json: bool) -> int:
    """Check the pipeline file; print one located error, or a short summary (and, on
    stderr, a located warning for each input pattern that matches no file)."""
    pipeline = load(ctx)
    for line in _input_warnings(pipeline):
        click.echo(line, err=True)
    bases = list(dict.fromkeys(j.base for j in pipeline.jobs))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "file": pipeline.path,
                    "valid": True,
                    "jobs": len(bases),
                    "instances": len(pipeline.jobs),
                    "stages": list(pipeline.stages),
                }
            )
        )
    else:
        extra = (
            f" ({len(pipeline.jobs)} with matrix instances)"
            if len(pipeline.jobs) != len(bases)
            else ""
        )
        stages = f", {len(pipeline.stages)} stage(s)" if pipeline.stages else ""
        click.echo(f"{pipeline.path}: valid: {len(bases)} job(s){extra}{stages}")
    return 0


def _input_warnings(pipeline: Pipeline) -> list[str]:
    """`inputs:` patterns matching no file, located; nothing asked of git without inputs."""
    if not any(job.inputs for job in pipeline.jobs):
        return []
    from conveyor.checks.inputs import pipeline_unmatched, unmatched_message, workspace_pool
    from conveyor.config import locate_warnings

    found = pipeline_unmatched(pipeline, workspace_pool(pipeline.root))
    return locate_warnings([(u.path, unmatched_message(u)) for u in found], pipeline.path)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@pipeline_file_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> int:
    """List every job instance with its stage, needs and condition."""
    from conveyor.graph import plan as graph
    from conveyor.graph.plan import matrix_from

    pipeline = load(ctx)
    needs = graph.adjacency(pipeline)
    if as_json:
        rows = [
            {
                "name": j.name,
                "job": j.base,
                "stage": j.stage,
                "needs": needs[j.name],
                "if": j.condition,
                "when": j.when,
                "conditional": j.late,
                "matrix": dict(j.matrix),
                "matrix_from": [need for _, need, _ in j.matrix_from.refs]
                if j.matrix_from is not None
                else None,
            }
            for j in pipeline.jobs
        ]
        click.echo(json.dumps(rows, indent=2))
        return 0
    width = max(len(j.name) for j in pipeline.jobs)
    swidth = max([len(j.stage or "") for j in pipeline.jobs] + [5])
    click.echo(f"{'JOB':<{width}}  {'STAGE':<{swidth}}  NEEDS")
    for j in pipeline.jobs:
        line = f"{j.name:<{width}}  {(j.stage or '-'):<{swidth}}  {', '.join(needs[j.name]) or '-'}"
        if j.when != "on_success":
            line += f"  when: {j.when}"
        if j.condition:
            line += f"  if: {j.condition}"
        if j.late:
            line += "  (conditional: decided when it is ready)"
        if j.matrix_from is not None:
            line += f"  ({matrix_from(j)})"
        click.echo(line)
    return 0


@click.command("graph")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ascii", "dot", "mermaid", "json"]),
    default="ascii",
    show_default=True,
    help="How to draw the graph: a tree in text, Graphviz, Mermaid or JSON.",
)
@pipeline_file_option
@click.pass_context
def graph_command(ctx: click.Context, fmt: str) -> int:
    """Print the job graph (edges point from a job to what needs it)."""
    from conveyor.graph import formats as graph_formats

    pipeline = load(ctx)
    render = {
        "ascii": graph_formats.ascii_tree,
        "dot": graph_formats.dot,
        "mermaid": graph_formats.mermaid,
        "json": graph_formats.json_graph,
    }[fmt]
    click.echo(render(pipeline))
    return 0
