"""Scheduling overhead: N trivial jobs run by `conveyor run` versus GNU make.

Generates in a temporary directory a pipeline of N (-n, default 1000) jobs, each
running `true` with `defaults: shell: sh`, where job i needs 0-3 random earlier
jobs (random.Random(42)), and an equivalent Makefile: one phony target per job
with the same prerequisites and recipe `@true`, and `all` depending on every job.
Then times, as whole processes (median of --reps after --warmup, interleaved):

* `conveyor -f conveyor.yml run --jobs 2 --plain -q`
* `make -j2 -s all`   (every target is .PHONY, so every recipe runs each time)

and prints the ratio conveyor/make and Conveyor's per-job overhead,
(conveyor - make) / N. The issue's target is ratio <= 1.5; this only reports.
Conveyor's `.conveyor/runs/` is deleted before each run (the parsed-config cache
is kept, as on a developer's machine) so run history does not pile up.

    python3 bench/scheduling.py [-n 1000] [--reps 5] [--jobs 2] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile

from _common import (
    REPO,
    add_common_args,
    bench,
    conveyor_interpreter,
    dump_json,
    find_conveyor,
    machine,
    ms,
    print_source,
    random_dag,
    src_state,
    table,
    tool_version,
    write_pipeline,
)


def write_makefile(path: str, names: list[str], deps: list[list[int]]) -> None:
    lines = [
        "# one phony target per conveyor job, recipe @true",
        "MAKEFLAGS += --no-builtin-rules",
        ".SUFFIXES:",
        ".PHONY: all " + " ".join(names),
        "",
        "all: " + " ".join(names),
        "",
    ]
    for name, ds in zip(names, deps, strict=True):
        lines.append(f"{name}: " + " ".join(names[d] for d in ds))
        lines.append("\t@true")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


# The floor for any orchestrator written in Python: the same N `true` processes, in an
# order the DAG allows (index order), spawned with subprocess from --jobs threads,
# output captured through a pipe, and nothing else (no graph, events, logs or summary).
PY_FLOOR = """
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
def one(_):
    p = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    p.stdout.read(); p.stdout.close(); p.wait()
