"""Which files a backup must read: the folders walked, each file compared with the line
the previous backup of this workspace wrote for it.

A file whose size, mtime and mode are those the line records, and whose mtime is older
than the second before that backup began (git's racy-mtime rule: a file changed in
that second may have changed again within the same mtime), keeps its line and so its
chunks, as restic reuses its parent snapshot's. The comparison is of text: the line up
to its mode is the key, the rest is compared with `startswith`, so a second backup of
40,000 files parses none of the previous manifest's JSON and spends its time in the
system calls of the walk: a stat per file and per folder, and a listing of each folder
whose mtime, ctime or inode changed (the others' names are in their lines).
"""

from __future__ import annotations

import json
import json.encoder
import os
import stat
from collections.abc import Callable, Mapping

from conveyor.backup.sources import SKIP_NAMES, Folder, Found

KEYS = ("source", "path", "mode", "size", "mtime_ns", "chunks")
"""A file's manifest line's keys, in the order they are written."""
FOLDER_KEYS = ("source", "path", "mode", "files", "dirs", "mtime_ns", "ctime_ns", "ino")
"""A folder's (its path ends with `/`, or is empty at the root of its source). Its line
ends with a number, a file's with its list of chunks."""
encode: Callable[[object], str] = json.JSONEncoder(separators=(",", ":")).encode
"""A manifest line from its entry (a dict in KEYS' order)."""
_STRING: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""A string as `encode` writes it (ASCII, escaped): part of a manifest line's key."""


def line_of(source: str, path: str, st: os.stat_result, size: int, chunks: list[str]) -> str:
    """The manifest line of a file read now (its size as read, its mtime as walked)."""
    entry = (source, path, stat.S_IMODE(st.st_mode), size, st.st_mtime_ns, chunks)
    return encode(dict(zip(KEYS, entry, strict=True)))


class Parent:
    """The previous backup's manifest lines by their key (`{"source":...,"path":...`),
    and each folder's files and subfolders as it listed them."""

    def __init__(
        self,
        lines: list[str],
        start_ns: int,
        index: Mapping[str, object],
        *,
        indexed: bool = False,
    ) -> None:
        # A `,"mode":` inside the path would be escaped (`,\"mode\":`): the first one
        # found ends the key. Comprehensions, not a loop: 70,000 lines.
        keys = [line[: line.find(',"mode":')] for line in lines]
        self.by_key = dict(zip(keys, lines, strict=True))
        self.start_ns = start_ns
        """Files and folders modified from this time on are read or listed again."""
        self._index = index
        self.all_indexed = indexed or _all_indexed(lines, index)
        """Whether every chunk the lines name is indexed (the usual case: else each
        line is checked alone before it is reused). `indexed`: the caller knows so."""

    def line(self, source: str, path: str, st: os.stat_result) -> str | None:
        """The previous line for this file when its stat vouches for it; None when the
        file is to be read."""
        if st.st_mtime_ns >= self.start_ns:
            return None
        key = f'{{"source":"{source}","path":{_STRING(path)}'
        line = self.by_key.get(key)
        if line is None:
            return None
        if self.all_indexed and line.startswith(_rest(key, st)):
            return line
        return self.checked(source, path, st, line)

    def checked(self, source: str, path: str, st: os.stat_result, line: str) -> str | None:
        """The line parsed and checked alone: only the mode changed (a new line with the
        same chunks), or a chunk of it is not indexed (a damaged repository: read the
        file again), or a line written otherwise."""
        try:
            before = json.loads(line)
            chunks = [str(c) for c in before["chunks"]]
            same = before["size"] == st.st_size and before["mtime_ns"] == st.st_mtime_ns
        except (ValueError, KeyError, TypeError):
            return None
        if not same or not all(map(self._index.__contains__, chunks)):
            return None
        return line_of(source, path, st, st.st_size, chunks)

    def folder(self, key: str, st: os.stat_result) -> tuple[str, list[str], list[str]] | None:
        """The previous line of this folder, its files and its subfolders, when its stat
        says no entry was added, removed or renamed since it was listed (a folder's
        mtime changes with each; its ctime and inode guard against a folder put back
        or its mtime set by hand); None when it is to be listed again."""
        if st.st_mtime_ns >= self.start_ns:
            return None
        line = self.by_key.get(key)
        if line is None:
            return None
        head = f'{key},"mode":{st.st_mode & 0o7777},"files":['
        tail = f'],"mtime_ns":{st.st_mtime_ns},"ctime_ns":{st.st_ctime_ns},"ino":{st.st_ino}}}'
        if not (line.startswith(head) and line.endswith(tail)):
            return None
        # The names are cut out of the line: parsed only when one is escaped.
        files, sep, dirs = line[len(head) : -len(tail)].partition('],"dirs":[')
        names, folders = _names(files), _names(dirs)
        if not sep or names is None or folders is None:
            return None
        return line, names, folders


