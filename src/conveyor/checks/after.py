"""The checks after the last job, from `checks.after`: required files present, forbidden
files absent (source maps in a production build), size limits, and a build report of
what was produced (sizes, counts, digests)."""

from __future__ import annotations

import datetime
import glob
import json
import os
from collections.abc import Sequence

from conveyor.fsutil import atomic_write
from conveyor.model import AfterChecks, CheckResult, JobResult, RunContext
from conveyor.units import first_few, format_size


def _glob(root: str, pattern: str) -> list[str]:
    found = glob.glob(os.path.join(root, pattern.removeprefix("./")), recursive=True)
    return sorted(os.path.relpath(p, root) for p in found if os.path.isfile(p))


def run_after(
    root: str,
    spec: AfterChecks,
    results: Sequence[JobResult],
    context: RunContext,
) -> list[CheckResult]:
    out: list[CheckResult] = []
    level = spec.level
    for pattern in spec.required:
        matches = _glob(root, pattern)
        out.append(
            CheckResult(
                check=f"required {pattern}",
                ok=bool(matches),
                expected="present",
                found=f"{len(matches)} file(s), {format_size(sum(_size(root, m) for m in matches))}"
                if matches
                else "missing",
                hint=""
                if matches
                else "the job that builds it did not produce it: read its log; "
                "declare it in the job's `outputs:` so the cache restores it too",
                location=pattern,
                level=level,
            )
        )
    for pattern in spec.forbidden:
        matches = _glob(root, pattern)
        shown = first_few(matches)
        out.append(
            CheckResult(
                check=f"forbidden {pattern}",
                ok=not matches,
                expected="absent",
                found=shown if matches else "absent",
                hint=""
                if not matches
                else "remove them from the build (for source maps: turn them "
                "off in the production build's configuration)",
                location=pattern,
                level=level,
            )
        )
    for pattern, limit in spec.max_size:
        matches = _glob(root, pattern)
        over = [(m, _size(root, m)) for m in matches if _size(root, m) > limit]
        largest = max(matches, key=lambda m: _size(root, m)) if matches else None
        found = (
            "no such file"
            if largest is None
            else first_few([f"{m} {format_size(s)}" for m, s in over])
            if over
            else f"largest {largest} {format_size(_size(root, largest))}"
        )
        out.append(
            CheckResult(
                check=f"size {pattern}",
                ok=bool(matches) and not over,
                expected=f"each <= {format_size(limit)}",
                found=found,
                hint="split or compress it (code splitting, minification, compression), or "
                "raise the limit if the growth is intended"
                if over
                else ("" if matches else f"no file matches {pattern}"),
                location=pattern,
                level=level,
            )
        )
    if spec.report:
        out.append(write_report(root, spec.report, results, context))
    return out


def _size(root: str, rel: str) -> int:
    try:
        return os.path.getsize(os.path.join(root, rel))
    except OSError:
        return 0


def write_report(
    root: str, path: str, results: Sequence[JobResult], context: RunContext
) -> CheckResult:
    """The build report: when, from which commit, and every file the jobs produced."""
    files = sorted({o.path: o for r in results for o in r.outputs}.values(), key=lambda o: o.path)
    total = sum(o.size for o in files)
    report = {
        "build_date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": context.commit,
        "branch": context.branch,
        "tag": context.tag,
        "file_count": len(files),
        "total_size": total,
        "files": [
            {"path": o.path, "size": o.size, "sha256": o.sha256, "artifact": o.artifact}
            for o in files
        ],
        "jobs": {r.name: r.status.value for r in results},
        "validation": "passed",
    }
    full = os.path.join(root, path)
    try:
        atomic_write(full, json.dumps(report, indent=2) + "\n", makedirs=True)
    except OSError as exc:
        return CheckResult(
            check="build report",
            ok=False,
            expected=f"written to {path}",
            found=f"cannot write it: {exc.strerror}",
            hint="make the directory writable",
            location=path,
        )
    return CheckResult(
        check="build report",
        ok=True,
        expected=f"written to {path}",
        found=f"{len(files)} files, {format_size(total)}",
        location=path,
    )
