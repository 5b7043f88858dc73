"""What quality gates and checks cost a run.

Generates in a temporary git repository a pipeline of N (-n, default 200) jobs; each
copies a JUnit report (20 test cases) and a Cobertura coverage report (a 100-line file)
into its own directory, declared as its reports. Runs it once so every job is cached,
then times, as whole processes (median of --reps after --warmup, interleaved), a fully
cached run of:

* the files as plain `outputs:`                            the floor
* declared as `reports:` (JUnit read for the history)
* with a tests gate and a coverage gate on every job      each cache hit is judged again
  (both reports read and parsed per job)                  from its restored reports
* plain, with the secrets check (`checks: {secrets: true}`): unchanged files' results reused

and, once, `conveyor check` on that repository with no secrets cache (every file
scanned by detect-secrets) and again with it.

    python3 bench/gates.py [-n 200] [--reps 5] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from _common import (
    BENCH_ENV,
    add_common_args,
    bench,
    commit_all,
    dump_json,
    find_conveyor,
    machine,
    ms,
    print_source,
    src_state,
    table,
    timed,
)

JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="s" tests="20">'
    + "".join(f'<testcase classname="m" name="t{i}" time="0.01"/>' for i in range(20))
    + "</testsuite></testsuites>\n"
)
COVERAGE = (
    '<?xml version="1.0" ?>\n<coverage version="7" line-rate="0.9" branch-rate="0">'
    "<sources><source>.</source></sources><packages><package name='p'><classes>"
    "<class name='m.py' filename='m.py'><lines>"
    + "".join(f'<line number="{i}" hits="{0 if i % 10 == 0 else 1}"/>' for i in range(1, 101))
    + "</lines></class></classes></package></packages></coverage>\n"
)


def pipeline(n: int, reports: bool, gates: bool, secrets: bool) -> str:
    lines = ["name: gates", "defaults:", "  shell: sh"]
    if secrets:
        lines += ["checks:", "  secrets: true"]
    lines.append("jobs:")
    for i in range(n):
        d = f"r/j{i:04d}"
        lines += [
            f"  j{i:04d}:",
            f'    run: "mkdir -p {d} && cp t/junit.xml t/cov.xml {d}/"',
            "    inputs: [t/*]",
        ]
        if reports:
            lines.append(f"    reports: {{junit: {d}/junit.xml, coverage: {d}/cov.xml}}")
        else:
            lines.append(f"    outputs: [{d}/]")
        if gates:
            lines.append("    gates: {tests: {max_failures: 0}, coverage: {line: 80}}")
    return "\n".join(lines) + "\n"


def workspace(root: str, text: str, files: int) -> None:
    os.makedirs(os.path.join(root, "t"))
    for name, body in (("junit.xml", JUNIT), ("cov.xml", COVERAGE)):
        with open(os.path.join(root, "t", name), "w") as fh:
            fh.write(body)
    # Source files for the secrets scan to read (ordinary code, no secrets).
    os.makedirs(os.path.join(root, "src"))
    for i in range(files):
        with open(os.path.join(root, "src", f"m{i:03d}.py"), "w") as fh:
            fh.write("".join(f"def f{k}(x):\n    return x * {k} + {i}\n\n" for k in range(30)))
    with open(os.path.join(root, "conveyor.yml"), "w") as fh:
        fh.write(text)
    commit_all(root)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="jobs in the pipeline")
    ap.add_argument("--files", type=int, default=200, help="source files for the secrets scan")
    add_common_args(ap)
    a = ap.parse_args()
    conveyor, note = find_conveyor(a.conveyor)
    before = src_state()
    work = tempfile.mkdtemp(prefix="conveyor-bench-gates-")
    try:
        env = dict(BENCH_ENV, CONVEYOR_CACHE_DIR=os.path.join(work, "cache"))
        run = [conveyor, "run", "--jobs", "2", "--plain", "-q", "--no-history"]
        spaces = {}
        for i, (name, reports, gates, secrets) in enumerate(
            (
                ("plain (reports as plain outputs)", False, False, False),
                ("reports declared (JUnit read for the history)", True, False, False),
                ("reports + tests and coverage gates on every job", True, True, False),
                ("plain + secrets check", False, False, True),
            )
        ):
            ws = os.path.join(work, f"ws{i}")
            workspace(ws, pipeline(a.n, reports, gates, secrets), a.files)
            timed(run, cwd=ws, env=env)  # fills the cache: every later run is a no-op
            spaces[name] = ws
        cases = {name: {"cmd": run, "cwd": ws, "env": env} for name, ws in spaces.items()}
        res = bench(cases, a.reps, a.warmup)

        ws = spaces["plain + secrets check"]
        cache = os.path.join(ws, ".conveyor", "cache", "secrets.json")
        os.unlink(cache)
        cold = timed([conveyor, "check"], cwd=ws, env=env)[0]
        warm = min(timed([conveyor, "check"], cwd=ws, env=env)[0] for _ in range(a.reps))

        print(print_source(before, note, explicit=a.conveyor is not None) or "")
        print(f"{a.n} jobs, all cached; median of {a.reps} after {a.warmup} warm-up\n")
        rows = [[name, ms(r["median_wall"]), ms(r["median_cpu"])] for name, r in res.items()]
        print(table(["case", "median wall", "CPU"], rows))
        floor = res["plain (reports as plain outputs)"]["median_wall"]
        for name in list(res)[1:]:
            extra = res[name]["median_wall"] - floor
            print(
                f"{name}: {res[name]['median_wall'] / floor:.2f}x the floor, "
                f"{extra * 1000:+.0f} ms ({extra / a.n * 1000:.2f} ms per job)"
            )
        print(
            f"conveyor check over {a.files + 3} files: {cold * 1000:.0f} ms scanning "
            f"every file, {warm * 1000:.0f} ms with nothing changed"
        )
        dump_json(
            a.json,
            {"machine": machine(), "n": a.n, "runs": res, "check_cold": cold, "check_warm": warm},
        )
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
