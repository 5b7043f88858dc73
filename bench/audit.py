"""How `conveyor audit`'s findings compare with its peers' expected ones.

Reads the fixtures of /work/shared/corpus/audit (CONVEYOR_CORPUS overrides the corpus
directory): actionlint's `.out` files and zizmor's `.expected.txt` (zizmor's own tests and
its end-to-end run over gha-hazmat). Maps the peers' rule ids to Conveyor's where they
mean the same thing (`MAPPING`), and per Conveyor rule prints precision and recall:

* a finding matches an expected one of a mapped rule in the same file on the same line
  ("line"), or anywhere in the lines the peer's snapshot underlines ("span": zizmor
  points some findings at a job's or step's first line where Conveyor points at the key
  or the text inside it);
* precision counts only files whose peer has a rule mapped to that Conveyor rule (an
  actionlint fixture says nothing about pinning).

Then runs zizmor itself (the one on PATH, else installed from the package index into a
temporary virtualenv this script creates) offline, JSON output, on the same files, and
prints its finding count and time beside Conveyor's.

    python bench/audit.py [--no-zizmor]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from conveyor.errors import ConfigError  # noqa: E402
from conveyor.interop.audit import audit  # noqa: E402

# peer -> {peer rule id: Conveyor rule ids that mean the same thing}
MAPPING: dict[str, dict[str, tuple[str, ...]]] = {
    "actionlint": {
        # only its "potentially untrusted" messages: `expression` is also its type checker
        "expression/untrusted": ("template-injection",),
        "credentials": ("hardcoded-credentials",),
    },
    "zizmor": {
        "unpinned-uses": ("unpinned-uses",),
        "template-injection": ("template-injection",),
        "dangerous-triggers": ("dangerous-triggers",),
        "excessive-permissions": ("excessive-permissions",),
        "artipacked": ("artipacked",),
        "github-env": ("github-env",),
        "secrets-inherit": ("secrets-inherit",),
        "insecure-commands": ("insecure-commands",),
        "self-hosted-runner": ("self-hosted-runner",),
        "hardcoded-container-credentials": ("hardcoded-credentials",),
        # zizmor counts `uses: docker://image` as an image; Conveyor as a `uses:`
        "unpinned-images": ("unpinned-image", "unpinned-uses"),
    },
}


@dataclass(frozen=True)
class Expected:
    file: str
    line: int
    span: tuple[int, int]
    peer: str
    rule: str


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def corpus() -> str:
    base = os.environ.get("CONVEYOR_CORPUS")
    if base:
        return os.path.join(base, "audit")
    beside = os.path.join(os.path.dirname(REPO), "shared", "corpus", "audit")
    return beside if os.path.isdir(beside) else "/work/shared/corpus/audit"


_ACTIONLINT = re.compile(r"^/?test\\?\.yaml:(\d+):(\d+): (.*) \\?\[([\w-]+)\\?\]/?$")


def actionlint_expected(root: str) -> tuple[list[str], list[Expected]]:
    files, found = [], []
    for out in sorted(glob.glob(os.path.join(root, "actionlint", "*.out"))):
        yaml = out[: -len(".out")] + ".yaml"
        files.append(yaml)
        for text in _read(out).splitlines():
            m = _ACTIONLINT.match(text.strip())
            if not m:
                continue
            rule = m[4]
            if rule == "expression" and "untrusted" in m[3]:
                rule = "expression/untrusted"
            line = int(m[1])
            found.append(Expected(yaml, line, (line, line), "actionlint", rule))
    files += sorted(glob.glob(os.path.join(root, "actionlint", "ok", "*.yaml")))
    return files, found


_HEAD = re.compile(r"^(?:error|warning|help|info)\[([\w-]+)\]:")
_ARROW = re.compile(r"^\s*-->\s+\S+?:(\d+):(\d+)")
_GUTTER = re.compile(r"^\s*(\d+)\s+\|")


def _section(text: str) -> str:
    """The expectations of the plainest command line (no persona, no config) when a
    file holds several tests' snapshots."""
    parts = re.split(r"^=== zizmor ", text, flags=re.M)
    if len(parts) <= 2:
        return text
    sections = list(parts[1:])
    return min(sections, key=lambda s: len(s.split("@@INPUT@@", 1)[0].strip()))


