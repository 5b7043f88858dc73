"""A worker's bot sessions (Remote Workers API, v1test2) and their leases.

`--slots N` is N bot sessions with one lease each, each in a thread of its own. BuildGrid
0.4.4 also knows a session with a capacity (`worker.configs` "capacity"), but then one
session's long-poll for more work and the reports of its running leases would share one
sequence of calls; with a session per slot each thread is a plain loop:

    CreateBotSession (status OK, the platform as the primary device's properties)
    loop:  no lease   -> UpdateBotSession, long-polled: the server answers when it
                         assigns one, or after 80% of min(deadline, keepalive)
           a lease    -> run it in a thread; UpdateBotSession every HEARTBEAT with the
                         lease ACTIVE (the server answers at once: the session is at
                         capacity); the lease missing from the answer, or CANCELLED, is
                         a cancellation: the process tree is stopped, the lease dropped
           done       -> UpdateBotSession with the lease COMPLETED, its status and
                         Any(ActionResult): the server completes the operation and
                         writes the action cache (it may hand over the next lease in the
                         same answer)

A session the server no longer knows (INVALID_ARGUMENT "Bot does not exist" after its
keepalive expired, NOT_FOUND, DATA_LOSS, FAILED_PRECONDITION, ABORTED) is created again
under the same bot id; a lease that was running in it can no longer be reported (the
server has requeued it), so it is killed. A server that does not answer (UNAVAILABLE, a
restart) is retried with backoff for as long as it takes: running work goes on.

Stopping: `drain` (the first SIGTERM or Ctrl-C) takes no new lease, lets the running
ones finish (bounded by their timeouts) and report, tells the server the bot is
terminating (BOT_TERMINATING: BuildGrid assigns nothing more to it) and gives back any
lease assigned meanwhile (COMPLETED with UNAVAILABLE, which BuildGrid requeues). `kill`
(a second signal) stops the running jobs and gives their leases back the same way. A
worker killed outright (SIGKILL) cannot: its sessions expire after the server's keepalive
and their jobs are requeued; executor.local's watchdog stops the jobs it left.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.executor.interface import Cancel
from conveyor.reapi.channel import Connection
from conveyor.worker.run import UNAVAILABLE, Context, Outcome, run_lease

HEARTBEAT = 1.0
"""Seconds between two reports of a running lease: also how soon a cancellation is seen
(BuildGrid tells it only in the answer to one)."""
LONG_POLL = 30.0
"""The deadline of an UpdateBotSession waiting for work (the server answers earlier)."""
SHORT_CALL = 10.0
"""The deadline of an UpdateBotSession that must not wait (heartbeats, reports)."""
CANCEL_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL for a job the server cancelled."""


class SessionLost(Exception):
    """The server does not know the bot session any more."""


class Unreachable(Exception):
    """The server did not answer; try again later."""


class Interrupted(Exception):
    """The call was abandoned because the worker is stopping."""


class Fatal(Exception):
    """The server refuses this worker (auth, no Bots service): no point in retrying."""


@dataclass(frozen=True)
class LeaseDone:
    """What a worker says of a lease (for the CLI's line per lease)."""

    bot_id: str
    action: str
    """The action's digest, shortened."""
    exit_code: int | None
    seconds: float
    status: str
    """"ok", "timed out", "cancelled", "lost", "given back", or the error's message."""


