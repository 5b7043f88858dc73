"""The action digest: stable across processes and orderings, and sensitive to every part;
and the `tools:` versions that are part of it."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.cache.keys import build_action, build_manifest, key_environment, tool_versions
from conveyor.executor.interface import ProbeResult
from conveyor.executor.local import LocalExecutor
from conveyor.model import Digest, Job
from conveyor.workspace.files import FileInfo

JOB = Job(
    name="test (py=3.12)",
    base="test",
    run=("pytest -q",),
    shell=("bash", "-c"),
    matrix=(("py", "3.12"),),
    env=(("MODE", "ci"),),
    pass_env=("REGION",),
    secrets=("TOKEN",),
    dir="pkg",
    outputs=("reports/",),
)
FILES = {
    "pkg/a.py": FileInfo(Digest("a" * 64, 10), False),
    "pkg/sub/b.py": FileInfo(Digest("b" * 64, 20), False),
    "pkg/run.sh": FileInfo(Digest("c" * 64, 30), True),
}
ENVIRON = {"REGION": "eu", "TOKEN": "secret-1"}


def digest(
    job: Job = JOB,
    files: dict[str, FileInfo] = FILES,
    needs: dict[str, str] | None = None,
    tools: dict[str, str] | None = None,
    environ: dict[str, str] = ENVIRON,
) -> str:
    env = key_environment(job, (("TOP", "1"),), environ)
    manifest = build_manifest(
        job,
        argv=(*job.shell, job.script),
        env=env,
        files=files,
        needs={"build": "o" * 64} if needs is None else needs,
        tools={"python": "Python 3.11.7"} if tools is None else tools,
    )
    built = build_action(manifest, files)
    return built.digest.hash


BASE = digest()


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(FILES)), st.permutations(["A", "B", "C"]))
def test_order_does_not_matter(file_order: list[str], env_order: list[str]) -> None:
    files = {p: FILES[p] for p in file_order}
    env = tuple((k, k.lower()) for k in env_order)
    job = dataclasses.replace(JOB, env=env)
    reordered = dataclasses.replace(JOB, env=tuple(sorted(env)))
    assert digest(files=files) == BASE
    assert digest(job) == digest(reordered)


def test_every_part_changes_the_digest() -> None:
    variants = {
        "command": digest(dataclasses.replace(JOB, run=("pytest -x",))),
        "shell": digest(dataclasses.replace(JOB, shell=("sh", "-c"))),
        "dir": digest(dataclasses.replace(JOB, dir="pkg2")),
        "env": digest(dataclasses.replace(JOB, env=(("MODE", "local"),))),
        "pass_env value": digest(environ={**ENVIRON, "REGION": "us"}),
        "input content": digest(files={**FILES, "pkg/a.py": FileInfo(Digest("d" * 64, 10), False)}),
        "input added": digest(files={**FILES, "pkg/c.py": FileInfo(Digest("e" * 64, 1), False)}),
        "input mode": digest(files={**FILES, "pkg/a.py": FileInfo(Digest("a" * 64, 10), True)}),
        "upstream outputs": digest(needs={"build": "p" * 64}),
        "tool version": digest(tools={"python": "Python 3.12.0"}),
        "matrix": digest(dataclasses.replace(JOB, matrix=(("py", "3.13"),))),
        "outputs": digest(dataclasses.replace(JOB, outputs=("dist/",))),
        "secret name": digest(dataclasses.replace(JOB, secrets=("OTHER",))),
    }
    assert all(v != BASE for v in variants.values()), [k for k, v in variants.items() if v == BASE]
    assert len(set(variants.values())) == len(variants)


def test_a_secret_value_is_not_part_of_the_key() -> None:
    assert digest(environ={**ENVIRON, "TOKEN": "secret-2"}) == BASE


def test_stable_across_processes() -> None:
    code = "from tests.cache.test_keys import BASE; print(BASE)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == BASE


def test_a_tool_version_is_its_first_line_and_a_digest_of_all_it_printed(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    probe = LocalExecutor().probe
    tools = [("cc", "echo 'cc 12.2'; echo more >&2"), ("where", "pwd"), ("bad", "exit 4")]
    found = tool_versions(tools, str(tmp_path), env, probe)
    printed = b"cc 12.2\nmore\n\nexit 0"
    assert found["cc"] == f"cc 12.2 ({hashlib.sha256(printed).hexdigest()[:12]})"
    assert found["where"].startswith(f"{tmp_path} (")
    assert found["bad"].startswith("exit 4 (")
    # The same tool, another exit status: another version (so another key).
    assert (
        tool_versions([("cc", "echo 'cc 12.2'; echo more >&2; exit 1")], str(tmp_path), env, probe)[
            "cc"
        ]
        != found["cc"]
    )


def test_a_tool_that_cannot_run_or_answer_has_an_error_for_version(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    (missing,) = tool_versions([("cc", "cc --version")], gone, {}, LocalExecutor().probe).values()
    said = f"error: [Errno 2] No such file or directory: '{gone}'"
    assert missing == f"{said[:80]} ({hashlib.sha256(said.encode()).hexdigest()[:12]})"

    def hung(
        argv: Sequence[str], *, env: Mapping[str, str], timeout: float, cwd: str | None
    ) -> ProbeResult:
        return ProbeResult(None, b"partial", timed_out=True)

    (late,) = tool_versions([("cc", "cc --version")], str(tmp_path), {}, hung).values()
    said = "error: Command '['sh', '-c', 'cc --version']' timed out after 60 seconds"
    assert late == f"{said} ({hashlib.sha256(said.encode()).hexdigest()[:12]})"
