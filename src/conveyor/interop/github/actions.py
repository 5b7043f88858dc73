"""Local stand-ins for the actions nearly every workflow uses, so that a workflow runs
here without fetching them: checkout (the workspace as it is), setup-python/node/go/java
(this machine's toolchain, if its version matches), cache (a note: Conveyor's own caches
do that job), upload-artifact and download-artifact (files passed between the jobs of
the run through a directory of the workspace's state; each upload also stored in the
artifact store as `<name>@<run id>`, expiring after its `retention-days`, GitHub's 90
by default)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
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
            wanted = version_from_file(kind, os.path.join(root, with_[file_key]))
        try:
            got = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            found = re.search(r"(\d+(?:\.\d+)*)", got.stdout + got.stderr)
        except (OSError, subprocess.TimeoutExpired):
            found = None
        if found is None:
            return Done(False, {}, f"{kind}: {argv[0]} is not on this machine")
        have = found.group(1)
        if wanted and not satisfies(have, wanted):
            return Done(
                False,
                {},
                f"{kind}: {wanted} asked for, this machine has {argv[0]} {have}",
            )
        return Done(True, {key: have}, f"{kind}: using this machine's {argv[0]} {have}")

    return run


# What each setup action reads from its `*-version-file`, besides a plain first line
# (.python-version, .nvmrc, .node-version, .go-version, .java-version):
# `.tool-versions` (asdf) names each tool on a line of its own.
_ASDF = {
    "setup-python": "python",
    "setup-node": "nodejs",
    "setup-go": "golang",
    "setup-java": "java",
    "setup-uv": "uv",
}


def version_from_file(kind: str, path: str) -> str:
    """The version (or range) a setup action's `*-version-file` asks for, read as the
    action reads it: pyproject.toml's `requires-python` (setup-python) or
    `tool.uv.required-version` (setup-uv), package.json's `volta.node` or
    `engines.node`, go.mod's `toolchain` or `go` line, `.tool-versions`' line for the
    tool, else the file's first line that is not a comment; '' when it says none."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return ""
    if name == "pyproject.toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return ""
        if kind == "setup-uv":
            found = data.get("tool", {}).get("uv", {}).get("required-version", "")
        else:
            found = data.get("project", {}).get("requires-python", "")
        return str(found).strip()
    if name == "package.json":
        import json

        try:
            data = json.loads(text)
        except ValueError:
            return ""
        volta = data.get("volta") if isinstance(data.get("volta"), dict) else {}
        engines = data.get("engines") if isinstance(data.get("engines"), dict) else {}
        return str(volta.get("node") or engines.get("node") or "").strip()
    if name == "go.mod":
        found = re.search(r"^toolchain\s+go(\S+)", text, re.M) or re.search(
            r"^go\s+(\S+)", text, re.M
        )
        return found.group(1) if found else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if name == ".tool-versions":
        for line in lines:
            tool, _, version = line.partition(" ")
            if tool == _ASDF.get(kind):
                return version.split()[0] if version.split() else ""
        return ""
    return lines[0] if lines else ""


