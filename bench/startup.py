"""Start-up cost of the `conveyor` command, against the interpreter's own floor.

Measures, as whole processes timed from outside (median of --reps after --warmup):

* floor:            `<python> -c pass`, where <python> is the interpreter of the
                    `conveyor` script timed (its #! line): the same virtualenv and site
                    setup (`.pth` files) that every `conveyor` command pays for
* version:          `conveyor --version`
* validate (cold):  `conveyor -f <200-job file> validate`, `.conveyor/` deleted
                    before each run, so the parsed-config cache is empty
* validate (warm):  the same with the cache kept (filled by the warm-up run)
* validate, 2,000 jobs (cold):   the same for a 2,000-job file (--big)
* validate, 10,000-instance matrix (cold): one job whose matrix is 10 x 10 x 10 x 10,
                    the default limit of instances per job

Each row also shows the command's peak RSS (its own, from os.wait4), against the
floor's.

The 200-job file (-n) is generated in a temporary directory: job i needs 0-3
random earlier jobs (random.Random(42)), every job runs `true`.

    python3 bench/startup.py [--reps 5] [-n 200] [--big 2000] [--conveyor PATH] [--json [FILE]]
"""

from __future__ import annotations

import argparse
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
    timed,
    tool_version,
    write_pipeline,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "-n",
        "--jobs-in-file",
        type=int,
        default=200,
        help="jobs in the validated file (default 200)",
    )
    ap.add_argument(
        "--big",
        type=int,
        default=2000,
        help="jobs in the large validated file (default 2000)",
    )
    add_common_args(ap)
    a = ap.parse_args(argv)
    conveyor, note = find_conveyor(a.conveyor)
    # Not sys.executable: this script may run under another interpreter (a pyenv python
    # without the virtualenv's .pth files), which made the floor slower than
    # `conveyor --version` itself.
    python = conveyor_interpreter(conveyor)
    state = src_state()

    work = tempfile.mkdtemp(prefix="conveyor-bench-startup-")
    try:
        pipe = os.path.join(work, "conveyor.yml")
        deps = random_dag(a.jobs_in_file)
        write_pipeline(
            pipe,
            [(f"j{i:04d}", "true", [f"j{d:04d}" for d in ds], None) for i, ds in enumerate(deps)],
        )
        state_dir = os.path.join(work, ".conveyor")
        big_dir = os.path.join(work, "big")
        os.makedirs(big_dir)
        big = os.path.join(big_dir, "conveyor.yml")
        write_pipeline(
            big,
            [
                (f"j{i:04d}", "true", [f"j{d:04d}" for d in ds], None)
                for i, ds in enumerate(random_dag(a.big))
            ],
        )
        matrix_dir = os.path.join(work, "matrix")
        os.makedirs(matrix_dir)
        matrix = os.path.join(matrix_dir, "conveyor.yml")
        with open(matrix, "w") as fh:
            values = ", ".join(f'"{i}"' for i in range(10))
            fh.write(
                "jobs:\n  test:\n    run: echo ${{ matrix.a }}\n    matrix:\n"
                + "".join(f"      {axis}: [{values}]\n" for axis in "abcd")
            )

        def clear() -> None:
            for d in (work, big_dir, matrix_dir):
                shutil.rmtree(os.path.join(d, ".conveyor"), ignore_errors=True)

        def check_cache(name: str) -> None:
            cache = os.path.join(state_dir, "cache")
            if not (os.path.isdir(cache) and os.listdir(cache)):
                raise RuntimeError(f"{name}: validate left no parsed-config cache in {cache}")

        validate = [conveyor, "-f", pipe, "validate"]
        timed(validate, cwd=work)  # fails loudly if the file does not validate
        cases = {
            "python3 -c pass (floor)": {"cmd": [*python, "-c", "pass"], "cwd": work},
            "conveyor --version": {"cmd": [conveyor, "--version"], "cwd": work},
            f"conveyor validate, {a.jobs_in_file} jobs, cold cache": {
                "cmd": validate,
                "cwd": work,
                "before": clear,
                "after": check_cache,
            },
            f"conveyor validate, {a.jobs_in_file} jobs, warm cache": {"cmd": validate, "cwd": work},
            f"conveyor validate, {a.big} jobs, cold cache": {
                "cmd": [conveyor, "-f", big, "validate"],
                "cwd": big_dir,
                "before": clear,
            },
            "conveyor validate, 10,000-instance matrix, cold cache": {
                "cmd": [conveyor, "-f", matrix, "validate"],
                "cwd": matrix_dir,
                "before": clear,
            },
        }
        shim = shutil.which("conveyor")
        if note and shim:
            cases["conveyor --version via the pyenv shim"] = {
                "cmd": [shim, "--version"],
                "cwd": work,
            }
        sys.stderr.write(f"timing {len(cases)} commands, {a.reps} reps (+{a.warmup} warm-up)\n")
        res = bench(cases, a.reps, a.warmup)
    finally:
        if a.keep:
            sys.stderr.write(f"work directory kept: {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)

    floor = res["python3 -c pass (floor)"]["median_wall"]
    floor_rss = res["python3 -c pass (floor)"]["max_rss_kib"]
    rows = []
    for name, r in res.items():
        rows.append(
            [
                name,
                ms(r["median_wall"]),
                f"{ms(r['min_wall'])} - {ms(r['max_wall'])}",
                ms(r["median_cpu"]),
                f"{r['median_wall'] / floor:.2f}x",
                ms(r["median_wall"] - floor),
                f"{r['max_rss_kib'] / 1024:.0f} MiB",
                f"{r['max_rss_kib'] / floor_rss:.1f}x",
            ]
        )
    print(
        f"conveyor: {conveyor} ({tool_version([conveyor, '--version'])}); "
        f"floor interpreter: {' '.join(python)}"
    )
    warn = print_source(state, note, explicit=bool(a.conveyor))
    print(f"median of {a.reps} runs after {a.warmup} warm-up; {os.cpu_count()} CPUs\n")
    print(
        table(
            [
                "command",
                "median wall",
                "range",
                "CPU (user+sys)",
                "ratio to floor",
                "above floor",
                "peak RSS",
                "RSS to floor",
            ],
            rows,
        )
    )
    print()
    for name in res:
        if name.startswith("conveyor"):
            print(f"ratio {name} / floor: {res[name]['median_wall'] / floor:.2f}")
    dump_json(
        a.json,
        {
            "conveyor_source": state,
            "source_changed": warn,
            "bench": "startup",
            "machine": machine(),
            "conveyor": conveyor,
            "repo": REPO,
            "reps": a.reps,
            "warmup": a.warmup,
            "jobs_in_file": a.jobs_in_file,
            "big_file_jobs": a.big,
            "floor_interpreter": python,
            "results": res,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
