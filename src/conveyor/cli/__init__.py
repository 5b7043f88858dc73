"""The `conveyor` command: argument parsing, the one error boundary, exit codes.

Exit codes: 0 ok; 1 a job or gate failed; 2 usage, config or environment error;
3 a bug in Conveyor (with traceback); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, ClassVar

import click

from conveyor import __version__

if TYPE_CHECKING:
    from conveyor.model import Pipeline


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs, to keep start-up fast."""

    commands_by_module: ClassVar[dict[str, str]] = {
        "run": "conveyor.cli.run",
        "validate": "conveyor.cli.inspect",
        "list": "conveyor.cli.inspect",
        "graph": "conveyor.cli.inspect",
        "why": "conveyor.cli.cache",
        "cache": "conveyor.cli.cache",
        "history": "conveyor.cli.history",
        "show": "conveyor.cli.history",
        "stats": "conveyor.cli.history",
        "critical-path": "conveyor.cli.history",
        "metrics": "conveyor.cli.history",
        "flaky": "conveyor.cli.history",
        "trace": "conveyor.cli.history",
        "report": "conveyor.cli.history",
        "gates": "conveyor.cli.gates",
        "check": "conveyor.cli.gates",
        "audit": "conveyor.cli.audit",
        "docs": "conveyor.cli.docs",
        "remote": "conveyor.cli.remote",
        "worker": "conveyor.cli.worker",
        "import": "conveyor.cli.interop",
        "export": "conveyor.cli.interop",
        "deps": "conveyor.cli.deps",
        "artifacts": "conveyor.cli.artifacts",
        "backup": "conveyor.cli.backup",
        "serve": "conveyor.cli.serve",
        "init": "conveyor.cli.scaffold",
        "plan": "conveyor.cli.scaffold",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, without importing any."""
        return sorted(self.commands_by_module)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, its module imported now; None for a name no command has."""
        module = self.commands_by_module.get(cmd_name)
        if module is None:
            return None
        import importlib

        cmd = getattr(importlib.import_module(module), f"{cmd_name.replace('-', '_')}_command")
        assert isinstance(cmd, click.Command)
        return cmd


_FILE_HELP = "Pipeline file (default: conveyor.yml here or in a parent directory)."


def _file_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """`-f FILE` given after the command (`conveyor run -f ci.yml`): kept where `load`
    looks, as if given before it; given both ways, the two must agree."""
    if value is None:
        return
    shared = ctx.find_root().ensure_object(dict)
    before = shared.get("pipeline_file")
    if before is not None and before != value:
        raise click.UsageError(
            f"two pipeline files given: -f {before} before the command, -f {value} after it; "
            "give one",
            ctx,
        )
    shared["pipeline_file"] = value


pipeline_file_option = click.option(
    "-f",
    "--file",
    "pipeline_file",
    type=click.Path(dir_okay=False),
    default=None,
    expose_value=False,
    callback=_file_after_command,
    help=_FILE_HELP,
)
"""`-f FILE` on a command that loads the pipeline, as well as before the command."""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name="conveyor", help="Print the version and exit."
)
@click.option(
    "-f",
    "--file",
    "pipeline_file",
    type=click.Path(dir_okay=False),
    default=None,
    help=_FILE_HELP,
)
@click.pass_context
def cli(ctx: click.Context, pipeline_file: str | None) -> None:
    """Conveyor runs your pipeline as a fast, parallel graph of jobs."""
    ctx.ensure_object(dict)["pipeline_file"] = pipeline_file


def main(argv: list[str] | None = None) -> None:
    """The `conveyor` program: run the CLI and exit with its code."""
    sys.exit(run_cli(argv))


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the one place errors become exit codes)."""
    from conveyor.errors import ConveyorError

    try:
        # A command's return value: its exit code (None: 0).
        result: object = cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except ConveyorError as exc:
        click.echo(f"error: {exc.render()}" if not _located(exc) else exc.render(), err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:
        import traceback

        traceback.print_exc()
        click.echo(
            f"conveyor {__version__}: internal error (a bug in Conveyor, not in your pipeline); "
            "please report it with the traceback above",
            err=True,
        )
        return 3
    return result if isinstance(result, int) else 0


def _located(exc: Exception) -> bool:
    from conveyor.errors import ConfigError

    return isinstance(exc, ConfigError)


def _foreign(ctx: click.Context, path: str) -> Pipeline | None:
    """A GitHub Actions workflow or a `.gitlab-ci.yml` named with -f, translated (None:
    neither); what cannot run on this machine is said before anything runs."""
    name = path.replace(os.sep, "/")
    base = os.path.basename(name)
    if base.endswith(".gitlab-ci.yml") or (base.startswith(".gitlab-ci") and base.endswith(".yml")):
        return _gitlab(ctx, path)
    if name.endswith(("conveyor.yml", "conveyor.yaml")):
        return None
    if "/.github/workflows/" not in f"/{name}":
        from conveyor.config.loader import read_text

        head = read_text(os.path.abspath(path), path)
        if "script:" in head and "runs-on" not in head and "\njobs:" not in f"\n{head}":
            from conveyor.interop.gitlab.pipeline import looks_like_gitlab
            from conveyor.interop.gitlab.source import parse

            try:
                data = parse(head, path)
            except Exception:  # not for us to judge: conveyor.yml's loader says why
                data = None
            if looks_like_gitlab(path, data):
                return _gitlab(ctx, path)
        if not ("runs-on" in head or "\non:" in f"\n{head}" or '\n"on":' in head):
            return None
        from conveyor.config.loader import parse_yaml
        from conveyor.interop.github.workflow import looks_like_workflow

        if not looks_like_workflow(path, parse_yaml(head, path)):
            return None
    from conveyor.interop.github import load as load_workflow
    from conveyor.interop.github.workflow import Options

    opts = ctx.obj.get("github_options") if ctx.obj else None
    pipeline, notes = load_workflow(path, opts if isinstance(opts, Options) else Options())
    for note in notes:
        click.echo(f"conveyor: warning: {note}", err=True)
    return pipeline


def _gitlab(ctx: click.Context, path: str) -> Pipeline:
    """A `.gitlab-ci.yml` named with -f, translated; notes said before anything runs."""
    from conveyor.interop.gitlab import load as load_gitlab
    from conveyor.interop.gitlab.pipeline import Options

    opts = ctx.obj.get("gitlab_options") if ctx.obj else None
    pipeline, notes = load_gitlab(path, opts if isinstance(opts, Options) else Options())
    for note in notes:
        click.echo(f"conveyor: warning: {note}", err=True)
    return pipeline


def load(ctx: click.Context) -> Pipeline:
    """The validated pipeline named by -f (or found from the current directory): its
    errors located in the file."""
    from conveyor.config import find_pipeline_file, load_pipeline, locate_in_file
    from conveyor.errors import ConfigError
    from conveyor.graph.plan import check, check_outputs

    named: str | None = ctx.obj.get("pipeline_file") if ctx.obj else None
    path = named or find_pipeline_file()
    pipeline = _foreign(ctx, path) if named else None
    if pipeline is None:
        pipeline = load_pipeline(path)
    try:
        check(pipeline)
        check_outputs(pipeline)
    except ConfigError as exc:
        raise locate_in_file(exc, path) from None
    # What is loaded now (modules, the pipeline: hundreds of thousands of objects at
    # 1,000 jobs) lives as long as the command: the collector need not walk it again
    # each time it looks for cycles (5% of a 1,000-job run served from a remote cache).
    import gc

    gc.freeze()
    return pipeline
