"""Which files a backup must read: the folders walked, each file compared with the line
the previous backup of this workspace wrote for it.

A file whose size, mtime and mode are those the line records, and whose mtime is older
than the second before that backup began (git's racy-mtime rule: a file changed in
that second may have changed again within the same mtime), keeps its line and so its
chunks, as restic reuses its parent snapshot's. The comparison is of text: the line up
to its mode is the key, the rest is compared with `startswith`, so a second backup of
40,000 files parses none of the previous manifest's JSON and spends its time in the
system calls of the walk (a directory listing per folder, a stat per file).
"""

from __future__ import annotations

import json
import json.encoder
import os
import stat
from collections.abc import Callable, Mapping

from conveyor.backup.sources import SKIP_NAMES, Folder, Found

KEYS = ("source", "path", "mode", "size", "mtime_ns", "chunks")
"""A manifest line's keys, in the order they are written."""
encode: Callable[[object], str] = json.JSONEncoder(separators=(",", ":")).encode
"""A manifest line from its entry (a dict in KEYS' order)."""
_STRING: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""A string as `encode` writes it (ASCII, escaped): part of a manifest line's key."""


def line_of(source: str, path: str, st: os.stat_result, size: int, chunks: list[str]) -> str:
    """The manifest line of a file read now (its size as read, its mtime as walked)."""
    entry = (source, path, stat.S_IMODE(st.st_mode), size, st.st_mtime_ns, chunks)
    return encode(dict(zip(KEYS, entry, strict=True)))


class Parent:
    """The previous backup's manifest lines by their key (`{"source":...,"path":...`)."""

    def __init__(self, lines: list[str], start_ns: int, index: Mapping[str, object]) -> None:
        by_key: dict[str, str] = {}
        for line in lines:
            # A `,"mode":` inside the path would be escaped (`,\"mode\":`): the first one
            # found ends the key.
            cut = line.find(',"mode":')
            if cut > 0:
                by_key[line[:cut]] = line
        self.by_key = by_key
        self.start_ns = start_ns
        """Files modified from this time on are read whatever their line says."""
        self._index = index
        self.all_indexed = _all_indexed(lines, index)
        """Whether every chunk the lines name is indexed (the usual case: else each
        line is checked alone before it is reused)."""

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


def _rest(key: str, st: os.stat_result) -> str:
    return (
        f'{key},"mode":{st.st_mode & 0o7777},"size":{st.st_size},'
        f'"mtime_ns":{st.st_mtime_ns},"chunks":['
    )


def _all_indexed(lines: list[str], index: Mapping[str, object]) -> bool:
    """Whether every chunk the lines name is in the index: the chunk lists cut out of
    the lines and parsed as one."""
    parts = []
    for line in lines:
        cut = line.rfind('"chunks":[')
        if cut < 0 or not line.endswith("]}"):
            return False
        if cut + 10 < len(line) - 2:
            parts.append(line[cut + 10 : -2])
    try:
        ids = json.loads(f"[{','.join(parts)}]")
    except ValueError:
        return False
    return all(map(index.__contains__, ids))


def scan(
    singles: list[Found],
    folders: list[Folder],
    parent: Parent,
    read: Callable[[Found], None],
) -> tuple[list[str], int]:
    """The lines of the files the previous backup vouches for, and their bytes; every
    other file is handed to `read` as it is found (so reading goes on during the walk).

    One loop, no call per file but the system calls: at 40,000 files a generator or a
    method per file costs a tenth of a second. Folders are walked with a stack, each
    listed once; the kind of an entry comes from its directory entry."""
    lines: list[str] = []
    total = 0
    for found in singles:
        line = parent.line(found[0], found[1], found[3])
        if line is None:
            read(found)
        else:
            lines.append(line)
            total += found[3].st_size
    by_key, start_ns, fast = parent.by_key, parent.start_ns, parent.all_indexed
    keep = lines.append
    for source, top, prefix in folders:
        head = f'{{"source":"{source}","path":'
        stack = [(top, prefix)]
        while stack:
            folder, rel = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone or replaced since it was listed
            for entry in entries:
                name = entry.name
                if name in SKIP_NAMES or (name[0] == "." and name.endswith(".tmp")):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{rel}{name}/"))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # links, sockets, devices: not Conveyor's to keep
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                path = rel + name
                if st.st_mtime_ns < start_ns:
                    key = head + _STRING(path)
                    line = by_key.get(key)
                    if line is not None:
                        if fast and line.startswith(
                            f'{key},"mode":{st.st_mode & 0o7777},"size":{st.st_size},'
                            f'"mtime_ns":{st.st_mtime_ns},"chunks":['
                        ):
                            keep(line)
                            total += st.st_size
                            continue
                        line = parent.checked(source, path, st, line)
                        if line is not None:
                            keep(line)
                            total += st.st_size
                            continue
                read((source, path, entry.path, st))
    return lines, total
