"""`conveyor deps audit --online`: the OSV API client against a local HTTP server (on
127.0.0.1, started and stopped by each test).

The server's answers are built, not recorded: the real API is not reachable from here.
They have the shape the OSV API documents (POST /v1/querybatch answers
`{"results": [{"vulns": [{"id", "modified"}], "next_page_token"?}]}`, one result per
query in order; GET /v1/vulns/{id} answers the OSV record), and their content is the
real records of tests/deps/data: the ids osv.dev lists for each package and version are
written out below by hand, from the records' ranges, not computed by Conveyor's own
matching."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Project
from tests.deps.osvdata import record

LISTED: dict[tuple[str, str, str], list[str]] = {
    ("PyPI", "jinja2", "2.10"): [
        "GHSA-462w-v97r-4m45",
        "PYSEC-2019-217",
        "PYSEC-2021-66",
        "GHSA-h5c8-rqwp-cp95",
        "GHSA-h75v-3vvj-5mfj",
    ],
    ("PyPI", "urllib3", "1.26.4"): [
        "PYSEC-2021-108",
        "PYSEC-2023-192",
        "PYSEC-2023-212",
        "GHSA-34jh-p97f-mpxf",
    ],
    ("PyPI", "requests", "2.25.1"): ["PYSEC-2023-74"],
    ("PyPI", "py", "1.11.0"): ["PYSEC-2022-42969"],
    ("npm", "lodash", "4.17.15"): [
        "GHSA-p6mc-m468-83gw",
        "GHSA-35jh-r3h4-6jhm",
        "GHSA-29mw-wpgm-hmr9",
    ],
    ("npm", "minimist", "1.2.0"): ["GHSA-vh95-rmgr-6w4m", "GHSA-xvch-5gv4-984h"],
}


class Api:
    """What the server answers, and what it was asked."""

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []
        self.fetched: list[str] = []
        self.delay = 0.0
        self.status = 200
        self.paged = True
        """Split lodash's list over two pages (the API pages long lists)."""


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, body: object) -> None:
            time.sleep(api.delay)
            data = json.dumps(body).encode()
            self.send_response(api.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            assert self.path == "/v1/querybatch"
            length = int(self.headers["Content-Length"])
            queries = json.loads(self.rfile.read(length))["queries"]
            api.queries += queries
            results = []
            for q in queries:
                package = q["package"]
                ids = LISTED.get((package["ecosystem"], package["name"], q["version"]), [])
                result: dict[str, Any] = {}
                if api.paged and package["name"] == "lodash":
                    if "page_token" in q:
                        ids = ids[2:]
                    else:
                        ids = ids[:2]
                        result["next_page_token"] = "page-2"
                if ids:
                    result["vulns"] = [{"id": i, "modified": record(i)["modified"]} for i in ids]
                results.append(result)
            self._send({"results": results})

        def do_GET(self) -> None:
            prefix = "/v1/vulns/"
            assert self.path.startswith(prefix)
            ident = self.path[len(prefix) :]
            api.fetched.append(ident)
            self._send(record(ident))

    return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    state = Api()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CONVEYOR_OSV_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_online_audit_asks_the_api_and_matches_its_records(workspace: Project, api: Api) -> None:
    done = workspace.run("deps", "audit", "--online")
    assert done.code == 1, done.err
    assert "upgrade jinja2 2.10 -> 3.1.4 fixes 4" in done.out
    assert "upgrade urllib3 1.26.4 -> 1.26.19 fixes 4" in done.out
    assert "upgrade lodash 4.17.15 -> 4.17.21 fixes 3" in done.out  # its second page too
    assert "upgrade minimist 1.2.0 -> 1.2.6 fixes 2" in done.out
    assert done.out.splitlines()[-1] == (
        "15 vulnerabilities (1 critical, 4 high, 6 medium, 4 unknown) in 6 of 11 "
        "component(s) of 2 lockfile(s)"
    )
    asked = {(q["package"]["ecosystem"], q["package"]["name"], q["version"]) for q in api.queries}
    assert ("PyPI", "certifi", "2026.10.19.post1") in asked
    assert ("npm", "lodash", "4.17.15") in asked
    assert sorted(api.fetched) == sorted({i for ids in LISTED.values() for i in ids})


def test_an_unreachable_api_is_one_line(workspace: Project, api: Api) -> None:
    api.status = 503
    done = workspace.run("deps", "audit", "--online")
    assert done.code == 2
    first = done.err.splitlines()[0]
    assert first.startswith("error: the OSV API could not be asked: http://127.0.0.1:")
    assert first.endswith("/v1/querybatch: HTTP 503 Service Unavailable")


def test_a_slow_api_times_out(workspace: Project, api: Api) -> None:
    api.delay = 2.0
    done = workspace.run("deps", "audit", "--online", "--timeout", "0.3")
    assert done.code == 2
    assert "no answer within 0.3 s" in done.err or "timed out" in done.err


def test_a_closed_port_is_one_line(workspace: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CONVEYOR_OSV_URL", f"http://127.0.0.1:{port}")
    done = workspace.run("deps", "audit", "--online", "--timeout", "2")
    assert done.code == 2
    assert "/v1/querybatch: cannot be reached (" in done.err.splitlines()[0]
