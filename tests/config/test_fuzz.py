"""Fuzzing `conveyor validate` with mutated real pipelines: it answers 0 (valid) or 2
(a located error), never a traceback, and in bounded memory.

The seeds are this repository's own conveyor.yml and pipelines shaped like the ones
the tests use (matrix with include/exclude, templates with extends, gates, caches,
retries); the mutations are the mistakes and attacks a file meets: lines deleted,
duplicated, swapped or re-indented, values replaced with odd scalars (huge and
non-finite numbers, tags, aliases, unicode, deep brackets, expressions).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.cli import run_cli

REPO = Path(__file__).resolve().parents[2]

SEEDS = [
    (REPO / "conveyor.yml").read_text(),
    """\
name: matrix
env: {GREETING: hi}
jobs:
  test:
    matrix:
      python: ["3.11", "3.12", "3.13"]
      os: [linux, macos]
      exclude:
        - {python: "3.11", os: macos}
      include:
        - {python: "3.14", os: linux, experimental: true}
    run: pytest --python ${{ matrix.python }}
    reports:
      junit: reports/junit-${{ matrix.python }}-${{ matrix.os }}.xml
    if: branch == 'main' || tag =~ '^v[0-9]+' && !startsWith(branch, 'wip/')
    timeout: 1h30m
    retries: {max: 2, delay: 5s, backoff: 2, max_delay: 1m}
""",
    """\
stages: [build, test, deploy]
defaults: {timeout: 10m, shell: bash}
jobs:
  .base:
    env: {CI: "true"}
    tools: {node: ">=18"}
    caches:
      - key: deps-{{ hashFiles('package-lock.json') }}
        paths: [node_modules]
  build:
    extends: .base
    stage: build
    run: [npm ci, npm run build]
    outputs: [dist/]
    artifacts: {paths: [dist/], expire_in: 7d}
  test:
    extends: [.base]
    stage: test
    needs: [build]
    run: npm test
    gates:
      coverage: {line: 80%, level: warn}
      sizes: {files: {"dist/*.js": 500KB}, total: 5MB}
      time: {max: 90s}
  deploy:
    stage: deploy
    needs: [test]
    secrets: [TOKEN]
    requires: {git: "2.30"}
    run: ./deploy.sh
    allow_failure: true
history: {keep_runs: 50}
limits: {matrix: 100}
""",
]

ODD = [
    "1e300",
    "-1e300",
    ".nan",
    ".inf",
    "-5",
    "99999999999999999999d",
    "9" * 400,
    "0",
    "~",
    "null",
    "true",
    "''",
    '"\\x00"',
    "!!omap [{a: 1}]",
    "!!python/name:os.system",
    "!custom x",
    "!!binary aGk=",
    "!!int nope",
    "!!float x",
    "!!bool maybe",
    "!!timestamp soon",
    "!!omap [{run: 1}, {rnu: 2}]",
    "'" + "(" * 300 + "true" + ")" * 300 + "'",
    "*undefined",
    "&anchor x",
    "[",
    "{",
    "]",
    "[" * 300,
    "{a: " * 50 + "1" + "}" * 50,
    "[[[[[[[[[[]]]]]]]]]]",
    "'${{ matrix.nope }}'",
    "'${{ env.X'",
    '"(" * 3',
    "'" + "(" * 100 + "true" + ")" * 100 + "'",
    "'branch =~ \"(a+)+$\"'",
    "'\\u202e évil ✓ \U0001d518'",
    "日本語",
    "- a\n- b",
    "{jobs: {}}",
    "'@'",
    "`",
    "%",
    "|",
    ">-",
]


KEYS = ["rnu", "jbos", "nedds", "matrix", "extends", "if", "timeout", "limits", "include", "x"]

# Mostly value changes, which keep the YAML well formed and so reach the schema, the
# matrix, extends and expressions; line surgery for the parser's share.
OPS = ["value"] * 10 + ["key"] * 3 + ["delete"] * 2 + ["duplicate", "swap", "indent", "text"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not lines:
            lines = ["jobs:"]
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        op = draw(st.sampled_from(OPS))
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip())]
        if op == "value":
            odd = draw(st.sampled_from(ODD))
            head, sep, _ = line.partition(": ")
            if sep:
                lines[i] = f"{head}: {odd}"
            elif line.lstrip().startswith("- "):
                lines[i] = f"{indent}- {odd}"
            else:
                lines[i] = f"{line.rstrip(':')}: {odd}"
        elif op == "key":
            key, odd = draw(st.sampled_from(KEYS)), draw(st.sampled_from(ODD))
            lines.insert(i + 1, f"{indent}{key}: {odd}")
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["  ", "    ", "\t", ""])) + line.lstrip()
        else:
            lines.insert(i, draw(st.text(max_size=30)))
    return "\n".join(lines) + "\n"


def validate(text: str, directory: str) -> tuple[int, str]:
    path = os.path.join(directory, "conveyor.yml")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli(["-f", path, "validate"])
    finally:
        os.chdir(old)
    return code, err.getvalue()


@settings(
    max_examples=150,
    deadline=2000,  # ms per example: a slow one is a finding too
    derandomize=True,  # the same examples on every run of the suite
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=mutated())
def test_validate_only_answers_0_or_2(text: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="conveyor-fuzz-") as directory:
        code, err = validate(text, directory)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert code in (0, 2), err
    assert "Traceback" not in err
    assert grown < 200 * 1024, f"peak RSS grew by {grown} KiB on:\n{text}"
