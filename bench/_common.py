"""Helpers shared by the bench/ scripts (standard library only; not a benchmark itself).

Whole processes are timed from outside with time.perf_counter (wall clock from
spawn to exit); CPU (user+sys) and peak RSS are the reaped process's own, from
os.wait4.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CI is removed (tools behave differently under CI), as the shared peers harness does.
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "CI"} | {"NO_COLOR": "1"}


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--reps", type=int, default=5, help="timed repetitions, median reported (default 5)"
    )
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs (default 1)")
    ap.add_argument(
        "--conveyor",
        metavar="PATH",
        default=None,
        help="conveyor executable (default: shutil.which('conveyor'), a pyenv shim "
        "being replaced by the script beside sys.executable)",
    )
    ap.add_argument(
        "--json",
        metavar="FILE",
        nargs="?",
        const="-",
        default=None,
        help="also dump raw samples as JSON (to FILE, or stdout when no FILE)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary work directory")


def find_conveyor(explicit: str | None) -> tuple[str, str | None]:
    """(path to run, note). A pyenv shim costs a bash+pyenv start-up per call, which is
    not Conveyor's; the script installed beside sys.executable is used instead."""
    if explicit:
        path = shutil.which(explicit) or explicit
        if not os.access(path, os.X_OK):
            sys.exit(f"error: --conveyor {explicit}: not an executable")
        compile_bytecode(path)
        return path, None
    found = shutil.which("conveyor")
    beside = os.path.join(os.path.dirname(sys.executable), "conveyor")
    if found and os.sep + "shims" + os.sep in found and os.access(beside, os.X_OK):
        compile_bytecode(beside)
        return beside, f"{found} is a pyenv shim; timing {beside} instead"
    if not found:
        if os.access(beside, os.X_OK):
            compile_bytecode(beside)
            return beside, None
        sys.exit("error: conveyor not found on PATH; pass --conveyor PATH")
    compile_bytecode(found)
    return found, None


def conveyor_interpreter(conveyor: str) -> list[str]:
    """The command a `conveyor` script starts its interpreter with: its #! line, whole
    (`/venv/bin/python3`, or `/usr/bin/env python3` with any flags), else this
    interpreter. A floor timed with it pays the same start-up as Conveyor: the same
    interpreter, the same virtualenv and site-packages, the same `.pth` files."""
    try:
        with open(conveyor, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        if first.startswith("#!") and "python" in first:
            return first[2:].split()
    except OSError:
        pass
    return [sys.executable]


def conveyor_python(conveyor: str) -> str:
    """The interpreter a `conveyor` script runs with (its #! line), else this one."""
    argv = conveyor_interpreter(conveyor)
    if os.path.basename(argv[0]) == "env" and len(argv) > 1:
        found = shutil.which(argv[1])
        if found:
            return found
    return argv[0]


def compile_bytecode(conveyor: str) -> None:
    """Write Conveyor's bytecode before timing it. With PYTHONDONTWRITEBYTECODE set (as in
    some CI and sandbox shells) an editable install whose sources changed would otherwise
    recompile those modules on every run, and that would be timed."""
    python = conveyor_python(conveyor)
    code = (
        "import compileall, os, conveyor; "
        "compileall.compile_dir(os.path.dirname(conveyor.__file__), quiet=1)"
    )
    subprocess.run([python, "-c", code], check=False, stdout=subprocess.DEVNULL)


def timed(
    cmd: list[str], cwd: str | None = None, env: dict[str, str] | None = None, timeout: float = 3600
) -> tuple[float, float, str]:
    """Run cmd once; return (wall seconds, child CPU seconds, stderr tail). Fails loudly."""
    wall, cpu, _, err = measured(cmd, cwd, env, timeout)
    return wall, cpu, err


def measured(
    cmd: list[str], cwd: str | None = None, env: dict[str, str] | None = None, timeout: float = 3600
) -> tuple[float, float, int, str]:
    """Run cmd once; return (wall seconds, CPU seconds, peak RSS in KiB, stderr tail).
    The peak is the process's own (os.wait4), not the maximum over every child so far
    that RUSAGE_CHILDREN keeps. Fails loudly."""
    env = BENCH_ENV if env is None else env
    with tempfile.TemporaryFile() as errfile:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errfile,
        )
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise RuntimeError(f"{' '.join(cmd)}: no exit within {timeout}s")
            time.sleep(0.001)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    if p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} (in {cwd or os.getcwd()}) exited {p.returncode}:\n" + err[-3000:]
        )
    return wall, cpu, usage.ru_maxrss, err[-2000:]


