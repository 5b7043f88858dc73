"""Collecting artifacts, timed: 1 GiB of artifact files (`--size-mib`) in 10 files, then
in 10,000, collected into a fresh artifact store as a job's `artifacts:` are at the end
of a job (matched, hashed while copied into content-addressed blobs, described with
media types, the version's record written), against `sha256sum` reading and hashing the
same files in the same run.

    python bench/artifacts.py [--reps 5] [--size-mib 1024] [--json [FILE]] [--keep]

In-process (it imports conveyor from src/): the time is `conveyor.artifacts.collect.
collect_job` alone, what a run spends storing a job's artifacts, without a process's
start. Each repetition runs sha256sum first, then Conveyor with the store emptied
(every blob is new: the bytes are copied), then Conveyor again on the same store (every
blob is there: nothing is written, only hashed), then Conveyor with one hashing thread,
then Conveyor collecting and signing (a signature per file and the version's
provenance, with a key made by `conveyor artifacts keygen` and named by
CONVEYOR_SIGNING_KEY / CONVEYOR_SIGNING_PASSWORD as a user sets them: the key's
loading and decryption are timed too, as a run pays for them once);
the files are in the page cache for all (written just before, read once as warm-up),
and what the previous step wrote is synced to disk before each step is timed (the
collect's own writes are not: a run does not wait for them either).
The goal is Conveyor's throughput at ≥ 0.8 of sha256sum's (ratio = sha256sum's time /
Conveyor's), for collect + digest + sign + provenance; the ratio without signing is
printed beside it. Run it with the project's virtualenv.

The floor: `cp -r` of the same files into a fresh directory of the same filesystem, in
the same repetition (after sha256sum, synced before it as the others are). Any store
that keeps each file as a file of its own writes at least that (Conveyor also hashes
them; a signed version's signatures go into its record, not a file each); where
`cp -r` alone takes about as long as sha256sum, as creating 10,000 files on this
filesystem can, the goal is out of reach of such a store, and the table says how far
Conveyor is from the floor (floor ratio = cp's time / Conveyor's, signed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import dump_json, machine, print_source, src_state, table, tool_version  # noqa: E402

from conveyor.artifacts.collect import collect_job  # noqa: E402
from conveyor.artifacts.record import ArtifactVersion  # noqa: E402
from conveyor.artifacts.store import ArtifactStore, Document  # noqa: E402
from conveyor.artifacts.versioning import Facts  # noqa: E402
from conveyor.config import load_pipeline  # noqa: E402
from conveyor.model import JobResult, JobStatus  # noqa: E402
from conveyor.run.signing import attestations, run_key  # noqa: E402

GOAL = 0.8

PIPELINE = """\
jobs:
  build:
    run: "true"
    artifacts: {paths: [out/], name: bench, version: "1.0.0"}
