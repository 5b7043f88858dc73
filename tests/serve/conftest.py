"""A history made by real `conveyor run`s of a fixture pipeline (a failure, a flaky
test through JUnit, cache hits, gates, a secret, log lines with colours and HTML), and
the real `conveyor serve` over it, asked over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SECRET = "s3cr3t-Value-4242"  # pragma: allowlist secret
TOKEN = "a-token-of-the-dashboard-0123"  # pragma: allowlist secret
EVIL_JOB = "<script>alert(1)</script>"

PIPELINE = """
name: dash
gates:
  time: {max: 10m}
jobs:
  build:
    run: |
      printf '\\033[1;32mbuilt\\033[0m <b>not bold</b> & done\\n'
      mkdir -p dist && echo app > dist/app.txt
    outputs: [dist/app.txt]
  test:
    needs: [build]
    secrets: [API_TOKEN]
    run: |
      n=$(cat ../flaky-count 2>/dev/null || echo 0)
      echo $((n + 1)) > ../flaky-count
      flaky=''
      [ $((n % 2)) -eq 0 ] || flaky='<failure message="flaked">once</failure>'
      mkdir -p reports
      {
        echo "<testsuite name='s'>"
        echo "<testcase classname='s' name='test_ok' time='0.5'/>"
        echo "<testcase classname='s' name='test_flaky' time='0.2'>$flaky</testcase>"
        echo "<testcase classname='s' name='&lt;img src=x onerror=alert(2)&gt;' time='0.1'>"
        echo "<failure message='boom &lt;script&gt;'>trace</failure></testcase>"
        echo "</testsuite>"
      } > reports/junit.xml
      echo "the token is $API_TOKEN"
    reports: {junit: reports/junit.xml}
    gates:
      tests: {max_failures: 5}
  lint:
    cache: false
    run: |
      echo linting
      test ! -f fail.flag || { echo "lint found a problem" >&2; exit 1; }
  live:
    cache: false
    run: |
      echo first-line
      while [ ! -f ../go ]; do sleep 0.05; done
      echo second-line
"""


@dataclass
class Workspace:
    root: Path
    env: dict[str, str]

    def conveyor(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert proc.returncode in (0, 1), proc.stderr
        return proc

    def json(self, *args: str) -> object:
        return json.loads(self.conveyor(*args).stdout)

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True)

    def run_ids(self) -> list[str]:
        return sorted(os.listdir(self.root / ".conveyor" / "runs"))


def workspace_env(base: Path) -> dict[str, str]:
    """The environment of the runs and the server: home, cache and git of their own."""
    home = base / "home"
    home.mkdir(exist_ok=True)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONVEYOR_", "GITHUB_", "GITLAB_", "CI_")) and k != "CI"
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONPATH=os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        API_TOKEN=SECRET,
    )
    return env


def make_workspace(base: Path) -> Workspace:
    root = base / "proj"
    root.mkdir()
    ws = Workspace(root, workspace_env(base))
    ws.git("init", "-q", "-b", "main")
    ws.git("config", "user.email", "test@example.com")
    ws.git("config", "user.name", "Test")
    (root / "conveyor.yml").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / ".gitignore").write_text("dist/\nreports/\nfail.flag\n")
    ws.git("add", "-A")
    ws.git("commit", "-q", "-m", "init")
    return ws


def fill(ws: Workspace) -> None:
    """Four runs: all jobs run; build from the cache and the test flakes; lint fails;
    on another branch."""
    jobs = ("build", "test", "lint")
    ws.conveyor("run", "--explain", *jobs)
    ws.conveyor("run", "--explain", *jobs)
    (ws.root / "fail.flag").write_text("x")
    assert ws.conveyor("run", "--explain", *jobs).returncode == 1
    (ws.root / "fail.flag").unlink()
    ws.git("checkout", "-q", "-b", "feature")
    ws.conveyor("run", "--explain", *jobs)


class Server:
    """`conveyor serve --port 0` in the workspace, stopped at the end."""

    def __init__(self, ws: Workspace, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "serve", "--port", "0", *args],
            cwd=ws.root,
            env=ws.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "http://" in line, line + self.proc.stderr.read() if self.proc.stderr else line
        self.url = line.split("http://", 1)[1].split("/", 1)[0]
        self.base = f"http://{self.url}"

    def stop(self) -> None:
        died = self.proc.poll()
        if died is not None and self.proc.stderr is not None:
            sys.stderr.write(f"the server had ended ({died}): {self.proc.stderr.read()}")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    token: str | None = TOKEN,
) -> Reply:
    """One request, redirects not followed, whatever its status."""
    sent = dict(headers or {})
    if token is not None:
        sent.setdefault("Authorization", f"Bearer {token}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, method=method, headers=sent)
    try:
        with opener.open(request, timeout=30) as resp:
            return Reply(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
            )
    except urllib.error.HTTPError as err:
        body = err.read().decode()
        return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, body)


@pytest.fixture(scope="package")
def history(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The fixture pipeline's workspace, its history filled by real runs, plus one run
    recorded with a job whose name is HTML (a history any tool can write)."""
    ws = make_workspace(tmp_path_factory.mktemp("serve"))
    fill(ws)
    ws.conveyor("history")  # records the run directories in the SQLite history
    from conveyor.history.record import JobRow, RunRecord, RunRow
    from conveyor.history.store import HistoryStore

    with HistoryStore(f"sqlite:///{ws.root}/.conveyor/history.db") as store:
        store.record(
            RunRecord(
                RunRow(
                    id="20200101-000000.000-evil",
                    pipeline="dash",
                    workspace=str(ws.root),
                    trigger="local",
                    host="elsewhere",
                    conveyor_version="0",
                    started_at=1577836800.0,
                    finished_at=1577836801.0,
                    wall_time=1.0,
                    status="failed",
                    jobs_total=1,
                    jobs_cached=0,
                    branch="<b>branch</b>",
                ),
                (
                    JobRow(
                        name=EVIL_JOB,
                        status="failed",
                        reason="<img src=x onerror=alert(3)>",
                        cached=False,
                        attempts=1,
                        started_at=1577836800.0,
                        finished_at=1577836801.0,
                        log_path="/etc/passwd",
                    ),
                ),
            )
        )
    return ws


@pytest.fixture(scope="package")
def shown(history: Workspace) -> dict[str, dict[str, Any]]:
    """`conveyor show RUN --json` of each run of the workspace."""
    out = {}
    for run_id in history.run_ids():
        data = history.json("show", run_id, "--json")
        assert isinstance(data, dict)
        out[run_id] = data
    return out


@pytest.fixture(scope="package")
def server(history: Workspace) -> Iterator[Server]:
    """The dashboard over it, behind a token."""
    srv = Server(history, "--token", TOKEN)
    yield srv
    srv.stop()
