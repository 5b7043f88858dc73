"""`conveyor worker`: run the actions a REAPI server schedules (a Remote Workers API bot)."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

import click

from conveyor.errors import UsageError

if TYPE_CHECKING:
    from conveyor.worker.bot import LeaseDone


@click.command("worker")
@click.option(
    "--server", "url", required=True, metavar="URL", help="grpc://host:port or grpcs://host[:port]."
)
@click.option(
    "--instance", default="", metavar="NAME", help='The REAPI instance name (default: "").'
)
@click.option(
    "--slots", type=click.IntRange(min=1), default=1, show_default=True, help="Leases run at once."
)
@click.option(
    "--platform",
    "platform_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A property the server matches actions against (repeatable); OSFamily and ISA "
    "are this machine's unless given.",
)
@click.option(
    "--auth-env", metavar="VAR", help="The variable holding the credential sent to the server."
)
@click.option(
    "--ca-file", type=click.Path(dir_okay=False), help="PEM roots to verify a grpcs server by."
)
@click.option(
    "--client-cert", type=click.Path(dir_okay=False), help="PEM client certificate (mutual TLS)."
)
@click.option("--client-key", type=click.Path(dir_okay=False), help="PEM client key (mutual TLS).")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="The worker's blob cache "
    "(default: $CONVEYOR_CACHE_DIR/worker or ~/.cache/conveyor/worker).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False),
    help="Where each lease's directory is made (default: work/ in the cache directory, "
    "so that inputs can be hard-linked).",
)
def worker_command(
    url: str,
    instance: str,
    slots: int,
    platform_items: tuple[str, ...],
    auth_env: str | None,
    ca_file: str | None,
    client_cert: str | None,
    client_key: str | None,
    cache_dir: str | None,
    work_dir: str | None,
) -> int:
    """Run the actions a REAPI server (BuildGrid) schedules: a bot of the Remote Workers
    API with SLOTS sessions. Each lease's inputs are built from the CAS through a local
    blob cache, its command runs in a fresh directory as its own process group (timeout,
    the whole tree stopped), and its outputs and log are uploaded. SIGTERM or Ctrl-C
    drains (running leases finish and are reported, then exit 0); a second one stops
    them and gives their leases back."""
    from conveyor.config.remote import url_problem
    from conveyor.model import Remote
    from conveyor.worker.bot import platform_properties

    problem = url_problem(url)
    if problem is not None:
        raise UsageError(f"--server: {problem}")
    try:
        platform = platform_properties(platform_items)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    environ = dict(os.environ)
    remote = Remote(
        url=url,
        instance_name=instance,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
        auth_env=auth_env,
        timeout=30.0,
    )
    from conveyor.cache.interface import StoreUnavailable
    from conveyor.cache.local import default_root
    from conveyor.cache.remote import RemoteStore
    from conveyor.executor.local import LocalExecutor
    from conveyor.reapi.channel import Connection
    from conveyor.worker.bot import Worker
    from conveyor.worker.materialize import BlobCache
    from conveyor.worker.run import Context

    connection = Connection(remote, environ, error=StoreUnavailable, what="execution server")
    store = RemoteStore(remote, environ, connection=connection, cas_writes=True)
    store.server_capabilities()  # unreachable, unknown instance: one line, exit 2
    cache_root = os.path.abspath(cache_dir or os.path.join(default_root(environ), "worker"))
    work_root = os.path.abspath(work_dir or os.path.join(cache_root, "work"))
    try:
        os.makedirs(work_root, exist_ok=True)
        cache = BlobCache(cache_root, store)
    except OSError as exc:
        raise UsageError(f"cannot use {exc.filename}: {exc.strerror}") from None
    context = Context(store, cache, LocalExecutor(grace=5.0), work_root, environ)

    def on_lease(done: LeaseDone) -> None:
        code = "-" if done.exit_code is None else str(done.exit_code)
        click.echo(
            f"{done.bot_id}: {done.action} exit {code} in {done.seconds:.2f} s ({done.status})"
        )

    worker = Worker(
        connection,
        context,
        instance=instance,
        slots=slots,
        platform=platform,
        on_lease=on_lease,
        on_note=click.echo,
    )
    shown = " ".join(f"{k}={v}" for k, v in platform)
    click.echo(f"conveyor worker: {url} instance {instance!r}, {slots} slot(s), {shown}")
    click.echo(f"bot ids: {', '.join(worker.bot_ids)}")

    signals = [0]

    def stop(signum: int, _frame: object) -> None:
        signals[0] += 1
        if signals[0] == 1:
            click.echo(f"conveyor worker: {signal.Signals(signum).name}: draining", err=True)
            threading.Thread(target=worker.drain, daemon=True).start()
        else:
            click.echo("conveyor worker: stopping the running jobs", err=True)
            threading.Thread(target=worker.kill, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    worker.run()
    if worker.fatal is not None:
        raise UsageError(str(worker.fatal))
    return 0 if signals[0] <= 1 else 130
