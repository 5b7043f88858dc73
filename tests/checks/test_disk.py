"""Free disk before the build, measured on the real filesystems."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conveyor.checks.disk import check_disk
from conveyor.units import format_size
from tests.checks.conftest import only


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1500, "1.5 kB"),
        (999_960, "1.0 MB"),
        (5 * 10**9, "5.0 GB"),
        (10**18, "1.0 EB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


_UNIT = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15, "EB": 10**18}


def shown_bytes(found: str) -> float:
    match = re.match(r"(\d+(?:\.\d)?) (B|kB|MB|GB|TB|PB|EB) free on /", found)
    assert match is not None, found
    return float(match.group(1)) * _UNIT[match.group(2)]


def test_disk_enough_and_not_enough(tmp_path: Path) -> None:
    enough = only(check_disk({"workspace": str(tmp_path)}, 1))
    assert enough.ok
    assert enough.check == "disk workspace"
    assert enough.expected == ">= 1 B free"

    short = only(check_disk({"workspace": str(tmp_path)}, 10**18))
    assert not short.ok
    assert short.expected == ">= 1.0 EB free"
    # Other processes may write meanwhile: the size shown is the real free space, give or
    # take the rounding to three digits and a little churn.
    free = shutil.disk_usage(tmp_path).free
    assert shown_bytes(short.found) == pytest.approx(free, rel=0.02)
    assert "point workspace at a larger disk" in short.hint


def test_disk_same_filesystem_checked_once(tmp_path: Path) -> None:
    not_yet = tmp_path / "cache" / "not" / "created"
    result = only(check_disk({"workspace": str(tmp_path), "cache": str(not_yet)}, 1))
    assert result.check == "disk workspace, cache"
    assert result.ok
    assert not not_yet.exists()
