"""What every request goes through: read-only methods, the token, the Host of a
dashboard on loopback, and the security headers of every response.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which buffers the
server-sent events of a live run)."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "conveyor_token"
READ_ONLY = ("GET", "HEAD")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""The policy of every page. The build scan, a self-contained page with its own inline
style and script, is sent with `SCAN_CSP` instead, in a sandbox (an origin of its own)."""
SCAN_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; sandbox allow-scripts"
)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the dashboard on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """The middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                names = {k.lower() for k, _ in given}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (
                        b"server-timing",
                        f"app;dur={(time.perf_counter() - began) * 1000:.1f}".encode(),
                    ),
                ]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = given + extra
            await send(message)

        if scope["method"] not in READ_ONLY:
            await _plain(secured, 405, "read-only: only GET and HEAD", [(b"allow", b"GET, HEAD")])
            return
        if self.token is None:
            # On loopback without a token: refuse other Host names, so that a web page
            # elsewhere cannot read the dashboard through DNS rebinding.
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host and name not in LOOPBACK_NAMES:
                await _plain(secured, 421, f"this dashboard answers to localhost, not {host}")
                return
            await self.app(scope, receive, secured)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            if not self._valid(query["token"]):
                await _plain(secured, 401, "wrong token")
                return
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            where = scope.get("path", "/") + (f"?{rest}" if rest else "")
            cookie = f"{COOKIE}={query['token']}; Path=/; HttpOnly; SameSite=Strict" + (
                "; Secure" if scope.get("scheme") == "https" else ""
            )
            await secured(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", where.encode()), (b"set-cookie", cookie.encode())],
                }
            )
            await secured({"type": "http.response.body", "body": b""})
            return
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if given is None and "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no token
                jar = SimpleCookie()
            if COOKIE in jar:
                given = jar[COOKIE].value
        if given is None or not self._valid(given):
            await _plain(
                secured,
                401,
                "this dashboard needs its token: open it with ?token=... once, or send "
                "Authorization: Bearer ...",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, secured)

    def _valid(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token)


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
