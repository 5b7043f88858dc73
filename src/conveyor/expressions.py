"""The small, safe expression language of `if:` conditions.

    if: branch == 'main' && event != 'pull_request'
    if: tag =~ '^v[0-9]+' or startsWith(branch, 'release/')
    if: matrix.os == 'linux' and env.DEPLOY == 'yes'

Names: branch, tag, commit, event, ci, and the contexts env.NAME, matrix.NAME, vars.NAME,
secrets.NAME, run.NAME (run.branch, run.commit, run.event, run.tag, run.number);
needs.JOB.values.NAME (a value a job it needs wrote to $CONVEYOR_OUTPUT) and
needs.JOB.result (how it ended).
Which contexts a field may use is the caller's to say (`parse(..., contexts=...)`); the
same language fills `${{ ... }}` in every string field (`render`). Operators: == != =~
(regex search) !~ in, && || ! and their words and/or/not, parentheses. Literals:
'single' or "double" quoted strings, numbers, true, false, null, [lists].
Functions: startsWith, endsWith, contains, matches, fromJSON, and the status functions
success(), failure(), always(), cancelled() (how the run is going for the job; known
only when the job is ready to start). Parsing never executes anything;
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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

Value = str | float | bool | None | tuple["Value", ...]

NAMES = ("branch", "tag", "commit", "event", "ci")
MAX_DEPTH = 64
"""How deeply an expression may nest: parentheses, `!`, calls, lists and the operands
of one chain of `&&`/`||` all count (each is a level of recursion when evaluated)."""
SCOPES = ("env", "matrix", "vars", "secrets", "run")
"""The contexts: `NAME.KEY`. One more context is one more entry here (and, where its
keys are fixed, in FIXED_KEYS)."""
RUN_KEYS = ("branch", "commit", "event", "tag", "number")
FIXED_KEYS: dict[str, tuple[str, ...]] = {"run": RUN_KEYS}
"""Contexts whose keys are the same in every pipeline."""
TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
"""`${{ expression }}` inside a string field."""
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
"""How the run is going for the job: evaluated when the job is ready to start."""
NEEDS_FIELDS = ("result", "values")
"""What `needs.JOB.FIELD` may name: `result`, or `values.NAME`."""


class ExpressionError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class EvaluationError(Exception):
    """A value an expression was given at run time cannot be used (fromJSON of a job's
    value that is not JSON): the job fails with this message."""


VALUE_REF = re.compile(r"needs\.(\S+?)\.values\.([A-Za-z_][A-Za-z0-9_-]*)")
"""`needs.JOB.values.NAME` as written inside `${{ }}` (JOB may hold dots)."""


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
    "fromJSON": (1, lambda a: from_json(_s(a))),
}


def from_json(text: str) -> Value:
    """JSON text as a Value: arrays become lists, objects their JSON text (an `if:` can
    compare them, not index them); EvaluationError when it is not JSON."""
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise EvaluationError(f"fromJSON: not valid JSON ({exc}): {shown!r}") from None
    return _value(data)


def _value(data: object) -> Value:
    if isinstance(data, list):
        return tuple(_value(item) for item in data)
    if isinstance(data, dict):
        import json

        return json.dumps(data, sort_keys=True)
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return data
    if isinstance(data, int | float):
        return float(data)
    return str(data)


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
        self,
        source: str,
        matrix_keys: frozenset[str] | None,
        needs: Collection[str] | None,
        contexts: Mapping[str, Collection[str] | None] | None,
    ) -> None:
        self.toks = _tokenize(source)
        self.i = 0
        self.matrix_keys = matrix_keys
        self.needs = needs
        self.contexts = contexts
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
        if word == "needs":
            return self.needs_value(tok)
        if word in SCOPES:
            self.expect(".", f"'.' after '{word}' (as in {word}.NAME)")
            name_tok = self.take()
            if name_tok.kind != "ident":
                raise ExpressionError(f"expected a name after '{word}.'", name_tok.offset)
            self.check_name(word, name_tok)
            return Name(tok.offset, word, name_tok.text)
        if word in NAMES:
            if self.contexts is not None and "run" not in self.contexts:
                raise ExpressionError(
                    f"'{word}' (a fact of the run) is not available here; "
                    f"available: {self.available()}",
                    tok.offset,
                )
            return Name(tok.offset, None, word)
        choices = [*NAMES, *SCOPES, "needs", *_FUNCTIONS, *STATUS_FUNCTIONS]
        close = difflib.get_close_matches(word, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ExpressionError(
            f"unknown name '{word}'{hint}; known: branch, tag, commit, event, ci, "
            f"{', '.join(s + '.NAME' for s in (self.contexts or SCOPES))}, "
            "needs.JOB.values.NAME, needs.JOB.result, or a quoted string",
            tok.offset,
        )

    def needs_value(self, tok: _Tok) -> Node:
        """`needs.JOB.values.NAME` or `needs.JOB.result` (JOB may hold dots); JOB must be
        a job this one needs. As Name('needs', 'JOB.values.NAME' or 'JOB.result')."""
        parts: list[_Tok] = []
        while self.tok.kind == "op" and self.tok.text == ".":
            self.take()
            part = self.take()
            if part.kind != "ident":
                raise ExpressionError("expected a name after '.'", part.offset)
            parts.append(part)
        # `needs.check.values.result` is the value `result` of `check`, unless a job
        # named `check.values` is needed (and `check` is not).
        as_value = len(parts) >= 3 and parts[-2].text == "values"
        if as_value and self.needs is not None:
            as_value = ".".join(p.text for p in parts[:-2]) in self.needs or (
                ".".join(p.text for p in parts[:-1]) not in self.needs
            )
        if len(parts) >= 2 and parts[-1].text == "result" and not as_value:
            job = ".".join(p.text for p in parts[:-1])
            check_need(job, self.needs, parts[0].offset)
            return Name(tok.offset, "needs", f"{job}.result")
        if len(parts) == 2:
            field_tok = parts[-1]
            close = difflib.get_close_matches(field_tok.text, ["result", "values"], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"unknown field {field_tok.text!r} of needs.{parts[0].text}{hint}; known: "
                "result, values.NAME",
                field_tok.offset,
            )
        if len(parts) < 3 or parts[-2].text != "values":
            raise ExpressionError(
                "expected needs.JOB.values.NAME (a value the job JOB wrote to "
                "$CONVEYOR_OUTPUT) or needs.JOB.result",
                (parts[-2] if len(parts) >= 2 else parts[-1] if parts else tok).offset,
            )
        job = ".".join(p.text for p in parts[:-2])
        check_need(job, self.needs, parts[0].offset)
        return Name(tok.offset, "needs", f"{job}.values.{parts[-1].text}")

    def available(self) -> str:
        if self.contexts is None:
            return ", ".join(SCOPES)
        return ", ".join(self.contexts) or "none: this field takes no expressions"

    def check_name(self, scope: str, name_tok: _Tok) -> None:
        """`scope.NAME` is allowed here, and NAME is one the scope has."""
        name = name_tok.text
        if self.contexts is not None and scope not in self.contexts:
            raise ExpressionError(
                f"'{scope}.{name}': the {scope} context is not available here; "
                f"available: {self.available()}",
                name_tok.offset - len(scope) - 1,
            )
        known: Collection[str] | None = FIXED_KEYS.get(scope)
        if scope == "matrix" and self.matrix_keys is not None:
            known = self.matrix_keys
        if known is None and self.contexts is not None:
            known = self.contexts[scope]
        if known is None or name in known:
            return
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean '{scope}.{close[0]}'?)" if close else ""
        if scope == "matrix":
            listed = ", ".join(sorted(known)) or "none: the job has no matrix"
            raise ExpressionError(
                f"unknown matrix value 'matrix.{name}' (axes: {listed})", name_tok.offset
            )
        what = {
            "env": "the job's env (pipeline env, job env, pass_env)",
            "vars": "the top-level vars:",
            "secrets": "the job's secrets:",
        }.get(scope, f"{scope}")
        listed = ", ".join(sorted(known)) or "none"
        raise ExpressionError(
            f"unknown name '{scope}.{name}'{hint}; {what} has: {listed}", name_tok.offset
        )

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
        if tok.text == "fromJSON":
            arg = args[0]
            if isinstance(arg, Literal) and isinstance(arg.value, str):
                try:
                    from_json(arg.value)
                except EvaluationError as exc:
                    raise ExpressionError(str(exc), arg.offset) from None
            elif not (isinstance(arg, Name) and arg.scope == "needs"):
                # Only a job's value is not known when the file is read: anything else
                # would fail at planning time instead of here.
                raise ExpressionError(
                    "fromJSON() takes needs.JOB.values.NAME or a quoted string", arg.offset
                )
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


def check_need(job: str, needs: Collection[str] | None, offset: int) -> None:
    """A `needs.JOB...` reference must name a job this one needs, directly."""
    if needs is None or job in needs:
        return
    close = difflib.get_close_matches(job, list(needs), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(needs) if needs else "none"
    raise ExpressionError(
        f"'{job}' is not among the jobs this one needs{hint}: only the values and results "
        f"of jobs listed in `needs:` can be read (needs: {listed})",
        offset,
    )


def parse(
    source: str,
    *,
    matrix_keys: frozenset[str] | None = None,
    needs: Collection[str] | None = None,
    contexts: Mapping[str, Collection[str] | None] | None = None,
) -> Node:
    """Parse an expression; raise ExpressionError with an offset on bad input.

    `matrix_keys`, when given, are the only `matrix.NAME` names allowed; `needs`, the
    only jobs whose values and results (`needs.JOB.values.NAME`, `needs.JOB.result`) may be
    read. `contexts`, when given,
    are the only contexts allowed (the bare run facts `branch`... count as `run`), each
    with the names it has (None: any name).
    """
    return _Parser(source, matrix_keys, needs, contexts).parse()


_PARSED: dict[str, Node] = {}


def _cached_parse(source: str) -> Node:
    node = _PARSED.get(source)
    if node is None:
        node = _PARSED[source] = parse(source)
    return node


def contexts_used(node: Node) -> set[str]:
    """The contexts an expression reads (the bare run facts count as 'run')."""
    return {name.scope or "run" for name in names_used(node)}


def render(text: str, scope: Scope, *, only: Collection[str] | None = None) -> str:
    """`text` with each `${{ expression }}` replaced by its value as a string (null is
    empty, true is 'true', a whole number has no '.0'). With `only`, an expression that
    reads a context not in it is left as written, to be rendered later. The expressions
    were checked when the file was loaded."""
    if "${{" not in text:
        return text

    def value(m: re.Match[str]) -> str:
        node = _cached_parse(m.group(1))
        if only is not None and not contexts_used(node) <= set(only):
            return m.group(0)
        return _s(evaluate(node, scope))

    return TEMPLATE.sub(value, text)


@dataclass(frozen=True)
class Scope:
    """The values names resolve to when a condition is evaluated."""

    values: Mapping[str, str | None]
    env: Mapping[str, str]
    matrix: Mapping[str, str]
    needs: Mapping[str, Mapping[str, str]] | None = None
    """The values each needed job wrote; None while they are not known (planning)."""
    contexts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Every other context (vars, secrets, run...) by name."""
    status: Mapping[str, bool] = field(default_factory=dict)
    """What each status function (success, failure, always, cancelled) returns."""
    results: Mapping[str, str] = field(default_factory=dict)
    """`needs.JOB.result` by job: success, failure, cancelled or skipped."""


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
            if node.name.endswith(".result") and ".values." not in node.name:
                return scope.results.get(node.name.removesuffix(".result"))
            job, _, key = node.name.rpartition(".values.")
            return (scope.needs or {}).get(job, {}).get(key, "")
        if node.scope is not None:
            return scope.contexts.get(node.scope, {}).get(node.name)
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


def reads_needs(node: Node) -> bool:
    """Whether the expression reads a value of a job it needs (it can only be
    evaluated once they have finished)."""
    return any(name.scope == "needs" and ".values." in name.name for name in names_used(node))


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


def reads_results(node: Node) -> bool:
    """Whether the expression reads how a job it needs ended (`needs.JOB.result`)."""
    return any(
        name.scope == "needs" and name.name.endswith(".result") and ".values." not in name.name
        for name in names_used(node)
    )


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
