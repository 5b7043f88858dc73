"""The dashboard over a team's PostgreSQL history: what the runs recorded there is what
the pages show, and what `conveyor history` and `conveyor stats` say of it."""

from __future__ import annotations

from pathlib import Path

from tests.history.conftest import postgres  # noqa: F401 - the fixture, shared
from tests.serve.conftest import TOKEN, Server, fetch, make_workspace


def test_pages_over_postgresql(tmp_path: Path, postgres: str) -> None:  # noqa: F811
    ws = make_workspace(tmp_path)
    ws.env["CONVEYOR_DB_URL"] = postgres
    for _ in range(2):
        ws.conveyor("run", "build", "lint")
    history = ws.json("history", "--json")
    stats = ws.json("stats", "--json")
    assert isinstance(history, list)
    assert isinstance(stats, dict)
    assert [r["status"] for r in history] == ["success", "success"]
    server = Server(ws, "--token", TOKEN, "--db", postgres)
    try:
        runs = fetch(server.base + "/api/runs").json()["runs"]
        assert [r["id"] for r in runs["runs"]] == [r["id"] for r in history]
        assert [r["jobs_cached"] for r in runs["runs"]] == [1, 0]
        trends = fetch(server.base + "/api/trends?bucket=week").json()["trends"]
        mine = {j["job"]: j for j in trends["figures"]["jobs"]}
        for job in stats["jobs"]:
            for key in ("runs", "success_rate", "cache_hit_rate", "p50", "p95", "saved"):
                assert mine[job["job"]][key] == job[key], (job["job"], key)
        run = fetch(f"{server.base}/api/runs/{history[0]['id']}").json()
        assert {j["name"] for j in run["jobs"]} == {"build", "lint"}
        for path in ("/", "/trends", "/tests", "/cache", f"/runs/{history[0]['id']}"):
            assert fetch(server.base + path).status == 200, path
    finally:
        server.stop()
