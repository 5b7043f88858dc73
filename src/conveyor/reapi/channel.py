"""One connection to a REAPI v2 server: the gRPC channel (plain or TLS, mutual TLS), the
credential sent with every call, and calls retried with backoff.

Calls that fail with UNAVAILABLE or RESOURCE_EXHAUSTED are retried `retries` times with
exponential backoff and jitter; each call has the deadline `timeout`. Whatever still
fails is raised as the caller's error class (`RemoteUnavailable` unless another is
given: the remote cache raises its StoreUnavailable) with a one-line `reason`: "cannot
reach ...", "TLS handshake failed", "auth refused", "no answer within ...". The
credential (from the variable `auth_env` names) travels as metadata and appears in no
message.

grpc is imported when a connection is made, never at import: `conveyor --help` and a
run without a remote do not load it. One channel serves every thread and every service
(gRPC's channels and stubs are thread-safe).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from conveyor.model import Remote

if TYPE_CHECKING:
    import grpc

T = TypeVar("T")

# Backoff between retries: 0.5 s, 1 s, 2 s... (capped), each times a random factor in
# [0.5, 1] so that many clients do not come back in step. Three retries span at least
# 1.75 s: longer than the channel's own reconnection backoff (at most 1 s, plus its
# jitter), so a server back from a restart is reached within the retries.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 5.0


class RemoteUnavailable(Exception):
    """A call to the server failed for good. `reason` is one line (what a summary or a
    warning shows), `where` the server's URL (or the file that could not be read)."""

    def __init__(self, message: str, *, reason: str, where: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.where = where


class ErrorClass(Protocol):
    """What a connection raises: RemoteUnavailable or the caller's own class."""

    def __call__(self, message: str, *, reason: str, where: str) -> Exception: ...


class Connection:
    """A channel to a REAPI server with its credential, and `call` with retries."""

    def __init__(
        self,
        remote: Remote,
        environ: Mapping[str, str],
        *,
        error: ErrorClass = RemoteUnavailable,
        what: str = "remote cache",
    ) -> None:
        """Prepare the channel (gRPC connects on the first call); `error` if the URL,
        the TLS files or the credential's variable are not usable. `what` names the
        server in those messages ("remote cache", "remote executor")."""
        import grpc

        self.grpc = grpc
        self.remote = remote
        self.url = remote.url
        self.instance_name = remote.instance_name
        self._error = error
        self._what = what
        self.metadata = self._credential(remote, environ)
        self.channel = self._open_channel(remote)

    def _credential(
        self, remote: Remote, environ: Mapping[str, str]
    ) -> tuple[tuple[str, str], ...]:
        if remote.auth_env is None:
            return ()
        value = environ.get(remote.auth_env)
        if not value:
            raise self._error(
                f"the {self._what}'s credential variable {remote.auth_env} is not set",
                reason=f"{remote.auth_env} is not set",
                where=remote.url,
            )
        header = remote.auth_header.lower()  # gRPC metadata keys are lower case
        # A bare token in `authorization` is a bearer token (what BuildGrid, Buildbarn
        # and most servers expect); a value with its own scheme ("Basic ...") is kept.
        if header == "authorization" and " " not in value.strip():
            value = f"Bearer {value.strip()}"
        return ((header, value),)

    def _open_channel(self, remote: Remote) -> grpc.Channel:
        grpc = self.grpc
        scheme, sep, target = remote.url.partition("://")
        if not sep or scheme not in ("grpc", "grpcs") or not target.strip("/"):
            raise self._error(
                f"{self._what} URL {remote.url!r} is not grpc://host:port or grpcs://host:port",
                reason="bad URL",
                where=remote.url,
            )
        target = target.rstrip("/")
        options = [
            # BatchReadBlobs answers carry up to max_batch_total_size_bytes of data plus
            # the digests: over gRPC's 4 MiB default for a full batch of small blobs.
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            # gRPC waits up to 120 s between reconnections by default, failing every call
            # meanwhile: a server back after a restart would look down for minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if scheme == "grpc":
            return grpc.insecure_channel(target, options=options)
        if (remote.client_cert is None) != (remote.client_key is None):
            raise self._error(
                "mutual TLS needs both client_cert and client_key",
                reason="incomplete client certificate",
                where=remote.url,
            )
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self._read(remote.ca_file),
            private_key=self._read(remote.client_key),
            certificate_chain=self._read(remote.client_cert),
        )
        return grpc.secure_channel(target, credentials, options=options)

    def _read(self, path: str | None) -> bytes | None:
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise self._error(
                f"cannot read {path} for TLS with {self.url}: {exc.strerror}",
                reason=exc.strerror or str(exc),
                where=path,
            ) from exc

    def close(self) -> None:
        """Close the channel (calls after this fail)."""
        self.channel.close()

    def call(
        self,
        what: str,
        method: Callable[..., T],
        request: Any,
        *,
        passthrough: frozenset[Any] = frozenset(),
        timeout: float | None = None,
    ) -> T:
        """`method(request)` with the deadline (`timeout`, else the remote's) and the
        credential, retried with backoff on UNAVAILABLE and RESOURCE_EXHAUSTED; an
        RpcError whose code is in `passthrough` is re-raised for the caller to read,
        any other becomes the connection's error. A callable `request` makes a request
        stream per attempt (a stream cannot be replayed)."""
        grpc = self.grpc
        retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
        attempt = 0
        while True:
            try:
                return method(
                    request() if callable(request) else request,
                    timeout=self.remote.timeout if timeout is None else timeout,
                    metadata=self.metadata,
                )
            except grpc.RpcError as exc:
                code = exc.code()
                if code in passthrough:
                    raise
                if code in retryable and attempt < self.remote.retries:
                    self.backoff(attempt)
                    attempt += 1
                    continue
                raise self.unavailable(what, exc, attempt) from None

    def backoff(self, attempt: int) -> None:
        """Back off before retry `attempt`: half the delay asleep (a server answering
        UNAVAILABLE itself is not hammered), then up to the other half waiting for the
        channel to be ready. A channel whose server went away retries its connection on
        a backoff of its own (at most a second here): the retry is made as soon as it
        has reconnected."""
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0)
        time.sleep(delay / 2)
        ready = self.grpc.channel_ready_future(self.channel)
        try:
            ready.result(timeout=delay / 2)
        except self.grpc.FutureTimeoutError:
            ready.cancel()

    def unavailable(self, what: str, exc: Any, retried: int = 0) -> Exception:
        """A failed call as the connection's error, with a one-line reason."""
        grpc = self.grpc
        code = exc.code()
        details = " ".join(str(exc.details() or code.name).split())
        where = self.url
        after = f" after {retried} {'retry' if retried == 1 else 'retries'}" if retried else ""
        if code == grpc.StatusCode.UNAVAILABLE:
            lowered = details.lower()
            if "ssl" in lowered or "handshake" in lowered or "certificate" in lowered:
                reason, message = "TLS handshake failed", f"TLS with {where} failed: {details}"
            elif where.startswith("grpcs://") and "socket closed" in lowered:
                # A server that wants a client certificate and gets none (or one it does
                # not trust) closes the connection mid-handshake: it was reached.
                reason = "TLS handshake failed"
                hint = (
                    "the server closed the connection during the handshake: does it ask "
                    "for a client certificate? (remote.client_cert and client_key)"
                    if self.remote.client_cert is None
                    else "the server closed the connection during the handshake: does it "
                    "trust remote.client_cert?"
                )
                message = f"TLS with {where} failed: {hint} ({details})"
            else:
                reason = f"cannot reach {where}"
                message = f"cannot reach {where}{after} ({what}): {details}"
        elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            reason = "auth refused"
            hint = (
                f" (the credential from {self.remote.auth_env})"
                if self.remote.auth_env
                else " (no credential configured: remote.auth_env)"
            )
            message = f"{where} refused {what}{hint}: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            reason = f"no answer within {self.remote.timeout:g} s"
            message = f"{where} did not answer {what} within {self.remote.timeout:g} s{after}"
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            reason = "server overloaded"
            message = f"{where} is overloaded{after} ({what}): {details}"
        else:
            reason = f"{code.name.lower()} from the server"
            message = f"{where} answered {what} with {code.name}: {details}"
        return self._error(message, reason=reason, where=where)
