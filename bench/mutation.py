"""Sampled mutation testing of Conveyor's core: would the tests notice this bug?

Each mutant is one small change to one line of a core module (the operators below),
made with the standard library's `ast` (positions from the parse, the rest of the file
left byte for byte as it is). `--seed N --sample K` picks K of all the mutants at random,
the same K for the same seed and source. Each is applied in a private copy of the tree
(`git archive` of --rev, default HEAD; never the working tree others edit), then:

  1. the tests related to its module (RELATED below) run, `-x -q -p no:cacheprovider`;
  2. if none failed, the rest of the suite runs.

A mutant is KILLED when a test fails (the first failing test is named, and checked to
pass without the mutant, so that a flaky test does not count as a kill), when a run
times out, or when the mutated module no longer compiles or imports (invalid). Else it
SURVIVED. Mutants listed in bench/mutation-equivalent.txt (`file:line:operator reason`)
change nothing a user could observe; they are run anyway and left out of the score:

    score = killed / (sampled - equivalent)

Operators: a comparison flipped (< <=, > >=, == !=, is / is not, in / not in, each to
its neighbour); `and` <-> `or`; `not` removed; constants True <-> False, 0 -> 1, 1 -> 0,
other small integers (2..10) n -> n+1; `return X` -> `return None`; an expression
statement (a call, or a property read for its effect) -> `pass`; an `if` body -> `pass`;
`+` <-> `-`; a slice bound removed.
Not mutated: docstrings and other strings, annotations, `assert`s, `if TYPE_CHECKING`
blocks, f-strings, and lines marked `# pragma: no mutate`.

    python bench/mutation.py --seed 1 --sample 60 [-j 2] [--rev HEAD] [--json FILE]
    python bench/mutation.py --rev OLD --tests-rev HEAD --only KEY  # newer tests, same mutant
    python bench/mutation.py --list                  # how many mutants, per module
    python bench/mutation.py --only src/conveyor/scheduler.py:602  # those on one line
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWLIST = os.path.join(HERE, "mutation-equivalent.txt")

# Module -> the tests that exercise it most directly, fastest first (a kill stops at the
# first failure). A survivor of these is then run against the rest of the suite.
RELATED: dict[str, list[str]] = {
    "src/conveyor/workspace/files.py": [
        "tests/workspace/test_files.py",
        "tests/cache/test_jobs.py",
    ],
    "src/conveyor/workspace/globs.py": [
        "tests/workspace/test_files.py",
        "tests/checks/test_inputs.py",
        "tests/cache/test_caching.py",
    ],
    "src/conveyor/cache/jobs.py": [
        "tests/cache/test_jobs.py",
        "tests/cache/test_caching.py",
        "tests/cache/test_correctness.py",
        "tests/run/test_scheduler.py",
    ],
    "src/conveyor/cache/keys.py": [
        "tests/cache/test_keys.py",
        "tests/cache/test_jobs.py",
        "tests/cache/test_caching.py",
    ],
    "src/conveyor/graph/plan.py": [
        "tests/graph/test_plan.py",
        "tests/run/test_scheduler.py",
        "tests/cli/test_run.py",
    ],
    "src/conveyor/run/scheduler.py": [
        "tests/run/test_scheduler.py",
        "tests/cli/test_run.py",
        "tests/cache/test_caching.py",
        "tests/executor/test_local.py",
    ],
    "src/conveyor/run/attempts.py": ["tests/cli/test_run.py", "tests/executor/test_local.py"],
    "src/conveyor/run/cached.py": ["tests/run/test_scheduler.py", "tests/cache/test_caching.py"],
    "src/conveyor/cache/local.py": ["tests/cache/test_local.py", "tests/cache/test_caching.py"],
    "src/conveyor/expressions.py": ["tests/test_expressions.py", "tests/graph/test_plan.py"],
    "src/conveyor/gates/evaluate.py": ["tests/gates/test_sizes.py", "tests/gates/test_evaluate.py"],
    "src/conveyor/executor/masking.py": ["tests/executor/test_masking.py", "tests/cli/test_run.py"],
    "src/conveyor/executor/local.py": ["tests/executor/test_local.py", "tests/cli/test_run.py"],
    "src/conveyor/cache/outputs.py": [
        "tests/cache/test_correctness.py",
        "tests/cache/test_caching.py",
    ],
    "src/conveyor/run/undeclared.py": [
        "tests/run/test_undeclared.py",
        "tests/cache/test_correctness.py",
    ],
    "src/conveyor/cache/hitrecords.py": ["tests/cache/test_jobs.py", "tests/cache/test_caching.py"],
    "src/conveyor/cache/why.py": ["tests/cache/test_caching.py", "tests/cache/test_why.py"],
    "src/conveyor/insights/critical_path.py": ["tests/insights/test_critical_path.py"],
    "src/conveyor/fsutil.py": ["tests/test_fsutil.py", "tests/cache/test_local.py"],
}
MODULES = list(RELATED)

_FLIP_CMP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}

# Parents whose operand may need parentheses around a mutated expression.
_TIGHT = (
    ast.BinOp,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Attribute,
    ast.Subscript,
    ast.Call,
    ast.Await,
    ast.Starred,
)


# -- mutants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    path: str
    """Repository-relative path of the module."""
    line: int
    operator: str
    start: int
    """Byte offsets of the replaced text in the module's source."""
    end: int
    replacement: str

    @property
    def key(self) -> str:
        return f"{self.path}:{self.line}:{self.operator}"

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end :]

    def lines(self, source: bytes) -> tuple[str, str]:
        """The original line(s) and the same lines with the mutant applied."""
        first = source.rfind(b"\n", 0, self.start) + 1
        last = source.find(b"\n", self.end)
        last = len(source) if last < 0 else last
        delta = len(self.replacement.encode()) - (self.end - self.start)
        return source[first:last].decode(), self.apply(source)[first : last + delta].decode()


