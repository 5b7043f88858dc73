"""What listing a job's inputs in its provenance costs: a job with 1,000, 10,000 and
50,000 input files (`--counts`), its one artifact file signed with its provenance as a
run does it (`conveyor.run.signing.attestations`, then attached: a signature, the SLSA
statement with every input file as a resolvedDependency, the DSSE envelope, both
stored), against the
same with no input listed (the floor: what signing cost before) and `sha256sum` of the
input files (what the job's key reads on a cold run), measured in the same run.

    python bench/provenance.py [--reps 5] [--counts 1000,10000,50000] [--json [FILE]]

In-process (it imports conveyor from src/). Prints, per count, the `.intoto.jsonl`
size (bytes, bytes per input, gzip'd), the median time of the signing with and
without the inputs, and the extra time as a share of sha256sum's over the inputs.
"""

from __future__ import annotations

import argparse
import gzip
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

from _common import dump_json, machine, print_source, src_state, table  # noqa: E402

from artifacts import PASSWORD, keygen  # noqa: E402
from conveyor.artifacts.collect import collect_job  # noqa: E402
from conveyor.artifacts.store import ArtifactStore, attach_all  # noqa: E402
from conveyor.artifacts.versioning import Facts  # noqa: E402
from conveyor.config import load_pipeline  # noqa: E402
from conveyor.model import JobResult, JobStatus  # noqa: E402
from conveyor.run.signing import attestations, run_key  # noqa: E402
from conveyor.workspace.files import digest_file  # noqa: E402

PIPELINE = """\
jobs:
  build:
    run: "true"
    artifacts: {paths: [out/], name: bench, version: "1.0.{{ run_number }}"}
"""


def make_inputs(root: str, count: int) -> list[str]:
    """`count` small source files under src/, 100 to a directory."""
    paths = []
    for i in range(count):
        rel = f"src/pkg{i // 100:04d}/module_{i:06d}.py"
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f:
            f.write(f"VALUE = {i}\n")
        paths.append(rel)
    return paths


def sha256sum(root: str, paths: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        ["xargs", "-0", "sha256sum", "--"],
        input="\0".join(paths).encode(),
        cwd=root,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit("sha256sum failed")
    return time.perf_counter() - started


def scenario(work: str, count: int, reps: int, key_file: str) -> dict[str, Any]:
    root = os.path.join(work, f"ws-{count}")
    os.makedirs(os.path.join(root, "out"))
    with open(os.path.join(root, "conveyor.yml"), "w") as f:
        f.write(PIPELINE)
    with open(os.path.join(root, "out", "app.whl"), "wb") as f:
        f.write(os.urandom(1 << 16))
    paths = make_inputs(root, count)
    # The key's manifest entries, as the job cache makes them: 'sha256/size'.
    inputs = [(p, str(digest_file(os.path.join(root, p)))) for p in paths]
    pipeline = load_pipeline(os.path.join(root, "conveyor.yml"))
    (job,) = pipeline.jobs
    store = ArtifactStore(os.path.join(work, f"store-{count}"))
    environ = {"CONVEYOR_SIGNING_KEY": key_file, "CONVEYOR_SIGNING_PASSWORD": PASSWORD}
    key = run_key(pipeline, environ)
    assert key is not None
    samples: dict[str, list[float]] = {"sha256sum": [], "none listed": [], "listed": []}
    sizes: dict[str, int] = {}
    number = 0
    for _ in range(reps):
        samples["sha256sum"].append(sha256sum(root, paths))
        for case, given in (("none listed", []), ("listed", inputs)):
            number += 1
            facts = Facts(pipeline="bench", job="build", build_number=number, when=time.time())
            got = collect_job(store, job, root, facts)
            assert got.version is not None
            result = JobResult(name="build", status=JobStatus.SUCCESS, started_at=facts.when)
            started = time.perf_counter()
            documents = attestations(
                got.version,
                key,
                pipeline_file="conveyor.yml",
                job=job,
                result=result,
                upstream=[],
                inputs=given,
            )
            signed = attach_all(store, got.version.ref, documents)
            samples[case].append(time.perf_counter() - started)
            (att,) = signed.attachments_of("provenance")
            with open(store.blob_path(att.sha256), "rb") as f:
                data = f.read()
            sizes[case] = len(data)
            sizes[case + " gzip"] = len(gzip.compress(data))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {"inputs": count, "samples": samples, "medians": medians, "sizes": sizes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--counts", default="1000,10000,50000")
    ap.add_argument("--json", nargs="?", const="-", default=None)
    args = ap.parse_args()
    state = src_state()
    work = tempfile.mkdtemp(prefix="conveyor-bench-provenance-")
    try:
        key_file = keygen(work)
        results = [scenario(work, int(n), args.reps, key_file) for n in args.counts.split(",") if n]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for r in results:
        med, size, n = r["medians"], r["sizes"], r["inputs"]
        extra = med["listed"] - med["none listed"]
        rows.append(
            [
                f"{n:,}",
                f"{size['listed']:,} B ({(size['listed'] - size['none listed']) / n:.0f} B/input)",
                f"{size['listed gzip']:,} B",
                f"{med['none listed'] * 1000:.1f} ms",
                f"{med['listed'] * 1000:.1f} ms",
                f"{med['sha256sum'] * 1000:.1f} ms",
                f"{extra / med['sha256sum']:.2f}",
            ]
        )
    print(
        table(
            [
                "inputs",
                ".intoto.jsonl",
                "gzip'd",
                "sign, none listed (floor)",
                "sign, inputs listed",
                "sha256sum of the inputs",
                "extra / sha256sum",
            ],
            rows,
        )
    )
    print(f"median of {args.reps}; extra = listed - none listed")
    warn = print_source(state, None, explicit=False)
    dump_json(
        args.json, {"results": results, "machine": machine(), "source": state, "warning": warn}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
