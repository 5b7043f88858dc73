"""Archives (zip, tar, tar.gz/tgz, tar.bz2, tar.xz) written from a version's blobs and
read back safely.

Writing: entries in path order, with fixed times, owners and modes (the same version
gives the same bytes), regular files only; the archive replaces its path in one rename.

Reading (`safe_extract`): nothing is written outside the target directory. Every entry
is judged before anything is written, and the whole archive is refused, naming the
entry and why, when one has an absolute path (or a drive letter, or a backslash), a
`..` part, is a symlink or hard link pointing outside the directory (or at another
link), is a device, FIFO or socket, or when entries add up past `max_bytes`. While
writing, a file is never written through a symlink (one already there, or one the
archive made), and an existing file is not overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from conveyor.artifacts.store import ArtifactError
from conveyor.fsutil import atomic_file

FORMATS = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class UnsafeArchive(ArtifactError):
    """An archive that would write outside its directory (or something no artifact
    holds): refused whole."""


def archive_format(path: str) -> str:
    """The format a file name asks for, one of FORMATS (ArtifactError: none)."""
    lower = path.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lower.endswith(suffix):
            return suffix
    raise ArtifactError(
        f"{path!r}: name the archive with one of {', '.join(FORMATS)}",
    )


@dataclass(frozen=True)
class Entry:
    """A file to put in an archive: its path there, where its bytes are, its mode bits."""

    path: str
    source: str
    executable: bool = False


def write_archive(out: str, entries: Sequence[Entry], *, mtime: float = 0.0) -> None:
    """The entries as an archive at `out` (its format from its name), reproducibly."""
    fmt = archive_format(out)
    ordered = sorted(entries, key=lambda e: e.path)
    with atomic_file(out, makedirs=bool(os.path.dirname(out))) as fh:
        if fmt == ".zip":
            _write_zip(fh, ordered, mtime)
        else:
            _write_tar(fh, ordered, fmt, mtime)


def _write_zip(fh: IO[bytes], entries: Sequence[Entry], mtime: float) -> None:
    import time

    stamp = time.gmtime(max(mtime, 315532800))[:6]  # zip cannot say before 1980
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.path, date_time=stamp)
            info.external_attr = ((0o100755 if entry.executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(entry.source, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                _copy(src, dst)


def _write_tar(fh: IO[bytes], entries: Sequence[Entry], fmt: str, mtime: float) -> None:
    with contextlib.ExitStack() as stack:
        stream: Any = fh
        if fmt in (".tar.gz", ".tgz"):
            import gzip

            stream = stack.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=int(mtime))
            )
        elif fmt == ".tar.bz2":
            import bz2

            stream = stack.enter_context(bz2.BZ2File(fh, "wb"))
        elif fmt == ".tar.xz":
            import lzma

            stream = stack.enter_context(lzma.LZMAFile(fh, "wb"))
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for entry in entries:
                info = tarfile.TarInfo(entry.path)
                info.size = os.path.getsize(entry.source)
                info.mtime = int(mtime)
                info.mode = 0o755 if entry.executable else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(entry.source, "rb") as src:
                    tf.addfile(info, src)


def _copy(src: IO[bytes], dst: IO[bytes]) -> None:
    while chunk := src.read(1 << 20):
        dst.write(chunk)


# -- reading ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Item:
    path: str
    kind: str
    """'file', 'dir', 'symlink' or 'hardlink'."""
    size: int = 0
    mode: int = 0o644
    target: str | None = None
    """A link's target (a symlink's as written; a hard link's member path)."""


def member_problem(name: str) -> str | None:
    """Why an entry's name is unsafe (None: it is not)."""
    if not name or "\0" in name:
        return "an empty name"
    if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":"):
        return "an absolute path"
    if "\\" in name:
        return "a backslash in its path (a Windows path)"
    parts = [p for p in name.rstrip("/").split("/") if p not in ("", ".")]
    if not parts:
        return "no path"
    if ".." in parts:
        return "a '..' in its path"
    return None


def _normal(name: str) -> str:
    return "/".join(p for p in name.rstrip("/").split("/") if p not in ("", "."))


def _link_inside(member: str, target: str, links: set[str]) -> bool:
    """Whether a symlink at `member` (archive path) pointing at `target` stays inside,
    resolved part by part: a target through another link of the archive is refused (its
    `..` would be taken from wherever that link leads)."""
    if (
        not target
        or target.startswith("/")
        or "\\" in target
        or (len(target) >= 2 and target[1] == ":")
    ):
        return False
    parts = [*member.split("/")[:-1], *target.split("/")]
    stack: list[str] = []
    for i, part in enumerate(parts):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return False
            stack.pop()
            continue
        stack.append(part)
        if "/".join(stack) in links and i < len(parts) - 1:
            return False
    return bool(stack)


