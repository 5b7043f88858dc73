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
    from ruamel.yaml import YAML

    from conveyor.config.loader import locate, parse_yaml, read_text, relpath
    from conveyor.errors import ConfigError
    from conveyor.interop.github.workflow import Options, translate

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
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.dump(data, sys.stdout)
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
