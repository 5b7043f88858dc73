"""Cold build of the shared synthetic monorepo: `conveyor run` versus `make -j2`.

Uses the shared peers harness generator (<peers-dir>/gen.py, see its README.md):
`gen.py -n N --peers make TARGET` writes TARGET/make/ (N packages pNNNN with
src/*.txt and a Makefile) and TARGET/meta.json. The make workspace is copied to
TARGET/conveyor/, and a conveyor.yml is written there with one job per package
(`dir: packages/pNNNN`, `run:` gen.py's own task command, `needs:` the package's
dependencies, `defaults: shell: sh`). The graph and commands come from gen.py's
build_graph()/task_cmd(), imported with importlib, and are checked against the
generated Makefile.

For each N (-n 200,1000; default 200), both tools are timed cold, interleaved,
median of --reps after --warmup: before every run packages/*/dist, .exec.log and
.conveyor/ are deleted. Each task appends its name to .exec.log; a run must leave
exactly N names there (each package once) and N dist/out.txt files.

* make:     `make -j2`
* conveyor: `conveyor -f conveyor.yml run --jobs 2 --plain -q`

Only cold runs are reported: Conveyor has no task cache yet, so a no-op re-run
re-executes every task (make would run none).

    python3 bench/monorepo.py [-n 200,1000] [--reps 5] [--peers-dir DIR] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import collections
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from _common import (
    BENCH_ENV,
    REPO,
    add_common_args,
    bench,
    dump_json,
    find_conveyor,
    machine,
    ms,
    print_source,
    src_state,
    table,
    timed,
    tool_version,
    write_pipeline,
)


def load_gen(peers_dir: str):
    path = os.path.join(peers_dir, "gen.py")
    if not os.path.isfile(path):
        sys.exit(f"error: {path} not found (pass --peers-dir)")
    spec = importlib.util.spec_from_file_location("peers_gen", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def makefile_graph(path: str) -> dict[str, tuple[list[str], str]]:
    """{pkg: (dependency pkgs, command)} read back from gen.py's Makefile."""
    out = {}
    with open(path) as fh:
        text = fh.read()
    rule = re.compile(r"^packages/(p\d+)/dist/out\.txt: (.*)\n\tcd packages/\1 && (.*)$", re.M)
    for m in rule.finditer(text):
        out[m.group(1)] = (re.findall(r"packages/(p\d+)/dist/out\.txt", m.group(2)), m.group(3))
    return out