def _judge(items: Sequence[_Item], max_bytes: int | None) -> None:
    total = 0
    names = {i.path for i in items}
    links = {i.path for i in items if i.kind in ("symlink", "hardlink")}
    for item in items:
        if item.kind == "symlink":
            if item.target is None or not _link_inside(item.path, item.target, links):
                raise UnsafeArchive(
                    f"entry {item.path!r} is a symlink to {item.target!r}, outside the directory"
                )
        elif item.kind == "hardlink":
            target = item.target or ""
            if member_problem(target) is not None or _normal(target) not in names:
                raise UnsafeArchive(
                    f"entry {item.path!r} is a hard link to {target!r}, which is not a file "
                    "of the archive"
                )
            if _normal(target) in links:
                raise UnsafeArchive(f"entry {item.path!r} is a hard link to another link")
        total += item.size
        if max_bytes is not None and total > max_bytes:
            raise UnsafeArchive(f"the archive unpacks to more than {max_bytes} bytes")
    # A path below a link would be written through it.
    for item in items:
        parts = item.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise UnsafeArchive(
                    f"entry {item.path!r} lies below the link {'/'.join(parts[:i])!r}"
                )


def _tar_items(tf: tarfile.TarFile) -> Iterator[tuple[_Item, tarfile.TarInfo]]:
    for info in tf.getmembers():
        problem = member_problem(info.name)
        if problem is not None:
            raise UnsafeArchive(f"entry {info.name!r} has {problem}")
        path = _normal(info.name)
        if info.isdir():
            yield _Item(path, "dir"), info
        elif info.isreg():
            yield _Item(path, "file", info.size, info.mode), info
        elif info.issym():
            yield _Item(path, "symlink", target=info.linkname), info
        elif info.islnk():
            yield _Item(path, "hardlink", target=info.linkname), info
        else:
            what = (
                "a device"
                if info.ischr() or info.isblk()
                else "a FIFO"
                if info.isfifo()
                else "not a file"
            )
            raise UnsafeArchive(f"entry {info.name!r} is {what}")


def _zip_items(zf: zipfile.ZipFile) -> Iterator[tuple[_Item, zipfile.ZipInfo]]:
    for info in zf.infolist():
        problem = member_problem(info.filename)
        if problem is not None:
            raise UnsafeArchive(f"entry {info.filename!r} has {problem}")
        path = _normal(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            yield _Item(path, "dir"), info
        elif stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            yield _Item(path, "symlink", target=target), info
        elif mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
            raise UnsafeArchive(f"entry {info.filename!r} is not a file")
        else:
            yield _Item(path, "file", info.file_size, mode & 0o777 or 0o644), info


def safe_extract(
    archive: str, dest: str, *, overwrite: bool = False, max_bytes: int | None = None
) -> list[str]:
    """The archive's files written under `dest` (created), nothing outside it; the
    paths written, relative to `dest`. UnsafeArchive when an entry is unsafe (nothing is
    written then), ArtifactError when it is not an archive or a file exists (and not
    `overwrite`)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zitems = list(_zip_items(zf))
                _judge([i for i, _ in zitems], max_bytes)
                zinfos = {id(i): z for i, z in zitems}
                return _extract(
                    dest, [i for i, _ in zitems], lambda item: zf.open(zinfos[id(item)]), overwrite
                )
        with tarfile.open(archive, "r:*") as tf:
            titems = list(_tar_items(tf))
            _judge([i for i, _ in titems], max_bytes)
            tinfos = {id(i): t for i, t in titems}

            def open_member(item: _Item) -> IO[bytes]:
                got = tf.extractfile(tinfos[id(item)])
                if got is None:
                    raise UnsafeArchive(f"entry {item.path!r} has no content")
                return got

            return _extract(dest, [i for i, _ in titems], open_member, overwrite)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{archive}: not a readable archive ({exc})") from None
    except OSError as exc:
        raise ArtifactError(f"{archive}: {exc}") from None


def _inside(top: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == top or real.startswith(top + os.sep)


def _extract(
    dest: str,
    items: Sequence[_Item],
    open_member: Callable[[_Item], IO[bytes]],
    overwrite: bool,
) -> list[str]:
    os.makedirs(dest, exist_ok=True)
    top = os.path.realpath(dest)
    if not overwrite:
        there = [
            i.path for i in items if i.kind != "dir" and os.path.lexists(os.path.join(top, i.path))
        ]
        if there:
            raise ArtifactError(
                f"{len(there)} file(s) exist in {dest} ({', '.join(there[:3])}): not overwritten",
                hint="extract into an empty directory, or allow overwriting",
            )
    written: list[str] = []
    for item in items:
        target = os.path.join(top, *item.path.split("/"))
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        if not _inside(top, parent):
            raise UnsafeArchive(f"entry {item.path!r} would be written through a symlink")
        if item.kind == "dir":
            if os.path.islink(target) or not _inside(top, target):
                raise UnsafeArchive(f"entry {item.path!r} would be written through a symlink")
            os.makedirs(target, exist_ok=True)
            continue
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                raise ArtifactError(f"{item.path}: a directory is in the way")
            os.unlink(target)
        if item.kind == "symlink":
            assert item.target is not None
            os.symlink(item.target, target)
        elif item.kind == "hardlink":
            assert item.target is not None
            source = os.path.join(top, *_normal(item.target).split("/"))
            if not _inside(top, source) or os.path.islink(source):
                raise UnsafeArchive(f"entry {item.path!r} links outside the directory")
            os.link(source, target)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(target, flags, 0o755 if item.mode & 0o111 else 0o644)
            with os.fdopen(fd, "wb") as out, contextlib.closing(open_member(item)) as src:
                _copy(src, out)
        written.append(item.path)
    return written
