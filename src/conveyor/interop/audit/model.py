"""What an audit finds: one `Finding` per problem, located at the YAML node it is
about, and the table of rules (`RULES`) that documents each one (docs/audit.md is
written from the same words)."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("high", "medium", "low", "info")
"""Most severe first. `info` is advice, never a failure unless `--fail-on info`."""


def rank(severity: str) -> int:
    """0 for the most severe: smaller is worse."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    """The usual severity; a rule may report a finding higher or lower (documented)."""
    title: str
    fix: str


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    col: int
    rule: str
    severity: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, object]:
        """The finding as `--json` prints it."""
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {r.id: r for r in rules}


RULES = _rules(
    Rule(
        "unpinned-uses",
        "high",
        "action or reusable workflow not pinned to a full commit SHA",
        "pin to the 40-character commit SHA and keep the tag in a comment (`@<sha> # v4`)",
    ),
    Rule(
        "template-injection",
        "high",
        "attacker-controlled context expanded into a script",
        'pass the value through `env:` and use the variable ("$TITLE"), never ${{ }} in code',
    ),
    Rule(
        "dangerous-triggers",
        "high",
        "privileged trigger (pull_request_target, workflow_run) runs untrusted code",
        "use `pull_request`, or never check out the pull request's head in this workflow",
    ),
    Rule(
        "excessive-permissions",
        "medium",
        "GITHUB_TOKEN permissions broader than the job needs",
        "set `permissions: {}` at the top and grant each job only the scopes it uses",
    ),
    Rule(
        "curl-pipe-shell",
        "medium",
        "a downloaded script piped straight into a shell",
        "download to a file, verify its checksum or signature, then run it",
    ),
    Rule(
        "artipacked",
        "low",
        "actions/checkout leaves the token in .git/config",
        "add `with: {persist-credentials: false}` to the checkout step",
    ),
    Rule(
        "secrets-at-workflow-level",
        "medium",
        "a secret in the workflow's `env:` reaches every step of every job",
        "move the secret into the `env:` of the one step that needs it",
    ),
    Rule(
        "secrets-inherit",
        "medium",
        "`secrets: inherit` hands every secret to the called workflow",
        "pass only the secrets the called workflow declares, by name",
    ),
    Rule(
        "github-env",
        "high",
        "untrusted data written to $GITHUB_ENV or $GITHUB_PATH",
        "use step outputs ($GITHUB_OUTPUT) or a quoted variable instead of the environment file",
    ),
    Rule(
        "insecure-commands",
        "high",
        "ACTIONS_ALLOW_UNSECURE_COMMANDS re-enables set-env and add-path",
        "remove ACTIONS_ALLOW_UNSECURE_COMMANDS and write to $GITHUB_ENV / $GITHUB_PATH",
    ),
    Rule(
        "hardcoded-credentials",
        "high",
        "a password or secret written in the file",
        "reference a secret (${{ secrets.NAME }} / a masked CI variable) instead",
    ),
    Rule(
        "self-hosted-runner",
        "medium",
        "a self-hosted runner that pull requests from anyone can reach",
        "run untrusted triggers on hosted runners, or on ephemeral self-hosted ones",
    ),
    Rule(
        "unpinned-image",
        "low",
        "container image without a tag, or with :latest",
        "pin a version tag, or better a digest (`image@sha256:...`)",
    ),
    Rule(
        "no-timeout",
        "low",
        "job without a timeout (the default is 6 hours on GitHub, 1 hour on GitLab)",
        "set `timeout-minutes:` (GitHub) or `timeout:` (GitLab) a little above the usual time",
    ),
    Rule(
        "no-dependency-cache",
        "low",
        "dependencies installed on every run without a cache",
        "add actions/cache or the setup action's `cache:` input (GitLab: `cache:`)",
    ),
    Rule(
        "no-artifact-retention",
        "low",
        "artifacts kept for the default time (90 days on GitHub, 30 on GitLab)",
        "set `retention-days:` (GitHub) or `expire_in:` (GitLab)",
    ),
    Rule(
        "needless-needs",
        "low",
        "a job waits for another whose outputs and artifacts it never uses",
        "drop the `needs:` entry so the jobs run in parallel",
    ),
    Rule(
        "no-quality-gate",
        "info",
        "no workflow runs the tests",
        "add a job that runs the test suite on push and pull_request",
    ),
)


def finding(
    rule: str, path: str, at: tuple[int, int], message: str, *, severity: str | None = None
) -> Finding:
    """A finding of `rule` at (line, col), with the rule's severity and fix unless given."""
    known = RULES[rule]
    return Finding(
        path=path,
        line=at[0],
        col=at[1],
        rule=rule,
        severity=severity or known.severity,
        message=message,
        fix=known.fix,
    )
