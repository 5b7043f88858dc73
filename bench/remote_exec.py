"""Remote execution, timed: a wide graph (N independent jobs, each `sleep 0.2` on a real
input file of its own, copied to an output) run by `conveyor run` locally with -j2, and
on a real BuildGrid (its SQL scheduler on a PostgreSQL of its own) whose `conveyor
worker`s run the jobs: 1 worker with 2 slots, then 2 workers with 2 slots each.

Printed: each wall time, the speed-up of 2 workers over 1 (goal: at least 1.8x), and
the per-action overhead of remote over local at the same width (1 worker with 2 slots
against local -j2: the extra wall time times 2 slots, divided by N).

    python3 bench/remote_exec.py [-n 200] [--reps 1] [--conveyor PATH]

Every run starts from an empty local cache with a new salt in the pipeline's env, so
that neither cache (local or the server's) serves anything. Needs BuildGrid in its own
virtualenv (`.ci/buildgrid.sh`), PostgreSQL's server binaries, and the test
dependencies (the server and workers are started with tests/reapi.py's helpers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import REPO, find_conveyor

sys.path.insert(0, REPO)

PIPELINE_HEAD = """\
env: {{BENCH_SALT: "{salt}"}}
jobs:
"""
JOB = """\
  j{i:04d}:
    inputs: [data/{i:04d}.txt]
    outputs: [out/{i:04d}.txt]
    platform: {{pool: bench}}
    run: sleep {sleep} && mkdir -p out && cp data/{i:04d}.txt out/{i:04d}.txt
"""


def workspace(base: str, n: int) -> str:
    ws = os.path.join(base, "ws")
    os.makedirs(os.path.join(ws, "data"))
    for i in range(n):
        with open(os.path.join(ws, "data", f"{i:04d}.txt"), "w") as fh:
            fh.write(f"input {i}\n" * 400)  # about 4 KB each
    with open(os.path.join(ws, ".gitignore"), "w") as fh:
        fh.write("out/\n.conveyor/\n")
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run(["git", "add", "-A"], cwd=ws, check=True)
    subprocess.run(
        ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"],
        cwd=ws,
        check=True,
    )
    return ws


def run(conveyor: str, ws: str, n: int, cache: str, *extra: str, sleep: float = 0.2) -> float:
    with open(os.path.join(ws, "conveyor.yml"), "w") as fh:
        fh.write(PIPELINE_HEAD.format(salt=uuid.uuid4().hex))
        fh.writelines(JOB.format(i=i, sleep=sleep) for i in range(n))
    shutil.rmtree(os.path.join(ws, "out"), ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, CONVEYOR_CACHE_DIR=cache)
    t = time.perf_counter()
    proc = subprocess.run(
        [conveyor, "run", "-j2", "--plain", "-q", "--no-history", *extra],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"error: conveyor failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    produced = len(os.listdir(os.path.join(ws, "out")))
    if produced != n:
        sys.exit(f"error: {produced} outputs of {n}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--sleep", type=float, default=0.2, help="seconds each job sleeps")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bench-remote-exec"))
    ap.add_argument("--conveyor", default=None)
    args = ap.parse_args()
    conveyor, note = find_conveyor(args.conveyor)
    if note:
        print(note)
    from tests.reapi import execution_buildgrid, workers

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    ws = workspace(args.work, args.n)
    cache = os.path.join(args.work, "cache")
    times: dict[str, list[float]] = {"local -j2": [], "1 worker x 2": [], "2 workers x 2": []}
    try:
        with execution_buildgrid(Path(args.work) / "server") as server:
            remote = ("--remote", server.url, "--remote-execute")
            for _rep in range(args.reps):
                times["local -j2"].append(
                    run(conveyor, ws, args.n, cache, "--no-remote", sleep=args.sleep)
                )
                print(f"  local -j2: {times['local -j2'][-1]:.2f}s", flush=True)
                for count, label in ((1, "1 worker x 2"), (2, "2 workers x 2")):
                    pool = Path(args.work) / f"workers-{count}"
                    with workers(server, pool, count, "--slots", "2", "--platform", "pool=bench"):
                        times[label].append(
                            run(conveyor, ws, args.n, cache, *remote, sleep=args.sleep)
                        )
                    print(f"  {label}: {times[label][-1]:.2f}s", flush=True)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = args.n * args.sleep / 2
    print(
        f"N={args.n} jobs of sleep {args.sleep:g} (floor at 2 slots: {floor:.1f}s), "
        f"median of {args.reps}:"
    )
    for label, value in med.items():
        print(f"  {label:>14}: {value:.2f}s")
    speedup = med["1 worker x 2"] / med["2 workers x 2"]
    overhead = (med["1 worker x 2"] - med["local -j2"]) * 2 / args.n
    print(f"2 workers over 1: {speedup:.2f}x (goal >= 1.8x)")
    print(f"per-action overhead of remote over local: {overhead * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
