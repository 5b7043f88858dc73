"""Every command and every option says what it is for in `--help`."""

from __future__ import annotations

import click
import pytest

from conveyor.cli import cli


def _commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: str) -> None:
        found.append((path, cmd))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"{path} {name}"
                walk(sub, f"{path} {name}")

    walk(cli, "conveyor")
    return found


COMMANDS = _commands()


def test_the_walk_finds_every_command() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"conveyor run", "conveyor stats", "conveyor cache prune", "conveyor docs"} <= paths


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_and_option_is_described(path: str, cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"`{path}` has no description"
    ctx = click.Context(cmd, info_name=path)
    undescribed = [
        "/".join(param.opts)
        for param in cmd.get_params(ctx)
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert not undescribed, f"`{path} --help` leaves undescribed: {', '.join(undescribed)}"