with ThreadPoolExecutor(int(sys.argv[2])) as ex:
    list(ex.map(one, range(int(sys.argv[1]))))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-n", type=int, default=1000, help="number of jobs (default 1000)")
    ap.add_argument("--jobs", type=int, default=2, help="parallelism for both tools (default 2)")
    ap.add_argument("--seed", type=int, default=42, help="seed of the DAG (default 42)")
    ap.add_argument("--make", default="make", help="make executable (default: make)")
    add_common_args(ap)
    a = ap.parse_args(argv)
    conveyor, note = find_conveyor(a.conveyor)
    state = src_state()
    make = shutil.which(a.make) or sys.exit(f"error: {a.make} not found")

    work = tempfile.mkdtemp(prefix="conveyor-bench-sched-")
    try:
        names = [f"j{i:04d}" for i in range(a.n)]
        deps = random_dag(a.n, a.seed)
        write_pipeline(
            os.path.join(work, "conveyor.yml"),
            [(n, "true", [names[d] for d in ds], None) for n, ds in zip(names, deps, strict=True)],
        )
        write_makefile(os.path.join(work, "Makefile"), names, deps)
        runs = os.path.join(work, ".conveyor", "runs")

        # Every run starts with an empty job cache and reads none (--no-cache): all N jobs
        # execute (jobs with the same command and inputs would otherwise share one cache
        # entry), and are stored: the cost of caching is part of what is measured.
        cache_dir = os.path.join(work, "conveyor-cache")
        os.environ["CONVEYOR_CACHE_DIR"] = cache_dir

        def clear_runs() -> None:
            shutil.rmtree(runs, ignore_errors=True)
            shutil.rmtree(cache_dir, ignore_errors=True)

        def check_conveyor(_: str) -> None:
            found = glob.glob(os.path.join(runs, "*", "summary.json"))
            if len(found) != 1:
                raise RuntimeError(f"expected one run summary, found {found}")
            with open(found[0]) as fh:
                summ = json.load(fh)
            ok = sum(
                j.get("status") == "success" and not j.get("cached") for j in summ.get("jobs", [])
            )
            if summ.get("status") != "success" or ok != a.n:
                raise RuntimeError(
                    f"conveyor summary: status {summ.get('status')}, {ok} of {a.n} jobs succeeded"
                )

        cases = {
            "conveyor": {
                "cmd": [
                    conveyor,
                    "-f",
                    "conveyor.yml",
                    "run",
                    "--no-cache",
                    "--jobs",
                    str(a.jobs),
                    "--plain",
                    "-q",
                ],
                "cwd": work,
                "before": clear_runs,
                "after": check_conveyor,
            },
            "make": {"cmd": [make, f"-j{a.jobs}", "-s", "all"], "cwd": work},
            "python spawn floor": {
                # The interpreter Conveyor runs with (same site setup), not this one.
                "cmd": [*conveyor_interpreter(conveyor), "-c", PY_FLOOR, str(a.n), str(a.jobs)],
                "cwd": work,
            },
        }
        sys.stderr.write(
            f"N={a.n} jobs, {sum(map(len, deps))} edges; {a.reps} reps "
            f"(+{a.warmup} warm-up), parallelism {a.jobs}; work dir {work}\n"
        )
        res = bench(cases, a.reps, a.warmup)
        with open(glob.glob(os.path.join(runs, "*", "summary.json"))[0]) as fh:
            inner = json.load(fh).get("wall_time")  # conveyor's own measure of its last run
    finally:
        if a.keep:
            sys.stderr.write(f"work directory kept: {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)

    c, m = res["conveyor"]["median_wall"], res["make"]["median_wall"]
    ratio = c / m
    per_job = (c - m) / a.n
    print(
        f"conveyor: {conveyor} ({tool_version([conveyor, '--version'])}); "
        f"make: {make} ({tool_version([make, '--version'])})"
    )
    warn = print_source(state, note, explicit=bool(a.conveyor))
    print(
        f"N={a.n} jobs running `true`, {sum(map(len, deps))} needs edges, parallelism {a.jobs}; "
        f"median of {a.reps} runs after {a.warmup} warm-up; {os.cpu_count()} CPUs\n"
    )

    def shown(name: str, cmd: list[str]) -> str:
        if name == "python spawn floor":
            return f"python3 -c <Popen `true` x{a.n}, {a.jobs} threads>"
        return " ".join(os.path.basename(x) if i == 0 else x for i, x in enumerate(cmd))

    rows = [
        [
            name,
            shown(name, r["cmd"]),
            ms(r["median_wall"]),
            f"{ms(r['min_wall'])} - {ms(r['max_wall'])}",
            ms(r["median_cpu"]),
            f"{r['median_wall'] / a.n * 1000:.2f} ms",
        ]
        for name, r in res.items()
    ]
    print(
        table(["tool", "command", "median wall", "range", "CPU (user+sys)", "wall per job"], rows)
    )
    print()
    if inner is not None:
        print(
            f"conveyor's own wall_time of its last run (its summary.json; no start-up, "
            f"config load or planning): {ms(inner)}"
        )
    print(f"conveyor per-job overhead over make: {per_job * 1000:.2f} ms/job")
    floor = res["python spawn floor"]["median_wall"]
    print(
        f"ratio conveyor/python spawn floor: {c / floor:.2f}; "
        f"python spawn floor/make: {floor / m:.2f}"
    )
    print(
        f"ratio conveyor/make: {ratio:.2f} (issue target <= 1.5: "
        f"{'met' if ratio <= 1.5 else 'not met'})"
    )
    dump_json(
        a.json,
        {
            "conveyor_source": state,
            "source_changed": warn,
            "bench": "scheduling",
            "machine": machine(),
            "repo": REPO,
            "n": a.n,
            "parallelism": a.jobs,
            "reps": a.reps,
            "warmup": a.warmup,
            "edges": sum(map(len, deps)),
            "results": res,
            "ratio": ratio,
            "per_job_overhead_s": per_job,
            "last_conveyor_internal_wall_time_s": inner,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
