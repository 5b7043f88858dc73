"""What keeps the dashboard safe to run: the token, read-only methods, no file outside
the run directories, loopback unless a token is given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.serve.conftest import TOKEN, Server, Workspace, fetch


def test_token_is_required_on_every_request(server: Server, history: Workspace) -> None:
    run_id = history.run_ids()[0]
    for path in ("/", "/api/runs", f"/runs/{run_id}", "/metrics", "/static/live.js", "/healthz"):
        denied = fetch(server.base + path, token=None)
        assert denied.status == 401, path
        assert "token" in denied.body
        assert fetch(server.base + path, token="not-the-token-at-all").status == 401
        assert fetch(server.base + path).status == 200, path


def test_login_link_sets_a_cookie_and_drops_the_token(server: Server) -> None:
    login = fetch(f"{server.base}/trends?since=7d&token={TOKEN}", token=None)
    assert login.status == 303
    assert login.headers["location"] == "/trends?since=7d"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"conveyor_token={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    jar = cookie.split(";", 1)[0]
    assert (
        fetch(server.base + "/trends?since=7d", token=None, headers={"Cookie": jar}).status == 200
    )
    wrong = fetch(f"{server.base}/?token=guess", token=None)
    assert wrong.status == 401
    assert "set-cookie" not in wrong.headers
    bad_cookie = {"Cookie": "conveyor_token=guess"}
    assert fetch(server.base + "/", token=None, headers=bad_cookie).status == 401


def test_only_get_and_head(server: Server, history: Workspace) -> None:
    run_id = history.run_ids()[0]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/", f"/api/runs/{run_id}", "/metrics"):
            reply = fetch(server.base + path, method=method)
            assert reply.status == 405, (method, path)
            assert reply.headers["allow"] == "GET, HEAD"
    head = fetch(server.base + "/api/runs", method="HEAD")
    assert head.status == 200
    assert head.body == ""


def _raw_get(server: Server, path: str) -> tuple[int, bytes]:
    """A request line sent as written (no client normalises its `..`)."""
    host, port = server.url.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {server.url}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_no_file_outside_the_run_directories(server: Server, history: Workspace) -> None:
    run_id = history.run_ids()[0]
    secret_file = "conveyor.yml"  # outside the run directory: the pipeline file
    probes = [
        f"/runs/{run_id}/jobs/../../../../{secret_file}/log",
        f"/runs/{run_id}/jobs/%2e%2e%2f%2e%2e%2f{secret_file}/log",
        f"/runs/{run_id}/jobs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{secret_file}/log.txt",
        "/runs/%2e%2e/jobs/build/log",
        "/runs/%2e%2e%2f%2e%2e%2fconveyor.yml/events",
        f"/runs/..%2f..%2f{secret_file}/scan.html",
        "/static/../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/runs/%2fetc%2fpasswd/events",
        f"/runs/{run_id}/jobs/%2fetc%2fpasswd/log.txt",
    ]
    for path in probes:
        status, data = _raw_get(server, path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in data, path
        assert b"name: dash" not in data, path


def test_a_log_linked_out_of_its_run_directory_is_not_read(
    server: Server, history: Workspace
) -> None:
    run_id = history.run_ids()[0]
    logs = history.root / ".conveyor" / "runs" / run_id / "logs"
    log = logs / "lint.log"
    kept = logs / "lint.log.kept"
    os.rename(log, kept)
    try:
        os.symlink(history.root / "conveyor.yml", log)
        for path in (f"/runs/{run_id}/jobs/lint/log", f"/runs/{run_id}/jobs/lint/log.txt"):
            reply = fetch(server.base + path)
            assert "name: dash" not in reply.body, path
        assert fetch(f"{server.base}/runs/{run_id}/jobs/lint/log.txt").status == 404
    finally:
        os.unlink(log)
        os.rename(kept, log)
    assert "linting" in fetch(f"{server.base}/runs/{run_id}/jobs/lint/log").body


def test_another_host_needs_a_token(history: Workspace) -> None:
    env = {k: v for k, v in history.env.items() if k != "CONVEYOR_SERVE_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=history.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --host 0.0.0.0 makes the dashboard reachable")
    assert "Traceback" not in proc.stderr


def test_on_loopback_without_a_token_other_host_names_are_refused(history: Workspace) -> None:
    srv = Server(history)
    try:
        assert fetch(srv.base + "/api/runs", token=None).status == 200
        rebound = fetch(srv.base + "/api/runs", token=None, headers={"Host": "evil.example"})
        assert rebound.status == 421
    finally:
        srv.stop()
