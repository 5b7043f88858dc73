"""`conveyor import FILE`: a GitHub Actions workflow or a .gitlab-ci.yml as the
conveyor.yml Conveyor runs."""

from __future__ import annotations

import os
import sys

import click


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--event", default="push", show_default=True, help="The event to translate for.")
@click.option("--input", "inputs", metavar="NAME=VALUE", multiple=True, help="A workflow input.")
def import_command(file: str, event: str, inputs: tuple[str, ...]) -> int:
    """Print the conveyor.yml that `conveyor run -f FILE` runs for a GitHub workflow or a
    .gitlab-ci.yml."""
    from conveyor.config.loader import locate, parse_yaml, read_text, relpath
    from conveyor.errors import ConfigError
    from conveyor.interop.github.workflow import SPEC_ENV, Options, translate

    abspath = os.path.abspath(file)
    shown = relpath(abspath)
    text = read_text(abspath, shown)
    given = dict(i.partition("=")[::2] for i in inputs)
    base = os.path.basename(abspath)
    if base.endswith(".gitlab-ci.yml") or (base.startswith(".gitlab-ci") and base.endswith(".yml")):
        data, notes = _gitlab(abspath, event)
    else:
        try:
            done = translate(abspath, parse_yaml(text, shown), Options(event=event, inputs=given))
        except ConfigError as exc:
            raise locate(exc, text, shown) from None
        data, notes = done.data, done.notes
    for note in notes:
        click.echo(f"conveyor: warning: {note}", err=True)
    click.echo(f"# conveyor.yml of {shown} (`conveyor import`), for the {event} event.")
    jobs = data.get("jobs")
    if isinstance(jobs, dict) and any(SPEC_ENV in (j.get("env") or {}) for j in jobs.values()):
        click.echo(
            f"# A GitHub job runs its steps with Conveyor's step runner: {SPEC_ENV} holds\n"
            "# the steps and what they read (JSON; `$\\u007b{` keeps GitHub's own `${{ }}`\n"
            "# from Conveyor's)."
        )
    from conveyor.interop.export import yaml_text

    click.echo(yaml_text(data), nl=False)
    return 0


@click.command("export")
@click.argument("target", type=click.Choice(["github", "gitlab"]))
@click.option("-o", "--output", metavar="PATH", default=None, help="Write here (default: stdout).")
@click.pass_context
def export_command(ctx: click.Context, target: str, output: str | None) -> int:
    """Write conveyor.yml as a GitHub Actions workflow or a .gitlab-ci.yml."""
    from conveyor.cli import load
    from conveyor.config import find_pipeline_file
    from conveyor.config.build import merged_jobs
    from conveyor.config.loader import parse_yaml, read_text
    from conveyor.errors import ConfigError
    from conveyor.interop.export import render

    pipeline = load(ctx)
    named = ctx.obj.get("pipeline_file") if ctx.obj else None
    path = named or find_pipeline_file()
    data = parse_yaml(read_text(path), path)
    try:
        text = render(target, pipeline, merged_jobs(data), os.path.basename(path))
    except ConfigError as exc:
        raise ConfigError(f"cannot export to {target}: {exc.message}", hint=exc.hint) from None
    if output is None:
        sys.stdout.write(text)
    else:
        from conveyor.fsutil import atomic_write

        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        atomic_write(output, text.encode())
        click.echo(f"wrote {output}", err=True)
    return 0


def _gitlab(abspath: str, event: str) -> tuple[dict[str, object], list[str]]:
    """A `.gitlab-ci.yml` as conveyor.yml's data, errors located in its files."""
    from conveyor.errors import ConfigError
    from conveyor.interop.gitlab import located
    from conveyor.interop.gitlab.pipeline import Options, translate

    try:
        done = translate(abspath, Options(event=event))
    except ConfigError as exc:
        raise located(exc, abspath, None) from None
    return done.data, done.notes