class Worker:
    """N bot sessions against one server (see the module's docstring)."""

    def __init__(
        self,
        connection: Connection,
        context: Context,
        *,
        instance: str = "",
        slots: int = 1,
        platform: Sequence[tuple[str, str]] = (),
        on_lease: Callable[[LeaseDone], None] = lambda done: None,
        on_note: Callable[[str], None] = lambda note: None,
    ) -> None:
        from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
            remote_execution_pb2 as re_pb2,
        )
        from buildgrid.common.protos.google.devtools.remoteworkers.v1test2 import (
            bots_pb2,
            bots_pb2_grpc,
            worker_pb2,
        )

        self.connection = connection
        self.context = context
        self.instance = instance
        self.platform = tuple(platform)
        self.on_lease = on_lease
        self.on_note = on_note
        self._bots = bots_pb2
        self._worker = worker_pb2
        self._re = re_pb2
        self._stub = bots_pb2_grpc.BotsStub(connection.channel)
        host = socket.gethostname()
        # Bot ids are global on the server (BuildGrid closes a session whose id a new one
        # takes): the host and the process keep two workers on one machine apart.
        self.bot_ids = [f"{host}-{os.getpid()}-{i}" for i in range(slots)]
        self.draining = threading.Event()
        self.killed = threading.Event()
        self._wake = threading.Condition()
        self.fatal: Exception | None = None

    # -- the whole worker ---------------------------------------------------------------
    def run(self) -> None:
        """Run every slot until drained or killed (or the server refuses the worker:
        `fatal` says why)."""
        threads = [
            threading.Thread(target=self._slot, args=(bot_id,), name=f"slot-{bot_id}", daemon=True)
            for bot_id in self.bot_ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)

    def drain(self) -> None:
        """Take no new lease; finish and report the running ones, then stop."""
        self.draining.set()
        with self._wake:
            self._wake.notify_all()

    def kill(self) -> None:
        """Stop the running jobs now and give their leases back."""
        self.killed.set()
        self.drain()

    # -- calls ----------------------------------------------------------------------------
    def _call(self, method: Any, request: Any, timeout: float, *, interruptible: bool) -> Any:
        """One Bots call; its answer, or SessionLost / Unreachable / Interrupted / Fatal.
        An interruptible call (a long-poll) is abandoned when the worker drains."""
        grpc = self.connection.grpc
        future = method.future(request, timeout=timeout, metadata=self.connection.metadata)
        if interruptible:
            done = threading.Event()
            future.add_done_callback(lambda _f: done.set())
            while not done.wait(0.1):
                if self.draining.is_set():
                    future.cancel()
                    raise Interrupted()
        try:
            return future.result()
        except grpc.FutureCancelledError:
            raise Interrupted() from None
        except grpc.RpcError as exc:
            code = exc.code()
            details = " ".join(str(exc.details() or code.name).split())
            lost = {
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.DATA_LOSS,
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.ABORTED,
            }
            if code in lost:
                raise SessionLost(details) from None
            if code in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNIMPLEMENTED,
            ):
                raise Fatal(
                    f"{self.connection.url} refused the worker ({code.name}): {details}"
                ) from None
            raise Unreachable(f"{code.name}: {details}") from None

    def _create(self, bot_id: str) -> Any:
        bots = self._bots
        device = self._worker.Device(
            handle=bot_id,
            properties=[self._worker.Device.Property(key=k, value=v) for k, v in self.platform],
        )
        session = bots.BotSession(
            bot_id=bot_id,
            status=bots.BotStatus.OK,
            worker=self._worker.Worker(devices=[device]),
        )
        request = bots.CreateBotSessionRequest(parent=self.instance, bot_session=session)
        return self._call(self._stub.CreateBotSession, request, LONG_POLL, interruptible=True)

    def _update(self, session: Any, *, wait: bool) -> Any:
        request = self._bots.UpdateBotSessionRequest(name=session.name, bot_session=session)
        return self._call(
            self._stub.UpdateBotSession,
            request,
            LONG_POLL if wait else SHORT_CALL,
            interruptible=wait,
        )

    def _backoff(self, attempt: int) -> None:
        delay = min(5.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.0)
        with self._wake:
            self._wake.wait(delay)

    # -- one slot -------------------------------------------------------------------------
    def _slot(self, bot_id: str) -> None:
        session: Any = None
        failures = 0
        try:
            while not self.draining.is_set():
                try:
                    if session is None:
                        session = self._create(bot_id)
                        self.on_note(f"bot {bot_id}: session {session.name}")
                    failures = 0
                    lease = self._active(session)
                    if lease is None:
                        session = self._update(session, wait=True)
                    else:
                        session = self._work(bot_id, session, lease)
                except Interrupted:
                    break
                except SessionLost as exc:
                    if session is not None:
                        self.on_note(f"bot {bot_id}: session lost ({exc}): creating a new one")
                    session = None
                except Unreachable as exc:
                    if failures == 0:
                        self.on_note(f"bot {bot_id}: server unreachable ({exc}): retrying")
                    self._backoff(failures)
                    failures += 1
            if session is not None:
                self._leave(bot_id, session)
        except Fatal as exc:
            self.fatal = exc
            self.kill()

    def _active(self, session: Any) -> Any:
        for lease in session.leases:
            if lease.state == self._bots.LeaseState.ACTIVE:
                return lease
        return None

    def _action(self, lease: Any) -> tuple[Any, str]:
        """The lease's Action (its payload, or the Digest of one in the CAS) and that
        digest, short."""
        re_pb2 = self._re
        action = re_pb2.Action()
        if lease.payload.Is(action.DESCRIPTOR):
            lease.payload.Unpack(action)
            data = action.SerializeToString(deterministic=True)
            import hashlib

            return action, hashlib.sha256(data).hexdigest()[:12]
        digest = re_pb2.Digest()
        lease.payload.Unpack(digest)
        from conveyor.model import Digest

        data = self.context.store.get_bytes(Digest(digest.hash, digest.size_bytes))
        return re_pb2.Action.FromString(data), digest.hash[:12]

    def _work(self, bot_id: str, session: Any, lease: Any) -> Any:
        """Run `lease` to its end and report it; the session as the server last gave it."""
        if self.draining.is_set():
            return self._give_back(session, lease)
        action, short = self._action(lease)
        cancel = Cancel()
        box: list[Outcome] = []

        def target() -> None:
            try:
                box.append(run_lease(self.context, action, bot_id, cancel))
            except Exception as exc:  # a bug here must not take the slot down with it
                self.on_note(f"bot {bot_id}: lease {lease_id} failed in the worker: {exc!r}")
                box.append(Outcome(UNAVAILABLE, f"the worker failed: {exc!r}"))

        lease_id = lease.id
        runner = threading.Thread(
            target=target,
            name=f"lease-{lease.id}",
            daemon=True,
        )
        runner.start()
        failures = 0
        while runner.is_alive():
            runner.join(HEARTBEAT)
            if not runner.is_alive():
                break
            if self.killed.is_set():
                self._stop(runner, cancel, "the worker is stopping")
                self.on_lease(LeaseDone(bot_id, short, None, 0.0, "given back"))
                return self._give_back(session, self._lease(session, lease_id))
            try:
                session = self._update(session, wait=False)
                failures = 0
            except SessionLost:
                self._stop(runner, cancel, "the server dropped the session")
                self.on_lease(LeaseDone(bot_id, short, None, 0.0, "lost"))
                raise
            except Unreachable:
                failures += 1  # the job goes on; the next heartbeat tries again
                continue
            mine = self._lease(session, lease_id)
            if mine is None or mine.state == self._bots.LeaseState.CANCELLED:
                self._stop(runner, cancel, "the server cancelled it")
                self.on_lease(LeaseDone(bot_id, short, None, 0.0, "cancelled"))
                return session
        outcome = box[0] if box else Outcome(UNAVAILABLE, "the worker failed to run it")
        if outcome.cancelled:  # killed meanwhile
            return self._give_back(session, self._lease(session, lease_id))
        mine = self._lease(session, lease_id)
        if mine is None:
            return session
        mine.state = self._bots.LeaseState.COMPLETED
        mine.status.code = outcome.code
        mine.status.message = outcome.message
        if outcome.result is not None:
            mine.result.Pack(outcome.result)
        if self.draining.is_set():
            session.status = self._bots.BotStatus.BOT_TERMINATING
        session = self._report(session)
        status = {0: "ok", 4: "timed out"}.get(outcome.code, outcome.message or str(outcome.code))
        self.on_lease(LeaseDone(bot_id, short, outcome.exit_code, outcome.seconds, status))
        return session

    def _lease(self, session: Any, lease_id: str) -> Any:
        for lease in session.leases:
            if lease.id == lease_id:
                return lease
        return None

    def _stop(self, runner: threading.Thread, cancel: Cancel, reason: str) -> None:
        """Stop a lease's job: SIGTERM to its group, SIGKILL after CANCEL_GRACE."""
        cancel.reason = reason
        cancel.requested.set()
        runner.join(CANCEL_GRACE)
        cancel.force.set()
        runner.join()

    def _report(self, session: Any) -> Any:
        """Send a completed lease, retrying while the server does not answer (the result
        is only lost if the session is: SessionLost)."""
        attempt = 0
        while True:
            try:
                return self._update(session, wait=False)
            except Unreachable:
                if self.killed.is_set() or attempt > 20:
                    raise
                self._backoff(attempt)
                attempt += 1

    def _give_back(self, session: Any, lease: Any) -> Any:
        """Return a lease unrun: COMPLETED with UNAVAILABLE, which BuildGrid requeues."""
        if lease is not None:
            lease.state = self._bots.LeaseState.COMPLETED
            lease.status.code = UNAVAILABLE
            lease.status.message = "the worker is stopping: given back"
            lease.ClearField("result")
        session.status = self._bots.BotStatus.BOT_TERMINATING
        with contextlib.suppress(Unreachable, SessionLost, Interrupted):
            session = self._update(session, wait=False)
        return session

    def _leave(self, bot_id: str, session: Any) -> None:
        """Tell the server this bot is terminating (so it assigns it nothing more) and give
        back what it assigned meanwhile."""
        session.status = self._bots.BotStatus.BOT_TERMINATING
        with contextlib.suppress(Unreachable, SessionLost, Interrupted):
            session = self._update(session, wait=False)
            for _ in range(3):
                lease = self._active(session)
                if lease is None:
                    break
                session = self._give_back(session, lease)
        self.on_note(f"bot {bot_id}: stopped")


def platform_properties(
    given: Sequence[str], environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The bot's device properties: OSFamily and ISA as the client's keys name them
    (cache.keys.platform_facts), then each `k=v` given (which may replace them; a key
    given twice is offered with both values). ValueError for a malformed one."""
    from conveyor.cache.keys import platform_facts

    given_pairs: list[tuple[str, str]] = []
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--platform {item!r}: expected KEY=VALUE")
        given_pairs.append((key.strip(), value.strip()))
    keys = {k for k, _ in given_pairs}
    defaults = [(k, v) for k, v in platform_facts().items() if k not in keys]
    return [*defaults, *given_pairs]
