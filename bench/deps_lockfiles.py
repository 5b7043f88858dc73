"""How long reading a large npm lockfile takes: a 3,000-package package-lock.json
(lockfileVersion 3) and pnpm-lock.yaml (9.0), each read into the inventory's components
(purl, version, direct, scope, line, hashes, license, edges) several times, median
seconds against the 0.2 s goal of issue 16, and a floor measured in the same run: plain
`json.loads` of the same package-lock.json; for pnpm-lock.yaml, splitting its text into
lines (what any reader of it does first) and the general YAML loader (ruamel.yaml's C
loader, libyaml) Conveyor falls back on.

The lockfiles are generated, shaped as npm 11 and pnpm 9 write them, from the real
package names and versions in bench/data/npm-packages.txt (what npm locked for thirteen
popular toolchains: 2,083 packages, each at the top of node_modules) plus a second
version of enough of them, nested under a dependent as npm nests a conflicting version,
to reach --packages. Each package depends on 0-6 others (seeded), a tenth are dev-only,
and one in twenty has a peer (pnpm's 'name@1.0.0(peer@2.0.0)' snapshots).

    python bench/deps_lockfiles.py [--packages 3000] [--reps 7] [--json [FILE]] [--keep]

Run it with the project's virtualenv (it imports conveyor from src/).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from conveyor.deps.inventory import read_lockfile  # noqa: E402

GOAL = 0.2
NAMES = os.path.join(REPO, "bench", "data", "npm-packages.txt")


def real_packages() -> list[tuple[str, str]]:
    with open(NAMES, encoding="utf-8") as f:
        return [
            (name, version)
            for name, version in (line.split() for line in f if not line.startswith("#"))
        ]


def integrity(name: str, version: str) -> str:
    digest = hashlib.sha512(f"{name}@{version}".encode()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def other_version(version: str) -> str:
    major, _, rest = version.partition(".")
    return f"{int(major) + 1 if major.isdigit() else 1}.{rest or '0.0'}".split("-")[0]


def graph(count: int, seed: int = 42) -> dict[str, Any]:
    """The packages, their versions and edges, shared by both lockfiles."""
    rng = random.Random(seed)
    top = real_packages()
    names = [n for n, _ in top]
    versions = dict(top)
    deps = {n: sorted(set(rng.sample(names, rng.randint(0, 6))) - {n}) for n in names}
    dev = {n for n in names if rng.random() < 0.1}
    # A second version of some packages, nested under one package that depends on it.
    nested: dict[str, tuple[str, str]] = {}  # name -> (parent, version)
    for name in rng.sample(names, max(0, min(count - len(names), len(names)))):
        parent = rng.choice(names)
        if parent == name or name in nested:
            continue
        nested[name] = (parent, other_version(versions[name]))
        if name not in deps[parent]:
            deps[parent].append(name)
    peers = {n: rng.choice(names) for n in names if rng.random() < 0.05}
    roots = rng.sample(names, 40)
    return {
        "names": names,
        "versions": versions,
        "deps": deps,
        "dev": dev,
        "nested": nested,
        "peers": peers,
        "roots": roots,
    }


def package_lock(g: dict[str, Any]) -> str:
    versions, nested = g["versions"], g["nested"]
    packages: dict[str, Any] = {
        "": {
            "name": "bench",
            "version": "1.0.0",
            "dependencies": {n: f"^{versions[n]}" for n in g["roots"][:30]},
            "devDependencies": {n: f"^{versions[n]}" for n in g["roots"][30:]},
        }
    }
    entries: list[tuple[str, dict[str, Any]]] = []
    for name in g["names"]:
        entry: dict[str, Any] = {
            "version": versions[name],
            "resolved": f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-"
            f"{versions[name]}.tgz",
            "integrity": integrity(name, versions[name]),
        }
        if name in g["dev"]:
            entry["dev"] = True
        entry["license"] = "MIT"
        wanted = {d: f"^{versions[d]}" for d in g["deps"][name]}
        for child, (parent, version) in nested.items():
            if parent == name:
                wanted[child] = f"^{version}"
        if wanted:
            entry["dependencies"] = wanted
        if name in g["peers"]:
            entry["peerDependencies"] = {g["peers"][name]: "*"}
        entry["engines"] = {"node": ">=14"}
        entries.append((f"node_modules/{name}", entry))
        for child, (parent, version) in nested.items():
            if parent == name:
                entries.append(
                    (
                        f"node_modules/{name}/node_modules/{child}",
                        {
                            "version": version,
                            "integrity": integrity(child, version),
                            "license": "MIT",
                        },
                    )
                )
    packages.update(sorted(entries))
    lock = {"name": "bench", "version": "1.0.0", "lockfileVersion": 3, "requires": True}
    lock["packages"] = packages
    return json.dumps(lock, indent=2) + "\n"


def _key(name: str) -> str:
    return f"'{name}'" if name.startswith("@") else name


def pnpm_lock(g: dict[str, Any]) -> str:
    versions, nested, peers = g["versions"], g["nested"], g["peers"]
    out = ["lockfileVersion: '9.0'", "", "settings:", "  autoInstallPeers: true"]
    out += ["  excludeLinksFromLockfile: false", "", "importers:", "", "  .:"]
    for section, names in (("dependencies", g["roots"][:30]), ("devDependencies", g["roots"][30:])):
        out.append(f"    {section}:")
        for name in sorted(names):
            out += [
                f"      {_key(name)}:",
                f"        specifier: ^{versions[name]}",
                f"        version: {versions[name]}",
            ]
    out.append("")

    def snapshot(name: str, version: str) -> str:
        peer = peers.get(name)
        return f"{name}@{version}({peer}@{versions[peer]})" if peer else f"{name}@{version}"

    every = sorted(
        [(n, versions[n]) for n in g["names"]] + [(n, v) for n, (_, v) in nested.items()]
    )
    out += ["packages:", ""]
    for name, version in every:
        out += [
            f"  {_key(f'{name}@{version}')}:",
            f"    resolution: {{integrity: {integrity(name, version)}}}",
            "    engines: {node: '>=14'}",
        ]
        if name in peers:
            out += ["    peerDependencies:", f"      {_key(peers[name])}: '*'"]
        out.append("")
    out += ["snapshots:", ""]
    for name, version in every:
        children = [] if version != versions[name] else g["deps"][name]
        pinned = {d: versions[d] for d in children}
        for child, (parent, child_version) in nested.items():
            if parent == name and version == versions[name]:
                pinned[child] = child_version
        key = _key(snapshot(name, version))
        if not pinned:
            out += [f"  {key}: {{}}", ""]
            continue
        out += [f"  {key}:", "    dependencies:"]
        for dep, dep_version in sorted(pinned.items()):
            peer = peers.get(dep)
            value = f"{dep_version}({peer}@{versions[peer]})" if peer else dep_version
            out.append(f"      {_key(dep)}: {value}")
        out.append("")
    return "\n".join(out)


def timed(fn: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds of this process) of each call after a warm-up one
    (imports, caches of the first call). CPU time is what a busy machine disturbs least."""
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", type=int, default=3000, help="packages in each lockfile")
    ap.add_argument("--reps", type=int, default=7, help="timed reads, median reported")
    ap.add_argument("--json", metavar="FILE", nargs="?", const="-", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated lockfiles")
    args = ap.parse_args()

    g = graph(args.packages)
    work = tempfile.mkdtemp(prefix="conveyor-bench-locks-")
    files = {"package-lock.json": package_lock(g), "pnpm-lock.yaml": pnpm_lock(g)}
    for name, text in files.items():
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(text)

    rows = []
    raw: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, text in files.items():
        read = read_lockfile(work, name)
        components = getattr(read, "components", None)
        if components is None:
            sys.exit(f"error: {name} did not read: {read}")
        floors: dict[str, Callable[[], object]]
        if name.endswith(".json"):
            floors = {"json.loads": lambda text=text: json.loads(text)}
        else:
            from ruamel.yaml import YAML

            floors = {
                "str.splitlines": lambda text=text: text.splitlines(),
                "ruamel.yaml C loader": lambda text=text: YAML(typ="safe").load(text),
            }
        wall, cpu = timed(lambda name=name: read_lockfile(work, name), args.reps)
        samples = {"conveyor": {"wall": wall, "cpu": cpu}}
        for label, fn in floors.items():
            wall, cpu = timed(fn, max(3, args.reps // 2))
            samples[label] = {"wall": wall, "cpu": cpu}
        raw[name] = samples
        rows.append((name, len(components), len(text), samples))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Reading a {args.packages}-package lockfile into components (median of {args.reps};"
        f" goal {GOAL} s; load average {load:.1f} on {os.cpu_count()} CPUs)\n"
    )
    print("| lockfile | components | size | Conveyor wall | / goal | CPU | floor, same run (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, count, size, samples in rows:
        wall = statistics.median(samples["conveyor"]["wall"])
        cpu = statistics.median(samples["conveyor"]["cpu"])
        floors = [(label, statistics.median(s["cpu"])) for label, s in samples.items()]
        floor = ", ".join(
            f"{label} {seconds:.3f} s ({cpu / seconds:.1f}x)"
            for label, seconds in floors
            if label != "conveyor"
        )
        print(
            f"| {name} | {count} | {size / 1e6:.2f} MB | {wall:.3f} s | {wall / GOAL:.2f} | "
            f"{cpu:.3f} s | {floor} |"
        )
    if args.json:
        payload = json.dumps({"packages": args.packages, "samples": raw}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(payload)
    if args.keep:
        print(f"\nlockfiles kept in {work}")
    else:
        for name in files:
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


if __name__ == "__main__":
    main()
