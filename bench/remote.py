"""The shared remote cache, timed: machine A runs cold and uploads to a real BuildGrid;
machine B (a fresh clone, an empty local cache, the same server) is then served entirely
from the remote cache. Printed against the floor measured in the same run: what any REAPI
client must do for the same work (one GetActionResult per job with calls in flight, the
outputs read in one BatchReadBlobs, the files written), over the same loopback.

    python3 bench/remote.py [-n 1000] [--reps 5] [--work DIR] [--conveyor PATH]

Needs BuildGrid in its own virtualenv (`.ci/buildgrid.sh`; $CONVEYOR_BUILDGRID_VENV) and
the shared peers' gen.py (../shared/bench/peers). Each sample of B is a fresh `git clone`
and an empty cache directory, made before the clock starts.

With --turbo-prefix (turbo installed there: node_modules/.bin/turbo, as the shared
peers' install-peers.sh does) and --trc (the npm package turborepo-remote-cache
installed there), the same graph is timed in the same run with Turborepo's remote
cache: machine A runs cold and uploads to turborepo-remote-cache (local storage in
a temporary directory); machine B, a fresh clone with an empty .turbo, is served
from it. Without them that part is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from _common import REPO, find_conveyor

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DEFAULT = os.path.join(REPO, "..", "shared", "bench", "peers")

CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
storages:
  - !lru-storage &cas
    size: 2048M
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: true
instances:
  - name: ""
    services:
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
      - !action-cache
        cache: *ac
thread-pool-size: 100
"""

# As the shared peers' run.py sets them: no telemetry, no update check (a network call).
TURBO_QUIET = {
    "TURBO_TELEMETRY_DISABLED": "1",
    "DO_NOT_TRACK": "1",
    "TURBO_NO_UPDATE_NOTIFIER": "1",
    "NO_COLOR": "1",
    "FORCE_COLOR": "0",
}
TURBO_TOKEN = "bench-token"
TURBO_TEAM = "bench"

# The floor: a bare REAPI client, in a process of its own (as a run is).
FLOOR = r"""
import hashlib, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
import grpc
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as re, remote_execution_pb2_grpc as rg)
port, digests_file, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
actions = [re.Digest(hash=h, size_bytes=s) for h, s in json.load(open(digests_file))]
t = time.perf_counter()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
ac, cas = rg.ActionCacheStub(channel), rg.ContentAddressableStorageStub(channel)
with ThreadPoolExecutor(32) as pool:
    results = list(pool.map(lambda d: ac.GetActionResult(
        re.GetActionResultRequest(action_digest=d)), actions))
wanted = [f.digest for r in results for f in r.output_files]
batch = cas.BatchReadBlobs(re.BatchReadBlobsRequest(digests=wanted))
for i, got in enumerate(batch.responses):
    assert hashlib.sha256(got.data).hexdigest() == got.digest.hash
    path = os.path.join(out_dir, str(i))
    with open(path, "wb") as fh:
        fh.write(got.data)
print(time.perf_counter() - t)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_buildgrid(
    directory: str, config_text: str = CONFIG
) -> tuple[subprocess.Popen[bytes], int]:
    """BuildGrid in `directory` from `config_text` (its {port} and {directory} filled in),
    answering; (its process, its port)."""
    venv = os.environ.get("CONVEYOR_BUILDGRID_VENV", os.path.join(REPO, ".venv-buildgrid"))
    bgd = os.path.join(venv, "bin", "bgd")
    if not os.path.exists(bgd):
        sys.exit(f"error: BuildGrid is not installed at {venv}: run .ci/buildgrid.sh")
    port = free_port()
    config = os.path.join(directory, "bgd.yml")
    with open(config, "w") as fh:
        fh.write(config_text.format(port=port, directory=directory))
    log = open(os.path.join(directory, "bgd.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen([bgd, "server", "start", config], stdout=log, stderr=log)
    client = os.path.join(os.path.dirname(sys.executable), "python")
    probe = (
        "import grpc, sys\n"
        "from buildgrid.common.protos.build.bazel.remote.execution.v2 import "
        "remote_execution_pb2 as re, remote_execution_pb2_grpc as rg\n"
        "c = grpc.insecure_channel(f'127.0.0.1:{sys.argv[1]}')\n"
        "rg.CapabilitiesStub(c).GetCapabilities(re.GetCapabilitiesRequest(), timeout=2)\n"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run([client, "-c", probe, str(port)], capture_output=True).returncode == 0:
            return proc, port
        time.sleep(0.5)
    proc.terminate()
    sys.exit("error: BuildGrid did not answer within 30 s")


def workspace(peers: str, n: int, base: str) -> str:
    """gen.py's monorepo with a conveyor.yml (as bench/cache.py makes it), committed."""
    sys.path.insert(0, HERE)
    from cache import add_conveyor_workspace, load

    gen = load(os.path.join(peers, "gen.py"), "gen")
    target = os.path.join(base, f"n{n}")
    if not os.path.exists(os.path.join(target, "meta.json")):
        make = ["--peers", "make", target]
        subprocess.run(
            [sys.executable, os.path.join(peers, "gen.py"), "-n", str(n), *make],
            check=True,
            stdout=subprocess.DEVNULL,
            # No background `git gc` packing objects while the workspace is copied.
            env=dict(os.environ, GIT_CONFIG_PARAMETERS="'gc.auto=0'"),
        )
    add_conveyor_workspace(gen, target)
    return os.path.join(target, "conveyor")


