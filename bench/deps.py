"""The vulnerability audit at scale: import a full ecosystem's advisory database, then
audit a 5,000-component workspace against it.

1. `conveyor deps db import PyPI.zip` (2,661 real PyPI advisories, the shared data) into
   an empty cache directory, as a whole process: goal < 10 s.
2. A git workspace with lockfiles of 5,000 components across three ecosystems, written
   in the formats uv, npm and Cargo write: PyPI packages named by the advisories
   themselves (every affected package of the zip, at versions its records list, so
   most of them are vulnerable: the worst case for matching), npm packages named as the
   machine's npm installs its own dependencies (`npm root -g`/npm/node_modules, at
   their installed versions; the zip's names when npm is absent), crates named as the
   zip's packages (a crates.io database is not imported: they are counted as not
   audited, which the report must say). npm's advisories are the test data's (lodash,
   minimist, body-parser, send: tests/deps/data/osv/ghsa), imported apart.
3. `conveyor deps audit` on it, warm (the database imported, the page cache
   warm, the lockfiles read before: their parse comes from the workspace's lockfile
   cache, `conveyor.deps.lockcache`): the median of --reps whole processes, goal < 1 s;
   then the same with that cache removed before each run (the first audit after the
   lockfiles change). In the same run: the floor
   of a process (`conveyor --version`), and in-process the inventory read, the audit
   (lookups and matching) and its floor, the index lookups alone without version
   matching.

Standard library only, like the other benches, except the in-process breakdown, which
imports conveyor (run it with the interpreter Conveyor is installed in).
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
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import BENCH_ENV, add_common_args, find_conveyor

DEFAULT_ZIP = "/work/shared/data/osv/PyPI.zip"
IMPORT_GOAL, AUDIT_GOAL = 10.0, 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap)
    ap.add_argument(
        "--zip", default=DEFAULT_ZIP, help=f"the PyPI OSV export (default {DEFAULT_ZIP})"
    )
    ap.add_argument("-n", type=int, default=5000, help="components (default 5000)")
    args = ap.parse_args()
    conveyor, note = find_conveyor(args.conveyor)
    if note:
        print(note, file=sys.stderr)
    work = tempfile.mkdtemp(prefix="conveyor-bench-deps-")
    cache = os.path.join(work, "cache")
    env = {**BENCH_ENV, "CONVEYOR_CACHE_DIR": cache}
    results: dict[str, object] = {"components": args.n}

    # 1. The import, cold (an empty cache directory).
    took = _time([conveyor, "deps", "db", "import", args.zip], env, cwd=work)
    results["import_s"] = took
    print(f"import {os.path.basename(args.zip)}: {took:.2f} s (goal < {IMPORT_GOAL:.0f} s)")

    # npm's advisories of the test data (lodash, minimist, ...), so that the npm
    # components are looked up and matched too (a second ecosystem, imported apart).
    npm_dir = os.path.join(work, "npm-advisories")
    os.makedirs(npm_dir)
    ghsa = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "tests",
        "deps",
        "data",
        "osv",
        "ghsa",
    )
    for name in sorted(os.listdir(ghsa)) if os.path.isdir(ghsa) else []:
        with open(os.path.join(ghsa, name)) as fh:
            data = json.load(fh)
        if all(a["package"]["ecosystem"] == "npm" for a in data["affected"]):
            with open(os.path.join(npm_dir, name), "w") as fh:
                json.dump(data, fh)
    if os.listdir(npm_dir):
        _time([conveyor, "deps", "db", "import", npm_dir], env, cwd=work)

    # 2. The workspace.
    root = os.path.join(work, "workspace")
    counts = _workspace(root, args.zip, args.n)
    results["by_ecosystem"] = counts
    print(
        "workspace: "
        + ", ".join(f"{n} {eco}" for eco, n in counts.items())
        + f" components in {_lockfiles(root)} lockfiles"
    )

    # 3. The audit, warm.
    argv = [conveyor, "deps", "audit"]
    for _ in range(args.warmup):
        _time(argv, env, cwd=root, ok=(0, 1))
    samples = [_time(argv, env, cwd=root, ok=(0, 1)) for _ in range(args.reps)]
    # The same with the lockfiles parsed (the first audit after they change): their
    # cache in the workspace's state directory removed before each run.
    lockcache = os.path.join(root, ".conveyor", "cache", "lockfiles")
    cold = []
    for _ in range(args.reps):
        shutil.rmtree(lockcache, ignore_errors=True)
        cold.append(_time(argv, env, cwd=root, ok=(0, 1)))
    startup = statistics.median(
        _time([conveyor, "--version"], env, cwd=root) for _ in range(args.reps)
    )
    report = json.loads(_run([*argv, "--json"], env, root).stdout)
    audit_s = statistics.median(samples)
    results.update(
        audit_s=audit_s,
        audit_samples=samples,
        audit_parsed_s=statistics.median(cold),
        startup_s=startup,
        found=sum(len(f["vulnerabilities"]) for f in report["findings"]),
        affected=len(report["findings"]),
        audited=report["audited"],
        not_audited=report["not_audited"],
    )
    results.update(_in_process(root, cache, args.reps))

    print()
    rows = [
        (
            f"`conveyor deps audit`, warm ({args.reps} runs)",
            audit_s,
            f"goal < {AUDIT_GOAL:.0f} s",
        ),
        (
            "`conveyor deps audit`, lockfiles parsed (their cache removed)",
            results["audit_parsed_s"],
            "the first audit after they change",
        ),
        ("floor: `conveyor --version`", startup, "process start-up"),
        (
            f"in-process: read the inventory ({args.n} components), parsed",
            results["parse_s"],
            "",
        ),
        ("in-process: read the inventory, from the lockfile cache", results["inventory_s"], ""),
        ("in-process: audit (lookups + matching + fixes)", results["match_s"], ""),
        ("in-process floor: index lookups only", results["lookup_s"], "no version matching"),
    ]
    print("| step | median | |")
    print("|---|---:|---|")
    for label, seconds, remark in rows:
        print(f"| {label} | {seconds:.3f} s | {remark} |")
    print()
    print(
        f"found {results['found']} vulnerabilities in {results['affected']} of "
        f"{results['audited']} audited components; not audited: {results['not_audited']}"
    )
    verdict = "met" if took < IMPORT_GOAL and audit_s < AUDIT_GOAL else "NOT met"
    print(f"goals ({IMPORT_GOAL:.0f} s import, {AUDIT_GOAL:.0f} s warm audit): {verdict}")
    if args.json:
        text = json.dumps(results, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}", file=sys.stderr)
    return 0


def _run(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)


def _time(argv: list[str], env: dict[str, str], cwd: str, ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = _run(argv, env, cwd)
    took = time.perf_counter() - started
    if done.returncode not in ok:
        sys.exit(f"error: {' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return took


# -- the workspace -------------------------------------------------------------------------


def _advisory_versions(path: str) -> dict[str, list[str]]:
    """Each PyPI package the zip's advisories name -> the versions they list."""
    out: dict[str, set[str]] = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".json"):
                continue
            record = json.loads(zf.read(name))
            for affected in record.get("affected", []):
                package = affected.get("package", {})
                if package.get("ecosystem") != "PyPI":
                    continue
                versions = out.setdefault(package["name"].lower(), set())
                versions.update(v for v in affected.get("versions", []) if isinstance(v, str))
                for r in affected.get("ranges", []):
                    for event in r.get("events", []):
                        if "fixed" in event:
                            versions.add(event["fixed"])
    return {k: sorted(v) for k, v in sorted(out.items()) if v}


