"""The security rules for GitHub Actions workflows and actions: what lets an outsider
run code with the repository's token and secrets, or lets a changed dependency do so.

Each rule is a function from a `Workflow` to its findings; `RULES` lists them in order."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from conveyor.interop.audit.model import Finding, finding
from conveyor.interop.audit.shell import CURL_PIPE_SHELL
from conveyor.interop.audit.workflow import (
    PRIVILEGED_TRIGGERS,
    PUBLIC_TRIGGERS,
    Workflow,
    expressions,
    is_sha_ref,
)

# Contexts whose text anyone can choose: titles, bodies, branch names, commit messages
# (GitHub Security Lab's list, and actionlint's). `*` is an object filter over them.
UNTRUSTED = re.compile(
    r"\bgithub\s*\.\s*(?:"
    r"head_ref"
    r"|event\.(?:issue|pull_request|discussion)\.(?:title|body)"
    r"|event\.pull_request\.head\.(?:ref|label|repo\.default_branch)"
    r"|event\.(?:comment|review|review_comment)\.body"
    r"|event\.pages\.[\w*]+\.page_name"
    r"|event\.commits\.[\w*]+\.(?:message|author\.(?:email|name))"
    r"|event\.head_commit\.(?:message|author\.(?:email|name)|committer\.(?:email|name))"
    r"|event\.workflow_run\.(?:head_branch|display_title"
    r"|head_commit\.(?:message|author\.(?:email|name)))"
    r"|event\.workflow_run\.pull_requests\.[\w*]+\.head\.ref"
    r"|event\.\*\.(?:body|title)"
    r")(?![\w-])"
)
# Expressions that only test an untrusted value yield true/false, not its text.
_BOOLEAN = re.compile(r"^\s*(?:!?\s*(?:contains|startsWith|endsWith)\s*\(|.*(?:==|!=))", re.S)
_UNTRUSTED_REF = re.compile(
    r"github\s*\.\s*(?:head_ref|event\.pull_request\.(?:head\.(?:ref|sha)|merge_commit_sha)"
    r"|event\.workflow_run\.head_(?:sha|branch)|event\.workflow_run\.head_commit\.id)"
    r"|refs/pull/"
)
_PR_CHECKOUT_RUN = re.compile(r"\bgh\s+pr\s+checkout\b|\bgit\s+fetch\b[^\n]*\bpull/")
_ENV_FILE = re.compile(r"\$\{?(?:env:)?GITHUB_(?:ENV|PATH)\b")
_FIRST_PARTY = ("actions/", "github/")
_SECRET_CONTEXT = re.compile(r"\bsecrets\s*\.")


def _where(wf: Workflow, step_node: Any, key: str, pattern: re.Pattern[str]) -> tuple[int, int]:
    return wf.source.find_re(wf.source.value(step_node, key), pattern)


def unpinned_uses(wf: Workflow) -> Iterator[Finding]:
    """`uses:` not pinned to a commit SHA. Local actions (`./`) are exempt; a tag of a
    first-party (actions/, github/) action is low, of another owner's low too (tags move,
    but a release tag is the publisher's channel); a branch or no ref is medium for
    first-party and high otherwise: it changes with every push upstream."""
    targets: list[tuple[Any, str]] = [(s.node, s.uses) for s in wf.all_steps() if s.uses]
    targets += [(job, job["uses"]) for _, job in wf.jobs() if isinstance(job.get("uses"), str)]
    for node, uses in targets:
        at = wf.source.value(node, "uses")
        if uses.startswith("./") or "${{" in uses:
            continue
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                yield finding(
                    "unpinned-uses",
                    wf.source.path,
                    at,
                    f"'{uses}' is a Docker image without a digest",
                    severity="medium",
                )
            continue
        name, _, ref = uses.partition("@")
        first_party = name.lower().startswith(_FIRST_PARTY)
        if is_sha_ref(ref):
            continue
        if not ref:
            severity, what = ("medium" if first_party else "high"), "has no ref at all"
        elif re.fullmatch(r"v?\d+(?:\.\d+)*(?:[-+.][\w.]+)?", ref):
            severity, what = "low", f"is pinned to the tag '{ref}', which can be moved"
        else:
            severity = "medium" if first_party else "high"
            what = f"follows '{ref}', a branch or moving ref"
        yield finding("unpinned-uses", wf.source.path, at, f"'{name}' {what}", severity=severity)


def _injections(wf: Workflow, node: Any, key: str, text: str, sink: str) -> Iterator[Finding]:
    start = wf.source.value(node, key)
    for inner in expressions(text):
        if _BOOLEAN.match(inner):
            continue
        for match in UNTRUSTED.finditer(inner):
            context = match.group(0)
            at = wf.source.find(start, context)
            yield finding(
                "template-injection",
                wf.source.path,
                at,
                f"'{' '.join(context.split())}' is expanded into {sink}: anyone who opens a "
                "pull request or issue can choose its text",
            )


def template_injection(wf: Workflow) -> Iterator[Finding]:
    """Attacker-controlled contexts in `run:` or in actions/github-script's `script:`."""
    for step in wf.all_steps():
        if step.run:
            yield from _injections(wf, step.node, "run", step.run, "a shell script")
        if step.action == "actions/github-script":
            script = step.with_().get("script")
            if isinstance(script, str):
                yield from _injections(wf, step.with_(), "script", script, "a github-script")


