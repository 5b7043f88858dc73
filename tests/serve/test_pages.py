"""The pages and their JSON over real HTTP, against what the CLI says of the same
history: `conveyor stats --json`, `conveyor show --json`, `conveyor history --json`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.serve.conftest import EVIL_JOB, SECRET, Server, Workspace, fetch

PAGES = ("/", "/trends", "/tests", "/cache", "/deps", "/artifacts")


def api(server: Server, path: str) -> Any:
    reply = fetch(server.base + path)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def test_every_page_renders_with_its_security_headers(server: Server) -> None:
    for path in PAGES:
        reply = fetch(server.base + path)
        assert reply.status == 200, (path, reply.body)
        assert reply.headers["content-type"].startswith("text/html")
        assert "<main" in reply.body
        csp = reply.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "img-src 'self' data:" in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert "app;dur=" in reply.headers["server-timing"]
        assert "<script>" not in reply.body  # no inline code: CSP would refuse it


def test_runs_list_matches_history(server: Server, history: Workspace) -> None:
    cli = history.json("history", "--json", "-n", "100")
    assert isinstance(cli, list)
    listed = api(server, "/api/runs")["runs"]
    assert listed["total"] == len(cli) == 5  # four runs, and one recorded with HTML in it
    by_id = {r["id"]: r for r in listed["runs"]}
    for run in cli:
        mine = by_id[run["id"]]
        for key in (
            "status",
            "branch",
            "commit",
            "event",
            "wall_time",
            "jobs_total",
            "jobs_cached",
        ):
            assert mine[key] == run[key], key
    statuses = [r["status"] for r in cli]
    assert statuses.count("failed") == 2
    assert statuses.count("success") == 3
    newest = listed["runs"][0]
    assert newest["branch"] == "feature"
    assert newest["gates_passed"] == 2
    assert newest["gates_failed"] == 0
    assert len(listed["durations"]) == len(listed["runs"])


def test_runs_filters_and_paging(server: Server) -> None:
    failed = api(server, "/api/runs?status=failed&pipeline=dash")["runs"]
    assert failed["total"] == 2
    assert {r["status"] for r in failed["runs"]} == {"failed"}
    feature = api(server, "/api/runs?branch=feature")["runs"]
    assert [r["branch"] for r in feature["runs"]] == ["feature"]
    old = api(server, "/api/runs?to=2020-01-01")["runs"]
    assert [r["id"] for r in old["runs"]] == ["20200101-000000.000-evil"]
    recent = api(server, "/api/runs?from=2021-01-01")["runs"]
    assert recent["total"] == 4
    pages = [api(server, f"/api/runs?per_page=2&page={n}")["runs"] for n in (1, 2, 3)]
    assert [p["pages"] for p in pages] == [3, 3, 3]
    ids = [r["id"] for p in pages for r in p["runs"]]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    starts = [r["started_at"] for p in pages for r in p["runs"]]
    assert starts == sorted(starts, reverse=True)
    html = fetch(server.base + "/?per_page=2&page=2").body
    assert 'rel="next" href="/?per_page=2&amp;page=3"' in html
    bad = fetch(server.base + "/api/runs?page=zero")
    assert bad.status == 400
    assert "page" in bad.json()["error"]
    assert fetch(server.base + "/?status=nope").status == 400


def test_run_page_matches_show(
    server: Server, history: Workspace, shown: dict[str, dict[str, Any]]
) -> None:
    for run_id, show in shown.items():
        mine = api(server, f"/api/runs/{run_id}")
        assert mine["run"]["wall_time"] == show["wall_time"]
        assert mine["run"]["critical_path"] == show["critical_path"]
        jobs = {j["name"]: j for j in show["jobs"]}
        assert [j["name"] for j in mine["jobs"]] == [j["name"] for j in show["jobs"]]
        for job in mine["jobs"]:
            theirs = jobs[job["name"]]
            for key in ("status", "cached", "duration", "cpu_time", "peak_rss", "attempts"):
                assert job[key] == theirs[key], key
            assert job["critical"] == (job["name"] in show["critical_path"])
        assert [g["gate"] for g in mine["gates"]] == [g["gate"] for g in show["gates"]]
        assert [o["sha256"] for o in mine["outputs"]] == [o["sha256"] for o in show["outputs"]]
        failed = [t["name"] for t in show["tests"] if t["status"] in ("failed", "error")]
        assert [t["name"] for t in mine["failed_tests"]] == failed
    second = history.run_ids()[1]
    run = api(server, f"/api/runs/{second}")
    build = next(j for j in run["jobs"] if j["name"] == "build")
    assert build["cached"]
    assert build["cache_tier"] == "local"
    assert build["cached_from_run"] == history.run_ids()[0]
    page = fetch(f"{server.base}/runs/{second}").body
    assert f'href="/runs/{history.run_ids()[0]}"' in page  # the run the hit came from
    assert f'href="/runs/{second}/scan.html"' in page
    bars = run["gantt"]
    assert {b["name"] for b in bars if b["critical"]} == set(run["run"]["critical_path"])
    assert all(0 <= b["start"] <= b["end"] for b in bars)


def test_scan_and_trace(server: Server, history: Workspace) -> None:
    run_id = history.run_ids()[0]
    scan = fetch(f"{server.base}/runs/{run_id}/scan.html")
    assert scan.status == 200
    assert run_id in scan.body
    assert "sandbox" in scan.headers["content-security-policy"]
    trace = fetch(f"{server.base}/runs/{run_id}/trace.json")
    names = {e["name"] for e in trace.json()["traceEvents"]}
    assert {"build", "test", "lint"} <= names


def test_trends_match_stats(server: Server, history: Workspace) -> None:
    stats = history.json("stats", "--json")
    assert isinstance(stats, dict)
    trends = api(server, "/api/trends")["trends"]
    assert trends["figures"]["pipeline"]["runs"] == stats["pipeline"]["runs"] == 4
    assert trends["figures"]["pipeline"]["success_rate"] == stats["pipeline"]["success_rate"]
    mine = {j["job"]: j for j in trends["figures"]["jobs"]}
    for job in stats["jobs"]:
        for key in ("runs", "success_rate", "cache_hit_rate", "p50", "p95", "saved", "failed"):
            assert mine[job["job"]][key] == job[key], (job["job"], key)
    success = trends["success"]["series"][0]["values"]
    assert [v for v in success if v is not None] == [75.0]  # all four runs today
    one = api(server, "/api/trends?job=lint&bucket=week")["trends"]
    assert [j["job"] for j in one["figures"]["jobs"]] == ["lint"]
    assert [v for v in one["success"]["series"][0]["values"] if v is not None] == [75.0]
    page = fetch(server.base + "/trends").body
    lint = next(j for j in stats["jobs"] if j["job"] == "lint")
    assert f"{lint['success_rate'] * 100:.1f}%" in page
    assert fetch(server.base + "/api/trends?since=forever").status == 400


def test_tests_page(server: Server, history: Workspace, shown: dict[str, dict[str, Any]]) -> None:
    flaky = history.json("flaky", "--json")
    assert isinstance(flaky, dict)
    page = api(server, "/api/tests")["tests"]
    assert [(f["test"], f["flips"]) for f in page["flaky"]] == [
        (t["test"], t["flips"]) for t in flaky["tests"]
    ]
    assert any(f["test"] == "s.test_flaky" for f in page["flaky"])
    failing = {f["test"]: f for f in page["failing"]}
    evil = "s.<img src=x onerror=alert(2)>"
    runs_of_test = [
        run
        for run_id in history.run_ids()
        if any(t["name"] == evil for t in shown[run_id]["tests"])
        for run in [run_id]
    ]
    assert len(runs_of_test) >= 3  # the run where lint failed may have cancelled test
    assert failing[evil]["failures"] == len(runs_of_test)
    assert failing[evil]["message"] == "boom <script>"
    assert page["slowest"][0]["test"] == "s.test_ok"
    html = fetch(server.base + "/tests").body
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<img src=x" not in html


def test_cache_page(server: Server, history: Workspace, shown: dict[str, dict[str, Any]]) -> None:
    stats = history.json("stats", "--json")
    assert isinstance(stats, dict)
    cache = api(server, "/api/cache")["cache"]
    assert cache["hits"] == 3
    assert cache["local_hits"] == 3
    assert cache["saved"] == pytest.approx(stats["pipeline"]["saved"])
    causes = {m["cause"]: m["misses"] for m in cache["misses"]}
    # test has a secret and lint says cache: false: each ran every time it started
    started = [
        job
        for run_id in history.run_ids()
        for job in shown[run_id]["jobs"]
        if job["name"] in ("test", "lint")
        and job["started_at"] is not None
        and job["status"] not in ("skipped", "cancelled")
    ]
    assert len(started) >= 7
    assert causes["caching is off for the job"] == len(started)
    assert causes["no earlier result (first run)"] == 1
    assert "Misses by cause" in fetch(server.base + "/cache").body


def test_deps_and_artifacts_say_when_nothing_is_recorded(server: Server) -> None:
    deps = api(server, "/api/deps")["deps"]
    assert deps == {"vulnerabilities": None, "licenses": None}
    assert "No audit recorded" in fetch(server.base + "/deps").body
    assert api(server, "/api/artifacts")["artifacts"]["exists"] is False
    assert "No artifact stored yet" in fetch(server.base + "/artifacts").body


def test_log_colours_escaping_and_search(server: Server, history: Workspace) -> None:
    run_id = history.run_ids()[0]
    reply = fetch(f"{server.base}/runs/{run_id}/jobs/build/log?q=BOLD")
    assert reply.status == 200
    assert '<span class="ansi-b ansi-fg2">built</span>' in reply.body
    assert "&lt;b&gt;not <mark>bold</mark>&lt;/b&gt; &amp; done" in reply.body
    assert "<b>" not in reply.body
    assert re.search(r"1 match of .BOLD.", reply.body)
    data = api(server, f"/api/runs/{run_id}/jobs/build/log?q=bold")
    assert data["matches"] == 1
    assert data["matching_lines"] == [1]
    assert data["lines"][0]["text"] == "built <b>not bold</b> & done"
    raw = fetch(f"{server.base}/runs/{run_id}/jobs/build/log.txt")
    assert raw.headers["content-type"].startswith("text/plain")
    assert "\x1b[1;32m" in raw.body


def test_html_in_names_is_shown_not_run(server: Server) -> None:
    evil = "20200101-000000.000-evil"
    for path in ("/", f"/runs/{evil}", f"/runs/{evil}/jobs/{quote(EVIL_JOB, safe='')}/log"):
        reply = fetch(server.base + path)
        assert reply.status == 200, path
        assert "<script>alert(1)" not in reply.body
        assert "onerror=alert(3)>" not in reply.body
        assert "<b>branch" not in reply.body
    page = fetch(f"{server.base}/runs/{evil}").body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    log = fetch(f"{server.base}/runs/{evil}/jobs/{quote(EVIL_JOB, safe='')}/log").body
    assert "No log" in log
    assert "root:" not in log


def test_the_secret_appears_nowhere(server: Server, history: Workspace) -> None:
    paths = [*PAGES, *(f"/api{p if p != '/' else '/runs'}" for p in PAGES), "/metrics"]
    for run_id in history.run_ids():
        paths += [f"/runs/{run_id}", f"/api/runs/{run_id}", f"/runs/{run_id}/scan.html"]
        paths += [f"/runs/{run_id}/trace.json", f"/runs/{run_id}/events"]
        for job in ("build", "test", "lint"):
            paths += [f"/runs/{run_id}/jobs/{job}/log", f"/runs/{run_id}/jobs/{job}/log.txt"]
            paths.append(f"/api/runs/{run_id}/jobs/{job}/log?q=token")
    seen = 0
    for path in paths:
        reply = fetch(server.base + path)
        assert reply.status in (200, 404), path
        assert SECRET not in reply.body, path
        seen += "the token is ***" in reply.body
    assert seen >= 4 * 3  # the masked line is there, in the logs, raw logs and events
