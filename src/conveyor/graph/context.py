"""The run context: branch, tag, commit and event, from hosted CI's variables or git.

On GitHub Actions and GitLab CI the CI's own variables win (a CI checkout is often
a detached HEAD); elsewhere git is asked. The event is what `--event` says, else
what the CI says, else 'push' (as `act` assumes), so `if: event == 'tag'` behaves
locally as it would on the hosted CI when given `--event tag`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from conveyor.errors import UsageError
from conveyor.model import RunContext
from conveyor.workspace import git

EVENTS = ("push", "pull_request", "tag", "schedule", "manual")
_GITHUB_EVENTS = {
    "push": "push",
    "pull_request": "pull_request",
    "pull_request_target": "pull_request",
    "merge_group": "pull_request",
    "schedule": "schedule",
    "workflow_dispatch": "manual",
    "repository_dispatch": "manual",
    "release": "tag",
}
_GITLAB_EVENTS = {
    "push": "push",
    "merge_request_event": "pull_request",
    "external_pull_request_event": "pull_request",
    "schedule": "schedule",
    "web": "manual",
    "api": "manual",
    "trigger": "manual",
    "pipeline": "manual",
    "chat": "manual",
}


_FACTS: tuple[Callable[[str], git.Running], ...] = (
    git.start_branch,
    git.start_head,
    git.start_tags_at_head,
)
# Seconds each may take: a hung git (a network mount) must not stall the run.
_FACT_TIMEOUT = 10


class GitFacts:
    """Branch, tag and commit of a checkout, asked of git at once (three commands started
    together, each mostly waiting) and read when needed: a caller can start them early so
    they overlap its own start-up."""

    def __init__(self, root: str) -> None:
        self._procs: list[git.Running | None] = []
        for start in _FACTS:
            try:
                self._procs.append(start(root))
            except OSError:
                self._procs.append(None)
        self._result: tuple[str | None, str | None, str | None] | None = None

    def result(self) -> tuple[str | None, str | None, str | None]:
        """(branch, tag, commit); None where there is none. The branch comes from HEAD's
        symbolic ref, so an unborn branch (no commit yet) still has its name; a detached
        HEAD has none."""
        if self._result is None:
            branch, commit, tags = (self._words(p) for p in self._procs)
            self._result = (
                (branch[0] if branch else None),
                (tags[-1] if tags and commit else None),
                (commit[0] if commit else None),
            )
        return self._result

    @staticmethod
    def _words(running: git.Running | None) -> list[str]:
        return [] if running is None else running.words(timeout=_FACT_TIMEOUT)

    def close(self) -> None:
        """Reap the commands if their answer was not needed (a CI said it all)."""
        for running in self._procs:
            if running is not None:
                running.close()


def from_git(root: str) -> tuple[str | None, str | None, str | None]:
    """(branch, tag, commit) of the checkout at `root`; None where there is none."""
    return GitFacts(root).result()


def detect(
    root: str,
    environ: Mapping[str, str],
    event: str | None = None,
    *,
    git: GitFacts | None = None,
) -> RunContext:
    """The run's context; `git` is a GitFacts the caller started early, if it did."""
    if event is not None and event not in EVENTS:
        raise UsageError(f"unknown event '{event}'", hint=f"use one of: {', '.join(EVENTS)}")
    ci: str | None = None
    branch = tag = commit = None
    ci_event: str | None = None
    if environ.get("GITHUB_ACTIONS") == "true":
        ci = "github"
        gh_event = environ.get("GITHUB_EVENT_NAME", "")
        ci_event = _GITHUB_EVENTS.get(gh_event, "push")
        ref_name = environ.get("GITHUB_REF_NAME") or None
        if environ.get("GITHUB_REF_TYPE") == "tag" or environ.get("GITHUB_REF", "").startswith(
            "refs/tags/"
        ):
            tag = ref_name
            if ci_event == "push":
                ci_event = "tag"
        elif ci_event == "pull_request":
            branch = environ.get("GITHUB_HEAD_REF") or None
        else:
            branch = ref_name
        commit = environ.get("GITHUB_SHA") or None
    elif environ.get("GITLAB_CI") == "true":
        ci = "gitlab"
        ci_event = _GITLAB_EVENTS.get(environ.get("CI_PIPELINE_SOURCE", ""), "push")
        tag = environ.get("CI_COMMIT_TAG") or None
        if tag and ci_event == "push":
            ci_event = "tag"
        branch = (
            environ.get("CI_COMMIT_BRANCH")
            or environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
            or None
        )
        commit = environ.get("CI_COMMIT_SHA") or None
    elif environ.get("CI", "").lower() in ("true", "1", "yes"):
        ci = "ci"
    if commit is None or (branch is None and tag is None):
        g_branch, g_tag, g_commit = (git or GitFacts(root)).result()
        branch = branch or (g_branch if ci is None or branch is None else None)
        tag = tag or g_tag
        commit = commit or g_commit
    return RunContext(
        branch=branch,
        tag=tag,
        commit=commit,
        event=event or ci_event or "push",
        ci=ci,
        env=tuple(environ.items()),
    )


_CI_NUMBERS = ("GITHUB_RUN_NUMBER", "CI_PIPELINE_IID")
"""A hosted CI's own build number wins: its checkouts are fresh, a local count is not."""


def build_number(root: str, environ: Mapping[str, str], *, take: bool) -> int:
    """`${{ run.number }}`: the CI's run number (GitHub's GITHUB_RUN_NUMBER, GitLab's
    CI_PIPELINE_IID), else a counter of this workspace (`.conveyor/build-number`) that
    each run reading it moves on by one, under a lock, so two concurrent runs never get
    the same number. `take=False` (a dry run) says the next number without taking it."""
    import fcntl
    import os

    from conveyor.fsutil import atomic_write, ensure_state_dir

    for name in _CI_NUMBERS:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    state = ensure_state_dir(root)
    path = os.path.join(state, "build-number")
    with open(os.path.join(state, "build-number.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, encoding="ascii") as fh:
                last = int(fh.read().strip() or 0)
        except (OSError, ValueError):
            last = 0
        number = last + 1
        if take:
            atomic_write(path, f"{number}\n")
    return number


RUN_FACTS = ("CONVEYOR_EVENT", "CONVEYOR_BRANCH", "CONVEYOR_TAG", "CONVEYOR_COMMIT")


def run_facts(context: RunContext) -> dict[str, str]:
    """The values of `RUN_FACTS` for a run."""
    return {
        "CONVEYOR_EVENT": context.event,
        "CONVEYOR_BRANCH": context.branch or "",
        "CONVEYOR_TAG": context.tag or "",
        "CONVEYOR_COMMIT": context.commit or "",
    }