def dangerous_triggers(wf: Workflow) -> Iterator[Finding]:
    """pull_request_target / workflow_run that check out the pull request's code: its
    build scripts then run with the base repository's secrets and write token."""
    privileged = sorted(wf.triggers() & PRIVILEGED_TRIGGERS)
    if not privileged:
        return
    trigger = privileged[0]
    checked_out = False
    for step in wf.all_steps():
        ref = step.with_().get("ref")
        if (
            step.action == "actions/checkout"
            and isinstance(ref, str)
            and _UNTRUSTED_REF.search(ref)
        ):
            checked_out = True
            yield finding(
                "dangerous-triggers",
                wf.source.path,
                wf.source.value(step.with_(), "ref"),
                f"a {trigger} workflow checks out the pull request's code, which then runs "
                "with this repository's secrets and write token",
            )
        elif step.run and _PR_CHECKOUT_RUN.search(step.run):
            checked_out = True
            yield finding(
                "dangerous-triggers",
                wf.source.path,
                _where(wf, step.node, "run", _PR_CHECKOUT_RUN),
                f"a {trigger} workflow fetches the pull request's code into a privileged job",
            )
    if not checked_out:
        yield finding(
            "dangerous-triggers",
            wf.source.path,
            wf.on_position(),
            f"{trigger} runs with secrets and a write token on events outsiders cause; "
            "nothing here checks out their code, keep it so",
            severity="low",
        )


def _writes(permissions: Any) -> list[str]:
    if isinstance(permissions, dict):
        return [str(k) for k, v in permissions.items() if v == "write"]
    return []


def excessive_permissions(wf: Workflow) -> Iterator[Finding]:
    """`write-all`, write scopes granted to every job, or no `permissions:` at all (the
    repository's default token permissions, read-write in repositories made before 2023)."""
    if wf.kind != "workflow":
        return
    data, path = wf.data, wf.source.path
    top = data.get("permissions")
    if top == "write-all":
        yield finding(
            "excessive-permissions",
            path,
            wf.source.value(data, "permissions"),
            "the workflow grants every job `write-all`",
            severity="high",
        )
    elif _writes(top):
        yield finding(
            "excessive-permissions",
            path,
            wf.source.value(data, "permissions"),
            f"write scopes for every job: {', '.join(_writes(top))}",
        )
    for job_id, job in wf.jobs():
        perms = job.get("permissions")
        if perms == "write-all":
            yield finding(
                "excessive-permissions",
                path,
                wf.source.value(job, "permissions"),
                f"job '{job_id}' has `write-all`",
                severity="high",
            )
        elif "permissions" not in data and "permissions" not in job and "uses" not in job:
            yield finding(
                "excessive-permissions",
                path,
                wf.source.key(wf.data["jobs"], job_id),
                f"job '{job_id}' gets the default token permissions "
                "(no `permissions:` here or at the top)",
                severity="low",
            )


def secrets_at_workflow_level(wf: Workflow) -> Iterator[Finding]:
    env = wf.data.get("env")
    if wf.kind != "workflow" or not isinstance(env, dict):
        return
    for name, value in env.items():
        if isinstance(value, str) and any(_SECRET_CONTEXT.search(e) for e in expressions(value)):
            yield finding(
                "secrets-at-workflow-level",
                wf.source.path,
                wf.source.value(env, name),
                f"secret in workflow-level env '{name}' is visible to every step",
            )


def secrets_inherit(wf: Workflow) -> Iterator[Finding]:
    for job_id, job in wf.jobs():
        if job.get("secrets") == "inherit":
            yield finding(
                "secrets-inherit",
                wf.source.path,
                wf.source.value(job, "secrets"),
                f"job '{job_id}' passes every secret to '{job.get('uses', '?')}'",
            )


