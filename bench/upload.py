"""Upload throughput to a remote cache, timed: a job writes 1 GiB of outputs (in 10 files,
or in 10,000), and `conveyor run` with uploading on sends them to a real BuildGrid.
Printed against the floor measured in the same run on the same bytes: a plain
ByteStream Write loop (1 MiB chunks, one file after the other, no FindMissingBlobs),
what any REAPI client must at least do, in a process of its own.

    python3 bench/upload.py [--reps 3] [--size-mib 1024] [--work DIR] [--conveyor PATH]

Conveyor's figure is the upload time it prints at the end of the run ("uploaded N blobs
(S) ... in T"): from the first blob sent to the last result written. Each sample uses new
random bytes (a server that has them already would be asked for nothing). Needs BuildGrid
in its own virtualenv (`.ci/buildgrid.sh`; $CONVEYOR_BUILDGRID_VENV).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from _common import find_conveyor
from remote import start_buildgrid

CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas
    path: {directory}/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
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

# The job: `count` files of `size` random bytes each, different in every sample.
MAKE = (
    "import os, sys\n"
    "count, size, seed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
    "os.makedirs('out', exist_ok=True)\n"
    "for i in range(count):\n"
    "    with open(f'out/{i:05d}.bin', 'wb') as fh:\n"
    "        fh.write(os.urandom(size))\n"
)

PIPELINE = """\
jobs:
  make:
    inputs: [make.py, seed.txt]
    outputs: [out/]
    run: python3 make.py {count} {size} $(cat seed.txt)
"""

# The floor: every file written with ByteStream Write, 1 MiB chunks, one after another.
FLOOR = r"""
import hashlib, os, sys, time, uuid
import grpc
from buildgrid.common.protos.google.bytestream import bytestream_pb2 as bs
from buildgrid.common.protos.google.bytestream import bytestream_pb2_grpc as bg
port, directory = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(directory))
channel = grpc.insecure_channel(f"127.0.0.1:{port}",
    options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
stub = bg.ByteStreamStub(channel)
t = time.perf_counter()
for name in names:
    data = open(os.path.join(directory, name), "rb").read()
    digest = hashlib.sha256(data).hexdigest()
    resource = f"uploads/{uuid.uuid4()}/blobs/{digest}/{len(data)}"
    def chunks():
        for start in range(0, len(data), 1 << 20):
            yield bs.WriteRequest(resource_name=resource if start == 0 else "",
                write_offset=start, data=data[start:start + (1 << 20)],
                finish_write=start + (1 << 20) >= len(data))
        if not data:
            yield bs.WriteRequest(resource_name=resource, finish_write=True)
    stub.Write(chunks())
print(time.perf_counter() - t)
"""

_UPLOADED = re.compile(r"uploaded (\d+) blobs? \(([^)]*)\) and \d+ results? .* in ([0-9.]+)(ms|s)")


def sample(
    conveyor: str, ws: str, cache: str, url: str, seed: str, port: int
) -> tuple[float, float, int]:
    """(Conveyor's upload time, the floor's, blobs uploaded) for one new set of bytes."""
    with open(os.path.join(ws, "seed.txt"), "w") as fh:
        fh.write(seed + "\n")
    shutil.rmtree(os.path.join(ws, "out"), ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, CONVEYOR_CACHE_DIR=cache, CONVEYOR_REMOTE_UPLOAD="1")
    proc = subprocess.run(
        [conveyor, "run", "--plain", "-q", "--no-history", "--remote", url],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"error: conveyor failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    m = _UPLOADED.search(proc.stderr + proc.stdout)
    if m is None:
        sys.exit(f"error: no upload line in conveyor's output:\n{proc.stderr[-2000:]}")
    seconds = float(m.group(3)) / (1000 if m.group(4) == "ms" else 1)
    # The same bytes again, now as a plain loop: into a second server directory would
    # be fairer still, but the server already has them; new copies with one byte
    # changed keep the work identical and the blobs new.
    floor_dir = os.path.join(ws, "floor")
    shutil.rmtree(floor_dir, ignore_errors=True)
    os.makedirs(floor_dir)
    for name in os.listdir(os.path.join(ws, "out")):
        with open(os.path.join(ws, "out", name), "rb") as src:
            data = bytearray(src.read())
        data[0] ^= 0xFF
        with open(os.path.join(floor_dir, name), "wb") as dst:
            dst.write(data)
    floor = subprocess.run(
        [sys.executable, "-c", FLOOR, str(port), floor_dir], capture_output=True, text=True
    )
    if floor.returncode != 0:
        sys.exit(f"error: the floor failed:\n{floor.stderr[-2000:]}")
    return seconds, float(floor.stdout.strip()), int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024, help="total bytes of outputs (MiB)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bench-upload"))
    ap.add_argument("--conveyor", default=None)
    args = ap.parse_args()
    conveyor, note = find_conveyor(args.conveyor)
    if note:
        print(note)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    os.makedirs(os.path.join(args.work, "server", "cas"))
    server, port = start_buildgrid(os.path.join(args.work, "server"), CONFIG)
    url = f"grpc://127.0.0.1:{port}"
    total = args.size_mib * 1024 * 1024
    try:
        for count in (10, 10_000):
            ws = os.path.join(args.work, f"files-{count}")
            os.makedirs(ws)
            with open(os.path.join(ws, "make.py"), "w") as fh:
                fh.write(MAKE)
            with open(os.path.join(ws, "conveyor.yml"), "w") as fh:
                fh.write(PIPELINE.format(count=count, size=total // count))
            subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
            with open(os.path.join(ws, ".gitignore"), "w") as fh:
                fh.write("out/\nfloor/\n.conveyor/\n")
            ours, floors = [], []
            for rep in range(args.reps):
                seed = f"{count}-{rep}-{os.urandom(4).hex()}"
                cache = os.path.join(args.work, f"cache-{count}")
                took, floor, blobs = sample(conveyor, ws, cache, url, seed, port)
                ours.append(took)
                floors.append(floor)
                print(
                    f"  {count} files, sample {rep + 1}: Conveyor {took:.2f}s ({blobs} blobs), "
                    f"floor {floor:.2f}s",
                    flush=True,
                )
            o, f = statistics.median(ours), statistics.median(floors)
            mib = total / 1024 / 1024
            print(
                f"{count} files, {mib:.0f} MiB: Conveyor uploaded in {o:.2f}s "
                f"({mib / o:.0f} MiB/s), plain ByteStream loop {f:.2f}s ({mib / f:.0f} MiB/s); "
                f"ratio {o / f:.2f}x (median of {args.reps})"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