def turbo_workspace(peers: str, n: int, base: str) -> str:
    """gen.py's turbo monorepo for the same graph (same seed), committed.

    A target of its own: regenerating the shared one with --force would remove the
    Conveyor workspace beside it, which another run may be using."""
    target = os.path.join(base, f"n{n}-turbo")
    if not os.path.exists(os.path.join(target, "meta.json")):
        gen = [sys.executable, os.path.join(peers, "gen.py"), "-n", str(n), "--force"]
        subprocess.run(
            [*gen, "--peers", "turbo", target],
            check=True,
            stdout=subprocess.DEVNULL,
            env=dict(os.environ, GIT_CONFIG_PARAMETERS="'gc.auto=0'"),
        )
    return os.path.join(target, "turbo")


def start_trc(trc: str, directory: str) -> tuple[subprocess.Popen[bytes], int]:
    """turborepo-remote-cache on a free loopback port, artifacts on local disk."""
    cli = os.path.join(trc, "node_modules", "turborepo-remote-cache", "dist", "cli.js")
    port = free_port()
    env = dict(
        os.environ,
        STORAGE_PROVIDER="local",
        STORAGE_PATH=os.path.join(directory, "storage"),
        # Otherwise STORAGE_PATH is taken relative to the system's temporary directory.
        STORAGE_PATH_USE_TMP_FOLDER="false",
        TURBO_TOKEN=TURBO_TOKEN,
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="warn",
        NODE_ENV="production",
    )
    log = open(os.path.join(directory, "trc.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(["node", cli], stdout=log, stderr=log, env=env)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v8/artifacts/status",
        headers={"Authorization": f"Bearer {TURBO_TOKEN}"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return proc, port
        except (urllib.error.URLError, ConnectionError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.terminate()
    sys.exit(f"error: turborepo-remote-cache did not answer; see {directory}/trc.log")


def turbo_clone(src: str, dst: str, prefix: str) -> None:
    """A fresh clone with node_modules linked to the prefix's, as run.py provides it
    (node_modules is ignored by git, so a clone has none)."""
    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", src, dst], check=True)
    os.symlink(os.path.join(prefix, "node_modules"), os.path.join(dst, "node_modules"))


def turbo_run(ws: str, port: int, extra_env: dict[str, str] | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | TURBO_QUIET
    env |= {
        "TURBO_API": f"http://127.0.0.1:{port}",
        "TURBO_TOKEN": TURBO_TOKEN,
        "TURBO_TEAM": TURBO_TEAM,
    }
    env |= extra_env or {}
    t = time.perf_counter()
    proc = subprocess.run(
        ["node_modules/.bin/turbo", "run", "build", "--concurrency=2"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"error: turbo failed in {ws}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took


def missing_outputs(ws: str) -> list[str]:
    packages = os.path.join(ws, "packages")
    return [
        p
        for p in sorted(os.listdir(packages))
        if not os.path.exists(os.path.join(packages, p, "dist", "out.txt"))
    ]


def bench_turbo(args: argparse.Namespace) -> str:
    """The line to print for Turborepo's remote cache (or why it was skipped)."""
    if not args.turbo_prefix or not args.trc:
        return "turbo (turborepo-remote-cache): skipped (give --turbo-prefix and --trc)"
    prefix, trc = os.path.abspath(args.turbo_prefix), os.path.abspath(args.trc)
    if not os.path.exists(os.path.join(prefix, "node_modules", ".bin", "turbo")):
        return f"turbo (turborepo-remote-cache): skipped (no node_modules/.bin/turbo in {prefix})"
    if not os.path.exists(os.path.join(trc, "node_modules", "turborepo-remote-cache")):
        return f"turbo (turborepo-remote-cache): skipped (turborepo-remote-cache not in {trc})"
    ws = turbo_workspace(args.peers_dir, args.n, args.work)
    server_dir = tempfile.mkdtemp(prefix="trc-", dir=args.work)
    proc, port = start_trc(trc, server_dir)
    try:
        a = os.path.join(args.work, "turbo-a")
        turbo_clone(ws, a, prefix)
        # Machine A only fills the remote cache, so its tasks may skip npm's start-up
        # (about 1 s of CPU a task at N=1000): the shared npm-shim runs each script with
        # sh. The task hashes do not include PATH; machine B, run plainly, proves the hit.
        shim = os.path.join(args.peers_dir, "npm-shim")
        cold = turbo_run(a, port, {"PATH": f"{shim}:{os.environ['PATH']}"})
        print(f"turbo machine A, cold, uploading (npm-shim): {cold:.2f}s", flush=True)
        samples = []
        for i in range(args.reps + 1):
            b = os.path.join(args.work, f"turbo-b-{i}")
            turbo_clone(ws, b, prefix)
            took = turbo_run(b, port)
            if os.path.exists(os.path.join(b, ".exec.log")):
                sys.exit("error: turbo machine B executed tasks: not served from the remote")
            missing = missing_outputs(b)
            if missing:
                sys.exit(f"error: turbo machine B lacks {len(missing)} outputs, e.g. {missing[0]}")
            samples.append(took)
        timed = samples[1:]
        return (
            f"N={args.n}: turbo (turborepo-remote-cache): {statistics.median(timed):.3f}s "
            f"median of {args.reps} [{min(timed):.3f}-{max(timed):.3f}] "
            "(fresh clone, empty .turbo, --concurrency=2)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for i in range(args.reps + 1):
            shutil.rmtree(os.path.join(args.work, f"turbo-b-{i}"), ignore_errors=True)


def run(conveyor: str, ws: str, cache: str, url: str, *, upload: bool) -> float:
    env = dict(os.environ, CONVEYOR_CACHE_DIR=cache, CONVEYOR_REMOTE_UPLOAD="1" if upload else "0")
    t = time.perf_counter()
    proc = subprocess.run(
        [conveyor, "run", "--jobs=2", "--plain", "-q", "--remote", url, "--no-history"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"error: conveyor failed in {ws}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peers-dir", default=PEERS_DEFAULT)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bench-remote"))
    ap.add_argument("--conveyor", default=None)
    ap.add_argument(
        "--turbo-prefix",
        metavar="DIR",
        default=None,
        help="where turbo is installed (DIR/node_modules/.bin/turbo); times Turborepo too",
    )
    ap.add_argument(
        "--trc",
        metavar="DIR",
        default=None,
        help="where the npm package turborepo-remote-cache is installed (DIR/node_modules)",
    )
    args = ap.parse_args()
    conveyor, _note = find_conveyor(args.conveyor)
    os.makedirs(args.work, exist_ok=True)
    ws = workspace(args.peers_dir, args.n, args.work)
    server_dir = tempfile.mkdtemp(prefix="bgd-", dir=args.work)
    proc, port = start_buildgrid(server_dir)
    url = f"grpc://127.0.0.1:{port}"
    try:
        a = os.path.join(args.work, "machine-a")
        shutil.rmtree(a, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", ws, a], check=True)
        cold = run(conveyor, a, os.path.join(a, ".cache-a"), url, upload=True)
        print(f"machine A, cold, uploading: {cold:.2f}s")
        samples = []
        for i in range(args.reps + 1):
            b = os.path.join(args.work, f"machine-b-{i}")
            shutil.rmtree(b, ignore_errors=True)
            subprocess.run(["git", "clone", "-q", ws, b], check=True)
            took = run(conveyor, b, os.path.join(b, ".cache-b"), url, upload=False)
            if os.path.exists(os.path.join(b, ".exec.log")):
                sys.exit("error: machine B executed tasks: not served from the remote cache")
            missing = [
                p
                for p in os.listdir(os.path.join(b, "packages"))
                if not os.path.exists(os.path.join(b, "packages", p, "dist", "out.txt"))
            ]
            if missing:
                sys.exit(f"error: machine B lacks {len(missing)} outputs, e.g. {missing[0]}")
            samples.append(took)
            # Not deleted now: thousands of files deleted right before a timed run slow
            # the file creations of the next one on this file system.
        served = statistics.median(samples[1:])
        # The floor, over the same server and actions.
        index_dir = os.path.join(a, ".cache-a", "jobs")
        digests = []
        for name in os.listdir(index_dir):
            with open(os.path.join(index_dir, name)) as fh:
                for entry in json.load(fh).values():
                    if isinstance(entry, dict) and "action" in entry:
                        digests.append((entry["action"], entry["action_size"]))
        listing = os.path.join(args.work, "actions.json")
        with open(listing, "w") as fh:
            json.dump(digests, fh)
        python = os.path.join(os.path.dirname(conveyor), "python")
        floors = []
        for _ in range(args.reps + 1):
            out = tempfile.mkdtemp(dir=args.work)
            got = subprocess.run(
                [python, "-c", FLOOR, str(port), listing, out], capture_output=True, text=True
            )
            shutil.rmtree(out, ignore_errors=True)
            if got.returncode != 0:
                sys.exit(f"error: the floor failed: {got.stderr[-1500:]}")
            floors.append(float(got.stdout))
        floor = statistics.median(floors[1:])
        lines = [
            f"N={args.n}: machine B (fresh clone, empty local cache) served from the remote "
            f"cache: {served:.3f}s median of {args.reps} [{min(samples[1:]):.3f}-"
            f"{max(samples[1:]):.3f}]",
            f"N={args.n}: REAPI floor ({len(digests)} GetActionResult, 32 in flight, one "
            f"BatchReadBlobs, the files written): {floor:.3f}s; ratio {served / floor:.2f}x",
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for i in range(args.reps + 1):
            shutil.rmtree(os.path.join(args.work, f"machine-b-{i}"), ignore_errors=True)
    # After BuildGrid is stopped, so that the two servers never share the two cores.
    lines.append(bench_turbo(args) + f"; Conveyor {served:.3f}s")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
