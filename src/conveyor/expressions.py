"""The small, safe expression language of `if:` conditions.

    if: branch == 'main' && event != 'pull_request'
    if: tag =~ '^v[0-9]+' or startsWith(branch, 'release/')
    if: matrix.os == 'linux' and env.DEPLOY == 'yes'

Names: branch, tag, commit, event, ci, env.NAME, matrix.NAME, needs.JOB.result.
Operators: == != =~ (regex search) !~ in, && || ! and their words and/or/not,
parentheses. Literals: 'single' or "double" quoted strings, numbers, true, false, null,
[lists]. Functions: startsWith, endsWith, contains, matches, and the status functions
success(), failure(), always(), cancelled() (how the run is going for the job; known
only when the job is ready to start). Parsing never executes anything;
errors carry the 0-based offset of the offending character so the config loader can
point at the exact column.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Value = str | float | bool | None | tuple["Value", ...]

NAMES = ("branch", "tag", "commit", "event", "ci")
SCOPES = ("env", "matrix")
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
"""How the run is going for the job: evaluated when the job is ready to start."""
NEEDS_FIELDS = ("result",)
"""What `needs.JOB.FIELD` may name."""


class ExpressionError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Node:
    offset: int


@dataclass(frozen=True)
class Literal(Node):
    value: Value


@dataclass(frozen=True)
class Name(Node):
    scope: str | None
    name: str


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # 'and' | 'or'
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<num>\d+(?:\.\d+)?)
      |(?P<op>==|!=|=~|!~|&&|\|\||<=|>=|[!()\[\],.<>])
      |(?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)""",
    re.VERBOSE,
)
_WORD_OPS = {"and": "&&", "or": "||", "not": "!", "in": "in"}
_FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "startsWith": (2, lambda a, b: _s(a).startswith(_s(b))),
    "endsWith": (2, lambda a, b: _s(a).endswith(_s(b))),
    "contains": (2, lambda a, b: (b in a) if isinstance(a, tuple) else _s(b) in _s(a)),
    "matches": (2, lambda a, b: re.search(_s(b), _s(a)) is not None),
}


def _s(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, tuple):
        return ",".join(_s(v) for v in value)
    return value


@dataclass(frozen=True)
class _Tok:
    kind: str  # 'str' 'num' 'op' 'ident' 'end'
    text: str
    offset: int


