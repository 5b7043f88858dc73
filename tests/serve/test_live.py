"""A run going on, followed through `/runs/{id}/events` (server-sent events)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.serve.conftest import TOKEN, Server, Workspace, fetch, make_workspace


def test_live_run_streams_its_log_lines(tmp_path: Path) -> None:
    history = make_workspace(tmp_path)
    server = Server(history, "--token", TOKEN)
    try:
        _follow(server, history)
    finally:
        server.stop()


def _follow(server: Server, history: Workspace) -> None:
    (history.root / ".conveyor" / "runs").mkdir(parents=True)
    before = set(history.run_ids())
    go = history.root.parent / "go"
    run = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", "live"],
        cwd=history.root,
        env=history.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (new := set(history.run_ids()) - before):
            assert time.monotonic() < deadline
            assert run.poll() is None
            time.sleep(0.05)
        run_id = new.pop()
        events = history.root / ".conveyor" / "runs" / run_id / "events.jsonl"
        while not events.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        page = fetch(f"{server.base}/runs/{run_id}")
        assert page.status == 200
        assert 'data-events="/runs/' in page.body
        assert '<script src="/static/live.js" defer></script>' in page.body
        request = urllib.request.Request(
            f"{server.base}/runs/{run_id}/events", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        seen: list[tuple[str, dict[str, object]]] = []
        with urllib.request.urlopen(request, timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            kind = ""
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line[6:])))
                    if kind == "job_output" and seen[-1][1].get("line") == "first-line":
                        go.write_text("go")  # the job goes on only once the line was seen
                    if kind == "run_finished":
                        break
        lines = [data.get("line") for kind, data in seen if kind == "job_output"]
        assert lines == ["first-line", "second-line"]
        kinds = [kind for kind, _ in seen]
        assert kinds.index("job_started") < kinds.index("job_output") < kinds.index("job_finished")
        assert run.wait(timeout=60) == 0
        finished = fetch(f"{server.base}/api/runs/{run_id}")
        assert finished.status == 200
        assert finished.json()["run"]["status"] == "success"
    finally:
        if run.poll() is None:
            go.write_text("go")
            run.wait(timeout=60)
        go.unlink(missing_ok=True)