def _names(listed: str) -> list[str] | None:
    """A JSON list's strings, its brackets cut off (None: not such a list)."""
    if not listed:
        return []
    if "\\" not in listed:
        return listed[1:-1].split('","')
    try:
        names = json.loads(f"[{listed}]")
    except ValueError:
        return None
    return names if all(isinstance(n, str) for n in names) else None


def folder_line(
    source: str, path: str, st: os.stat_result, files: list[str], folders: list[str]
) -> str:
    """A folder's manifest line: its mode and mtime (restored), the names it held and
    its ctime and inode (what the next backup compares to skip listing it again)."""
    entry = (
        source,
        path,
        stat.S_IMODE(st.st_mode),
        sorted(files),
        sorted(folders),
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
    )
    return encode(dict(zip(FOLDER_KEYS, entry, strict=True)))


def _rest(key: str, st: os.stat_result) -> str:
    return (
        f'{key},"mode":{st.st_mode & 0o7777},"size":{st.st_size},'
        f'"mtime_ns":{st.st_mtime_ns},"chunks":['
    )


def _all_indexed(lines: list[str], index: Mapping[str, object]) -> bool:
    """Whether every chunk the files' lines name is in the index: the chunk lists cut
    out of the lines and parsed as one."""
    # A file's line ends with its chunks (`"chunks":[...]}`), a folder's with a number.
    parts = [line[line.rfind('"chunks":[') + 10 : -2] for line in lines if line[-2] == "]"]
    try:
        ids = json.loads(f"[{','.join(filter(None, parts))}]")
    except ValueError:
        return False
    return all(map(index.__contains__, ids))


def scan(
    singles: list[Found],
    folders: list[Folder],
    parent: Parent,
    read: Callable[[Found], None],
) -> tuple[list[str], int]:
    """The lines of the files the previous backup vouches for, and their bytes, with a
    line per folder; every other file is handed to `read` as it is found (so reading
    goes on during the walk).

    A folder the previous backup vouches for is not listed: its files are stat'ed by
    name. A folder is stat'ed before it is listed, so an entry added in between makes
    it listed again next time. One loop with a stack, no generator: at 60,000 entries
    each layer of calls costs hundredths of a second."""
    lines: list[str] = []
    total = 0
    for found in singles:
        same = parent.line(found[0], found[1], found[3])
        if same is None:
            read(found)
        else:
            lines.append(same)
            total += found[3].st_size
    keep, reuse = lines.append, parent.line
    lstat, is_dir, is_file = os.lstat, stat.S_ISDIR, stat.S_ISREG
    for source, top, prefix in folders:
        head = f'{{"source":"{source}","path":'
        try:
            # A folder named on its own may be a link (artifacts kept on another disk):
            # followed; a link inside one is not.
            top_stat = os.stat(top)
        except FileNotFoundError:
            continue
        stack: list[tuple[str, str, os.stat_result | None]] = [(top, prefix, top_stat)]
        while stack:
            folder, rel, dst = stack.pop()
            try:
                dst = dst or lstat(folder)
            except FileNotFoundError:
                continue  # gone since its folder was listed
            if not is_dir(dst.st_mode):
                continue
            known = parent.folder(head + _STRING(rel), dst)
            files: list[tuple[str, os.stat_result]] = []
            if known is not None:
                line, names, subfolders = known
                try:
                    for name in names:
                        st = lstat(f"{folder}/{name}")
                        if not is_file(st.st_mode):
                            raise FileNotFoundError(name)
                        files.append((name, st))
                except FileNotFoundError:
                    known = None  # changed as it was walked: listed below
                    files = []
            if known is None:
                try:
                    entries = list(os.scandir(folder))
                except (FileNotFoundError, NotADirectoryError):
                    continue  # gone or replaced since it was stat'ed
                subfolders = []
                for entry in entries:
                    name = entry.name
                    if name in SKIP_NAMES or (name[0] == "." and name.endswith(".tmp")):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(name)
                    elif entry.is_file(follow_symlinks=False):
                        try:
                            files.append((name, entry.stat(follow_symlinks=False)))
                        except FileNotFoundError:
                            continue
                    # links, sockets, devices: not Conveyor's to keep
                line = folder_line(source, rel, dst, [n for n, _ in files], subfolders)
            keep(line)
            for name in subfolders:
                stack.append((f"{folder}/{name}", f"{rel}{name}/", None))
            for name, st in files:
                path = rel + name
                same = reuse(source, path, st)
                if same is None:
                    read((source, path, f"{folder}/{name}", st))
                else:
                    keep(same)
                    total += st.st_size
    return lines, total
