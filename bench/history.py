"""What recording the history costs a run, and what reading it back costs.

Generates in a temporary git repository a pipeline of N (-n, default 1000) jobs running
`true` (the DAG of scheduling.py), runs it once so every job is cached, then times, as
whole processes (median of --reps after --warmup, interleaved), a fully cached run:

* `conveyor run --no-history`                 the floor: nothing recorded
* `conveyor run`                              the default: the run directory is recorded
                                              later, by the next history command
* `conveyor run` with CONVEYOR_DB_URL=sqlite  a named database: the run records itself

and then `conveyor history` right after 10 default runs (it records those 10 runs of N
jobs, then lists) and again with nothing new (open, check, list).

    python3 bench/history.py [-n 1000] [--reps 5] [--json [FILE]]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="jobs in the pipeline")
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
        git = ["git", "-C", ws, "-c", "user.email=b@b", "-c", "user.name=b"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "bench"], check=True)
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
        dump_json(
            a.json,
            {
                "machine": machine(),
                "n": a.n,
                "runs": res,
                "history_ingest_10": ingest,
                "history_again": again,
            },
        )
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