def github_env(wf: Workflow) -> Iterator[Finding]:
    """Writes to $GITHUB_ENV / $GITHUB_PATH in a workflow an outsider can trigger with
    privileges, or of an untrusted context anywhere: the next steps run what they set."""
    privileged = bool(wf.triggers() & PRIVILEGED_TRIGGERS)
    for step in wf.all_steps():
        if not step.run or not _ENV_FILE.search(step.run):
            continue
        tainted = any(UNTRUSTED.search(e) for e in expressions(step.run))
        if privileged or tainted:
            why = "untrusted data" if tainted else "data from a privileged pull-request trigger"
            yield finding(
                "github-env",
                wf.source.path,
                _where(wf, step.node, "run", _ENV_FILE),
                f"{why} written to the environment file of the next steps",
            )


def insecure_commands(wf: Workflow) -> Iterator[Finding]:
    envs: list[Any] = [wf.data.get("env")]
    for _, job in wf.jobs():
        envs.append(job.get("env"))
    envs += [s.node.get("env") for s in wf.all_steps()]
    for env in envs:
        if isinstance(env, dict):
            value = env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS")
            if value is not None and str(value).lower() in ("true", "1", "yes"):
                yield finding(
                    "insecure-commands",
                    wf.source.path,
                    wf.source.key(env, "ACTIONS_ALLOW_UNSECURE_COMMANDS"),
                    "ACTIONS_ALLOW_UNSECURE_COMMANDS lets any output set variables",
                )


def hardcoded_credentials(wf: Workflow) -> Iterator[Finding]:
    """A literal password in `container:` or `services:` credentials."""
    for job_id, job in wf.jobs():
        holders: list[tuple[str, Any]] = [(f"job '{job_id}' container", job.get("container"))]
        services = job.get("services")
        if isinstance(services, dict):
            holders += [(f"service '{name}'", svc) for name, svc in services.items()]
        for what, holder in holders:
            creds = holder.get("credentials") if isinstance(holder, dict) else None
            password = creds.get("password") if isinstance(creds, dict) else None
            if isinstance(password, str) and password and "${{" not in password:
                yield finding(
                    "hardcoded-credentials",
                    wf.source.path,
                    wf.source.value(creds, "password"),
                    f"{what} has its registry password written in the file",
                )


def self_hosted_runner(wf: Workflow) -> Iterator[Finding]:
    """A self-hosted runner: medium when outsiders can trigger the workflow (their code
    runs on your machine, which persists between jobs), low otherwise."""
    public = sorted(wf.triggers() & PUBLIC_TRIGGERS)
    for job_id, job in wf.jobs():
        runs_on = job.get("runs-on")
        labels: list[Any] = []
        if isinstance(runs_on, str):
            labels = [runs_on]
        elif isinstance(runs_on, list):
            labels = runs_on
        elif isinstance(runs_on, dict):
            group = runs_on.get("labels")
            labels = group if isinstance(group, list) else [group]
        if "self-hosted" in labels:
            why = f"on {public[0]}" if public else "(no public trigger)"
            yield finding(
                "self-hosted-runner",
                wf.source.path,
                wf.source.value(job, "runs-on"),
                f"job '{job_id}' runs on a self-hosted runner {why}",
                severity="medium" if public else "low",
            )


def artipacked(wf: Workflow) -> Iterator[Finding]:
    """actions/checkout keeps the token in .git/config: medium when the same job uploads
    an artifact (the usual way it leaks), low otherwise."""
    uploads = {s.job for s in wf.all_steps() if s.action == "actions/upload-artifact"}
    for step in wf.all_steps():
        if step.action != "actions/checkout":
            continue
        persist = step.with_().get("persist-credentials")
        if persist is False or str(persist).lower() == "false":
            continue
        leaks = step.job in uploads
        yield finding(
            "artipacked",
            wf.source.path,
            wf.source.value(step.node, "uses"),
            "checkout persists the token in .git/config"
            + (" and this job uploads an artifact" if leaks else ""),
            severity="medium" if leaks else "low",
        )


def curl_pipe_shell(wf: Workflow) -> Iterator[Finding]:
    for step in wf.all_steps():
        if step.run and CURL_PIPE_SHELL.search(step.run):
            yield finding(
                "curl-pipe-shell",
                wf.source.path,
                _where(wf, step.node, "run", CURL_PIPE_SHELL),
                "a script from the network runs unverified",
            )


RULES: tuple[Callable[[Workflow], Iterator[Finding]], ...] = (
    unpinned_uses,
    template_injection,
    dangerous_triggers,
    excessive_permissions,
    secrets_at_workflow_level,
    secrets_inherit,
    github_env,
    insecure_commands,
    hardcoded_credentials,
    self_hosted_runner,
    artipacked,
    curl_pipe_shell,
)
