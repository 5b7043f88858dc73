"""Free disk space where the build writes (workspace, cache, artifacts), checked before
it starts: a build that dies of ENOSPC halfway leaves half-written outputs and a
confusing log, where this says up front how much is free and how much is needed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from conveyor.model import CheckResult
from conveyor.units import format_size


def check_disk(paths: Mapping[str, str], minimum: int) -> list[CheckResult]:
    """One CheckResult per filesystem holding the labelled directories (a label's directory
    need not exist yet: its nearest existing parent is measured)."""
    # Labels whose directories share a filesystem share its free space: check it once.
    groups: dict[int, tuple[list[str], str]] = {}
    for label, path in paths.items():
        existing = _existing_parent(path)
        dev = os.stat(existing).st_dev
        if dev in groups:
            groups[dev][0].append(label)
        else:
            groups[dev] = ([label], existing)

    need = format_size(minimum)
    results: list[CheckResult] = []
    for labels, existing in groups.values():
        free = shutil.disk_usage(existing).free
        mount = _mount_point(existing)
        ok = free >= minimum
        hint = ""
        if not ok:
            hint = (
                f"free at least {format_size(minimum - free)} on {mount} (old build outputs, "
                f"caches, container images), or point {' and '.join(labels)} at a larger disk"
            )
        results.append(
            CheckResult(
                check=f"disk {', '.join(labels)}",
                ok=ok,
                expected=f">= {need} free",
                found=f"{format_size(free)} free on {mount}",
                hint=hint,
            )
        )
    return results


def _existing_parent(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _mount_point(path: str) -> str:
    """The directory the filesystem holding `path` is mounted on (what `df` names)."""
    current = os.path.realpath(path)
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current
