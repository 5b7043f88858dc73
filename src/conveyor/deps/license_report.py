"""The workspace's licenses judged by its policy: what `conveyor deps licenses` shows and
the `licenses` gate counts. A license set in `deps.licenses.overrides` replaces what
the package says (its source then says so)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.deps.license_sources import FoundLicense, LicenseFinder
from conveyor.deps.licenses import Judgement, Policy, Verdict, normalise, policy_of
from conveyor.model import DepsPolicy

OVERRIDE_SOURCE = "deps.licenses.overrides"


@dataclass(frozen=True)
class Judged:
    """One package's license and the policy's verdict on it."""

    license: FoundLicense
    judgement: Judgement

    def as_dict(self) -> dict[str, object]:
        return {
            **self.license.as_dict(),
            "verdict": str(self.judgement.verdict),
            "reason": self.judgement.reason,
            "terms": list(self.judgement.terms),
        }


@dataclass(frozen=True)
class LicenseReport:
    """Every third-party package of the workspace with its verdict, and the lockfiles
    that could not be read ('path:line: why')."""

    packages: tuple[Judged, ...]
    errors: tuple[str, ...] = ()

    def count(self, verdict: Verdict) -> int:
        return sum(1 for p in self.packages if p.judgement.verdict is verdict)

    @property
    def failing(self) -> list[Judged]:
        """Denied and unknown licenses: what violates the policy."""
        return [p for p in self.packages if p.judgement.verdict is not Verdict.ALLOWED]

    @property
    def violated(self) -> bool:
        return bool(self.failing)


def policy(deps: DepsPolicy) -> Policy:
    """The license policy of a pipeline's `deps:`."""
    return policy_of(deps.licenses_allow, deps.licenses_deny, deps.licenses_overrides)


def judge(found: Sequence[FoundLicense], rules: Policy) -> LicenseReport:
    """Each license judged by `rules`, its override applied first."""
    out = []
    for lic in found:
        forced = rules.override(lic.name)
        if forced is not None:
            said = normalise(forced)
            lic = replace(
                lic,
                expression=said.expression,
                raw=forced,
                source=OVERRIDE_SOURCE,
                unknown=said.unknown,
            )
        out.append(Judged(lic, rules.judge(lic.expression)))
    return LicenseReport(tuple(out))


def scan(
    root: str,
    files: Sequence[str],
    deps: DepsPolicy,
    *,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LicenseReport:
    """The licenses of every component the lockfiles among `files` (workspace-relative)
    pin, judged by the pipeline's policy. `python`: an environment to read installed
    distributions from (default: the workspace's .venv/ or venv/)."""
    from conveyor.deps.inventory import read_inventory

    inventory = read_inventory(root, files)
    found = LicenseFinder(root, python=python, environ=environ).find(inventory.components)
    report = judge(found, policy(deps))
    return replace(report, errors=tuple(f"{e.location}: {e.message}" for e in inventory.errors))


RUN_FILE = "licenses.json"
"""Where a run keeps the licenses it found, for `conveyor gates` to judge again."""


def save(run_dir: str, report: LicenseReport) -> None:
    """Keep the licenses found (not the verdicts: those follow the policy of the day)."""
    from conveyor.fsutil import atomic_write

    data = {
        "version": 1,
        "packages": [p.license.as_dict() for p in report.packages],
        "errors": list(report.errors),
    }
    atomic_write(os.path.join(run_dir, RUN_FILE), json.dumps(data, indent=1) + "\n")


def load(run_dir: str, rules: Policy) -> LicenseReport | None:
    """A run's licenses, judged by `rules`; None when the run kept none."""
    try:
        with open(os.path.join(run_dir, RUN_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, list):
        return None
    found = [FoundLicense.from_dict(p) for p in packages if isinstance(p, dict)]
    errors = data.get("errors") if isinstance(data.get("errors"), list) else []
    return replace(judge(found, rules), errors=tuple(str(e) for e in errors))
