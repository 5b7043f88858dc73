"""What a workspace's backup holds, as files to read: each (source, path) with the file
that holds its bytes now.

    workspace   the pipeline file and `.conveyor/` (run directories, the artifact store
                and its index, the build number), less what is rebuilt on demand
                (`.conveyor/cache/`), locks and temporaries; the SQLite history at its
                default place, copied through SQLite's online backup API
    history     a history kept elsewhere: a SQLite file (copied the same way), or
                PostgreSQL as `pg_dump`'s custom format (uncompressed, so it dedups)
    artifacts   an artifact store in a directory of its own (`artifacts: {dir: ...}`)
    cache       the local cache's action cache (`ac/`) and job index (`jobs/`); its
                blobs (`cas/`) only when asked

The history is copied while runs may write to it: SQLite's backup API reads a
consistent state under a read transaction, pg_dump a consistent snapshot.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from conveyor.backup.backend import BackupError
from conveyor.errors import EnvironmentProblem
from conveyor.fsutil import STATE_DIR

# `.conveyor/` entries a backup leaves out: rebuilt on demand, or meaningful only to a
# running process (locks) or to this machine's files (`depcaches`: which dependency
# caches are in place, by inode), or the SQLite history, which is copied through its API.
_SKIP_TOP = {
    "cache",
    "depcaches",
    "run.lock",
    "build-number.lock",
    "history.db",
    "history.db.migrate.lock",
}
_SKIP_NAMES = {"lock", "index.lock", "tmp"}
PG_DUMP = "history.pgdump"


@dataclass(frozen=True)
class Item:
    source: str
    path: str
    """Relative to the source's root, with `/`."""
    file: str
    """Where the bytes are now (a copy made for the backup, for the history)."""
    fresh: bool = False
    """A copy made now: never matched against the previous backup by its mtime."""
    stat: os.stat_result | None = None
    """As the walk found it (None: stat it when it is backed up)."""


@dataclass(frozen=True)
class Plan:
    workspace: str
    pipeline_file: str
    history_url: str
    artifacts_dir: str | None
    cache_dir: str | None
    cache_blobs: bool


def walk(root: str, source: str, prefix: str = "") -> Iterator[Item]:
    """Every regular file under `root` with its stat (one per file: the kind comes from
    the directory entry); temporaries, locks and `tmp/` left out. Unsorted: the manifest
    is sorted once at the end. A stack, not recursion: 40,000 files cost less."""
    stack = [(root, prefix)]
    while stack:
        folder, rel = stack.pop()
        try:
            found = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in found:
            name = entry.name
            if name in _SKIP_NAMES or (name.startswith(".") and name.endswith(".tmp")):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{rel}{name}/"))
            elif entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield Item(source, rel + name, entry.path, stat=st)


def items(
    plan: Plan, scratch: str, environ: Mapping[str, str]
) -> tuple[list[Item], dict[str, str]]:
    """The files of a backup, and what the snapshot says of its history."""
    out: list[Item] = []
    root = plan.workspace
    # The history is copied while the files are walked: SQLite's backup and pg_dump run
    # without the GIL, and the walk is mostly system calls.
    copied: list[Item] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        history_job = pool.submit(_history, plan.history_url, root, scratch, environ, copied)
        _walk_workspace(plan, out)
        history = history_job.result()
    out.extend(copied)
    state = os.path.join(root, STATE_DIR)
    if (
        plan.artifacts_dir
        and not _inside(plan.artifacts_dir, state)
        and os.path.isdir(plan.artifacts_dir)
    ):
        out.extend(walk(plan.artifacts_dir, "artifacts"))
        history["artifacts_dir"] = plan.artifacts_dir
    if plan.cache_dir and os.path.isdir(plan.cache_dir):
        for part in ("ac", "jobs", *(("cas",) if plan.cache_blobs else ())):
            sub = os.path.join(plan.cache_dir, part)
            if os.path.isdir(sub):
                out.extend(walk(sub, "cache", f"{part}/"))
    return out, history


