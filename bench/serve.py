"""The dashboard (`conveyor serve`) over a large history: every page and API response
under 200 ms of server time (p95), the server under 150 MB of memory.

Generates a history of --runs (default 10,000) runs of one pipeline of --jobs (default
100) jobs each: 1,000,000 job rows, with tests and gates, spread over a year (so the
pages' default 30-day window holds about 820 runs and 82,000 job rows), inserted in bulk
through SQLAlchemy Core into the real schema; in SQLite, and with --pg also in a
PostgreSQL started for the run (initdb, pg_ctl). Then starts `conveyor serve --db URL
--port 0` as its own process, asks each page --requests times (default 50) after one
warm-up request (its time reported as "first": the page computed cold; the app remembers
large figures), and reports per page the p50 and p95 of the server time (the
Server-Timing header the app sends: request in to response start) and of the whole
request as the client saw it, each p95 against the goal (ratio < 1 is under it) and
against /healthz measured in the same run (the app's floor); and the server's resident
memory at the end and at its peak (VmHWM).

    python3 bench/serve.py [--runs 10000] [--jobs 100] [--requests 50] [--pg] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import REPO, dump_json, machine, src_state, table

SRC = os.path.join(REPO, "src")
GOAL_MS = 200.0
RSS_GOAL_MB = 150.0
DAY = 86400.0


def generate(url: str, count: int, per_run: int, seed: int = 7) -> float:
    """Fill the history at `url`; returns the seconds it took."""
    sys.path.insert(0, SRC)
    from sqlalchemy import insert

    from conveyor.history.schema import gates, jobs, runs, tests
    from conveyor.history.store import HistoryStore

    rng = random.Random(seed)
    began = time.perf_counter()
    store = HistoryStore(url)
    now = time.time()
    span = 365 * DAY
    names = [f"job{j:03d}" for j in range(per_run)]
    base = {n: rng.lognormvariate(1.5, 0.8) for n in names}
    branches = ["main"] * 7 + ["feature/a", "feature/b", "release"]
    batch = 500
    with store.engine.begin() as conn:
        for first in range(0, count, batch):
            run_rows, job_rows, test_rows, gate_rows = [], [], [], []
            for i in range(first, min(first + batch, count)):
                start = now - span + i * span / count
                run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(start))}.000-{i:04x}"
                failed = rng.random() < 0.04
                wall = 0.0
                cached_count = 0
                for j, name in enumerate(names):
                    cached = rng.random() < 0.6
                    duration = base[name] * rng.lognormvariate(0, 0.3) * (1 + i / count * 0.3)
                    own = 0.05 if cached else duration
                    begun = start + (j % 10) * 2.0
                    status = "failed" if failed and j == per_run - 1 else "success"
                    cached_count += cached
                    wall = max(wall, begun + own - start)
                    job_rows.append(
                        {
                            "run_id": run_id,
                            "name": name,
                            "status": status,
                            "reason": "from run earlier" if cached else "",
                            "cached": cached,
                            "action_digest": f"{rng.getrandbits(128):032x}",
                            "queued_at": start,
                            "started_at": begun,
                            "finished_at": begun + own,
                            "queue_time": rng.random(),
                            "duration": own,
                            "attempts": 0 if cached else 1,
                            "exit_code": None if cached else (1 if status == "failed" else 0),
                            "cpu_time": None if cached else own * 0.8,
                            "peak_rss": None if cached else int(rng.uniform(20, 400) * 2**20),
                            "saved": duration if cached else None,
                            "log_path": None,
                            "run_time": None if cached else own,
                            "restore_time": 0.05 if cached else None,
                            "cache_tier": "local" if cached else None,
                        }
                    )
                for t in range(20):
                    flaky = t == 3 and rng.random() < 0.1
                    test_rows.append(
                        {
                            "run_id": run_id,
                            "job": names[t % per_run],
                            "suite": "suite",
                            "name": f"test_{t:02d}",
                            "status": "failed" if flaky else "passed",
                            "duration": rng.uniform(0.01, 3.0),
                            "message": "assert 1 == 2" if flaky else "",
                        }
                    )
                for gate, level in (("time", "error"), ("tests", "warn")):
                    gate_rows.append(
                        {
                            "run_id": run_id,
                            "scope": "pipeline",
                            "gate": gate,
                            "level": level,
                            "passed": not failed,
                            "measured": "1",
                            "threshold": "2",
                            "detail": "",
                        }
                    )
                run_rows.append(
                    {
                        "id": run_id,
                        "pipeline": "bench",
                        "workspace": "/w",
                        "commit": f"{rng.getrandbits(160):040x}",
                        "branch": rng.choice(branches),
                        "event": "push",
                        "trigger": "ci",
                        "host": "runner",
                        "conveyor_version": "0",
                        "started_at": start,
                        "finished_at": start + wall,
                        "status": "failed" if failed else "success",
                        "wall_time": wall,
                        "critical_path": json.dumps(names[:3]),
                        "critical_path_time": 3.0,
                        "jobs_total": per_run,
                        "jobs_cached": cached_count,
                        "cpus": 8,
                        "parallelism": 8,
                    }
                )
            conn.execute(insert(runs), run_rows)
            conn.execute(insert(jobs), job_rows)
            conn.execute(insert(tests), test_rows)
            conn.execute(insert(gates), gate_rows)
    store.close()
    return time.perf_counter() - began


class Postgres:
    """A PostgreSQL server in a temporary directory (as the history tests start one)."""

    def __init__(self, base: str) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            sys.exit("error: --pg needs PostgreSQL's server binaries under /usr/lib/postgresql")
        self.bindir = os.path.dirname(found[-1])
        self.data = os.path.join(base, "pg")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(base, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        run = self._run
        run(f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "conveyor", "--no-sync")
        run(
            f"{self.bindir}/pg_ctl",
            "-D",
            self.data,
            "-w",
            "-l",
            os.path.join(base, "pg.log"),
            "-o",
            f"-p {self.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        sys.path.insert(0, SRC)
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=conveyor dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE history")
        self.url = f"postgresql+psycopg://conveyor@127.0.0.1:{self.port}/history"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=300)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "stop"],
            capture_output=True,
            timeout=120,
        )


def start_server(url: str, work: str) -> tuple[subprocess.Popen[str], str, float]:
    """`conveyor serve --db URL --port 0` in an empty directory: (process, base URL,
    seconds from spawn to its first answer)."""
    env = dict(os.environ, PYTHONPATH=SRC)
    env.pop("CONVEYOR_DB_URL", None)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", "--db", url, "--port", "0"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        sys.exit(f"error: the server did not start: {line!r}")
    base = "http://" + line.split("http://", 1)[1].split("/", 1)[0]
    get(base + "/healthz")
    return proc, base, time.perf_counter() - began


def get(url: str) -> tuple[float, float, int]:
    """(server ms from Server-Timing, client ms, bytes) of one GET."""
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = resp.read()
        timing = resp.headers.get("server-timing", "")
    client = (time.perf_counter() - began) * 1000
    server = float(timing.split("dur=", 1)[1]) if "dur=" in timing else math.nan
    return server, client, len(body)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def vm(pid: int, key: str) -> float:
    """A /proc/PID/status figure in MB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def measure(url: str, work: str, requests: int, label: str) -> dict[str, object]:
    proc, base, startup = start_server(url, work)
    try:
        runs = json.loads(urllib.request.urlopen(base + "/api/runs?per_page=1").read())
        newest = runs["runs"]["runs"][0]["id"]
        total = runs["runs"]["total"]
        middle = json.loads(
            urllib.request.urlopen(f"{base}/api/runs?per_page=1&page={total // 2}").read()
        )["runs"]["runs"][0]["id"]
        paths = [
            "/healthz",
            "/",
            "/api/runs",
            f"/?page={total // 50}",
            "/?branch=main&status=failed",
            "/?from=2000-01-01&to=2100-01-01&pipeline=bench",
            f"/runs/{newest}",
            f"/api/runs/{middle}",
            f"/runs/{newest}/jobs/job050/log",
            f"/runs/{newest}/scan.html",
            f"/runs/{newest}/trace.json",
            "/trends",
            "/api/trends",
            "/trends?job=job007&bucket=week",
            "/trends?since=365d&bucket=week",
            "/tests",
            "/api/tests",
            "/cache",
            "/api/cache",
            "/deps",
            "/artifacts",
            "/metrics",
        ]
        rows = {}
        for path in paths:
            first = get(base + path)  # the warm-up: what the first person to ask waits
            samples = [get(base + path) for _ in range(requests)]
            rows[path] = {
                "first": first[0],
                "server_p50": pct([s for s, _, _ in samples], 0.5),
                "server_p95": pct([s for s, _, _ in samples], 0.95),
                "client_p95": pct([c for _, c, _ in samples], 0.95),
                "bytes": samples[-1][2],
            }
        rss, peak = vm(proc.pid, "VmRSS"), vm(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    floor = rows["/healthz"]["server_p95"]
    print(
        f"\n{label}: startup to first answer {startup * 1000:.0f} ms; RSS {rss:.0f} MB at the "
        f"end, peak {peak:.0f} MB (goal < {RSS_GOAL_MB:.0f} MB: ratio {peak / RSS_GOAL_MB:.2f})"
    )
    print(
        table(
            [
                "path",
                "first",
                "server p50",
                "server p95",
                "p95 / 200 ms",
                "p95 / healthz",
                "client p95",
                "bytes",
            ],
            [
                [
                    p,
                    f"{r['first']:.0f} ms",
                    f"{r['server_p50']:.1f} ms",
                    f"{r['server_p95']:.1f} ms",
                    f"{r['server_p95'] / GOAL_MS:.2f}",
                    f"{r['server_p95'] / floor:.0f}x" if floor else "-",
                    f"{r['client_p95']:.1f} ms",
                    str(r["bytes"]),
                ]
                for p, r in rows.items()
            ],
        )
    )
    worst = max(rows.items(), key=lambda kv: kv[1]["server_p95"])
    print(
        f"slowest: {worst[0]} at {worst[1]['server_p95']:.1f} ms p95 "
        f"({'under' if worst[1]['server_p95'] < GOAL_MS else 'OVER'} the goal)"
    )
    return {"startup": startup, "rss_mb": rss, "peak_rss_mb": peak, "pages": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10000, help="runs in the history")
    ap.add_argument("--jobs", type=int, default=100, help="jobs per run")
    ap.add_argument("--requests", type=int, default=50, help="requests per page")
    ap.add_argument("--pg", action="store_true", help="also over PostgreSQL")
    ap.add_argument("--no-sqlite", action="store_true", help="not over SQLite (with --pg)")
    ap.add_argument("--json", metavar="FILE", nargs="?", const="-", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument(
        "--sqlite-file",
        metavar="PATH",
        help="the SQLite history to use: generated there when absent, reused when present",
    )
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="conveyor-bench-serve-")
    pg = None
    out: dict[str, object] = {"machine": machine(), "runs": a.runs, "jobs": a.jobs}
    try:
        print(f"conveyor source: {src_state()} ({SRC})")
        print(
            f"{a.runs} runs x {a.jobs} jobs = {a.runs * a.jobs} job rows, "
            f"{a.runs * 20} test rows; {a.requests} requests per page after one warm-up"
        )
        path = a.sqlite_file or os.path.join(work, "history.db")
        if a.no_sqlite:
            path = ""
        url = f"sqlite:///{os.path.abspath(path)}"
        if not path:
            pass
        elif os.path.exists(path):
            print(f"sqlite: reusing {path}")
            out["sqlite"] = measure(url, work, a.requests, "SQLite")
        else:
            took = generate(url, a.runs, a.jobs)
            print(f"sqlite: generated in {took:.1f} s")
            out["sqlite"] = measure(url, work, a.requests, "SQLite")
        if a.pg:
            pg = Postgres(tempfile.mkdtemp(prefix="conveyor-bench-pg-", dir="/tmp"))
            took = generate(pg.url, a.runs, a.jobs)
            print(f"\npostgresql: generated in {took:.1f} s")
            out["postgresql"] = measure(pg.url, work, a.requests, "PostgreSQL")
        dump_json(a.json, out)
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(os.path.dirname(pg.data), ignore_errors=True)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
