"""A headless Chromium driven over the DevTools protocol on a pipe (no library, no port).

`--window-size` cannot test a phone: headless Chromium clamps a window to 500 pixels
wide and takes its own toolbar's height off. Device metrics set over the protocol give
the exact viewport, and a mobile one reads the page's viewport tag as a phone does."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Chromium on this machine stalls or floods a closed network without these: no sandbox
# (root), no GPU, and none of its background connections. The dashboard's browser tests
# start it with the same flags (through Playwright).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The browser's path; a skip without one, a failure where CI promises one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CONVEYOR_TESTS_NEED_BROWSER"):
        pytest.fail("CI installs Chromium; it is not on PATH")
    pytest.skip("Chromium is not installed (.ci/run installs it)")


class Browser:
    """One page of a running Chromium: open a file at a viewport size, evaluate a
    script there, take screenshots."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._proc = proc
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next = 0
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable")

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._next

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._in], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium quit (exit {self._proc.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        data: dict[str, Any] = json.loads(message)
        return data

    def _call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        sent = self._send(method, params, session)
        deadline = time.monotonic() + 60
        while True:
            message = self._receive(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self._events.append(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self._call(method, self._session, **params)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._receive(deadline))

    def open(self, page: Path, width: int, height: int, *, mobile: bool = False) -> None:
        """`page` in a viewport of width x height CSS pixels, loaded."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )
        self._events.clear()
        self.call("Page.navigate", url=page.as_uri())
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a script run in the page (a thrown error fails the test)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"the script threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_height: int | None = None) -> None:
        """A PNG of the viewport, or of the page's first `full_height` pixels."""
        params: dict[str, Any] = {"format": "png"}
        if full_height is not None:
            width = self.evaluate("document.documentElement.clientWidth")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": full_height, "scale": 1}
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))


# --remote-debugging-pipe talks on descriptors 3 (in) and 4 (out): a trampoline puts the
# pipes there (a POSIX shell cannot name a descriptor above 9).
_ON_3_AND_4 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
_ON_3_AND_4 += "os.execvp(sys.argv[3], sys.argv[3:])"


def _above_4(fd: int) -> int:
    """The descriptor moved out of the way of 3 and 4, which the trampoline sets from it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


@contextmanager
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium for the test, stopped at its end."""
    to_read, to_browser = os.pipe()
    from_browser, to_write = os.pipe()
    to_read, to_write = _above_4(to_read), _above_4(to_write)
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _ON_3_AND_4,
            str(to_read),
            str(to_write),
            chromium(),
            *CHROMIUM_FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "about:blank",
        ],
        pass_fds=(to_read, to_write),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    os.close(to_read)
    os.close(to_write)
    try:
        yield Browser(proc, to_browser, from_browser)
    finally:
        os.close(to_browser)  # Chromium quits when its pipe closes...
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # ...or is made to
            proc.kill()
            proc.wait()
        os.close(from_browser)
        log.close()
