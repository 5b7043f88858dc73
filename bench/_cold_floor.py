"""The floor of a cold run for any orchestrator written in Python that caches results.

Not a benchmark of its own: `cache.py` runs it in Conveyor's workspace of the synthetic
monorepo and prints its time beside the peers'. It does only what such a tool cannot
avoid on a cold run, each the cheapest way plain Python offers:

* start the interpreter and parse `conveyor.yml` (ruamel.yaml, safe loader);
* list the tracked files once (`git ls-files`) and read and SHA-256 every input file
  of every job (its package's files);
* run every job's command (`sh -c`, output through a pipe) in dependency order, `-j`
  at a time, from that many threads;
* write one small file per job (its result: the digests) through a temp file and a
  rename, so that a later run could use it.

Nothing else: no validation, no events, no logs, no Merkle trees, no protobuf.

    python3 _cold_floor.py WORKSPACE JOBS STORE_DIR
"""

from __future__ import annotations

import hashlib
import os
import queue
import subprocess
import sys
import threading

from ruamel.yaml import YAML


def main() -> int:
    ws, parallelism, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(os.path.join(store, "tmp"), exist_ok=True)
    with open(os.path.join(ws, "conveyor.yml"), encoding="utf-8") as fh:
        jobs = YAML(typ="safe").load(fh)["jobs"]
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ws, capture_output=True, check=True
    ).stdout.decode()
    files: dict[str, list[str]] = {}
    for path in listed.split("\0"):
        parts = path.split("/")
        if len(parts) > 2 and parts[0] == "packages":
            files.setdefault(f"packages/{parts[1]}", []).append(path)

    waiting = {name: len(job.get("needs", [])) for name, job in jobs.items()}
    dependents: dict[str, list[str]] = {name: [] for name in jobs}
    for name, job in jobs.items():
        for dep in job.get("needs", []):
            dependents[dep].append(name)
    ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()

    def work() -> None:
        while (name := ready.get()) is not None:
            job = jobs[name]
            key = hashlib.sha256(job["run"].encode())
            for path in files.get(job["dir"], ()):
                with open(os.path.join(ws, path), "rb") as fh:
                    key.update(hashlib.sha256(fh.read()).digest())
            proc = subprocess.Popen(
                ["sh", "-c", job["run"]],
                cwd=os.path.join(ws, job["dir"]),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            proc.communicate()
            digest = key.hexdigest()
            tmp = os.path.join(store, "tmp", digest)
            with open(tmp, "wb") as fh:
                fh.write(digest.encode())
            os.replace(tmp, os.path.join(store, digest))
            done.put((name, proc.returncode))

    threads = [threading.Thread(target=work) for _ in range(parallelism)]
    for thread in threads:
        thread.start()
    for name, count in waiting.items():
        if count == 0:
            ready.put(name)
    failed = 0
    for _ in range(len(jobs)):
        name, code = done.get()
        failed += code != 0
        for dep in dependents[name]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.put(dep)
    for _ in threads:
        ready.put(None)
    for thread in threads:
        thread.join()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