def prepare(gen, peers_dir: str, target: str, n: int, seed: int) -> tuple[str, str, dict]:
    # gen.py commits ~20*N loose objects; git's automatic gc would then pack them in a
    # detached background process (racing the copy below and the timings): disable it.
    env = dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="gc.auto", GIT_CONFIG_VALUE_0="0")
    subprocess.run(
        [
            sys.executable,
            os.path.join(peers_dir, "gen.py"),
            "-n",
            str(n),
            "--seed",
            str(seed),
            "--peers",
            "make",
            "--force",
            target,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    with open(os.path.join(target, "meta.json")) as fh:
        meta = json.load(fh)
    make_ws, conv_ws = os.path.join(target, "make"), os.path.join(target, "conveyor")
    shutil.copytree(make_ws, conv_ws, symlinks=True)
    deps = gen.build_graph(meta["packages"], meta["seed"])
    jobs = []
    for i, ds in enumerate(deps):
        name, dn = gen.pkg_name(i), [gen.pkg_name(d) for d in ds]
        jobs.append((name, gen.task_cmd(name, dn), dn, f"packages/{name}"))
    mk = makefile_graph(os.path.join(make_ws, "Makefile"))
    if {j[0]: (j[2], j[1]) for j in jobs} != mk:
        sys.exit("error: graph re-derived from gen.py differs from its Makefile")
    write_pipeline(os.path.join(conv_ws, "conveyor.yml"), jobs, name="monorepo", outputs=["dist/"])
    return make_ws, conv_ws, meta


def clean(ws: str) -> None:
    for d in glob.glob(os.path.join(ws, "packages", "*", "dist")):
        shutil.rmtree(d)
    shutil.rmtree(os.path.join(ws, ".conveyor"), ignore_errors=True)
    # A cold run: the job cache (kept beside the workspace) is emptied too.
    shutil.rmtree(os.path.join(os.path.dirname(ws), "conveyor-cache"), ignore_errors=True)
    if os.path.exists(os.path.join(ws, ".exec.log")):
        os.remove(os.path.join(ws, ".exec.log"))


def executed(ws: str) -> collections.Counter:
    try:
        with open(os.path.join(ws, ".exec.log")) as fh:
            return collections.Counter(re.findall(r"p\d{4}", fh.read()))
    except FileNotFoundError:
        return collections.Counter()


def outputs(ws: str) -> dict[str, bytes]:
    found = {}
    for p in glob.glob(os.path.join(ws, "packages", "*", "dist", "out.txt")):
        with open(p, "rb") as fh:
            found[p.split(os.sep)[-3]] = fh.read()
    return found


def time_size(a, conveyor: str, make: str, make_ws: str, conv_ws: str, n: int):
    """Cold runs of both tools at one N; each run checked for N tasks and N outputs."""
    ws_of = {"make": make_ws, "conveyor": conv_ws}
    counts: dict[str, list[int]] = {"make": [], "conveyor": []}

    def check(name: str) -> None:
        c = executed(ws_of[name])
        counts[name].append(sum(c.values()))
        outs = glob.glob(os.path.join(ws_of[name], "packages", "*", "dist", "out.txt"))
        if sum(c.values()) != n or len(c) != n or len(outs) != n:
            raise RuntimeError(
                f"{name} at N={n}: {sum(c.values())} tasks logged, "
                f"{len(c)} distinct, {len(outs)} outputs; expected {n}"
            )

    # Conveyor's job cache lives beside the workspace and is emptied before each run.
    conv_env = dict(
        BENCH_ENV, CONVEYOR_CACHE_DIR=os.path.join(os.path.dirname(conv_ws), "conveyor-cache")
    )
    cases = {
        "make": {
            "cmd": [make, f"-j{a.jobs}"],
            "cwd": make_ws,
            "before": lambda: clean(make_ws),
            "after": check,
        },
        "conveyor": {
            "cmd": [conveyor, "-f", "conveyor.yml", "run", "--jobs", str(a.jobs), "--plain", "-q"],
            "cwd": conv_ws,
            "env": conv_env,
            "before": lambda: clean(conv_ws),
            "after": check,
        },
    }
    sys.stderr.write(f"N={n}: {a.reps} reps (+{a.warmup} warm-up), cold, parallelism {a.jobs}\n")
    res = bench(cases, a.reps, a.warmup)
    for name in res:
        res[name]["tasks_executed"] = counts[name][a.warmup :]
    return res, outputs(make_ws) == outputs(conv_ws)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-n", default="200", help="comma list of package counts (default 200)")
    ap.add_argument("--jobs", type=int, default=2, help="parallelism for both tools (default 2)")
    ap.add_argument("--seed", type=int, default=42, help="gen.py seed (default 42)")
    ap.add_argument(
        "--peers-dir",
        default=None,
        help="shared harness dir with gen.py (default <repo>/../shared/bench/peers)",
    )
    ap.add_argument("--work", default=None, help="where to generate (default: a temporary dir)")
    ap.add_argument("--make", default="make", help="make executable (default: make)")
    add_common_args(ap)
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.n.split(",") if x.strip()]
    peers_dir = os.path.abspath(a.peers_dir or os.path.join(REPO, "..", "shared", "bench", "peers"))
    gen = load_gen(peers_dir)
    conveyor, note = find_conveyor(a.conveyor)
    state = src_state()
    make = shutil.which(a.make) or sys.exit(f"error: {a.make} not found")
    work = os.path.abspath(a.work) if a.work else tempfile.mkdtemp(prefix="conveyor-bench-mono-")
    os.makedirs(work, exist_ok=True)

    results = {}
    try:
        for n in sizes:
            sys.stderr.write(f"N={n}: generating with {peers_dir}/gen.py in {work}/n{n}\n")
            make_ws, conv_ws, meta = prepare(gen, peers_dir, os.path.join(work, f"n{n}"), n, a.seed)
            timed([conveyor, "-f", "conveyor.yml", "validate"], cwd=conv_ws)
            res, same = time_size(a, conveyor, make, make_ws, conv_ws, n)
            results[n] = {"meta": meta, "results": res, "same_outputs": same}
    finally:
        if a.keep or a.work:
            sys.stderr.write(f"work directory kept: {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"conveyor: {conveyor} ({tool_version([conveyor, '--version'])}); "
        f"make: {make} ({tool_version([make, '--version'])})"
    )
    warn = print_source(state, note, explicit=bool(a.conveyor))
    print(
        f"cold runs (dist/, .exec.log, .conveyor/ removed before each), parallelism {a.jobs}; "
        f"median of {a.reps} after {a.warmup} warm-up; {os.cpu_count()} CPUs\n"
    )
    rows = []
    for n, r in results.items():
        m = r["meta"]
        for name, x in r["results"].items():
            rows.append(
                [
                    str(n),
                    name,
                    ms(x["median_wall"]),
                    f"{ms(x['min_wall'])} - {ms(x['max_wall'])}",
                    ms(x["median_cpu"]),
                    "/".join(sorted({str(t) for t in x["tasks_executed"]})),
                    f"{m['edges']} / {m['critical_path_tasks']}",
                ]
            )
    print(
        table(
            [
                "N",
                "tool",
                "median wall",
                "range",
                "CPU (user+sys)",
                "tasks run",
                "edges / critical path",
            ],
            rows,
        )
    )
    print()
    for n, r in results.items():
        c, mk = r["results"]["conveyor"]["median_wall"], r["results"]["make"]["median_wall"]
        print(
            f"N={n}: ratio conveyor/make (cold) {c / mk:.2f}; "
            f"per-task overhead {(c - mk) / n * 1000:.2f} ms; "
            f"dist/out.txt identical for both tools: {'yes' if r['same_outputs'] else 'NO'}"
        )
    print("(cold runs only: job caching, no-op and incremental runs are measured by cache.py)")
    dump_json(
        a.json,
        {
            "conveyor_source": state,
            "source_changed": warn,
            "bench": "monorepo",
            "machine": machine(),
            "repo": REPO,
            "peers_dir": peers_dir,
            "parallelism": a.jobs,
            "reps": a.reps,
            "warmup": a.warmup,
            "by_n": {str(k): v for k, v in results.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