def _tokenize(source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m:
            ch = source[pos]
            if ch in "'\"":
                raise ExpressionError("unterminated string", pos)
            raise ExpressionError(f"unexpected character {ch!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            text = m.group()
            if kind == "ident" and text in _WORD_OPS:
                kind, text = "op", _WORD_OPS[text]
            toks.append(_Tok(kind, text, pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(source)))
    return toks


class _Parser:
    def __init__(
        self, source: str, matrix_keys: frozenset[str] | None, needs: frozenset[str] | None
    ) -> None:
        self.toks = _tokenize(source)
        self.i = 0
        self.matrix_keys = matrix_keys
        self.needs_of = needs

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str, what: str) -> _Tok:
        if self.tok.kind != "op" or self.tok.text != text:
            raise ExpressionError(
                f"expected {what}, found {self._describe(self.tok)}", self.tok.offset
            )
        return self.take()

    @staticmethod
    def _describe(tok: _Tok) -> str:
        if tok.kind == "end":
            return "end of expression"
        return tok.text if tok.kind == "str" else repr(tok.text)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression", 0)
        node = self.or_()
        if self.tok.kind != "end":
            raise ExpressionError(
                f"unexpected {self._describe(self.tok)} (expected an operator such as == or &&)",
                self.tok.offset,
            )
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.tok.kind == "op" and self.tok.text == "||":
            tok = self.take()
            node = BoolOp(tok.offset, "or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.tok.kind == "op" and self.tok.text == "&&":
            tok = self.take()
            node = BoolOp(tok.offset, "and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "!":
            tok = self.take()
            return Not(tok.offset, self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.primary()
        tok = self.tok
        if tok.kind == "op" and tok.text in ("==", "!=", "=~", "!~", "in", "<", ">", "<=", ">="):
            self.take()
            right = self.primary()
            if (
                tok.text in ("=~", "!~")
                and isinstance(right, Literal)
                and isinstance(right.value, str)
            ):
                _check_regex(right.value, right.offset)
            return Compare(tok.offset, tok.text, left, right)
        return left

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "str":
            return Literal(tok.offset, _unquote(tok.text))
        if tok.kind == "num":
            return Literal(tok.offset, float(tok.text))
        if tok.kind == "op" and tok.text == "(":
            node = self.or_()
            self.expect(")", "')'")
            return node
        if tok.kind == "op" and tok.text == "[":
            items: list[Node] = []
            if not (self.tok.kind == "op" and self.tok.text == "]"):
                items.append(self.primary())
                while self.tok.kind == "op" and self.tok.text == ",":
                    self.take()
                    items.append(self.primary())
            self.expect("]", "']' to close the list")
            return ListExpr(tok.offset, tuple(items))
        if tok.kind == "ident":
            return self.ident(tok)
        raise ExpressionError(f"expected a value, found {self._describe(tok)}", tok.offset)

    def ident(self, tok: _Tok) -> Node:
        word = tok.text
        if word in ("true", "false"):
            return Literal(tok.offset, word == "true")
        if word == "null":
            return Literal(tok.offset, None)
        if self.tok.kind == "op" and self.tok.text == "(":
            return self.call(tok)
        if word == "needs":
            return self.needs(tok)
        if word in SCOPES:
            self.expect(".", f"'.' after '{word}' (as in {word}.NAME)")
            name_tok = self.take()
            if name_tok.kind != "ident":
                raise ExpressionError(f"expected a name after '{word}.'", name_tok.offset)
            if (
                word == "matrix"
                and self.matrix_keys is not None
                and name_tok.text not in self.matrix_keys
            ):
                known = ", ".join(sorted(self.matrix_keys)) or "none: the job has no matrix"
                raise ExpressionError(
                    f"unknown matrix value 'matrix.{name_tok.text}' (axes: {known})",
                    name_tok.offset,
                )
            return Name(tok.offset, word, name_tok.text)
        if word in NAMES:
            return Name(tok.offset, None, word)
        choices = [*NAMES, *SCOPES, "needs", *_FUNCTIONS, *STATUS_FUNCTIONS]
        close = difflib.get_close_matches(word, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ExpressionError(
            f"unknown name '{word}'{hint}; known: branch, tag, commit, event, ci, env.NAME, "
            "matrix.NAME, needs.JOB.result, or a quoted string",
            tok.offset,
        )

    def needs(self, tok: _Tok) -> Node:
        """`needs.JOB.result`: as Name('needs', 'JOB.result')."""
        self.expect(".", "'.' after 'needs' (as in needs.JOB.result)")
        job = self.take()
        if job.kind != "ident":
            raise ExpressionError("expected a job name after 'needs.'", job.offset)
        if self.needs_of is not None and job.text not in self.needs_of:
            known = ", ".join(sorted(self.needs_of)) or "none: the job has no needs"
            close = difflib.get_close_matches(job.text, sorted(self.needs_of), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"'needs.{job.text}': '{job.text}' is not a job this one needs{hint} "
                f"(needs: {known})",
                job.offset,
            )
        self.expect(".", f"'.' after 'needs.{job.text}' (as in needs.{job.text}.result)")
        what = self.take()
        if what.kind != "ident" or what.text not in NEEDS_FIELDS:
            close = difflib.get_close_matches(what.text, NEEDS_FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"unknown field {what.text!r} of needs.{job.text}{hint}; known: "
                + ", ".join(NEEDS_FIELDS),
                what.offset,
            )
        return Name(tok.offset, "needs", f"{job.text}.{what.text}")

    def call(self, tok: _Tok) -> Node:
        if tok.text not in _FUNCTIONS and tok.text not in STATUS_FUNCTIONS:
            known = [*_FUNCTIONS, *STATUS_FUNCTIONS]
            close = difflib.get_close_matches(tok.text, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"unknown function '{tok.text}'{hint}; known: {', '.join(known)}", tok.offset
            )
        self.expect("(", "'('")
        args: list[Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.or_())
            while self.tok.kind == "op" and self.tok.text == ",":
                self.take()
                args.append(self.or_())
        self.expect(")", "')' to close the call")
        arity = _FUNCTIONS[tok.text][0] if tok.text in _FUNCTIONS else 0
        if len(args) != arity:
            raise ExpressionError(
                f"{tok.text}() takes {arity} arguments, got {len(args)}", tok.offset
            )
        if (
            tok.text == "matches"
            and isinstance(args[1], Literal)
            and isinstance(args[1].value, str)
        ):
            _check_regex(args[1].value, args[1].offset)
        return Call(tok.offset, tok.text, tuple(args))


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _check_regex(pattern: str, offset: int) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression {pattern!r}: {exc}", offset) from None


def parse(
    source: str,
    *,
    matrix_keys: frozenset[str] | None = None,
    needs: frozenset[str] | None = None,
) -> Node:
    """Parse an `if:` expression; raise ExpressionError with an offset on bad input.

    `matrix_keys`, when given, are the only `matrix.NAME` names allowed; `needs`, the
    only jobs `needs.JOB.result` may name.
    """
    return _Parser(source, matrix_keys, needs).parse()


@dataclass(frozen=True)
class Scope:
    """The values names resolve to when a condition is evaluated."""

    values: Mapping[str, str | None]
    env: Mapping[str, str]
    matrix: Mapping[str, str]
    status: Mapping[str, bool] = field(default_factory=dict)
    """What each status function (success, failure, always, cancelled) returns."""
    needs: Mapping[str, str] = field(default_factory=dict)
    """`needs.JOB.FIELD` by 'JOB.FIELD', e.g. {'build.result': 'failure'}."""


def evaluate(node: Node, scope: Scope) -> Value:
    """Evaluate a parsed expression. Missing env/matrix names are null."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        if node.scope == "env":
            return scope.env.get(node.name)
        if node.scope == "matrix":
            return scope.matrix.get(node.name)
        if node.scope == "needs":
            return scope.needs.get(node.name)
        return scope.values.get(node.name)
    if isinstance(node, ListExpr):
        return tuple(evaluate(item, scope) for item in node.items)
    if isinstance(node, Not):
        return not truthy(evaluate(node.operand, scope))
    if isinstance(node, BoolOp):
        left = evaluate(node.left, scope)
        if node.op == "and":
            return evaluate(node.right, scope) if truthy(left) else left
        return left if truthy(left) else evaluate(node.right, scope)
    if isinstance(node, Compare):
        return _compare(node.op, evaluate(node.left, scope), evaluate(node.right, scope))
    if isinstance(node, Call):
        if node.func in STATUS_FUNCTIONS:
            return node.func == "always" or bool(scope.status.get(node.func))
        func = _FUNCTIONS[node.func][1]
        return func(*(evaluate(arg, scope) for arg in node.args))
    raise TypeError(f"unknown node {node!r}")


def truthy(value: Value) -> bool:
    return bool(value)


def _compare(op: str, left: Value, right: Value) -> bool:
    if op in ("==", "!="):
        both_text = isinstance(left, str) and isinstance(right, str)
        equal = left == right if both_text else _loose(left) == _loose(right)
        return equal if op == "==" else not equal
    if op in ("=~", "!~"):
        found = re.search(_s(right), _s(left)) is not None
        return found if op == "=~" else not found
    if op == "in":
        if isinstance(right, tuple):
            return any(_loose(left) == _loose(item) for item in right)
        return _s(left) in _s(right)
    lnum, rnum = _number(left), _number(right)
    if lnum is None or rnum is None:
        return False
    return {"<": lnum < rnum, ">": lnum > rnum, "<=": lnum <= rnum, ">=": lnum >= rnum}[op]


def _loose(value: Value) -> Value:
    """Compare numbers and numeric strings alike ('3' == 3), as env values are strings."""
    if isinstance(value, str):
        num = _number(value)
        return num if num is not None else value
    return value


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None or isinstance(value, tuple):
        return None
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def status_calls(node: Node) -> list[Call]:
    """The status functions the expression calls (success(), failure(), ...): with none,
    a job's condition means `success() && (condition)`, as in GitHub Actions."""
    out: list[Call] = []
    stack: list[Node] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Call):
            if cur.func in STATUS_FUNCTIONS:
                out.append(cur)
            stack.extend(cur.args)
        elif isinstance(cur, Not):
            stack.append(cur.operand)
        elif isinstance(cur, BoolOp | Compare):
            stack.extend((cur.right, cur.left))
        elif isinstance(cur, ListExpr):
            stack.extend(cur.items)
    return sorted(out, key=lambda c: c.offset)


def names_used(node: Node) -> list[Name]:
    """Every Name in the expression, in source order (for explanations)."""
    out: list[Name] = []
    stack: list[Node] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Name):
            out.append(cur)
        elif isinstance(cur, Not):
            stack.append(cur.operand)
        elif isinstance(cur, BoolOp | Compare):
            stack.extend((cur.right, cur.left))
        elif isinstance(cur, Call):
            stack.extend(reversed(cur.args))
        elif isinstance(cur, ListExpr):
            stack.extend(reversed(cur.items))
    return sorted(out, key=lambda n: n.offset)