class _Finder:
    """Walks one module and yields every mutant of it."""

    def __init__(self, path: str, source: bytes) -> None:
        self.path = path
        self.source = source
        self.tree = ast.parse(source)
        self.line_starts = [0]
        for i, byte in enumerate(source):
            if byte == 0x0A:
                self.line_starts.append(i + 1)
        self.text_lines = source.decode().splitlines()
        self.skip: set[int] = set()  # ids of nodes never mutated (annotations, f-strings...)
        self.parents: dict[int, ast.AST] = {}

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def _skip_tree(self, node: ast.AST | None) -> None:
        if node is not None:
            self.skip.update(id(n) for n in ast.walk(node))

    def _prepare(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            if isinstance(node, ast.arg):
                self._skip_tree(node.annotation)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self._skip_tree(node.returns)
            elif isinstance(node, ast.AnnAssign):
                self._skip_tree(node.annotation)
            elif isinstance(node, ast.JoinedStr | ast.Assert) or (
                isinstance(node, ast.If) and _is_guard(node.test)
            ):
                self._skip_tree(node)

    def _marked(self, node: ast.AST) -> bool:
        line = self.text_lines[node.lineno - 1]  # type: ignore[attr-defined]
        return "pragma: no mutate" in line

    def _expr(self, node: ast.expr, operator: str, new: ast.expr) -> Mutant:
        start, end = self.span(node)
        text = ast.unparse(new)
        # Inside a larger expression, parentheses keep the new text's precedence what the
        # old node's was (the old text's own brackets, if any, lie outside its span).
        if isinstance(self.parents.get(id(node)), _TIGHT):
            text = f"({text})"
        return Mutant(self.path, node.lineno, operator, start, end, text)

    def mutants(self) -> Iterator[Mutant]:
        self._prepare()
        for node in ast.walk(self.tree):
            if id(node) in self.skip or not hasattr(node, "lineno") or self._marked(node):
                continue
            yield from self._of(node)

    def _of(self, node: ast.AST) -> Iterator[Mutant]:
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                flip = _FLIP_CMP.get(type(op))
                if flip is None:
                    continue
                ops = [*node.ops]
                ops[i] = flip()
                new = ast.Compare(node.left, ops, node.comparators)
                yield self._expr(node, f"{type(op).__name__}-to-{flip.__name__}", new)
        elif isinstance(node, ast.BoolOp):
            swap = ast.Or if isinstance(node.op, ast.And) else ast.And
            new_bool = ast.BoolOp(swap(), node.values)
            yield self._expr(node, f"{type(node.op).__name__}-to-{swap.__name__}", new_bool)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            start, end = self.span(node)
            inner_start, inner_end = self.span(node.operand)
            text = self.source[inner_start:inner_end].decode()
            if isinstance(self.parents.get(id(node)), _TIGHT):
                text = f"({text})"
            yield Mutant(self.path, node.lineno, "not-removed", start, end, text)
        elif isinstance(node, ast.Constant) and not isinstance(node.value, str | bytes):
            value = node.value
            new_value: object
            if isinstance(value, bool):
                new_value = not value
            elif isinstance(value, int) and 0 <= value <= 10:
                new_value = {0: 1, 1: 0}.get(value, value + 1)
            else:
                return
            start, end = self.span(node)
            yield Mutant(
                self.path, node.lineno, f"{value}-to-{new_value}", start, end, repr(new_value)
            )
        elif isinstance(node, ast.Return) and node.value is not None:
            if isinstance(node.value, ast.Constant) and node.value.value is None:
                return
            start, end = self.span(node)
            yield Mutant(self.path, node.lineno, "return-None", start, end, "return None")
        elif isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            # A call for its effect, or an attribute read for its side effect (a lazy
            # property computed now, on purpose).
            start, end = self.span(node)
            yield Mutant(self.path, node.lineno, "statement-removed", start, end, "pass")
        elif isinstance(node, ast.If):
            if len(node.body) == 1 and isinstance(node.body[0], ast.Pass):
                return
            start = self.span(node.body[0])[0]
            end = self.span(node.body[-1])[1]
            yield Mutant(self.path, node.lineno, "if-body-pass", start, end, "pass")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            if any(_is_text(side) for side in (node.left, node.right)):
                return  # text or list concatenation: `-` would only raise TypeError
            swap_op = ast.Sub if isinstance(node.op, ast.Add) else ast.Add
            new_bin = ast.BinOp(node.left, swap_op(), node.right)
            yield self._expr(node, f"{type(node.op).__name__}-to-{swap_op.__name__}", new_bin)
        elif isinstance(node, ast.Slice):
            for bound in ("lower", "upper"):
                if getattr(node, bound) is None:
                    continue
                new_slice = ast.Slice(
                    None if bound == "lower" else node.lower,
                    None if bound == "upper" else node.upper,
                    node.step,
                )
                start, end = self.span(node)
                yield Mutant(
                    self.path,
                    node.lineno,
                    f"slice-{bound}-removed",
                    start,
                    end,
                    ast.unparse(new_slice),
                )


def _is_guard(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` and `if __name__ == "__main__":`: nothing to test there."""
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr | ast.List | ast.Tuple) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def all_mutants(tree: str, modules: list[str]) -> list[Mutant]:
    out: list[Mutant] = []
    for path in modules:
        out.extend(_Finder(path, _read(tree, path)).mutants())
    out.sort(key=lambda m: (m.path, m.start, m.end, m.operator))
    return out


def load_allowlist(path: str) -> dict[str, str]:
    """`file:line:operator reason` per line; `#` starts a comment line."""
    found: dict[str, str] = {}
    if not os.path.exists(path):
        return found
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, reason = line.partition(" ")
            if not reason.strip() or key.count(":") < 2:
                sys.exit(f"{path}:{number}: write `file:line:operator reason`")
            found[key] = reason.strip()
    return found


# -- running ---------------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Mutant
    status: str = "SURVIVED"
    """KILLED, SURVIVED or INVALID (does not compile: counts as killed)."""
    by: str = ""
    stage: str = ""
    seconds: float = 0.0
    before: str = ""
    after: str = ""
    notes: list[str] = field(default_factory=list)


# Loaded into every pytest run (-p): writes the node id of each failed test or failed
# collection to $MUTATION_FAILURES, one a line (the summary lines pytest prints cut
# parametrized ids that hold spaces).
PLUGIN = """
import os

def _note(nodeid):
    with open(os.environ["MUTATION_FAILURES"], "a", encoding="utf-8") as fh:
        fh.write(nodeid + "\\n")

def pytest_runtest_logreport(report):
    if report.failed:
        _note(report.nodeid)

def pytest_collectreport(report):
    if report.failed:
        _note(report.nodeid or "collection")
"""


class Worker:
    """A private copy of the tree in which one mutant at a time is applied."""

    def __init__(self, base: str, root: str, python: str, timeout: float, plugin_dir: str) -> None:
        self.root = root
        shutil.copytree(base, root, symlinks=True)
        self.python = python
        self.timeout = timeout
        self.failures = os.path.join(root, ".mutation-failures")
        self.env = dict(os.environ, MUTATION_FAILURES=self.failures)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(root, "src"), plugin_dir, *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.env.pop("PYTEST_ADDOPTS", None)
        self.known_bad: list[str] = []
        """Tests that fail without any mutant: left out of every run."""

    def _forget_bytecode(self, path: str) -> None:
        """A mutant can keep the file's size and land in the same second as the original:
        the .pyc would look valid. Remove it whenever the source changes."""
        cache = os.path.join(self.root, os.path.dirname(path), "__pycache__")
        stem = os.path.splitext(os.path.basename(path))[0] + "."
        if os.path.isdir(cache):
            for name in os.listdir(cache):
                if name.startswith(stem):
                    os.unlink(os.path.join(cache, name))

    def pytest(self, args: list[str], first_failure: bool = True) -> tuple[int, list[str], str]:
        """(exit code, failed node ids, the output's tail); exit code None on timeout."""
        if os.path.exists(self.failures):
            os.unlink(self.failures)
        # A test file that does not even import is ignored; a failing test deselected.
        deselect = [f"--{'deselect' if '::' in t else 'ignore'}={t}" for t in self.known_bad]
        cmd = [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_mutation"]
        # Each worker's own temporary directory, outside the copy (a test's project must
        # not find the repository's conveyor.yml in a parent directory), emptied by
        # pytest at every start; not /tmp/pytest-of-<user>, shared with other sessions.
        cmd.append(f"--basetemp={self.root}.tmp")
        cmd += ["-x"] if first_failure else []
        proc = subprocess.Popen(
            [*cmd, *deselect, *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout ends the tests' own children too
        )
        try:
            out, _ = proc.communicate(timeout=self.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            code = -1
        failed: list[str] = []
        if os.path.exists(self.failures):
            with open(self.failures, encoding="utf-8") as fh:
                failed = [line.rstrip("\n") for line in fh if line.strip()]
        return code, failed, out.decode(errors="replace")[-3000:]

    def baseline(self) -> tuple[list[str], float]:
        """Run the whole suite without any mutant: the tests that fail already."""
        t0 = time.perf_counter()
        code, failed, tail = self.pytest(["tests"], first_failure=False)
        if code not in (0, 1) or (code == 1 and not failed):
            raise RuntimeError(f"the suite does not run without mutants (exit {code}):\n{tail}")
        return failed, time.perf_counter() - t0

    def run(self, mutant: Mutant) -> Outcome:
        t0 = time.perf_counter()
        target = os.path.join(self.root, mutant.path)
        with open(target, "rb") as fh:
            original = fh.read()
        mutated = mutant.apply(original)
        outcome = Outcome(mutant)
        outcome.before, outcome.after = mutant.lines(original)
        try:
            compile(mutated, target, "exec")
        except SyntaxError as exc:
            outcome.status, outcome.by = "INVALID", f"does not compile: {exc.msg}"
            outcome.seconds = time.perf_counter() - t0
            return outcome
        # Only the related test files this commit has (a file may come or go).
        related = [t for t in RELATED[mutant.path] if os.path.exists(os.path.join(self.root, t))]
        stages = [("related", related)] if related else []
        stages.append(("suite", ["tests", *(f"--ignore={t}" for t in related)]))
        try:
            with open(target, "wb") as fh:
                fh.write(mutated)
            self._forget_bytecode(mutant.path)
            for stage, args in stages:
                killer = self._stage(outcome, args, target, original, mutated)
                if killer is not None:
                    outcome.status, outcome.by, outcome.stage = "KILLED", killer, stage
                    return outcome
            return outcome
        finally:
            with open(target, "wb") as fh:
                fh.write(original)
            self._forget_bytecode(mutant.path)
            outcome.seconds = time.perf_counter() - t0

    def _stage(
        self, outcome: Outcome, args: list[str], target: str, original: bytes, mutated: bytes
    ) -> str | None:
        """What killed the mutant in this stage (a test's id, a timeout, a crash), if any.
        A flaky test is left out and the stage run again (twice at most)."""
        flaky: list[str] = []
        for _attempt in range(3):
            code, failed, tail = self.pytest([*args, *(f"--deselect={t}" for t in flaky)])
            if code == -1:
                return f"timeout ({self.timeout:.0f}s)"
            if code == 0:
                return None
            if code == 5:
                raise RuntimeError(f"no tests collected by {args}:\n{tail}")
            if not failed:
                return f"exit {code}: " + (tail.strip().splitlines() or ["no output"])[-1][:200]
            test = failed[0]
            if "::" not in test:
                return test  # a test module that does not import: a kill too
            # A kill must be the mutant's doing: the test fails again with it, alone,
            # and passes without it. Otherwise it is flaky (timing, load): left out.
            again, _failed, _tail = self.pytest([test])
            if again != 0 and self._passes_clean(target, original, mutated, test):
                return test
            why = "passed on a second run" if again == 0 else "fails without the mutant too"
            outcome.notes.append(f"{test} {why} (flaky: left out)")
            flaky.append(test)
        outcome.notes.append("undecided: flaky tests failed three times")
        return None

    def _passes_clean(self, target: str, original: bytes, mutated: bytes, test: str) -> bool:
        """Whether the test that failed passes without the mutant."""
        rel = os.path.relpath(target, self.root)
        try:
            with open(target, "wb") as fh:
                fh.write(original)
            self._forget_bytecode(rel)
            code, _failed, _tail = self.pytest([test])
            return code == 0
        finally:
            with open(target, "wb") as fh:
                fh.write(mutated)
            self._forget_bytecode(rel)


def snapshot(rev: str | None, dest: str) -> str:
    """The tree to mutate: `git archive rev`, or the working tree's tracked and untracked
    (not ignored) files when rev is None. Returns a description."""
    os.makedirs(dest)
    if rev is None:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        for rel in filter(None, listed.decode().split("\0")):
            src = os.path.join(REPO, rel)
            if os.path.isfile(src):
                os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
                shutil.copy2(src, os.path.join(dest, rel))
        return "the working tree"
    commit = _short(rev)
    _extract(commit, dest)
    return f"commit {commit}"


def _short(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def _extract(commit: str, dest: str, *paths: str) -> None:
    archive = subprocess.Popen(["git", "archive", commit, *paths], cwd=REPO, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        sys.exit(f"error: git archive {commit} failed")


def take_tests(rev: str, dest: str) -> str:
    """Replace the copy's tests/ with those of another commit: the same mutants (drawn
    from the source of --rev) judged by newer tests."""
    shutil.rmtree(os.path.join(dest, "tests"))
    commit = _short(rev)
    _extract(commit, dest, "tests")
    return commit


def report(i: int, total: int, o: Outcome, equivalent: str | None) -> str:
    m = o.mutant
    verdict = o.status if o.status != "KILLED" else f"KILLED by {o.by} ({o.stage})"
    if o.status == "INVALID":
        verdict = f"KILLED (invalid: {o.by})"
    if equivalent is not None:
        verdict += f"  [equivalent: {equivalent}]"
    lines = [f"[{i:>3}/{total}] {m.path}:{m.line} {m.operator}  {verdict}  {o.seconds:.1f}s"]
    lines += ["      - " + line.strip() for line in o.before.splitlines()]
    lines += ["      + " + line.strip() for line in o.after.splitlines()]
    lines += [f"      note: {n}" for n in o.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample", type=int, default=60, help="mutants to run (default 60)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="mutants at once (default 1)")
    ap.add_argument("--rev", default="HEAD", help="the commit to mutate (default HEAD)")
    ap.add_argument(
        "--worktree", action="store_true", help="mutate the working tree's files instead"
    )
    ap.add_argument(
        "--tests-rev",
        metavar="REV",
        help="judge the mutants with the tests of this commit (to see whether tests added "
        "since --rev kill what survived there; the baseline leaves out those that fail)",
    )
    ap.add_argument(
        "--timeout", type=float, default=900, help="seconds for one pytest run (default 900)"
    )
    ap.add_argument("--python", default=sys.executable, help="interpreter to run pytest with")
    ap.add_argument("--list", action="store_true", help="count the mutants and exit")
    ap.add_argument(
        "--only", action="append", default=[], help="run the mutants of file:line[:operator]"
    )
    ap.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the first run of the whole suite without mutants (which finds the "
        "tests that fail anyway, to leave them out)",
    )
    ap.add_argument(
        "--module",
        action="append",
        default=[],
        help="only the mutants of this module (src/conveyor/...; repeatable)",
    )
    ap.add_argument("--json", metavar="FILE", help="also write every outcome as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the private copies")
    a = ap.parse_args(argv)

    t_start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="conveyor-mutation-")
    try:
        base = os.path.join(work, "base")
        source = snapshot(None if a.worktree else a.rev, base)
        if a.tests_rev:
            source += f", with the tests of commit {take_tests(a.tests_rev, base)}"
        mutants = all_mutants(base, [m for m in MODULES if not a.module or m in a.module])
        if a.list and a.only:
            for m in mutants:
                if any(_selects(sel, m) for sel in a.only):
                    before, after = m.lines(_read(base, m.path))
                    print(f"{m.key}\n  - {before.strip()}\n  + {after.strip()}")
            return 0
        if a.list:
            counts: dict[str, int] = {}
            for m in mutants:
                counts[m.path] = counts.get(m.path, 0) + 1
            for path, n in counts.items():
                print(f"{n:>6}  {path}")
            print(f"{len(mutants):>6}  mutants in {source}")
            return 0
        if a.only:
            chosen = [m for m in mutants if any(_selects(sel, m) for sel in a.only)]
            if not chosen:
                sys.exit(f"error: no mutant matches {a.only}")
        else:
            chosen = random.Random(a.seed).sample(mutants, min(a.sample, len(mutants)))
        allow = load_allowlist(ALLOWLIST)
        keys = {m.key for m in mutants}
        for key in allow:
            if key not in keys:
                print(f"warning: {os.path.basename(ALLOWLIST)}: {key} matches no mutant (stale?)")
        print(
            f"mutating {source}: {len(chosen)} of {len(mutants)} mutants "
            f"(seed {a.seed}), {a.jobs} at a time, python {a.python}"
        )
        sys.stdout.flush()
        outcomes = _run_all(chosen, base, work, a, allow)
    finally:
        if a.keep:
            print(f"private copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    equivalent = [o for o in outcomes if o.mutant.key in allow]
    counted = [o for o in outcomes if o.mutant.key not in allow]
    killed = [o for o in counted if o.status != "SURVIVED"]
    survived = [o for o in counted if o.status == "SURVIVED"]
    wall = time.perf_counter() - t_start
    score = len(killed) / len(counted) if counted else 1.0
    print()
    print(
        f"score: {len(killed)}/{len(counted)} killed = {score:.1%} "
        f"({len(outcomes)} sampled, {len(equivalent)} equivalent, "
        f"{sum(o.status == 'INVALID' for o in outcomes)} invalid counted as killed)"
    )
    for o in survived:
        print(f"  SURVIVED {o.mutant.key}: {o.after.strip()}")
    for o in equivalent:
        if o.status != "SURVIVED":
            print(f"  note: {o.mutant.key} is allowlisted as equivalent but was killed")
    print(
        f"time: {wall:.0f}s wall, {sum(o.seconds for o in outcomes):.0f}s of mutant runs, "
        f"{a.jobs} at a time"
    )
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "source": source,
                    "seed": a.seed,
                    "sample": a.sample,
                    "mutants": len(mutants),
                    "score": score,
                    "wall_seconds": wall,
                    "outcomes": [
                        {
                            "key": o.mutant.key,
                            "status": o.status,
                            "by": o.by,
                            "stage": o.stage,
                            "seconds": o.seconds,
                            "before": o.before,
                            "after": o.after,
                            "equivalent": allow.get(o.mutant.key),
                            "notes": o.notes,
                        }
                        for o in outcomes
                    ],
                },
                fh,
                indent=1,
            )
    return 0


def _read(tree: str, path: str) -> bytes:
    with open(os.path.join(tree, path), "rb") as fh:
        return fh.read()


def _selects(selector: str, m: Mutant) -> bool:
    parts = selector.split(":", 2)
    if parts[0] != m.path:
        return False
    if len(parts) > 1 and int(parts[1]) != m.line:
        return False
    return len(parts) < 3 or parts[2] == m.operator


def _run_all(
    chosen: list[Mutant], base: str, work: str, a: argparse.Namespace, allow: dict[str, str]
) -> list[Outcome]:
    plugin_dir = os.path.join(work, "plugin")
    os.makedirs(plugin_dir)
    with open(os.path.join(plugin_dir, "_mutation.py"), "w", encoding="utf-8") as fh:
        fh.write(PLUGIN)
    free: list[Worker] = [
        Worker(base, os.path.join(work, f"w{i}"), a.python, a.timeout, plugin_dir)
        for i in range(a.jobs)
    ]
    if a.baseline:
        bad, seconds = free[0].baseline()
        print(f"the whole suite without mutants: {seconds:.0f}s, {len(bad)} failing (left out)")
        for test in bad:
            print(f"  fails without mutants: {test}")
        for worker in free:
            worker.known_bad = bad
    lock = threading.Lock()
    done = 0

    def one(m: Mutant) -> Outcome:
        nonlocal done
        with lock:
            worker = free.pop()
        try:
            outcome = worker.run(m)
        finally:
            with lock:
                free.append(worker)
        with lock:
            done += 1
            print(report(done, len(chosen), outcome, allow.get(m.key)), flush=True)
        return outcome

    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        return list(pool.map(one, chosen))


if __name__ == "__main__":
    sys.exit(main())
