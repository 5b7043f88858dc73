"""Tool versions before the build: real tools and fake ones on a real PATH."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from conveyor.checks.tools import check_tools
from tests.checks.conftest import only


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


def fake_tool(bin_dir: Path, name: str, script: str) -> Path:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script).lstrip("\n"))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def path_env(bin_dir: Path) -> dict[str, str]:
    """The test's environment with the fake tools first on PATH."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def real_version(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    match = re.search(r"\d+(\.\d+)+", done.stdout + done.stderr)
    assert match is not None
    return match.group(0)


def test_python3_version_is_compared_with_the_specifier() -> None:
    version = real_version("python3", "--version")
    ok = only(check_tools({"python3": ">=3.8"}, os.environ))
    assert ok.ok
    assert ok.check == "tool python3"
    assert ok.expected == "python3 >=3.8"
    assert ok.found == f"python3 {version} at {shutil.which('python3')}"

    too_new = only(check_tools({"python3": "<3"}, os.environ))
    assert not too_new.ok
    assert too_new.blocking
    assert too_new.found.startswith(f"python3 {version} at ")
    assert too_new.hint == "install python3 <3 or put it first on PATH"


def test_python_falls_back_to_python3(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "python3", 'echo "Python 3.99.1"')
    result = only(check_tools({"python": ">=3.11"}, {"PATH": str(bin_dir)}))
    assert result.ok
    assert result.found == f"python 3.99.1 at {exe}"


def test_fake_tool_versions(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "fake-tool", 'echo "fake-tool version 1.2.3"')
    env = path_env(bin_dir)
    results = check_tools({"fake-tool": ">=1.2"}, env)
    assert only(results).ok
    assert results[0].found == f"fake-tool 1.2.3 at {exe}"

    newer = only(check_tools({"fake-tool": ">=2"}, env))
    assert not newer.ok
    assert newer.expected == "fake-tool >=2"
    assert newer.found == f"fake-tool 1.2.3 at {exe}"
    assert newer.hint == "install fake-tool >=2 or put it first on PATH"

    bare = only(check_tools({"fake-tool": "1.2"}, env))
    assert bare.ok
    assert bare.expected == "fake-tool >=1.2"
    assert not only(check_tools({"fake-tool": "1.3"}, env)).ok


@pytest.mark.parametrize(
    ("name", "script", "version"),
    [
        # go takes `version`, not --version, and prints go1.22.1
        ("go", '[ "$1" = version ] && echo "go version go1.22.1 linux/amd64" || exit 2', "1.22.1"),
        # java prints to stderr, after -version
        (
            "java",
            '[ "$1" = -version ] && echo \'openjdk version "17.0.9"\' >&2 || exit 2',
            "17.0.9",
        ),
        # node prints v20.1.0
        ("node", '[ "$1" = --version ] && echo v20.1.0 || exit 2', "20.1.0"),
        # a lone integer, and digits in the program's own name are not its version
        ("tool2", 'echo "tool2 release 7 (build 2024-01-02)"', "7"),
    ],
)
def test_version_flags_and_formats(bin_dir: Path, name: str, script: str, version: str) -> None:
    exe = fake_tool(bin_dir, name, script)
    result = only(check_tools({name: ">=1"}, path_env(bin_dir)))
    assert result.found == f"{name} {version} at {exe}"
    assert result.ok


def test_tool_without_a_version(bin_dir: Path) -> None:
    exe = fake_tool(bin_dir, "quiet-tool", 'echo "usage: quiet-tool [options]"')
    result = only(check_tools({"quiet-tool": ">=1"}, path_env(bin_dir)))
    assert not result.ok
    assert result.found == "could not read its version: usage: quiet-tool [options]"
    assert f"`{exe} --version`" in result.hint


def test_tool_that_fails(bin_dir: Path) -> None:
    fake_tool(bin_dir, "broken-tool", 'echo "error while loading libfoo.so.1.2" >&2\nexit 3')
    result = only(check_tools({"broken-tool": ">=1"}, path_env(bin_dir)))
    assert not result.ok
    assert result.found == (
        "could not read its version: exited with status 3: error while loading libfoo.so.1.2"
    )


def test_tool_that_hangs_is_given_up_on(bin_dir: Path) -> None:
    # A wrapper whose child would keep the pipes open: the whole group must be killed.
    fake_tool(bin_dir, "slow-tool", "sleep 30\necho 1.0")
    result = only(check_tools({"slow-tool": ">=1"}, path_env(bin_dir), timeout=0.5))
    assert not result.ok
    assert result.found == "could not read its version: no answer within 0.5s"


def test_missing_tool_and_invalid_specifier(bin_dir: Path) -> None:
    missing, invalid = check_tools(
        {"no-such-tool": ">=1", "fake-tool": ">>1"}, {"PATH": str(bin_dir)}
    )
    assert not missing.ok
    assert missing.found == "not found on PATH"
    assert missing.hint == "install no-such-tool >=1 or put it first on PATH"
    assert not invalid.ok
    assert invalid.found == "invalid version specifier '>>1'"
    assert "'>=18'" in invalid.hint
    assert "'>=3.11,<4'" in invalid.hint


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_real_node() -> None:
    version = real_version("node", "--version")
    result = only(check_tools({"node": ">=18"}, os.environ))
    assert result.found == f"node {version} at {shutil.which('node')}"
    assert result.ok == (int(version.split(".")[0]) >= 18)
