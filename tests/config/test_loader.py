"""Reading conveyor.yml: hostile files fail fast, located, in bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Project

# The child validates the file in-process and reports its exit code and how much its
# peak resident set grew. RLIMIT_AS is a safety net: without the guards these files
# would take the machine's memory (20 GB and more) rather than fail the test.
_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
    from conveyor.cli import run_cli
    import conveyor.config.build, conveyor.config.schema  # noqa: F401  (their cost is not growth)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = run_cli(["-f", sys.argv[1], "validate"])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "growth_kib": after - before}), file=sys.stderr)
    """
)


def validate_in_child(path: Path) -> tuple[int, int, str]:
    """(exit code, peak RSS growth in KiB, what the child printed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    last = proc.stderr.strip().splitlines()[-1]
    report = json.loads(last)
    return report["code"], report["growth_kib"], proc.stderr


def _aliased_matrix(axes: int, values: int) -> str:
    """A few kilobytes of YAML whose matrix is values**axes combinations."""
    items = ", ".join(f'"v{i}"' for i in range(values))
    lines = ["jobs:", "  build:", "    run: make", "    matrix:", f"      a0: &v [{items}]"]
    lines += [f"      a{i}: *v" for i in range(1, axes)]
    return "\n".join(lines) + "\n"


def test_a_matrix_of_aliased_axes_is_refused_before_expanding(project: Project) -> None:
    text = _aliased_matrix(axes=24, values=40)  # 40**24 combinations
    path = project.pipeline(text)
    assert len(text) < 4096
    code, growth, err = validate_in_child(path)
    assert code == 2, err
    assert "jobs.build.matrix: the matrix would expand to " in err
    assert "more than the limit of 10,000 per job" in err
    assert "Traceback" not in err
    assert growth < 50 * 1024, f"peak RSS grew by {growth} KiB"


def test_billion_laughs_is_refused_in_bounded_memory(project: Project) -> None:
    # Each level repeats the one below nine times; 9**9 mappings once expanded. Two
    # templates and a job extending both made the merge walk every one of them.
    lines = ["jobs:", "  .a:", "    env: &l0 {A: x}", "    matrix:", "      include:"]
    lines += [f"        - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines += [
        "  .b: {matrix: {include: *l9}}",
        "  .c: {matrix: {include: *l9}}",
        "  build: {extends: [.b, .c], run: make}",
    ]
    path = project.pipeline("\n".join(lines) + "\n")
    code, growth, err = validate_in_child(path)
    assert code == 2, err
    assert err.startswith("conveyor.yml:11:11: jobs..a.matrix.include[5]: the document expands to ")
    assert "values through its aliases (*name), more than the limit of 1,000,000" in err
    assert growth < 50 * 1024, f"peak RSS grew by {growth} KiB"


def test_a_matrix_at_the_limit_is_expanded(project: Project) -> None:
    project.pipeline(_aliased_matrix(axes=4, values=10))  # 10,000: exactly the limit
    result = project.run("validate")
    assert result.code == 0, result.err
    assert "(10000 with matrix instances)" in result.out


def test_the_limit_is_configurable(project: Project) -> None:
    project.pipeline("limits:\n  matrix: 20000\n" + _aliased_matrix(axes=3, values=25))
    result = project.run("validate")
    assert result.code == 0, result.err
    assert "(15625 with matrix instances)" in result.out


def test_many_include_entries_are_refused(project: Project) -> None:
    entries = "".join(f"        - {{x: '{i}'}}\n" for i in range(300))
    project.pipeline("jobs:\n  build:\n    run: make\n    matrix:\n      include:\n" + entries)
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:5:7: jobs.build.matrix.include: 300 include entries, more than the "
        "limit of 256"
    )


@pytest.mark.timeout(30)
def test_a_diamond_of_extends_is_merged_once_per_template(project: Project) -> None:
    # Each template extends the one before twice: 2**40 merges when every path was walked.
    lines = ["jobs:", "  .t0: {env: {A: '0'}}"]
    lines += [f"  .t{i}: {{extends: [.t{i - 1}, .t{i - 1}]}}" for i in range(1, 11)]
    lines += [f"  .u{i}: {{extends: [.t10, .t10, .t10, .t10]}}" for i in range(1, 2)]
    wide = [f"  .w{i}: {{extends: [{', '.join(['.w' + str(i - 1)] * 8)}]}}" for i in range(1, 10)]
    lines += ["  .w0: {env: {B: '1'}}", *wide, "  build: {extends: [.w9, .t10], run: make}"]
    project.pipeline("\n".join(lines) + "\n")
    result = project.run("validate")
    assert result.code == 0, result.err


def test_a_file_that_is_not_utf8_gives_line_and_column(project: Project) -> None:
    (project.root / "conveyor.yml").write_bytes(b"jobs:\n  build:\n    run: echo caf\xe9\n")
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:3:18: the file is not valid UTF-8 text: byte 0xe9 cannot start or "
        "continue a character here"
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("depth", [5000, 50_000])
def test_deep_nesting_is_refused_before_parsing(project: Project, depth: int) -> None:
    # The YAML parser is quadratic in nesting depth: 50,000 levels took many minutes.
    project.pipeline(
        "jobs:\n  build:\n    run: make\n    matrix:\n      a: " + "[" * depth + "]" * depth
    )
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:5:106: invalid YAML: lists and mappings nested more than 100 levels deep"
    )


def test_brackets_in_commands_are_not_nesting(project: Project) -> None:
    script = "\n".join(f"      echo '[{i}'" for i in range(300))  # 300 unclosed '['
    project.pipeline("jobs:\n  build:\n    run: |\n" + script + "\n")
    result = project.run("validate")
    assert result.code == 0, result.err
