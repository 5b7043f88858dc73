"""GitLab CI's `rules:if` expressions (`$VAR == "x"`, `=~ /re/`, `&&`, `||`, `null`,
`$VAR` alone for "set and not empty"), evaluated before the run against the pipeline's
variables, as GitLab does when it creates a pipeline; and the older `only`/`except`.

See docs.gitlab.com, "CI/CD YAML syntax reference", `rules:if` and "CI/CD variable
expressions".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<re>/(?:[^/\\]|\\.)*/[a-z]*)
    | (?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    | (?P<null>null\b)
    )""",
    re.VERBOSE,
)


class RuleError(Exception):
    """An expression GitLab would refuse (or this reader does not know)."""


@dataclass(frozen=True)
class _Regex:
    pattern: str
    flags: str


Value = str | None | _Regex | bool


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise RuleError(f"cannot read {text[pos:].strip()!r} in {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise RuleError(f"{self.text!r} ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> bool:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise RuleError(f"unexpected {self.peek()!r} in {self.text!r}")
        return value

    def or_(self) -> bool:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> bool:
        value = self.cond()
        while self.peek() == "&&":
            self.take()
            right = self.cond()
            value = value and right
        return value

    def cond(self) -> bool:
        if self.peek() == "(":
            self.take()
            value = self.or_()
            if self.take()[1] != ")":
                raise RuleError(f"missing ')' in {self.text!r}")
            return value
        left = self.operand()
        if self.peek() in ("==", "!=", "=~", "!~"):
            op = self.take()[1]
            right = self.operand()
            return _compare(left, op, right)
        if isinstance(left, _Regex):
            raise RuleError(f"a regular expression alone in {self.text!r}")
        return bool(left)  # `$VAR`: set and not empty

    def operand(self) -> Value:
        kind, text = self.take()
        if kind == "var":
            return self.variables.get(text.strip("${}"))
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "re":
            end = text.rindex("/")
            return _Regex(text[1:end], text[end + 1 :])
        if kind == "null":
            return None
        raise RuleError(f"unexpected {text!r} in {self.text!r}")


def _compare(left: Value, op: str, right: Value) -> bool:
    if op in ("==", "!="):
        equal = left == right
        return equal if op == "==" else not equal
    regex = right
    if isinstance(regex, str) and len(regex) >= 2 and regex.startswith("/"):
        # The right side may be a variable holding "/pattern/flags".
        end = regex.rindex("/")
        regex = _Regex(regex[1:end], regex[end + 1 :]) if end > 0 else regex
    if not isinstance(regex, _Regex):
        raise RuleError("the right side of =~ and !~ must be a /regular expression/")
    flags = re.IGNORECASE if "i" in regex.flags else 0
    try:
        found = re.search(_ruby_to_python(regex.pattern), str(left or ""), flags) is not None
    except re.error as exc:
        raise RuleError(f"bad regular expression /{regex.pattern}/: {exc}") from None
    return found if op == "=~" else not found


def _ruby_to_python(pattern: str) -> str:
    # RE2/Ruby anchors \A and \z; Python spells the end of the text \Z.
    return pattern.replace("\\z", "\\Z")


def evaluate(text: str, variables: Mapping[str, str]) -> bool:
    """Whether the `rules:if` expression `text` holds for these variables."""
    return _Parser(text, variables).parse()


def ref_matches(pattern: str, variables: Mapping[str, str]) -> bool:
    """One entry of `only:`/`except:` (or its `refs:`): a keyword, a ref name, or a
    /regular expression/ on the ref."""
    source = variables.get("CI_PIPELINE_SOURCE", "push")
    ref = variables.get("CI_COMMIT_REF_NAME", "")
    keywords = {
        "branches": "CI_COMMIT_BRANCH" in variables,
        "tags": "CI_COMMIT_TAG" in variables,
        "merge_requests": source == "merge_request_event",
        "schedules": source == "schedule",
        "pushes": source == "push",
        "web": source == "web",
        "api": source == "api",
        "triggers": source == "trigger",
        "pipelines": source == "pipeline",
        "external": source == "external",
        "chat": source == "chat",
        "external_pull_requests": source == "external_pull_request_event",
    }
    if pattern in keywords:
        return keywords[pattern]
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.rindex("/") > 0:
        return _compare(ref, "=~", pattern)
    return pattern == ref


def expand(value: str, variables: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` replaced by their values (unknown names are kept, as GitLab
    does; `$$` is a literal `$`)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$$"
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, value)