def _npm_packages() -> list[tuple[str, str]]:
    """(name, version) of the packages the machine's npm installed for itself."""
    try:
        root = subprocess.run(
            ["npm", "root", "-g"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    base = os.path.join(root, "npm", "node_modules")
    dirs = []
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if entry.startswith("@"):
            dirs += [
                os.path.join(base, entry, sub)
                for sub in sorted(os.listdir(os.path.join(base, entry)))
            ]
        else:
            dirs.append(os.path.join(base, entry))
    for directory in dirs:
        try:
            with open(os.path.join(directory, "package.json")) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(data.get("name"), str) and isinstance(data.get("version"), str):
            found.append((data["name"], data["version"]))
    return sorted(set(found))


def _workspace(root: str, zip_path: str, n: int) -> dict[str, int]:
    """A git workspace of lockfiles with `n` components: 40% PyPI, 36% npm, 24% crates,
    spread over one project per 500 components."""
    rng = random.Random(42)
    os.makedirs(root)
    pypi = _advisory_versions(zip_path)
    names = list(pypi)
    npm = _npm_packages() or [(name, "1.0.0") for name in names]
    want = {"PyPI": n * 40 // 100, "npm": n * 36 // 100}
    want["crates.io"] = n - want["PyPI"] - want["npm"]
    projects = max(1, n // 500)

    # PyPI: uv.lock files; each package at one version its advisories list.
    py = [(name, rng.choice(pypi[name])) for name in (names * (want["PyPI"] // len(names) + 1))]
    py = py[: want["PyPI"]]
    for i, chunk in enumerate(_split(py, projects)):
        lines = ["version = 1", 'requires-python = ">=3.8"', ""]
        seen = set()
        for name, version in chunk:
            if (name, version) in seen:
                version = version + ".post1"
            seen.add((name, version))
            lines += [
                "[[package]]",
                f'name = "{name}"',
                f'version = "{version}"',
                'source = { registry = "https://pypi.org/simple" }',
                "",
            ]
        _write(root, f"py{i}/uv.lock", "\n".join(lines))

    # npm: package-lock.json (version 3) files.
    js = (npm * (want["npm"] // len(npm) + 1))[: want["npm"]]
    for i, chunk in enumerate(_split(js, projects)):
        packages: dict[str, object] = {"": {"name": f"web{i}", "version": "1.0.0"}}
        for j, (name, version) in enumerate(chunk):
            key = f"node_modules/{name}"
            if key in packages:
                key = f"node_modules/nested{j}/node_modules/{name}"
            packages[key] = {"version": version, "license": "MIT"}
        lock = {
            "name": f"web{i}",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": packages,
        }
        _write(root, f"web{i}/package-lock.json", json.dumps(lock, indent=2) + "\n")

    # crates.io: Cargo.lock files.
    rs = [(name.replace(".", "-"), f"0.{k % 20}.{k % 7}") for k, name in enumerate(names * 3)]
    rs = rs[: want["crates.io"]]
    for i, chunk in enumerate(_split(rs, projects)):
        lines = ["version = 3", ""]
        for name, version in dict(chunk).items():
            lines += [
                "[[package]]",
                f'name = "{name}"',
                f'version = "{version}"',
                'source = "registry+https://github.com/rust-lang/crates.io-index"',
                "",
            ]
        _write(root, f"rs{i}/Cargo.lock", "\n".join(lines))

    for argv in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(argv, cwd=root, check=True, env=BENCH_ENV)
    return dict(want)


def _split(items: list[tuple[str, str]], parts: int) -> list[list[tuple[str, str]]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _write(root: str, path: str, text: str) -> None:
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        fh.write(text)


def _lockfiles(root: str) -> int:
    return sum(
        1 for _b, _d, files in os.walk(root) for f in files if f.endswith((".lock", "lock.json"))
    )


# -- in process -------------------------------------------------------------------------------


def _in_process(root: str, cache: str, reps: int) -> dict[str, float]:
    """The audit's parts, timed inside one process (the database warm)."""
    from conveyor.deps.advisories import Database
    from conveyor.deps.audit import DatabaseSource, audit
    from conveyor.deps.inventory import read_inventory
    from conveyor.deps.versions import package_key, version_key
    from conveyor.workspace.listing import workspace_files

    files = sorted(workspace_files(root))
    from conveyor.deps.inventory import discover, read_lockfiles

    parse_s = []
    for _ in range(reps):
        started = time.perf_counter()
        read_lockfiles(root, discover(files), cache=False)
        parse_s.append(time.perf_counter() - started)
    inventory_s = []
    for _ in range(reps):
        started = time.perf_counter()
        inventory = read_inventory(root, files)
        inventory_s.append(time.perf_counter() - started)
    components = inventory.components
    directory = os.path.join(cache, "osv")
    match_s, lookup_s = [], []
    for _ in range(reps):
        version_key.cache_clear()  # each audit parses its versions anew, as a process does
        with Database(directory) as db:
            started = time.perf_counter()
            audit(components, DatabaseSource(db))
            match_s.append(time.perf_counter() - started)
        with Database(directory) as db:
            started = time.perf_counter()
            by_eco: dict[str, set[str]] = {}
            for c in components:
                by_eco.setdefault(str(c.ecosystem), set()).add(
                    package_key(str(c.ecosystem), c.name)
                )
            for eco, keys in by_eco.items():
                if eco in db.ecosystems:
                    db.lookup(eco, keys)
            lookup_s.append(time.perf_counter() - started)
    return {
        "parse_s": statistics.median(parse_s),
        "inventory_s": statistics.median(inventory_s),
        "match_s": statistics.median(match_s),
        "lookup_s": statistics.median(lookup_s),
    }


if __name__ == "__main__":
    sys.exit(main())
