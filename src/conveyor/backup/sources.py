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
import stat as _stat
import subprocess
from collections.abc import Mapping
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
SKIP_NAMES = frozenset({"lock", "index.lock", "tmp"})
PG_DUMP = "history.pgdump"


Found = tuple[str, str, str, os.stat_result]
"""A file to back up: (source, path relative to the source's root with `/`, where it
is now, its stat as the walk found it)."""


@dataclass(frozen=True)
class Plan:
    workspace: str
    pipeline_file: str
    history_url: str
    artifacts_dir: str | None
    cache_dir: str | None
    cache_blobs: bool


Folder = tuple[str, str, str]
"""A folder whose files are backed up: (source, where it is, its path relative to the
source's root, with `/` at the end or empty). Within it, every regular file is kept
but those named in SKIP_NAMES and hidden `.tmp` files; `scan.py` walks it."""


def roots(plan: Plan) -> tuple[list[Found], list[Folder]]:
    """What a backup holds but the history (see `history`): the files named on their
    own (stat'ed now), and the folders to walk."""
    root = plan.workspace
    singles: list[Found] = []
    folders: list[Folder] = []
    one = _one("workspace", os.path.relpath(plan.pipeline_file, root), plan.pipeline_file)
    if one is not None:
        singles.append(one)
    state = os.path.join(root, STATE_DIR)
    if os.path.isdir(state):
        for entry in sorted(os.listdir(state)):
            if entry in _SKIP_TOP or entry.startswith("history.db"):
                continue
            full = os.path.join(state, entry)
            if os.path.isdir(full):
                folders.append(("workspace", full, f"{STATE_DIR}/{entry}/"))
            elif not skipped(entry):
                one = _one("workspace", f"{STATE_DIR}/{entry}", full)
                if one is not None:
                    singles.append(one)
    if (
        plan.artifacts_dir
        and not _inside(plan.artifacts_dir, state)
        and os.path.isdir(plan.artifacts_dir)
    ):
        folders.append(("artifacts", plan.artifacts_dir, ""))
    if plan.cache_dir and os.path.isdir(plan.cache_dir):
        for part in ("ac", "jobs", *(("cas",) if plan.cache_blobs else ())):
            sub = os.path.join(plan.cache_dir, part)
            if os.path.isdir(sub):
                folders.append(("cache", sub, f"{part}/"))
    return singles, folders


def skipped(name: str) -> bool:
    """A name a backup leaves out wherever it is: a lock, a temporary, `tmp/`."""
    return name in SKIP_NAMES or (name[:1] == "." and name.endswith(".tmp"))


def _one(source: str, rel: str, path: str) -> Found | None:
    """A file named on its own (the pipeline file may be a link: its content is kept)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (source, rel, path, st) if _stat.S_ISREG(st.st_mode) else None


def history(
    plan: Plan, scratch: str, environ: Mapping[str, str]
) -> tuple[Found | None, dict[str, str]]:
    """The history copied into `scratch` (a copy made now: its mtime vouches for
    nothing), and what the snapshot says of it. SQLite's backup API reads a consistent
    state under a read transaction, pg_dump a consistent snapshot, while runs go on."""
    copied: list[Found] = []
    said = _history(plan.history_url, plan.workspace, scratch, environ, copied)
    if (
        plan.artifacts_dir
        and not _inside(plan.artifacts_dir, os.path.join(plan.workspace, STATE_DIR))
        and os.path.isdir(plan.artifacts_dir)
    ):
        said["artifacts_dir"] = plan.artifacts_dir
    return (copied[0] if copied else None), said


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder + os.sep)


def _history(
    url: str, root: str, scratch: str, environ: Mapping[str, str], out: list[Found]
) -> dict[str, str]:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or not os.path.isfile(path):
            return {"kind": "sqlite", "state": "none yet"}
        copy = os.path.join(scratch, "history.db")
        sqlite_copy(path, copy)
        default = os.path.join(root, STATE_DIR, "history.db")
        if os.path.abspath(path) == os.path.abspath(default):
            out.append(("workspace", f"{STATE_DIR}/history.db", copy, os.stat(copy)))
            return {"kind": "sqlite"}
        out.append(("history", "history.db", copy, os.stat(copy)))
        return {"kind": "sqlite", "path": os.path.abspath(path)}
    if url.startswith("postgresql"):
        dump = os.path.join(scratch, PG_DUMP)
        pg_dump(url, dump, environ)
        out.append(("history", PG_DUMP, dump, os.stat(dump)))
        return {"kind": "postgresql"}
    raise BackupError(f"history database {url.split(':', 1)[0]!r}: cannot be backed up")


def sqlite_copy(path: str, copy: str) -> None:
    """A consistent copy of a live SQLite database (its online backup API) into a new
    file that is read once and thrown away: written without a journal or fsync (a third
    of the time), the database read through a memory map."""
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        src.execute("PRAGMA mmap_size = 1073741824")
        dst.execute("PRAGMA journal_mode = OFF")
        dst.execute("PRAGMA synchronous = OFF")
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def sqlite_page_size(path: str) -> int:
    """A SQLite database's page size, from its header; 0 when it is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
    except OSError:
        return 0
    if len(head) < 18 or not head.startswith(b"SQLite format 3\x00"):
        return 0
    size = int.from_bytes(head[16:18], "big")
    return 65536 if size == 1 else size


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
