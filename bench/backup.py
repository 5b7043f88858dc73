"""`conveyor backup` of a large workspace: a history of --runs (default 10,000) runs with
their run directories, plus --size-mib (default 2048) of artifacts in the artifact store.

Measures, in one run on one machine:
  floor    `cp -a` of the same `.conveyor/` (every byte read and written once, no hashing,
           no chunking): the first backup's time is reported against it
  first    `conveyor backup create` into an empty directory repository: its time, its
           throughput (MB/s of the data backed up) and the ratio to the floor
  second   after 1% changed (1% of the artifact bytes replaced by new versions, 1% more
           runs in the history and run directories): its time as a fraction of the
           first's (goal < 5%) and the bytes it added to the repository
  restore  `conveyor backup restore` of the second into an empty directory, against the floor

The history is generated as bench/serve.py generates it (bulk inserts into the real
schema; --jobs jobs per run, default 10); run directories hold a run.json, a
summary.json, an events.jsonl and a log per run; artifacts are random bytes (what a
compressed archive looks like to a compressor) in files of 1-40 MiB.

    python3 bench/backup.py [--runs 10000] [--jobs 10] [--size-mib 2048] [--json [FILE]] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from _common import REPO, dump_json, machine, src_state, table

SRC = os.path.join(REPO, "src")
GOAL = 0.05
MB = 1e6


def conveyor(*args: str, cwd: str) -> tuple[float, dict[str, object]]:
    env = dict(os.environ, PYTHONPATH=SRC, NO_COLOR="1")
    env.pop("CONVEYOR_BACKUP_PASSWORD", None)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", *args, "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"conveyor {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return took, json.loads(proc.stdout)


def run_dirs(ws: str, first: int, count: int, rng: random.Random) -> None:
    base = os.path.join(ws, ".conveyor", "runs")
    for i in range(first, first + count):
        d = os.path.join(base, f"2026{i:08d}-000000.000-{i:04x}")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        meta = {"id": os.path.basename(d), "pid": 1, "started_at": 1.7e9 + i, "host": "runner"}
        with open(os.path.join(d, "run.json"), "w") as fh:
            json.dump(meta, fh)
        jobs = [
            {"name": f"job{j:03d}", "status": "success", "duration": rng.random() * 30}
            for j in range(10)
        ]
        with open(os.path.join(d, "summary.json"), "w") as fh:
            json.dump({"status": "success", "jobs": jobs}, fh, indent=1)
        with open(os.path.join(d, "events.jsonl"), "w") as fh:
            for job in jobs:
                fh.write(json.dumps({"type": "job_finished", "result": job}) + "\n")
        with open(os.path.join(d, "logs", "job000.log"), "w") as fh:
            fh.write("".join(f"line {n} of the build {rng.random()}\n" for n in range(40)))


def artifacts(ws: str, size: int, rng: random.Random, tag: str) -> list[str]:
    """Random blobs in the store's layout up to `size` bytes; their paths."""
    store = os.path.join(ws, ".conveyor", "artifacts")
    made, paths, n = 0, [], 0
    while made < size:
        length = min(size - made, int(rng.uniform(1, 40) * 2**20))
        data = rng.randbytes(length)
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(store, "blobs", "sha256", digest[:2], digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        record = os.path.join(store, "index", "app", f"{tag}.{n}.json")
        os.makedirs(os.path.dirname(record), exist_ok=True)
        with open(record, "w") as fh:
            json.dump({"name": "app", "version": f"{tag}.{n}", "files": [digest]}, fh)
        paths.append(path)
        made += length
        n += 1
    return paths


def du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10000, help="runs in the history")
    ap.add_argument("--jobs", type=int, default=10, help="jobs per run in the history")
    ap.add_argument("--size-mib", type=int, default=2048, help="MiB of artifacts")
    ap.add_argument("--json", nargs="?", const="-", default=None, help="raw figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    opts = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from serve import generate

    state = src_state()
    rng = random.Random(19)
    work = tempfile.mkdtemp(prefix="conveyor-bench-backup-")
    try:
        ws = os.path.join(work, "ws")
        os.makedirs(os.path.join(ws, ".conveyor"))
        with open(os.path.join(ws, "conveyor.yml"), "w") as fh:
            fh.write("name: bench\njobs:\n  build:\n    run: echo build\n")
        db = os.path.join(ws, ".conveyor", "history.db")
        gen = generate(f"sqlite:///{db}", opts.runs, opts.jobs)
        run_dirs(ws, 0, opts.runs, rng)
        blobs = artifacts(ws, opts.size_mib << 20, rng, "1")
        data = du(os.path.join(ws, ".conveyor"))
        print(
            f"workspace: {opts.runs:,} runs (history {os.path.getsize(db) / MB:.0f} MB, "
            f"generated in {gen:.1f}s), {len(blobs)} artifact blobs; {data / MB:,.0f} MB in all"
        )
        subprocess.run(["sync"], check=True)  # the generated files are not the floor's to flush
        began = time.perf_counter()
        subprocess.run(["cp", "-a", os.path.join(ws, ".conveyor"), os.path.join(work, "floor")],
                       check=True)  # fmt: skip
        subprocess.run(["sync"], check=True)
        floor = time.perf_counter() - began
        shutil.rmtree(os.path.join(work, "floor"))

        subprocess.run(["sync"], check=True)
        repo = os.path.join(work, "repo")
        args = ("backup", "create", "--repo", repo, "--no-cache")
        first_t, first = conveyor(*args, cwd=ws)

        # 1% changes: new artifact versions worth 1% of the bytes (the old ones kept, as a
        # store keeps them), and 1% more runs, recorded in the history and their directories.
        changed = artifacts(ws, (opts.size_mib << 20) // 100, rng, "2")
        generate(f"sqlite:///{db}", max(1, opts.runs // 100), opts.jobs, seed=8)
        run_dirs(ws, opts.runs, max(1, opts.runs // 100), rng)
        subprocess.run(["sync"], check=True)
        second_t, second = conveyor(*args, cwd=ws)

        target = os.path.join(work, "restored")
        restore_t, restored = conveyor(
            "backup", "restore", str(second["id"]), "--repo", repo, "--to", target, "--no-cache",
            cwd=work,
        )  # fmt: skip
        repo_size = du(repo)
        fraction = second_t / first_t
        rows = [
            ["cp -a (floor)", f"{floor:.2f}s", f"{data / MB / floor:,.0f}", "1.00", "", ""],
            [
                "first backup",
                f"{first_t:.2f}s",
                f"{float(str(first['bytes'])) / MB / first_t:,.0f}",
                f"{first_t / floor:.2f}",
                f"{int(str(first['added_bytes'])) / MB:,.1f} MB",
                f"{first['read_files']:,} files read",
            ],
            [
                "second (1% changed)",
                f"{second_t:.2f}s",
                "",
                f"{second_t / floor:.2f}",
                f"{int(str(second['added_bytes'])) / MB:,.1f} MB",
                f"{second['read_files']:,} files read "
                f"({int(str(second['read_bytes'])) / MB:,.0f} MB)",
            ],
            [
                "restore",
                f"{restore_t:.2f}s",
                f"{float(str(restored['bytes'])) / MB / restore_t:,.0f}",
                f"{restore_t / floor:.2f}",
                "",
                f"{restored['files']:,} files",
            ],
        ]
        print(table(["", "time", "MB/s", "x floor", "added", ""], rows))
        verdict = "meets" if fraction < GOAL else "misses"
        print(
            f"second backup: {fraction:.1%} of the first's time ({verdict} the goal < {GOAL:.0%}); "
            f"{len(changed)} new artifact blobs; repository {repo_size / MB:,.0f} MB for "
            f"{data / MB:,.0f} MB of data"
        )
        print(f"second backup's phases (s): {second.get('phases')}")
        print(f"source: {state}")
        dump_json(
            opts.json,
            {
                "machine": machine(),
                "runs": opts.runs,
                "data_bytes": data,
                "floor_s": floor,
                "first_s": first_t,
                "first": first,
                "second_s": second_t,
                "second": second,
                "second_fraction": fraction,
                "restore_s": restore_t,
                "repo_bytes": repo_size,
            },
        )
    finally:
        if opts.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
