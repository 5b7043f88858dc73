"""The shape of a GitHub Actions file, as the rules walk it: a workflow's triggers,
jobs and steps, a composite action's steps, and the `${{ }}` expressions in a string.
Only what the rules need; a file GitHub would reject is walked as far as it makes sense."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conveyor.interop.audit.source import Source

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SHA = re.compile(r"^[0-9a-f]{40}$")

# Triggers an outsider can cause (a fork's pull request, a comment, an issue): what
# makes injection, self-hosted runners and environment writes exploitable.
PUBLIC_TRIGGERS = frozenset(
    {
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
        "issue_comment",
        "issues",
        "discussion",
        "discussion_comment",
        "fork",
        "watch",
        "workflow_run",
    }
)
# Triggers that run with the base repository's secrets and a write token while acting
# on a pull request's content: GitHub Security Lab's "pwn request".
PRIVILEGED_TRIGGERS = frozenset({"pull_request_target", "workflow_run"})


@dataclass(frozen=True)
class Step:
    job: str
    index: int
    node: Any
    """The step's mapping."""

    @property
    def uses(self) -> str:
        value = self.node.get("uses")
        return value.strip() if isinstance(value, str) else ""

    @property
    def action(self) -> str:
        """`owner/repo` (or `owner/repo/path`) of `uses:`, without the ref, lower-cased."""
        return self.uses.split("@", 1)[0].lower()

    def with_(self) -> dict[str, Any]:
        value = self.node.get("with")
        return value if isinstance(value, dict) else {}

    @property
    def run(self) -> str:
        value = self.node.get("run")
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Workflow:
    source: Source
    kind: str
    """"workflow" or "action" (an action.yml: composite steps, no jobs)."""

    @property
    def data(self) -> dict[str, Any]:
        data = self.source.data
        return data if isinstance(data, dict) else {}

    def triggers(self) -> set[str]:
        data: dict[Any, Any] = self.data
        on = data.get("on", data.get(True))  # a YAML 1.1 reader makes `on` True
        if isinstance(on, str):
            return {on}
        if isinstance(on, list):
            return {t for t in on if isinstance(t, str)}
        if isinstance(on, dict):
            return {t for t in on if isinstance(t, str)}
        return set()

    def on_position(self) -> tuple[int, int]:
        return self.source.key(self.data, "on") if "on" in self.data else (1, 1)

    def jobs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        jobs = self.data.get("jobs")
        if isinstance(jobs, dict):
            for name, job in jobs.items():
                if isinstance(name, str) and isinstance(job, dict):
                    yield name, job

    def steps(self, job_id: str, job: dict[str, Any]) -> Iterator[Step]:
        steps = job.get("steps")
        if isinstance(steps, list):
            for index, step in enumerate(steps):
                if isinstance(step, dict):
                    yield Step(job_id, index, step)

    def all_steps(self) -> Iterator[Step]:
        """Every step: of every job, or of a composite action's `runs.steps`."""
        if self.kind == "action":
            runs = self.data.get("runs")
            if isinstance(runs, dict):
                yield from self.steps("", runs)
            return
        for job_id, job in self.jobs():
            yield from self.steps(job_id, job)


def expressions(text: str) -> Iterator[str]:
    """The inside of each `${{ ... }}` in a string."""
    for match in EXPRESSION.finditer(text):
        yield match.group(1)


def is_sha_ref(ref: str) -> bool:
    return bool(SHA.match(ref))