def _walk_workspace(plan: Plan, out: list[Item]) -> None:
    root = plan.workspace
    out.append(Item("workspace", os.path.relpath(plan.pipeline_file, root), plan.pipeline_file))
    state = os.path.join(root, STATE_DIR)
    if os.path.isdir(state):
        for entry in sorted(os.listdir(state)):
            if entry in _SKIP_TOP or entry.startswith("history.db"):
                continue
            full = os.path.join(state, entry)
            if os.path.isdir(full):
                out.extend(walk(full, "workspace", f"{STATE_DIR}/{entry}/"))
            elif os.path.isfile(full) and not (entry.startswith(".") and entry.endswith(".tmp")):
                out.append(Item("workspace", f"{STATE_DIR}/{entry}", full))


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder + os.sep)


def _history(
    url: str, root: str, scratch: str, environ: Mapping[str, str], out: list[Item]
) -> dict[str, str]:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or not os.path.isfile(path):
            return {"kind": "sqlite", "state": "none yet"}
        copy = os.path.join(scratch, "history.db")
        sqlite_copy(path, copy)
        default = os.path.join(root, STATE_DIR, "history.db")
        if os.path.abspath(path) == os.path.abspath(default):
            out.append(Item("workspace", f"{STATE_DIR}/history.db", copy, fresh=True))
            return {"kind": "sqlite"}
        out.append(Item("history", "history.db", copy, fresh=True))
        return {"kind": "sqlite", "path": os.path.abspath(path)}
    if url.startswith("postgresql"):
        dump = os.path.join(scratch, PG_DUMP)
        pg_dump(url, dump, environ)
        out.append(Item("history", PG_DUMP, dump, fresh=True))
        return {"kind": "postgresql"}
    raise BackupError(f"history database {url.split(':', 1)[0]!r}: cannot be backed up")


def sqlite_copy(path: str, copy: str) -> None:
    """A consistent copy of a live SQLite database (its online backup API)."""
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def postgres_tool(name: str) -> str:
    """`pg_dump`, `pg_restore` or `psql`: the newest server's under /usr/lib/postgresql
    (pg_dump must be at least the server's version), else on PATH; EnvironmentProblem
    when there is none."""
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if candidates:
        return max(candidates, key=lambda p: _version(p.split("/")[4]))
    found = shutil.which(name)
    if found:
        return found
    raise EnvironmentProblem(
        f"{name} not found: the PostgreSQL history needs PostgreSQL's client tools",
        hint="install postgresql-client (the same major version as the server, or newer)",
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def libpq(url: str, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as a libpq one (the driver dropped), the password moved into the
    environment (PGPASSWORD) so no process listing shows it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    env = dict(environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_dump(url: str, dump: str, environ: Mapping[str, str]) -> None:
    target, env = libpq(url, environ)
    proc = subprocess.run(
        [postgres_tool("pg_dump"), "--format=custom", "--compress=0", "--no-owner",
         "--file", dump, "--dbname", target],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise EnvironmentProblem(f"pg_dump failed: {_last_line(proc.stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def pg_is_empty(url: str, environ: Mapping[str, str]) -> bool:
    """Whether the database has no tables of its own yet."""
    target, env = libpq(url, environ)
    proc = subprocess.run(
        [postgres_tool("psql"), "-X", "-At", "-d", target, "-c",
         "select count(*) from information_schema.tables where table_schema = 'public'"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise EnvironmentProblem(f"psql failed: {_last_line(proc.stderr)}")
    return proc.stdout.strip() == "0"


def pg_restore(url: str, dump: str, environ: Mapping[str, str], *, clean: bool) -> None:
    target, env = libpq(url, environ)
    args = [postgres_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", target]
    if clean:
        args += ["--clean", "--if-exists"]
    proc = subprocess.run([*args, dump], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"pg_restore failed: {_last_line(proc.stderr)}")
