"""Wheels of distributions installed beside the tests (pytest, ruff...), packed again
from their installed files, so a pipeline's `pip install` runs offline from a local
directory (`PIP_NO_INDEX`, `PIP_FIND_LINKS`) instead of reaching a package index."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def repack(name: str, into: Path) -> Path:
    """The installed distribution `name` as a wheel in `into`; a file it installed
    outside site-packages (ruff's binary) goes back under `.data/scripts`, and console
    scripts are left to the installer, which writes them from entry_points.txt."""
    dist = importlib.metadata.distribution(name)
    files = dist.files or []
    info = next(f for f in files if f.name == "WHEEL" and f.parent.name.endswith(".dist-info"))
    tag = next(
        line.split(":", 1)[1].strip()
        for line in info.read_text().splitlines()
        if line.startswith("Tag:")
    )
    stem = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}"
    scripts = {ep.name for ep in dist.entry_points if ep.group == "console_scripts"}
    wheel = into / f"{stem}-{tag}.whl"
    record: list[str] = []
    info_dir = info.parent.as_posix()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            posix = f.as_posix()
            if (
                posix.endswith(".pyc")
                or "__pycache__" in posix
                or f.name in ("RECORD", "INSTALLER")
            ):
                continue
            if posix.startswith("../"):
                if f.parent.name != "bin" or f.name in scripts:
                    continue
                arcname = f"{stem}.data/scripts/{f.name}"
            else:
                arcname = posix
            source = Path(str(f.locate()))
            data = source.read_bytes()
            entry = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = (source.stat().st_mode & 0xFFFF) << 16
            zf.writestr(entry, data)
            record.append(f"{arcname},{_record_hash(data)},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        zf.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return wheel


def wheelhouse(into: Path, names: list[str]) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name in names:
        repack(name, into)
    return into
