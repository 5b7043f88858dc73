"""Archives are written reproducibly and read safely: crafted tar and zip files that try
to write outside their directory are refused whole, naming the entry, and write
nothing."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.archive import Entry, UnsafeArchive, safe_extract, write_archive
from conveyor.artifacts.store import ArtifactError


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def _zip(path: Path, *members: tuple[str, bytes, int | None]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


EVIL_TARS: dict[str, Callable[[Path], Path]] = {
    "absolute": lambda p: _tar(p, (_file("/tmp/evil"), b"x")),
    "dotdot": lambda p: _tar(p, (_file("../evil"), b"x")),
    "dotdot inside": lambda p: _tar(p, (_file("a/b/../../../evil"), b"x")),
    "symlink out": lambda p: _tar(p, (_link("l", "../../etc/passwd"), None)),
    "absolute symlink": lambda p: _tar(p, (_link("l", "/etc/passwd"), None)),
    "write through symlink": lambda p: _tar(p, (_link("d", "sub"), None), (_file("d/evil"), b"x")),
    "symlink then file below it": lambda p: _tar(
        p, (_link("escape", "."), None), (_file("escape/x"), b"x")
    ),
    "link through a link": lambda p: _tar(
        p,
        (_link("a/b/l", "../../c"), None),
        (_link("a/b/m", "l/../.."), None),
    ),
    "hard link out": lambda p: _tar(p, (_link("h", "/etc/passwd", tarfile.LNKTYPE), None)),
    "hard link dotdot": lambda p: _tar(p, (_link("h", "../x", tarfile.LNKTYPE), None)),
    "char device": lambda p: _tar(p, (_special("dev", tarfile.CHRTYPE), None)),
    "block device": lambda p: _tar(p, (_special("blk", tarfile.BLKTYPE), None)),
    "fifo": lambda p: _tar(p, (_special("fifo", tarfile.FIFOTYPE), None)),
    "gzipped dotdot": lambda p: _tar(p, (_file("ok"), b"1"), (_file("../evil"), b"x"), mode="w:gz"),
}

EVIL_ZIPS: dict[str, Callable[[Path], Path]] = {
    "absolute": lambda p: _zip(p, ("/tmp/evil", b"x", None)),
    "dotdot": lambda p: _zip(p, ("a/../../evil", b"x", None)),
    "windows": lambda p: _zip(p, ("..\\..\\evil", b"x", None)),
    "drive": lambda p: _zip(p, ("C:/evil", b"x", None)),
    "symlink out": lambda p: _zip(p, ("l", b"../../etc/passwd", stat.S_IFLNK | 0o777)),
    "symlink then through": lambda p: _zip(
        p, ("l", b"sub", stat.S_IFLNK | 0o777), ("l/x", b"x", None)
    ),
    "fifo": lambda p: _zip(p, ("f", b"", stat.S_IFIFO | 0o644)),
}


@pytest.mark.parametrize("case", sorted(EVIL_TARS))
def test_a_crafted_tar_is_refused_and_writes_nothing(tmp_path: Path, case: str) -> None:
    archive = EVIL_TARS[case](tmp_path / ("evil.tar.gz" if "gzip" in case else "evil.tar"))
    dest = tmp_path / "out" / "deep"
    with pytest.raises(UnsafeArchive) as caught:
        safe_extract(str(archive), str(dest))
    assert "entry" in caught.value.message or "link" in caught.value.message
    assert not dest.exists() or list(dest.rglob("*")) == []
    assert not (tmp_path / "out" / "evil").exists()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("case", sorted(EVIL_ZIPS))
def test_a_crafted_zip_is_refused_and_writes_nothing(tmp_path: Path, case: str) -> None:
    archive = EVIL_ZIPS[case](tmp_path / "evil.zip")
    dest = tmp_path / "out" / "deep"
    with pytest.raises(UnsafeArchive):
        safe_extract(str(archive), str(dest))
    assert not dest.exists() or list(dest.rglob("*")) == []


def test_a_plain_archive_is_extracted_with_inside_links(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar",
        (_special("bin", tarfile.DIRTYPE), None),
        (_file("bin/tool"), b"#!/bin/sh\n"),
        (_link("bin/tool-link", "tool"), None),
        (_link("bin/hard", "bin/tool", tarfile.LNKTYPE), None),
        (_file("./docs/readme.md"), b"hi"),
    )
    dest = tmp_path / "out"
    written = safe_extract(str(archive), str(dest))
    assert written == ["bin/tool", "bin/tool-link", "bin/hard", "docs/readme.md"]
    assert (dest / "bin" / "tool-link").is_symlink()
    assert (dest / "bin" / "hard").read_bytes() == b"#!/bin/sh\n"
    with pytest.raises(ArtifactError, match="exist"):
        safe_extract(str(archive), str(dest))
    assert safe_extract(str(archive), str(dest), overwrite=True)


def test_an_existing_symlink_in_the_directory_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    archive = _zip(tmp_path / "a.zip", ("sub/evil", b"x", None))
    with pytest.raises(UnsafeArchive, match="through a symlink"):
        safe_extract(str(archive), str(dest))
    assert list(outside.iterdir()) == []


def test_a_size_limit_refuses_a_bomb(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", ("a", b"0" * 100_000, None))
    with pytest.raises(UnsafeArchive, match="more than 1000 bytes"):
        safe_extract(str(archive), str(tmp_path / "out"), max_bytes=1000)


def test_not_an_archive_is_said(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive at all" * 100)
    with pytest.raises(ArtifactError, match="not a readable archive"):
        safe_extract(str(junk), str(tmp_path / "out"))


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"])
def test_written_archives_are_reproducible_and_read_back(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "a").write_bytes(b"alpha")
    (tmp_path / "b").write_bytes(b"beta")
    entries = [
        Entry("dist/b.txt", str(tmp_path / "b"), executable=True),
        Entry("dist/a.txt", str(tmp_path / "a")),
    ]
    first, second = tmp_path / f"one{suffix}", tmp_path / f"two{suffix}"
    write_archive(str(first), entries, mtime=1_700_000_000)
    write_archive(str(second), list(reversed(entries)), mtime=1_700_000_000)
    assert first.read_bytes() == second.read_bytes()
    out = tmp_path / "out"
    assert safe_extract(str(first), str(out)) == ["dist/a.txt", "dist/b.txt"]
    assert (out / "dist" / "a.txt").read_bytes() == b"alpha"
    assert os.stat(out / "dist" / "b.txt").st_mode & 0o111


def test_an_archive_name_says_its_format(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="name the archive"):
        write_archive(str(tmp_path / "out.rar"), [])