def bench(cases: dict[str, dict], reps: int, warmup: int) -> dict[str, dict]:
    """cases: name -> {"cmd", "cwd"?, "env"?, "before"?: callable, "after"?: callable(name)}.
    Cases are interleaved within a repetition, their order rotated between repetitions."""
    names = list(cases)
    out = {n: {"cmd": cases[n]["cmd"], "wall": [], "cpu": [], "rss_kib": []} for n in names}
    for rep in range(warmup + reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            c = cases[name]
            if c.get("before"):
                c["before"]()
            wall, cpu, rss, _ = measured(c["cmd"], cwd=c.get("cwd"), env=c.get("env"))
            if c.get("after"):
                c["after"](name)
            if rep >= warmup:
                out[name]["wall"].append(wall)
                out[name]["cpu"].append(cpu)
                out[name]["rss_kib"].append(rss)
        sys.stderr.write(f"  rep {rep + 1 - warmup if rep >= warmup else 'warm-up'} done\n")
    for r in out.values():
        r["median_wall"] = statistics.median(r["wall"])
        r["median_cpu"] = statistics.median(r["cpu"])
        r["max_rss_kib"] = max(r["rss_kib"])
        r["min_wall"] = min(r["wall"])
        r["max_wall"] = max(r["wall"])
    return out


def random_dag(n: int, seed: int = 42) -> list[list[int]]:
    """Job i needs 0-3 distinct random earlier jobs (seeded)."""
    rng = random.Random(seed)
    return [sorted(rng.sample(range(i), min(rng.randint(0, 3), i))) for i in range(n)]


def write_pipeline(
    path: str,
    jobs: list[tuple[str, str, list[str], str | None]],
    name: str = "bench",
    outputs: list[str] | None = None,
) -> None:
    """jobs: (key, command, needs, dir or None), each with `outputs` when given.
    Strings are written JSON-quoted (valid YAML)."""
    lines = [f"name: {name}", "defaults:", "  shell: sh", "jobs:"]
    for key, cmd, needs, d in jobs:
        lines.append(f"  {key}:")
        lines.append(f"    run: {json.dumps(cmd)}")
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
        if d:
            lines.append(f"    dir: {json.dumps(d)}")
        if outputs:
            lines.append(f"    outputs: [{', '.join(json.dumps(o) for o in outputs)}]")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def commit_all(ws: str) -> None:
    """Make `ws` a git repository with everything in it committed (one commit)."""
    git = ["git", "-C", ws, "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], check=True)


def ms(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.2f} s"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def print_source(state: str, note: str | None, *, explicit: bool) -> str | None:
    """Say which Conveyor was timed; return (and print) a warning if src/ changed."""
    if explicit:
        print(f"conveyor: as given by --conveyor (repo tree: {state})")
    else:
        print(f"conveyor source: {state} (git HEAD of {REPO}; src/ is an editable install)")
    if note:
        print(f"note: {note}")
    warn = check_state(state)
    if warn:
        print(warn)
    return warn


def dump_json(dest: str | None, data: dict) -> None:
    if dest is None:
        return
    text = json.dumps(data, indent=2) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        with open(dest, "w") as fh:
            fh.write(text)
        sys.stderr.write(f"raw numbers written to {dest}\n")


def src_state() -> str:
    """Which Conveyor source was timed: git HEAD, plus a hash of uncommitted changes under
    src/ (the editable install runs the working tree). Read-only git commands."""

    def git(*args: str) -> bytes:
        try:
            return subprocess.run(
                ["git", "-C", REPO, *args], capture_output=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return b""

    head = git("rev-parse", "--short", "HEAD").decode().strip() or "unknown"
    dirty = git("diff", "HEAD", "--", "src") + git("status", "--porcelain", "--", "src")
    if not dirty:
        return head
    import hashlib

    return f"{head}+dirty-src-{hashlib.sha256(dirty).hexdigest()[:8]}"


def check_state(before: str) -> str | None:
    """A warning line when src/ changed while the benchmark ran."""
    after = src_state()
    if after != before:
        return f"WARNING: conveyor source changed during the run ({before} -> {after})"
    return None


def machine() -> dict:
    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "platform": sys.platform,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_end": os.getloadavg(),
    }
