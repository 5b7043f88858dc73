"""`conveyor audit`: GitHub Actions workflows and actions, and `.gitlab-ci.yml`, checked
for the field's security problems (injection, unpinned actions, privileged triggers,
broad tokens, leaked credentials) and for the seed specification's pipeline
anti-patterns (no cache, no timeout, needless serialisation, artifacts kept forever, no
tests). Each finding is located at the YAML node it is about; docs/audit.md lists the
rules. `audit` returns findings; rendering them is the CLI's (and `render`'s) job."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conveyor.interop.audit.model import RULES, SEVERITIES, Finding, finding, rank
from conveyor.interop.audit.source import load
from conveyor.workspace.listing import repository_root

__all__ = [
    "RULES",
    "SEVERITIES",
    "Audit",
    "Finding",
    "audit",
    "default_targets",
    "rank",
    "repository_root",
]


@dataclass(frozen=True)
class Audit:
    files: tuple[str, ...]
    """Each file audited, as shown."""
    findings: tuple[Finding, ...]
    """Sorted by file, line, column."""

    def at_least(self, severity: str) -> list[Finding]:
        """The findings as severe as `severity` or more."""
        return [f for f in self.findings if rank(f.severity) <= rank(severity)]


def default_targets(root: str) -> list[str]:
    """What `conveyor audit` reads with no file named: the workflows, the actions, and
    `.gitlab-ci.yml` under `root`."""
    found: list[str] = []
    for pattern in (
        ".github/workflows/*.yml",
        ".github/workflows/*.yaml",
        ".github/actions/**/action.yml",
        ".github/actions/**/action.yaml",
        ".gitlab-ci.yml",
    ):
        found += glob.glob(os.path.join(root, pattern), recursive=True)
    return sorted(set(found))


def kind_of(path: str, data: object) -> str:
    """ "gitlab", "action" or "workflow": by name first, then by content."""
    name = os.path.basename(path)
    if name.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")) or name == ".gitlab-ci.yml":
        return "gitlab"
    if name in ("action.yml", "action.yaml"):
        return "action"
    if isinstance(data, dict) and "jobs" not in data and "runs" in data:
        return "action"
    if (
        isinstance(data, dict)
        and "jobs" not in data
        and "on" not in data
        and ("stages" in data or any(isinstance(v, dict) and "script" in v for v in data.values()))
    ):
        return "gitlab"
    return "workflow"


def audit(paths: Sequence[str], *, cwd: str) -> Audit:
    """Every finding in these files. Raises ConfigError (located) for a file that is not
    YAML, or not a mapping."""
    from conveyor.errors import ConfigError
    from conveyor.interop.audit import github_pipeline, github_security, gitlab_rules
    from conveyor.interop.audit.workflow import Workflow

    findings: list[Finding] = []
    shown_files: list[str] = []
    workflows: list[Workflow] = []
    for path in paths:
        shown = _shown(path, cwd)
        source = load(path, shown)
        if not isinstance(source.data, dict):
            what = "an empty file" if source.data is None else f"a {type(source.data).__name__}"
            raise ConfigError(
                f"not a CI file ({what}, expected a mapping)", file=shown, line=1, col=1
            )
        shown_files.append(shown)
        kind = kind_of(path, source.data)
        if kind == "gitlab":
            for gitlab_rule in gitlab_rules.RULES:
                findings += gitlab_rule(source)
            continue
        workflow = Workflow(source, kind)
        workflows.append(workflow)
        for rule in (*github_security.RULES, *github_pipeline.RULES):
            findings += rule(workflow)
    findings += _quality_gate(workflows)
    return Audit(tuple(shown_files), tuple(sorted(set(findings))))


def _quality_gate(workflows: Iterable[object]) -> list[Finding]:
    """One `no-quality-gate` when no workflow triggered by push or pull_request runs a
    test (a repository-wide fact, reported on the first such workflow's `on:`)."""
    from conveyor.interop.audit.shell import TEST
    from conveyor.interop.audit.source import strings
    from conveyor.interop.audit.workflow import Workflow

    ci = [
        w
        for w in workflows
        if isinstance(w, Workflow)
        and w.kind == "workflow"
        and w.triggers() & {"push", "pull_request"}
    ]
    if not ci:
        return []
    for wf in ci:
        for _, job in wf.jobs():
            if "uses" in job or any(TEST.search(s) for s in strings(job)):
                return []  # a reusable workflow may run the tests: assume it does
    first = ci[0]
    return [
        finding(
            "no-quality-gate",
            first.source.path,
            first.on_position(),
            "no workflow run on push or pull_request runs tests",
        )
    ]


def _shown(path: str, cwd: str) -> str:
    absolute = os.path.abspath(os.path.join(cwd, path))
    relative = os.path.relpath(absolute, cwd)
    return absolute if relative.startswith("..") else relative
