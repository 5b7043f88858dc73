"""The dependencies page: what the newest run that audited its dependencies found
(the vulnerabilities its gate kept, `gates.vulnerabilities.stored`) and the licenses
it found (`deps.license_report`'s file), or that no run recorded any."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from conveyor.deps.license_report import RUN_FILE
from conveyor.gates.vulnerabilities import STORED, Found, stored
from conveyor.serve.files import runs_base

RUN_DIRS = 200
"""How many of the newest run directories are looked in."""
RATINGS = ("critical", "high", "medium", "low", "unknown")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vulnerabilities:
    run_id: str
    found: tuple[tuple[str, Found], ...]
    """(scope, finding), the most severe first."""
    not_audited: tuple[str, ...]
    problems: tuple[str, ...]
    by_rating: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageLicense:
    name: str
    version: str
    ecosystem: str
    license: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Licenses:
    run_id: str
    packages: tuple[PackageLicense, ...]
    by_license: dict[str, int]
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DepsPage:
    vulnerabilities: Vulnerabilities | None
    """None: no run kept an audit."""
    licenses: Licenses | None


def _newest_with(root: str, name: str) -> tuple[str, str] | None:
    base = runs_base(root)
    try:
        names = sorted(os.listdir(base), reverse=True)[:RUN_DIRS]
    except OSError:
        return None
    for run_id in names:
        if os.path.isfile(os.path.join(base, run_id, name)):
            return run_id, os.path.join(base, run_id)
    return None


def deps_page(root: str) -> DepsPage:
    """What the workspace's newest audits found."""
    vulns = None
    found_at = _newest_with(root, STORED)
    kept = stored(found_at[1]) if found_at else None
    if found_at and kept is not None:
        rows = [(scope, f) for scope, audited in sorted(kept.items()) for f in audited.found]
        order = {r: i for i, r in enumerate(RATINGS)}
        rows.sort(key=lambda sf: (order.get(sf[1].rating, len(RATINGS)), sf[1].package))
        counts: dict[str, int] = {}
        for _scope, f in rows:
            counts[f.rating] = counts.get(f.rating, 0) + 1
        vulns = Vulnerabilities(
            run_id=found_at[0],
            found=tuple(rows),
            not_audited=tuple(sorted({e for a in kept.values() for e in a.not_audited})),
            problems=tuple(a.problem for a in kept.values() if a.problem),
            by_rating=counts,
        )
    licenses = None
    found_at = _newest_with(root, RUN_FILE)
    if found_at:
        try:
            with open(os.path.join(found_at[1], RUN_FILE), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            packages = tuple(
                PackageLicense(
                    name=str(p.get("name", "")),
                    version=str(p.get("version", "")),
                    ecosystem=str(p.get("ecosystem", "")),
                    license=str(p.get("license") or "unknown"),
                    source=str(p.get("source") or ""),
                )
                for p in data["packages"]
                if isinstance(p, dict)
            )
            by_license: dict[str, int] = {}
            for p in packages:
                by_license[p.license] = by_license.get(p.license, 0) + 1
            licenses = Licenses(
                run_id=found_at[0],
                packages=packages,
                by_license=dict(sorted(by_license.items(), key=lambda kv: (-kv[1], kv[0]))),
                errors=tuple(str(e) for e in data.get("errors") or ()),
            )
    return DepsPage(vulnerabilities=vulns, licenses=licenses)