def satisfies(have: str, wanted: str) -> bool:
    """Whether this machine's version `have` ('3.11.7') is what `wanted` asks for: a
    version or its prefix ('3.11', 'v20', '20.x'), a PEP 440 range ('>=3.9,<4'), or an
    npm-style one ('^20', '~20.1', '>=18 <21', '18 || 20')."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    def one(text: str) -> bool:
        text = text.strip()
        if not text or text in ("*", "x", "latest", "stable", "lts/*"):
            return True
        if text[0].isdigit() or text[0] in "vV":
            want = text.lstrip("vV").replace(".x", "").replace(".*", "").rstrip(".")
            return have == want or have.startswith(want + ".")
        parts = []
        for item in re.split(r"[,\s]+", text):
            if item.startswith(("^", "~")) and not item.startswith("~="):
                nums = [int(n) for n in re.findall(r"\d+", item)[:3]]
                if not nums:
                    return False
                # ^20 and ^20.1: below the next major; ~20.1: below the next minor.
                cut = 1 if item[0] == "^" or len(nums) == 1 else 2
                upper = [*nums[: cut - 1], nums[cut - 1] + 1]
                floor = ".".join(map(str, nums))
                parts += [f">={floor}", f"<{'.'.join(map(str, upper))}"]
            elif item:
                op = item[: len(item) - len(item.lstrip("<>=!~"))]
                rest = item[len(op) :].lstrip("vV")
                # npm's '=1.2.3' and a bare '1.2.3' inside a range are exact versions.
                parts.append(f"{'==' if op in ('', '=') else op}{rest}")
        try:
            return Version(have) in SpecifierSet(",".join(parts))
        except (InvalidSpecifier, InvalidVersion):
            return False

    return any(one(alternative) for alternative in wanted.split("||"))


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
    try:
        days = _retention_days(with_.get("retention-days") or "")
    except ValueError as exc:
        return Done(False, {}, f"actions/upload-artifact: {exc}")
    _forget_earlier_runs(root, run_id)
    target = os.path.join(root, ARTIFACTS_DIR, run_id, name)
    patterns = [p.strip() for p in (with_.get("path") or "").splitlines() if p.strip()]
    copied = 0
    files: dict[str, str] = {}
    for pattern in patterns:
        for path in glob.glob(os.path.join(root, pattern), recursive=True):
            rel = os.path.relpath(path, root)
            dest = os.path.join(target, rel)
            if os.path.isdir(path):
                shutil.copytree(path, dest, dirs_exist_ok=True, symlinks=True)
                files.update(_files_under(root, path))
            else:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy2(path, dest, follow_symlinks=False)
                if os.path.isfile(path):
                    files[rel.replace(os.sep, "/")] = path
            copied += 1
    if not copied and with_.get("if-no-files-found", "warn") == "error":
        return Done(False, {}, f"actions/upload-artifact: no files match {patterns}")
    said = f"actions/upload-artifact: {copied} path(s) kept as '{name}'"
    if not files:
        return Done(True, {}, said)
    from conveyor.artifacts.store import ArtifactError

    try:
        ref = _store(name, sorted(files.items()), root, days)
    except (ArtifactError, OSError) as exc:
        problem = exc.message if isinstance(exc, ArtifactError) else str(exc)
        return Done(False, {}, f"actions/upload-artifact: not stored: {problem}")
    return Done(True, {}, f"{said}, stored as {ref} (kept {days} days)")


RETENTION_DAYS = 90
"""How long GitHub keeps an uploaded artifact when `retention-days` does not say."""


def _retention_days(given: str) -> int:
    if not given.strip():
        return RETENTION_DAYS
    try:
        days = int(given.strip())
    except ValueError:
        days = 0
    if days < 1:
        raise ValueError(f"retention-days: {given!r} is not a number of days (1 or more)")
    return days


def _files_under(root: str, top: str) -> dict[str, str]:
    """The regular files under `top`, by their path relative to the workspace."""
    out: dict[str, str] = {}
    for here, _dirs, names in os.walk(top):
        for leaf in names:
            path = os.path.join(here, leaf)
            if os.path.isfile(path) and not os.path.islink(path):
                out[os.path.relpath(path, root).replace(os.sep, "/")] = path
    return out


def _store(name: str, files: list[tuple[str, str]], root: str, days: int) -> str:
    """The upload stored in the workspace's artifact store as `<name>@<run id>`, expiring
    after `days` (so `artifacts list`, `fetch` and `prune` see it, as GitHub's artifact
    list and retention do); its ref."""
    from conveyor.artifacts.collect import store_files
    from conveyor.artifacts.record import ArtifactVersion
    from conveyor.artifacts.s3store import open_store
    from conveyor.artifacts.store import now_iso
    from conveyor.artifacts.versioning import safe

    env = os.environ
    now = time.time()
    run = env.get("CONVEYOR_RUN_ID") or "run"
    record = ArtifactVersion(
        name=safe(name).strip("._+-")[:128] or "artifact",
        version=safe(run)[:128],
        files=(),
        type="other",
        job=env.get("CONVEYOR_JOB", ""),
        run_id=run,
        commit=env.get("CONVEYOR_COMMIT") or None,
        branch=env.get("CONVEYOR_BRANCH") or None,
        tag=env.get("CONVEYOR_TAG") or None,
        created=now_iso(now),
        expires=now_iso(now + days * 86400),
        metadata={"version_source": "actions/upload-artifact (the run's id)"},
    )
    stored, _new = store_files(open_store(None, root), files, record)
    return stored.ref


def _forget_earlier_runs(root: str, run_id: str) -> None:
    """The copies earlier runs uploaded for their own downloads go: only the run that
    made them reads them (runs of one workspace never overlap: the run lock), and what
    outlives a run is its version in the store, which retention governs."""
    base = os.path.join(root, ARTIFACTS_DIR)
    try:
        earlier = [e for e in os.listdir(base) if e != run_id]
    except OSError:
        return
    for entry in earlier:
        shutil.rmtree(os.path.join(base, entry), ignore_errors=True)


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
