"""What recording the history costs a run, and what reading it back costs.

Generates in a temporary git repository a pipeline of N (-n, default 1000) jobs running
`true` (the DAG of scheduling.py), runs it once so every job is cached, then times, as
whole processes (median of --reps after --warmup, interleaved), a fully cached run:

* `conveyor run --no-history`                 the floor: nothing recorded
* `conveyor run`                              the default: the run directory is recorded
                                              later, by the next history command
* `conveyor run` with CONVEYOR_DB_URL=sqlite  a named database: the run records itself

and then `conveyor history` right after 10 default runs (it records those 10 runs of N
jobs, then lists) and again with nothing new (open, check, list). Last, `conveyor stats`
over a generated history of --stats-runs (default 10,000) runs of a 50-job pipeline
(the issue's target: under 2 s).

    python3 bench/history.py [-n 1000] [--stats-runs 10000] [--reps 5] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import (
    BENCH_ENV,
    add_common_args,
    bench,
    commit_all,
    conveyor_python,
    dump_json,
    find_conveyor,
    machine,
    ms,
    print_source,
    random_dag,
    src_state,
    table,
    timed,
    write_pipeline,
)

GENERATE = """
import random, sys, time
from sqlalchemy import insert
from conveyor.history.schema import jobs, runs
from conveyor.history.store import HistoryStore
url, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
store = HistoryStore(url)
now = time.time()
run_rows, job_rows = [], []
for i in range(count):
    start = now - (count - i) * 240
    run_id = f"gen-{i:06d}"
    failed = rng.random() < 0.02
    run_rows.append(dict(id=run_id, pipeline="stats", workspace="/w", trigger="ci",
        host="h", conveyor_version="0.1.0", started_at=start, finished_at=start + 60,
        status="failed" if failed else "success", wall_time=60.0, critical_path="[]",
        jobs_total=50, jobs_cached=0))
    for j in range(50):
        cached = rng.random() < 0.6
        duration = rng.lognormvariate(1, 0.5)
        job_rows.append(dict(run_id=run_id, name=f"job{j:02d}", status="success",
            reason="", cached=cached, queued_at=start, started_at=start + 1,
            finished_at=start + 1 + duration, queue_time=rng.random(), duration=duration,
            attempts=1, saved=duration if cached else None))
with store.engine.begin() as conn:
    conn.execute(insert(runs), run_rows)
    conn.execute(insert(jobs), job_rows)
"""


def stats_bench(conveyor: str, work: str, count: int, reps: int) -> float:
    """Median wall seconds of `conveyor stats --since 3650d` over a generated history."""
    ws = os.path.join(work, "stats")
    os.makedirs(ws)
    write_pipeline(
        os.path.join(ws, "conveyor.yml"),
        [(f"job{j:02d}", "true", [], None) for j in range(50)],
        name="stats",
    )
    subprocess.run(["git", "-C", ws, "init", "-q"], check=True)
    url = f"sqlite:///{os.path.join(work, 'stats.db')}"
    subprocess.run([conveyor_python(conveyor), "-c", GENERATE, url, str(count)], check=True)
    env = dict(BENCH_ENV, CONVEYOR_DB_URL=url)
    cmd = [conveyor, "stats", "--since", "3650d"]
    timed(cmd, cwd=ws, env=env)
    samples = sorted(timed(cmd, cwd=ws, env=env)[0] for _ in range(reps))
    return samples[len(samples) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="jobs in the pipeline")
    ap.add_argument("--stats-runs", type=int, default=10000, help="runs in the stats history")
    add_common_args(ap)
    a = ap.parse_args()
    conveyor, note = find_conveyor(a.conveyor)
    before = src_state()
    work = tempfile.mkdtemp(prefix="conveyor-bench-history-")
    try:
        ws = os.path.join(work, "ws")
        os.makedirs(ws)
        deps = random_dag(a.n)
        names = [f"j{i:04d}" for i in range(a.n)]
        write_pipeline(
            os.path.join(ws, "conveyor.yml"),
            [
                (name, "true", [names[d] for d in ds], None)
                for name, ds in zip(names, deps, strict=True)
            ],
        )
        commit_all(ws)
        env = dict(BENCH_ENV, CONVEYOR_CACHE_DIR=os.path.join(work, "cache"))
        shared = dict(env, CONVEYOR_DB_URL=f"sqlite:///{os.path.join(work, 'shared.db')}")
        run = [conveyor, "run", "--jobs", "2", "--plain", "-q"]
        timed(run, cwd=ws, env=env)  # fills the cache: every later run is a no-op

        def forget_runs() -> None:
            for d in glob.glob(os.path.join(ws, ".conveyor", "runs", "*")):
                shutil.rmtree(d)

        cases = {
            "run --no-history": {
                "cmd": [*run, "--no-history"],
                "cwd": ws,
                "env": env,
                "before": forget_runs,
            },
            "run (recorded later)": {"cmd": run, "cwd": ws, "env": env, "before": forget_runs},
            "run (named sqlite db)": {
                "cmd": run,
                "cwd": ws,
                "env": shared,
                "before": forget_runs,
            },
        }
        res = bench(cases, a.reps, a.warmup)

        # Reading back: 10 unrecorded runs, then nothing new.
        forget_runs()
        db = os.path.join(ws, ".conveyor", "history.db")
        for path in (db, db + "-wal", db + "-shm"):
            if os.path.exists(path):
                os.unlink(path)
        timed([conveyor, "history"], cwd=ws, env=env)  # creates the database
        for _ in range(10):
            timed(run, cwd=ws, env=env)
        t = time.perf_counter()
        timed([conveyor, "history"], cwd=ws, env=env)
        ingest = time.perf_counter() - t
        again = min(timed([conveyor, "history"], cwd=ws, env=env)[0] for _ in range(a.reps))

        print(print_source(before, note, explicit=a.conveyor is not None) or "")
        print(f"{a.n} jobs, all cached; median of {a.reps} after {a.warmup} warm-up\n")
        rows = [[name, ms(r["median_wall"]), ms(r["median_cpu"])] for name, r in res.items()]
        print(table(["case", "median wall", "CPU"], rows))
        floor = res["run --no-history"]["median_wall"]
        for name in ("run (recorded later)", "run (named sqlite db)"):
            extra = res[name]["median_wall"] - floor
            print(f"{name}: {extra * 1000:+.0f} ms over --no-history")
        print(f"conveyor history recording 10 runs of {a.n} jobs: {ingest * 1000:.0f} ms")
        print(f"conveyor history with nothing new: {again * 1000:.0f} ms")
        stats = stats_bench(conveyor, work, a.stats_runs, a.reps)
        print(
            f"conveyor stats over {a.stats_runs} runs of 50 jobs: {stats * 1000:.0f} ms "
            f"(median of {a.reps}; target < 2000 ms)"
        )
        dump_json(
            a.json,
            {
                "machine": machine(),
                "n": a.n,
                "runs": res,
                "history_ingest_10": ingest,
                "history_again": again,
                "stats_runs": a.stats_runs,
                "stats": stats,
            },
        )
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