def zizmor_expected(root: str) -> tuple[list[str], list[Expected]]:
    files, found = [], []
    for exp in sorted(
        glob.glob(os.path.join(root, "zizmor", "*.expected.txt"))
        + glob.glob(os.path.join(root, "gha-hazmat", "*.expected.txt"))
    ):
        yml = exp[: -len(".expected.txt")] + ".yml"
        if not os.path.exists(yml):
            continue
        files.append(yml)
        rule, line, lines = None, 0, []
        blocks: list[tuple[str, int, list[int]]] = []
        for text in _section(_read(exp)).splitlines():
            head = _HEAD.match(text)
            if head:
                if rule:
                    blocks.append((rule, line, lines))
                rule, line, lines = head[1], 0, []
                continue
            arrow = _ARROW.match(text)
            if arrow and rule and not line:
                line = int(arrow[1])
            gutter = _GUTTER.match(text)
            if gutter and rule:
                lines.append(int(gutter[1]))
        if rule:
            blocks.append((rule, line, lines))
        for rule, line, lines in blocks:
            span = (min([*lines, line]), max([*lines, line]))
            found.append(Expected(yml, line, span, "zizmor", rule))
    return files, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-zizmor", action="store_true", help="do not run zizmor")
    args = ap.parse_args()
    root = corpus()
    if not os.path.isdir(root):
        print(f"no audit corpus at {root} (set CONVEYOR_CORPUS)", file=sys.stderr)
        return 2
    al_files, al_expected = actionlint_expected(root)
    zz_files, zz_expected = zizmor_expected(root)
    files = al_files + zz_files
    start = time.perf_counter()
    ours, unusable = [], 0
    for path in files:  # one file at a time, as the peers' tests run them
        try:
            ours += audit([path], cwd=root).findings
        except ConfigError:
            unusable += 1  # the YAML error fixtures: exit 2 in the CLI
    ours_time = time.perf_counter() - start

    peer_of = dict.fromkeys(al_files, "actionlint") | dict.fromkeys(zz_files, "zizmor")
    expected = [e for e in al_expected + zz_expected if e.rule in MAPPING[e.peer]]
    our_rules = sorted({r for m in MAPPING.values() for rs in m.values() for r in rs})
    print(f"corpus: {root}")
    print(
        f"{len(files)} files; {len(al_expected) + len(zz_expected)} expected findings, "
        f"{len(expected)} of a mapped rule\n"
    )
    print(
        f"{'rule':<24} {'expected':>8} {'ours':>5} {'P line':>7} {'R line':>7} "
        f"{'P span':>7} {'R span':>7}"
    )
    for rule in our_rules:
        exp = [e for e in expected if rule in MAPPING[e.peer][e.rule]]
        judged = [
            f
            for f in ours
            if f.rule == rule
            and any(rule in rs for rs in MAPPING[peer_of[os.path.join(root, f.path)]].values())
        ]
        row = [rule, len(exp), len(judged)]
        for kind in ("line", "span"):

            def hit(e: Expected, f: object, kind: str = kind) -> bool:
                line = f.line  # type: ignore[attr-defined]
                same = os.path.join(root, f.path) == e.file  # type: ignore[attr-defined]
                return same and (
                    line == e.line if kind == "line" else e.span[0] <= line <= e.span[1]
                )

            tp_p = sum(1 for f in judged if any(hit(e, f) for e in exp))
            tp_r = sum(1 for e in exp if any(hit(e, f) for f in judged))
            row += [_ratio(tp_p, len(judged)), _ratio(tp_r, len(exp))]
        print(
            f"{row[0]:<24} {row[1]:>8} {row[2]:>5} {row[3]:>7} {row[4]:>7} {row[5]:>7} {row[6]:>7}"
        )
    # Over all rules: each expected finding and each of ours counted once (zizmor's
    # unpinned-images maps to two rules of ours).
    judged_all = [
        f
        for f in ours
        if any(f.rule in rs for rs in MAPPING[peer_of[os.path.join(root, f.path)]].values())
    ]
    row = ["all mapped rules", len(expected), len(judged_all)]
    for kind in ("line", "span"):

        def any_hit(e: Expected, f: object, kind: str = kind) -> bool:
            line = f.line  # type: ignore[attr-defined]
            if os.path.join(root, f.path) != e.file:  # type: ignore[attr-defined]
                return False
            if f.rule not in MAPPING[e.peer][e.rule]:  # type: ignore[attr-defined]
                return False
            return line == e.line if kind == "line" else e.span[0] <= line <= e.span[1]

        row.append(
            _ratio(
                sum(1 for f in judged_all if any(any_hit(e, f) for e in expected)), len(judged_all)
            )
        )
        row.append(
            _ratio(
                sum(1 for e in expected if any(any_hit(e, f) for f in judged_all)), len(expected)
            )
        )
    print(f"{row[0]:<24} {row[1]:>8} {row[2]:>5} {row[3]:>7} {row[4]:>7} {row[5]:>7} {row[6]:>7}")
    unmapped = sorted({e.rule for e in al_expected + zz_expected if e.rule not in MAPPING[e.peer]})
    print(f"\npeer rules with no Conveyor equivalent (not counted): {', '.join(unmapped)}")
    print(
        f"\nconveyor audit: {len(ours)} findings (all rules, all severities) in "
        f"{ours_time * 1000:.0f} ms, in process, one file at a time "
        f"({unusable} files refused as unusable YAML)"
    )
    if not args.no_zizmor:
        run_zizmor(files)
    return 0


def _ratio(hits: int, total: int) -> str:
    return f"{hits / total:.2f}" if total else "-"


def run_zizmor(files: list[str]) -> None:
    exe = shutil.which("zizmor")
    venv = None
    if exe is None:
        venv = tempfile.mkdtemp(prefix="zizmor-venv-")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        pip = os.path.join(venv, "bin", "pip")
        done = subprocess.run([pip, "install", "-q", "zizmor"], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"zizmor: not installed ({done.stderr.strip().splitlines()[-1:]})")
            shutil.rmtree(venv, ignore_errors=True)
            return
        exe = os.path.join(venv, "bin", "zizmor")
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        count, start = 0, time.perf_counter()
        for path in files:  # one at a time: zizmor wants workflows, or a repository
            done = subprocess.run(
                [exe, "--offline", "--format", "json", path], capture_output=True, text=True
            )
            # a file zizmor cannot read (the YAML error fixtures): no findings
            with contextlib.suppress(ValueError):
                count += len(json.loads(done.stdout or "[]"))
        took = time.perf_counter() - start
        print(
            f"{version.strip()}: {count} findings (default persona, offline) in "
            f"{took * 1000:.0f} ms, {len(files)} processes"
        )
    finally:
        if venv:
            shutil.rmtree(venv, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
