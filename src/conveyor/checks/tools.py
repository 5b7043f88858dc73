"""Required tools: is each one on PATH, and is its version one the pipeline accepts?

conveyor.yml says `requires: {node: ">=18", python: ">=3.11"}`; this module finds each
tool on the build's PATH, asks it for its version and compares that with the specifier
(PEP 440 syntax, via `packaging`). A tool that is missing, hangs, crashes or prints no
version is a failed check, never an exception: the point is to fail before the build
with a clear message rather than halfway through it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping

from conveyor.executor.interface import Executor
from conveyor.model import CheckResult
from conveyor.units import version_spec

VERSION_TIMEOUT = 10.0
"""Seconds a tool gets to print its version (a tool that waits on a licence server or
a network mount must not stall the whole pre-build check)."""

_VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "go": ("version",),
    "java": ("-version",),
    "javac": ("-version",),
}
_DEFAULT_ARGS = ("--version",)

# A dotted version anywhere (also "go1.22.1"), or an integer standing on its own ("v20",
# "openjdk 17"): whichever comes first in the output.
_VERSION_TOKEN = re.compile(r"(\d+(?:\.\d+)+)|(?<![\w.-])v?(\d+)(?![\w.-])")
_SPEC_SYNTAX = (
    "write a version specifier such as '>=18', '>=3.11,<4', '==4.3.*' "
    "or a bare version such as '18' (meaning >=18)"
)


def check_tools(
    requires: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    timeout: float | None = None,
    executor: Executor | None = None,
) -> list[CheckResult]:
    """One CheckResult per required tool, in the order given.

    `environ` is the environment the build runs with: its PATH is searched, and the
    tool is run with it. `timeout` defaults to VERSION_TIMEOUT. `executor` asks each
    tool its version: the run's, else (a check outside a run) a local one.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if executor is None:
        from conveyor.executor.local import LocalExecutor

        executor = LocalExecutor()

    limit = VERSION_TIMEOUT if timeout is None else timeout
    path_var = environ.get("PATH", "")
    results: list[CheckResult] = []
    for name, raw in requires.items():
        check = f"tool {name}"
        text = str(raw).strip()
        wanted = version_spec(text)
        try:
            spec = SpecifierSet(wanted)
        except InvalidSpecifier:
            results.append(
                CheckResult(
                    check=check,
                    ok=False,
                    expected=f"{name} with a valid version specifier",
                    found=f"invalid version specifier {text!r}",
                    hint=_SPEC_SYNTAX,
                )
            )
            continue
        shown_spec = wanted or "(any version)"
        expected = f"{name} {shown_spec}"
        install = f"install {name} {shown_spec} or put it first on PATH"

        exe = shutil.which(name, path=path_var)
        if exe is None and name == "python":
            # Many systems ship only `python3`; `python: ">=3.11"` means either.
            exe = shutil.which("python3", path=path_var)
        if exe is None:
            results.append(
                CheckResult(
                    check=check,
                    ok=False,
                    expected=expected,
                    found="not found on PATH",
                    hint=install,
                )
            )
            continue

        version, problem = _read_version(executor, name, exe, environ, limit)
        if version is None:
            args = " ".join(_version_args(name))
            results.append(
                CheckResult(
                    check=check,
                    ok=False,
                    expected=expected,
                    found=f"could not read its version: {problem}",
                    hint=f"check that `{exe} {args}` works, or {install}",
                )
            )
            continue

        found = f"{name} {version} at {exe}"
        ok = spec.contains(version, prereleases=True)
        results.append(
            CheckResult(
                check=check, ok=ok, expected=expected, found=found, hint="" if ok else install
            )
        )
    return results


def _version_args(name: str) -> tuple[str, ...]:
    return _VERSION_ARGS.get(name, _DEFAULT_ARGS)


def _read_version(
    executor: Executor, name: str, exe: str, environ: Mapping[str, str], timeout: float
) -> tuple[str | None, str]:
    """(version, "") or (None, what went wrong in one line)."""
    done = executor.probe([exe, *_version_args(name)], env=environ, timeout=timeout)
    if done.error is not None:
        return None, f"cannot run it: {done.error.strerror or done.error}"
    if done.timed_out:
        return None, f"no answer within {timeout:g}s"
    text = (done.stdout + b"\n" + done.stderr).decode("utf-8", "replace")
    first = _first_line(text)
    if done.returncode != 0:
        return None, f"exited with status {done.returncode}: {first}"
    version = _extract_version(text, os.path.basename(exe))
    if version is None:
        return None, first
    return version, ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 120 else line[:117] + "..."
    return "(no output)"


def _extract_version(text: str, program: str) -> str | None:
    # The program's own name may contain digits ("python3", "gcc-12").
    if program:
        text = text.replace(program, " ")
    match = _VERSION_TOKEN.search(text)
    if match is None:
        return None
    return match.group(1) or match.group(2)
