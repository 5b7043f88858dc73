"""Caching, side by side with the peers: the shared harness's scenarios, Conveyor included.

Runs `<peers-dir>/run.py` (the shared harness: turbo, nx, doit, make, ninja, go-task on
gen.py's synthetic monorepo) in this process with Conveyor added as one more peer, so
every tool is timed in the same run, interleaved, with the same checks (exit status,
tasks executed counted from .exec.log, outputs present):

  cold     empty caches, no outputs: every task runs
  noop     nothing changed: nothing runs
  leaf     one leaf package's source changed: 1 task runs
  root     the package with most dependents changed: it and its dependents run
  restore  every packages/*/dist deleted: Conveyor, turbo and nx restore from their
           caches (0 tasks); the others rebuild

Conveyor's workspace is a copy of gen.py's make workspace with a generated conveyor.yml
(one job per package: `dir`, gen.py's own command, `needs`, `outputs: [dist/]`). Each
size has its own cache beside its workspace (`<work>/n<N>/conveyor-cache`, given as
CONVEYOR_CACHE_DIR), emptied for `cold`, so one size's runs never evict another's.
Also printed: the floor of a no-op, `git ls-files -s` plus a stat of every input file,
and the floor of a cold run for a Python orchestrator that caches (`_cold_floor.py`:
parse the YAML, hash every input, run every task in dependency order, write a result
file per task; nothing else).

    python3 bench/cache.py [-n 200,1000] [--prefix PEERS_PREFIX] [--reps 5] [...]

Peers are installed with `bash <peers-dir>/install-peers.sh PREFIX`; missing ones are
skipped. Other options are passed on to run.py (--reps, --warmup, --heavy-reps, ...).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import REPO, conveyor_python, find_conveyor, write_pipeline

PEERS_DEFAULT = os.path.join(REPO, "..", "shared", "bench", "peers")
HERE = os.path.dirname(os.path.abspath(__file__))


def load(path: str, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        sys.exit(f"error: cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def add_conveyor_workspace(gen, base: str) -> None:  # type: ignore[no-untyped-def]
    """base/conveyor: gen.py's make workspace plus a conveyor.yml, committed."""
    ws = os.path.join(base, "conveyor")
    if os.path.exists(os.path.join(ws, "conveyor.yml")):
        return
    shutil.copytree(os.path.join(base, "make"), ws, symlinks=True)
    with open(os.path.join(base, "meta.json")) as fh:
        n = json.load(fh)["packages"]
    deps = gen.build_graph(n, 42)
    names = [gen.pkg_name(i) for i in range(n)]
    jobs = [
        (
            name,
            gen.task_cmd(name, [names[d] for d in ds]),
            [names[d] for d in ds],
            f"packages/{name}",
        )
        for name, ds in zip(names, deps, strict=True)
    ]
    write_pipeline(os.path.join(ws, "conveyor.yml"), jobs, name="monorepo", outputs=["dist/"])
    git = ["git", "-C", ws, "-c", "gc.auto=0", "-c", "user.email=b@x", "-c", "user.name=b"]
    subprocess.run([*git, "add", "conveyor.yml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "conveyor pipeline"], check=True)


def noop_floor(ws: str, python: str, reps: int) -> float:
    """`git ls-files -s` plus a stat of every package source file: what any content-hashing
    tool must at least do to know that nothing changed."""
    code = (
        "import os, subprocess, sys\n"
        "subprocess.run(['git', 'ls-files', '-s'], cwd=sys.argv[1], stdout=subprocess.DEVNULL)\n"
        "for d, _, fs in os.walk(os.path.join(sys.argv[1], 'packages')):\n"
        "    [os.stat(os.path.join(d, f)) for f in fs if '/dist' not in d]\n"
    )
    samples = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        subprocess.run([python, "-c", code, ws], check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples[1:])


def cold_floor(ws: str, python: str, jobs: int, n: int, reps: int) -> float:
    """`_cold_floor.py` (what any Python orchestrator that caches must do on a cold run)
    in Conveyor's workspace, outputs removed before each sample; checked to have run
    every task exactly once."""
    samples = []
    for _ in range(reps + 1):
        for pkg in os.listdir(os.path.join(ws, "packages")):
            shutil.rmtree(os.path.join(ws, "packages", pkg, "dist"), ignore_errors=True)
        log = os.path.join(ws, ".exec.log")
        if os.path.exists(log):
            os.unlink(log)
        store = tempfile.mkdtemp(prefix="cold-floor-")
        try:
            t = time.perf_counter()
            subprocess.run(
                [python, os.path.join(HERE, "_cold_floor.py"), ws, str(jobs), store], check=True
            )
            samples.append(time.perf_counter() - t)
        finally:
            shutil.rmtree(store, ignore_errors=True)
        with open(log, encoding="utf-8") as fh:
            ran = fh.read().split()
        if sorted(ran) != sorted(set(ran)) or len(ran) != n:
            sys.exit(f"error: the cold floor ran {len(ran)} tasks, not {n}")
    return statistics.median(samples[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    ap.add_argument("-n", "--sizes", default="200")
    ap.add_argument("--peers-dir", default=PEERS_DEFAULT)
    ap.add_argument(
        "--prefix", default=os.path.join(tempfile.gettempdir(), "bench-peers", "prefix")
    )
    ap.add_argument(
        "--work", default=os.path.join(tempfile.gettempdir(), "bench-peers", "work-conveyor")
    )
    ap.add_argument("--peers", default="conveyor,turbo,nx,doit,make,ninja,task")
    ap.add_argument("--conveyor", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    a, rest = ap.parse_known_args()
    peers_dir = os.path.abspath(a.peers_dir)
    gen = load(os.path.join(peers_dir, "gen.py"), "peers_gen")
    run = load(os.path.join(peers_dir, "run.py"), "peers_run")
    conveyor, _note = find_conveyor(a.conveyor)
    others = [p for p in a.peers.split(",") if p and p != "conveyor"]

    for n in [int(x) for x in a.sizes.split(",")]:
        base = os.path.join(a.work, f"n{n}")
        if not os.path.exists(os.path.join(base, "meta.json")):
            subprocess.run(
                [
                    sys.executable,
                    os.path.join(peers_dir, "gen.py"),
                    "-n",
                    str(n),
                    "--jobs",
                    str(a.jobs),
                    "--force",
                    "--peers",
                    ",".join(sorted({*others, "doit", "make"})),
                    base,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                env=dict(os.environ, GIT_CONFIG_PARAMETERS="'gc.auto=0'"),
            )
        add_conveyor_workspace(gen, base)

    # One cache per size, beside that size's workspace (<work>/n<N>/conveyor-cache): with
    # one shared by every size, a cold N=1000 run (which empties it) wiped the N=200
    # entries, and a later N=200 no-op re-ran 117 jobs. The harness runs every peer in
    # its own workspace, so the size is read from the workspace the run happens in.
    real_table, real_expected, real_available = run.peer_table, run.expected, run.available
    real_timed = run.timed

    def cache_of(ws: str) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(ws)), "conveyor-cache")

    def peer_table(prefix, jobs):  # type: ignore[no-untyped-def]
        table, nm_bin = real_table(prefix, jobs)
        argv = [conveyor, "run", f"--jobs={jobs}", "--plain", "-q"]
        # "../conveyor-cache" is relative to the workspace: emptied for `cold`.
        table["conveyor"] = run.Peer(
            "conveyor", argv, [".conveyor", "packages/*/dist", "../conveyor-cache"]
        )
        return table, nm_bin

    def timed(argv, cwd, env, log, timeout):  # type: ignore[no-untyped-def]
        if argv and argv[0] == conveyor:
            env = dict(env, CONVEYOR_CACHE_DIR=cache_of(cwd))
        return real_timed(argv, cwd, env, log, timeout)

    def expected(scen, peer, meta):  # type: ignore[no-untyped-def]
        if peer == "conveyor" and scen == "restore":
            return 0
        return real_expected(scen, peer, meta)

    def available(peer, nm_bin):  # type: ignore[no-untyped-def]
        return True if peer.name == "conveyor" else real_available(peer, nm_bin)

    run.peer_table, run.expected, run.available = peer_table, expected, available
    run.timed = timed
    run.ALL_PEERS = (*run.ALL_PEERS, "conveyor")
    code = (
        run.main(
            [
                "--prefix",
                a.prefix,
                "--work",
                a.work,
                "-n",
                a.sizes,
                "--peers",
                a.peers,
                "--jobs",
                str(a.jobs),
                *rest,
            ]
        )
        or 0
    )
    for n in [int(x) for x in a.sizes.split(",")]:
        ws = os.path.join(a.work, f"n{n}", "conveyor")
        floor = noop_floor(ws, conveyor_python(conveyor), 5)
        print(f"N={n}: no-op floor (git ls-files -s + stat of every source file): {floor:.3f}s")
        cold = cold_floor(ws, conveyor_python(conveyor), a.jobs, n, 3)
        print(
            f"N={n}: cold floor (a minimal Python orchestrator that hashes inputs and "
            f"stores results, bench/_cold_floor.py): {cold:.3f}s"
        )
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