"""


def make_files(root: str, count: int, total: int) -> list[str]:
    out = os.path.join(root, "out")
    os.makedirs(out)
    size = total // count
    paths = []
    chunk = os.urandom(min(size, 64 << 20))
    for i in range(count):
        path = os.path.join(out, f"{i:05d}.bin")
        with open(path, "wb") as fh:
            left = size
            # Different bytes in every file (no blob is shared), cheaply: a prefix.
            fh.write(i.to_bytes(8, "big"))
            left -= 8
            while left > 0:
                n = min(left, len(chunk))
                fh.write(chunk[:n])
                left -= n
        paths.append(os.path.relpath(path, root))
    return paths


def settle() -> None:
    """Dirty pages of the last step (a store written, one removed) written back before
    the next is timed: each measurement pays for its own writes only."""
    os.sync()


def sha256sum(root: str, paths: list[str]) -> float:
    settle()
    started = time.perf_counter()
    done = subprocess.run(
        ["sha256sum", "--", *paths], cwd=root, stdout=subprocess.DEVNULL, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit("sha256sum failed")
    return took


PASSWORD = "bench-only-password"  # pragma: allowlist secret


def copy_floor(root: str, dest: str) -> float:
    """`cp -r` of the artifact files into `dest` (absent), timed: the floor."""
    settle()
    started = time.perf_counter()
    done = subprocess.run(["cp", "-r", "--", os.path.join(root, "out"), dest], check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit("cp -r failed")
    return took


def keygen(work: str) -> str:
    """A key pair made as a user makes one (`conveyor artifacts keygen`); the .key path."""
    prefix = os.path.join(work, "signing")
    env = {
        **os.environ,
        "CONVEYOR_SIGNING_PASSWORD": PASSWORD,
        "PYTHONPATH": os.path.join(REPO, "src"),
    }
    subprocess.run(
        [sys.executable, "-m", "conveyor", "artifacts", "keygen", "--out", prefix],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return prefix + ".key"


def collect(
    root: str, store_dir: str, *, threads: int | None = None, key_file: str | None = None
) -> float:
    pipeline = load_pipeline(os.path.join(root, "conveyor.yml"))
    (job,) = pipeline.jobs
    store = ArtifactStore(store_dir)
    if threads is not None:
        original = store.put_files
        store.put_files = lambda paths, threads=threads: original(paths, threads=threads)  # type: ignore[method-assign]
    facts = Facts(pipeline="bench", job="build", build_number=1, when=time.time())
    settle()
    started = time.perf_counter()
    attest = None
    if key_file is not None:
        # As a run signs: the key loaded once, the signatures and provenance made as
        # the version is stored and written with it.
        environ = {"CONVEYOR_SIGNING_KEY": key_file, "CONVEYOR_SIGNING_PASSWORD": PASSWORD}
        key = run_key(pipeline, environ)
        assert key is not None
        result = JobResult(name="build", status=JobStatus.SUCCESS, started_at=facts.when)

        def attest(version: ArtifactVersion) -> list[Document]:
            assert key is not None
            return attestations(
                version,
                key,
                pipeline_file="conveyor.yml",
                job=job,
                result=result,
                upstream=[],
            )

    got = collect_job(store, job, root, facts, attest=attest)
    took = time.perf_counter() - started
    assert got.version is not None
    if key_file is not None:
        assert len(got.version.attachments_of("signature")) == len(got.version.files)
    return took


def scenario(work: str, count: int, total: int, reps: int, key_file: str) -> dict[str, Any]:
    root = os.path.join(work, f"files-{count}")
    os.makedirs(root)
    with open(os.path.join(root, "conveyor.yml"), "w") as fh:
        fh.write(PIPELINE)
    paths = make_files(root, count, total)
    size = sum(os.path.getsize(os.path.join(root, p)) for p in paths)
    sha256sum(root, paths)  # warm-up: every file in the page cache
    store = os.path.join(work, f"store-{count}")
    copy = os.path.join(work, f"copy-{count}")
    samples: dict[str, list[float]] = {
        "sha256sum": [],
        "cp -r": [],
        "new": [],
        "again": [],
        "one thread": [],
        "signed": [],
    }
    for _ in range(reps):
        samples["sha256sum"].append(sha256sum(root, paths))
        shutil.rmtree(copy, ignore_errors=True)
        samples["cp -r"].append(copy_floor(root, copy))
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        samples["new"].append(collect(root, store))
        samples["again"].append(collect(root, store))
        shutil.rmtree(store, ignore_errors=True)
        samples["one thread"].append(collect(root, store, threads=1))
        shutil.rmtree(store, ignore_errors=True)
        samples["signed"].append(collect(root, store, key_file=key_file))
        shutil.rmtree(store, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {"files": count, "bytes": size, "samples": samples, "medians": medians}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--json", nargs="?", const="-", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    state = src_state()
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum (coreutils) is needed")
    work = args.work or tempfile.mkdtemp(prefix="conveyor-bench-artifacts-")
    total = args.size_mib << 20
    results = []
    try:
        key_file = keygen(work)
        for count in (10, 10_000):
            results.append(scenario(work, count, total, args.reps, key_file))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"sha256sum: {tool_version(['sha256sum', '--version'])}; {os.cpu_count()} CPUs")
    rows = []
    for r in results:
        med = r["medians"]
        mib = r["bytes"] / (1 << 20)

        def rate(seconds: float, mib: float = mib) -> str:
            return f"{seconds:.2f} s ({mib / seconds:,.0f} MiB/s)"

        unsigned = med["sha256sum"] / med["new"]
        ratio = med["sha256sum"] / med["signed"]
        floor = med["cp -r"] / med["signed"]
        rows.append(
            [
                f"{r['files']:,} files, {mib:,.0f} MiB",
                rate(med["sha256sum"]),
                rate(med["cp -r"]),
                rate(med["new"]),
                rate(med["again"]),
                rate(med["one thread"]),
                rate(med["signed"]),
                f"{unsigned:.2f}",
                f"{ratio:.2f} ({'meets' if ratio >= GOAL else 'misses'} ≥ {GOAL})",
                f"{floor:.2f}",
            ]
        )
        r["ratio"] = ratio
        r["ratio_unsigned"] = unsigned
        r["ratio_floor"] = floor
    print(
        table(
            [
                "artifacts",
                "sha256sum",
                "floor: cp -r",
                "conveyor collect (new blobs)",
                "again (blobs there)",
                "one hashing thread",
                "collect + sign + provenance",
                "ratio unsigned",
                "ratio signed (goal)",
                "cp -r / signed",
            ],
            rows,
        )
    )
    print(
        f"median of {args.reps}; ratio = sha256sum's time / Conveyor's (new blobs; "
        f"signed: collect + signatures + provenance, key loaded in the timed part); "
        f"cp -r / signed = the floor's time / Conveyor's signed (1.0: as fast as copying)"
    )
    warn = print_source(state, None, explicit=False)
    dump_json(
        args.json, {"results": results, "machine": machine(), "source": state, "warning": warn}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
