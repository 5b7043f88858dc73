"""Local stand-ins for the actions nearly every workflow uses, so that a workflow runs
here without fetching them: checkout (the workspace as it is), setup-python/node/go/java
(this machine's toolchain, if its version matches), cache (a note: Conveyor's own caches
do that job), upload-artifact and download-artifact (files passed between the jobs of
the run through a directory of the workspace's state)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

ARTIFACTS_DIR = os.path.join(".conveyor", "gha-artifacts")


@dataclass
class Done:
    ok: bool
    outputs: dict[str, str]
    message: str


Standin = Callable[[Mapping[str, str], str, str], Done]
"""(the step's `with:` rendered, the workspace, the run's id) -> what happened."""


def _checkout(with_: Mapping[str, str], root: str, run_id: str) -> Done:
    return Done(True, {}, "actions/checkout: the workspace as it is (nothing fetched)")


_TOOLS = {
    "setup-python": (("python3", "--version"), "python-version", "python-version-file"),
    "setup-node": (("node", "--version"), "node-version", "node-version-file"),
    "setup-go": (("go", "version"), "go-version", "go-version-file"),
    "setup-java": (("java", "-version"), "java-version", "java-version-file"),
    "setup-uv": (("uv", "--version"), "version", "version-file"),
}


def _setup(kind: str) -> Standin:
    argv, key, file_key = _TOOLS[kind]

    def run(with_: Mapping[str, str], root: str, run_id: str) -> Done:
        wanted = (with_.get(key) or "").strip()
        if not wanted and with_.get(file_key):
            try:
                with open(os.path.join(root, with_[file_key])) as fh:
                    wanted = fh.read().strip().splitlines()[0]
            except (OSError, IndexError):
                wanted = ""
        try:
            got = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            found = re.search(r"(\d+(?:\.\d+)*)", got.stdout + got.stderr)
        except (OSError, subprocess.TimeoutExpired):
            found = None
        if found is None:
            return Done(False, {}, f"{kind}: {argv[0]} is not on this machine")
        have = found.group(1)
        want = wanted.lstrip("v").replace(".x", "").replace("x", "").rstrip(".")
        if want and not (have == want or have.startswith(want + ".")):
            return Done(
                False,
                {},
                f"{kind}: {wanted} asked for, this machine has {argv[0]} {have}",
            )
        return Done(True, {key: have}, f"{kind}: using this machine's {argv[0]} {have}")

    return run


def _cache(with_: Mapping[str, str], root: str, run_id: str) -> Done:
    # Restored before the job started and saved after it succeeds by Conveyor's
    # dependency caches, which the translation gave the job (caching.caches_of); the
    # step runner fills in `cache-hit` from what the restore found.
    return Done(
        True,
        {"cache-hit": "false"},
        "actions/cache: Conveyor's dependency cache (restored before the job, saved after "
        "it succeeds)",
    )


def _upload(with_: Mapping[str, str], root: str, run_id: str) -> Done:
    name = with_.get("name") or "artifact"
    target = os.path.join(root, ARTIFACTS_DIR, run_id, name)
    patterns = [p.strip() for p in (with_.get("path") or "").splitlines() if p.strip()]
    copied = 0
    for pattern in patterns:
        for path in glob.glob(os.path.join(root, pattern), recursive=True):
            rel = os.path.relpath(path, root)
            dest = os.path.join(target, rel)
            if os.path.isdir(path):
                shutil.copytree(path, dest, dirs_exist_ok=True, symlinks=True)
            else:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy2(path, dest, follow_symlinks=False)
            copied += 1
    if not copied and with_.get("if-no-files-found", "warn") == "error":
        return Done(False, {}, f"actions/upload-artifact: no files match {patterns}")
    return Done(True, {}, f"actions/upload-artifact: {copied} path(s) kept as '{name}'")


def _download(with_: Mapping[str, str], root: str, run_id: str) -> Done:
    base = os.path.join(root, ARTIFACTS_DIR, run_id)
    names = (
        [with_["name"]]
        if with_.get("name")
        else sorted(os.listdir(base))
        if os.path.isdir(base)
        else []
    )
    dest = os.path.join(root, with_.get("path") or ".")
    for name in names:
        source = os.path.join(base, name)
        if not os.path.isdir(source):
            return Done(False, {}, f"actions/download-artifact: no artifact '{name}' in this run")
        where = dest if with_.get("name") else os.path.join(dest, name)
        shutil.copytree(source, where, dirs_exist_ok=True, symlinks=True)
    return Done(
        True, {"download-path": dest}, f"actions/download-artifact: {len(names)} artifact(s)"
    )


LOCAL_STANDINS: dict[str, Standin] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup("setup-python"),
    "actions/setup-node": _setup("setup-node"),
    "actions/setup-go": _setup("setup-go"),
    "actions/setup-java": _setup("setup-java"),
    # uv's setup actions: this machine's uv, if it has one.
    "astral-sh/setup-uv": _setup("setup-uv"),
    "hynek/setup-cached-uv": _setup("setup-uv"),
    "actions/cache": _cache,
    "actions/cache/restore": _cache,
    "actions/cache/save": _cache,
    "actions/upload-artifact": _upload,
    "actions/download-artifact": _download,
}


def standin_of(uses: str) -> Standin | None:
    """The stand-in for `owner/repo[/path]@ref`, if there is one."""
    return LOCAL_STANDINS.get(uses.split("@", 1)[0].lower())
