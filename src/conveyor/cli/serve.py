"""`conveyor serve`: the dashboard of this workspace's history, in a browser."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from conveyor.cli import load, pipeline_file_option

if TYPE_CHECKING:
    from conveyor.model import Pipeline


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs --token.",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free one; the URL printed says which).",
)
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    default=None,
    help="History database URL (default: $CONVEYOR_DB_URL, history.url, or the "
    "workspace's .conveyor/history.db).",
)
@click.option(
    "--token",
    envvar="CONVEYOR_SERVE_TOKEN",
    default=None,
    help="Require this token on every request (Authorization: Bearer, or open the "
    "dashboard once with ?token=...). Also $CONVEYOR_SERVE_TOKEN.",
)
@pipeline_file_option
@click.pass_context
def serve_command(
    ctx: click.Context, host: str, port: int, db_url: str | None, token: str | None
) -> int:
    """The dashboard: runs, a run's jobs and logs (live while it goes), trends, tests,
    cache, dependencies and artifacts, read-only, with the same data as JSON under /api
    and the Prometheus metrics at /metrics."""
    import socket

    from conveyor.errors import UsageError
    from conveyor.serve.guard import is_loopback

    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} makes the dashboard reachable from other machines: it needs a token",
            hint="add --token (or set CONVEYOR_SERVE_TOKEN), or keep --host 127.0.0.1",
        )
    if token is not None and len(token) < 16:
        raise UsageError(
            "--token: use at least 16 characters",
            hint="python -c 'import secrets; print(secrets.token_urlsafe())' makes one",
        )
    pipeline, root, url = _where(ctx, db_url)

    import uvicorn

    from conveyor.serve.app import create_app
    from conveyor.serve.settings import ServeSettings

    app = create_app(ServeSettings(root=root, db_url=url, token=token, pipeline=pipeline))
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        from conveyor.errors import EnvironmentProblem

        raise EnvironmentProblem(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another --port (0: any free one)",
        ) from None
    sock.listen(2048)  # connections wait in the backlog until the server takes them
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    click.echo(f"conveyor dashboard at http://{shown}:{bound}/ (^C to stop)")
    if token:
        click.echo(f"  open http://{shown}:{bound}/?token=<the token> once to log in")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _where(ctx: click.Context, db_url: str | None) -> tuple[Pipeline | None, str, str]:
    """(the pipeline or None, the workspace root, the database URL)."""
    from conveyor.history.location import database_url

    named = ctx.obj.get("pipeline_file") if ctx.obj else None
    if named is None and db_url is not None:
        from conveyor.config import find_pipeline_file

        if not os.path.isfile(find_pipeline_file()):
            return None, os.getcwd(), db_url  # a database alone: no workspace needed
    pipeline = load(ctx)
    url = db_url or database_url(pipeline.root, pipeline.history_url, os.environ)
    return pipeline, pipeline.root, url
