"""Publish throughput and what verifying costs: 1 GiB (`--size-mib`) of random bytes in
10 files and in 10,000, published with `conveyor.artifacts.publish` (in-process) to a
directory and to an S3 server (moto's, a process of its own on 127.0.0.1).

    python bench/artifacts_publish.py [--size-mib 1024] [--counts 10,10000]
                                      [--s3-verify read,checksum|none] [--dir-fsync on,off]
                                      [--reps 1] [--json [FILE]]

Each sample is one publish of a new version (nothing there already): wall seconds of the
whole publish (upload, verify, commit), MB/s over it (MB = 10^6 bytes), and the verify
part (reading back and hashing, or for `checksum` a HEAD per object; for the directory
it includes each file's fsync, done in the same pass, 8 files at a time). The directory is
in the work directory (the same filesystem as the sources; fsync on, as published,
unless `--dir-fsync` says otherwise);
the sources were just written, so they are read from the page cache. moto keeps
objects in its own process's memory and answers on one loopback connection per request
thread: a floor set by moto's Python server, not by a real S3. Imports conveyor, boto3
and moto: run it with the interpreter Conveyor is installed in (and its test extra).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from conveyor.artifacts.publish import PublishFile  # noqa: E402
from conveyor.artifacts.publish.directory import DirectoryTarget  # noqa: E402
from conveyor.artifacts.publish.s3 import S3Target  # noqa: E402

MIB = 1024 * 1024


def make_files(root: str, total: int, count: int) -> list[PublishFile]:
    """`count` files of random bytes adding up to `total`, with their digests."""
    os.makedirs(root)
    size, extra = divmod(total, count)
    files = []
    for i in range(count):
        data = os.urandom(size + (1 if i < extra else 0))
        path = os.path.join(root, f"f{i:05d}.bin")
        with open(path, "wb") as fh:
            fh.write(data)
        name = f"d{i // 1000:02d}/f{i:05d}.bin"
        files.append(PublishFile(name, path, hashlib.sha256(data).hexdigest(), len(data)))
    return files


def start_moto(work: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(work, "moto.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(endpoint + "/", timeout=2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("error: moto's server did not start (pip install 'moto[server]')")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--counts", default="10,10000")
    ap.add_argument(
        "--s3-verify", default="read", help="read, checksum, both (comma) or none (no S3)"
    )
    ap.add_argument("--dir-fsync", default="on", help="on, off or both (comma)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", nargs="?", const="-", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    total = args.size_mib * MIB
    work = tempfile.mkdtemp(prefix="conveyor-bench-publish-")
    proc, endpoint = start_moto(work)
    env = {
        "CONVEYOR_S3_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",  # pragma: allowlist secret (moto takes any)
    }
    rows = []
    try:
        S3Target("bench", environ=env)._client().create_bucket(Bucket="bench")
        version = 0
        for count in (int(c) for c in args.counts.split(",")):
            files = make_files(os.path.join(work, f"src-{count}"), total, count)
            targets: list[tuple[str, object]] = [
                (f"directory (fsync {v})", v == "on") for v in args.dir_fsync.split(",")
            ]
            targets += [(f"s3 ({v})", v) for v in args.s3_verify.split(",") if v != "none"]
            for label, verify in targets:
                samples = []
                for _ in range(args.reps):
                    version += 1
                    if isinstance(verify, bool):
                        root = os.path.join(work, "published")
                        where: DirectoryTarget | S3Target = DirectoryTarget(root, fsync=verify)
                    else:
                        where = S3Target("bench", "p", environ=env, verify=verify)  # type: ignore[arg-type]
                    receipt = where.publish(f"bench@{version}", files)
                    samples.append((receipt.seconds, receipt.verify_seconds))
                    if isinstance(verify, bool):
                        shutil.rmtree(os.path.join(work, "published"))
                    else:
                        where._delete([f"p/bench/{version}/{f.name}" for f in files])  # type: ignore[union-attr]
                wall = statistics.median(s[0] for s in samples)
                verify_s = statistics.median(s[1] for s in samples)
                rows.append(
                    {
                        "target": label,
                        "files": count,
                        "mib": args.size_mib,
                        "seconds": wall,
                        "mb_per_s": total / 1e6 / wall,
                        "verify_seconds": verify_s,
                        "verify_share": verify_s / wall,
                        "samples": samples,
                    }
                )
            shutil.rmtree(os.path.join(work, f"src-{count}"))
    finally:
        proc.terminate()
        proc.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"publish of {args.size_mib} MiB, median of {args.reps}\n")
    print("| target | files | wall s | MB/s | verify s | verify share | MB/s without verify |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rest = r["seconds"] - r["verify_seconds"]
        print(
            f"| {r['target']} | {r['files']:,} | {r['seconds']:.2f} | {r['mb_per_s']:.1f} "
            f"| {r['verify_seconds']:.2f} | {r['verify_share']:.0%} | {total / 1e6 / rest:.1f} |"
        )
    if args.json:
        text = json.dumps(rows, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text)


if __name__ == "__main__":
    main()
