"""The small, safe expression language of `if:` conditions.

    if: branch == 'main' && event != 'pull_request'
    if: tag =~ '^v[0-9]+' or startsWith(branch, 'release/')
    if: matrix.os == 'linux' and env.DEPLOY == 'yes'

Names: branch, tag, commit, event, ci, env.NAME, matrix.NAME. Operators: == != =~
(regex search) !~ in, && || ! and their words and/or/not, parentheses. Literals:
'single' or "double" quoted strings, numbers, true, false, null, [lists].
Functions: startsWith, endsWith, contains, matches. Parsing never executes anything;
errors carry the 0-based offset of the offending character so the config loader can
point at the exact column.

Regular expressions run on RE2 (`google-re2`, imported on first use): matching takes
time linear in the text, so a branch name chosen by whoever pushes it cannot hang a
plan, and a pattern RE2 does not support (backreferences, lookaround) is refused when
the file is loaded. Nesting (parentheses, `!`, calls, lists, chained operators) is
bounded by MAX_DEPTH, so neither the parser nor the evaluator can run out of stack.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = str | float | bool | None | tuple["Value", ...]

NAMES = ("branch", "tag", "commit", "event", "ci")
MAX_DEPTH = 64
"""How deeply an expression may nest: parentheses, `!`, calls, lists and the operands
of one chain of `&&`/`||` all count (each is a level of recursion when evaluated)."""
SCOPES = ("env", "matrix")


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
    "matches": (2, lambda a, b: _search(_s(b), _s(a))),
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
    def __init__(self, source: str, matrix_keys: frozenset[str] | None) -> None:
        self.toks = _tokenize(source)
        self.i = 0
        self.matrix_keys = matrix_keys
        self.depth = 0

    def deeper(self, offset: int, levels: int = 1) -> None:
        """One more level of nesting at `offset`; refused past MAX_DEPTH."""
        self.depth += levels
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels of parentheses, "
                "'!', calls, lists or chained operators): split the condition",
                offset,
            )

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
        start = self.depth
        self.deeper(self.tok.offset)
        node = self.and_()
        while self.tok.kind == "op" and self.tok.text == "||":
            tok = self.take()
            self.deeper(tok.offset)  # evaluated as nested BoolOps: a level each
            node = BoolOp(tok.offset, "or", node, self.and_())
        self.depth = start
        return node

    def and_(self) -> Node:
        start = self.depth
        node = self.not_()
        while self.tok.kind == "op" and self.tok.text == "&&":
            tok = self.take()
            self.deeper(tok.offset)
            node = BoolOp(tok.offset, "and", node, self.not_())
        self.depth = start
        return node

    def not_(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "!":
            tok = self.take()
            start = self.depth
            self.deeper(tok.offset)
            node = Not(tok.offset, self.not_())
            self.depth = start
            return node
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
            start = self.depth
            self.deeper(tok.offset)
            items: list[Node] = []
            if not (self.tok.kind == "op" and self.tok.text == "]"):
                items.append(self.primary())
                while self.tok.kind == "op" and self.tok.text == ",":
                    self.take()
                    items.append(self.primary())
            self.expect("]", "']' to close the list")
            self.depth = start
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
        choices = [*NAMES, *SCOPES, *_FUNCTIONS]
        close = difflib.get_close_matches(word, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ExpressionError(
            f"unknown name '{word}'{hint}; known: branch, tag, commit, event, ci, env.NAME, "
            "matrix.NAME, or a quoted string",
            tok.offset,
        )

    def call(self, tok: _Tok) -> Node:
        if tok.text not in _FUNCTIONS:
            close = difflib.get_close_matches(tok.text, list(_FUNCTIONS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"unknown function '{tok.text}'{hint}; known: {', '.join(_FUNCTIONS)}", tok.offset
            )
        self.expect("(", "'('")
        args: list[Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.or_())
            while self.tok.kind == "op" and self.tok.text == ",":
                self.take()
                args.append(self.or_())
        self.expect(")", "')' to close the call")
        arity = _FUNCTIONS[tok.text][0]
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


class RegexError(ValueError):
    """A pattern RE2 cannot compile: invalid, or a feature it leaves out to stay linear."""


_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "invalid named capture")


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    """The compiled RE2 pattern (RE2 is imported on first use: most pipelines have none)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # its errors become ours; none on stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        why = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if why.startswith(_UNSUPPORTED):
            why += (
                " (regular expressions run on RE2, in time linear in the text: no "
                "backreferences, lookahead or lookbehind)"
            )
        raise RegexError(why) from None


def _search(pattern: str, text: str) -> bool:
    """RE2's search: linear in len(text) whatever the pattern."""
    try:
        return _regex(pattern).search(text) is not None
    except RegexError as exc:
        from conveyor.errors import UserError

        # A pattern from a value (env, matrix): found only now, at evaluation.
        raise UserError(
            f"if: the pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None


def _check_regex(pattern: str, offset: int) -> None:
    try:
        _regex(pattern)
    except RegexError as exc:
        raise ExpressionError(f"invalid regular expression {pattern!r}: {exc}", offset) from None


def parse(source: str, *, matrix_keys: frozenset[str] | None = None) -> Node:
    """Parse an `if:` expression; raise ExpressionError with an offset on bad input.

    `matrix_keys`, when given, are the only `matrix.NAME` names allowed.
    """
    return _Parser(source, matrix_keys).parse()


@dataclass(frozen=True)
class Scope:
    """The values names resolve to when a condition is evaluated."""

    values: Mapping[str, str | None]
    env: Mapping[str, str]
    matrix: Mapping[str, str]


def evaluate(node: Node, scope: Scope) -> Value:
    """Evaluate a parsed expression. Missing env/matrix names are null."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        if node.scope == "env":
            return scope.env.get(node.name)
        if node.scope == "matrix":
            return scope.matrix.get(node.name)
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
        found = _search(_s(right), _s(left))
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
