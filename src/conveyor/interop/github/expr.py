"""GitHub Actions' expression language, as the runner evaluates it: `${{ ... }}` in a
workflow and the bare `if:` conditions.

Values are JSON's (None, bool, float, str, list, dict): contexts such as `github.event`
are whole documents, read with `.name`, `['name']` and the `*` filter. Equality is
GitHub's loose one (operands of different types compared as numbers, strings without
regard to case); `&&` and `||` give an operand, not a bool. Functions: contains,
startsWith, endsWith, format, join, toJSON, fromJSON, hashFiles and the status checks
success(), failure(), always(), cancelled().

Conveyor's own language (`conveyor.expressions`) has no objects and fewer functions: a
job-level `if:` is evaluated here as far as the workflow's static contexts go, and what
is left (status checks, the results and outputs of needed jobs) is written in Conveyor's
syntax for the scheduler (`residual`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
STATUS = ("success", "failure", "always", "cancelled")
MAX_DEPTH = 64


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated; `offset` into its source."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# -- syntax -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Lit:
    value: Any
    offset: int


@dataclass(frozen=True)
class Ctx:
    """A context's name (`github`, `steps`...): the root of a property path."""

    name: str
    offset: int


@dataclass(frozen=True)
class Prop:
    target: Node
    key: Node | None  # None: the `*` filter
    offset: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    offset: int


@dataclass(frozen=True)
class Unary:
    operand: Node
    offset: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    offset: int


Node = Lit | Ctx | Prop | Call | Unary | Binary

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<str>'(?:[^']|'')*')
      |(?P<num>0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)
      |(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])
      |(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)""",
    re.VERBOSE,
)
_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}


def _tokens(source: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ExprError(f"unexpected character {source[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    out.append(("end", "", len(source)))
    return out


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks = _tokens(source)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if text is not None and tok[1] != text:
            shown = repr(tok[1]) if tok[0] != "end" else "the end"
            raise ExprError(f"expected {text!r}, found {shown}", tok[2])
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.binary(1)
        kind, text, offset = self.peek()
        if kind != "end":
            raise ExprError(f"unexpected {text!r}", offset)
        return node

    def binary(self, level: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested too deeply", self.peek()[2])
        left = self.unary()
        while True:
            kind, op, offset = self.peek()
            prec = _PRECEDENCE.get(op) if kind == "op" else None
            if prec is None or prec < level:
                break
            self.take()
            left = Binary(op, left, self.binary(prec + 1), offset)
        self.depth -= 1
        return left

    def unary(self) -> Node:
        kind, text, offset = self.peek()
        if kind == "op" and text == "!":
            self.take()
            return Unary(self.unary(), offset)
        return self.postfix(self.primary())

    def primary(self) -> Node:
        kind, text, offset = self.take()
        if kind == "str":
            return Lit(text[1:-1].replace("''", "'"), offset)
        if kind == "num":
            return Lit(float(int(text, 16)) if text.startswith("0x") else float(text), offset)
        if kind == "op" and text == "(":
            node = self.binary(1)
            self.take(")")
            return node
        if kind == "ident":
            low = text.lower()
            if low in ("true", "false"):
                return Lit(low == "true", offset)
            if low == "null":
                return Lit(None, offset)
            if self.peek()[1] == "(":
                self.take("(")
                args: list[Node] = []
                if self.peek()[1] != ")":
                    args.append(self.binary(1))
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.binary(1))
                self.take(")")
                return Call(text, tuple(args), offset)
            return Ctx(low, offset)
        shown = repr(text) if kind != "end" else "the end"
        raise ExprError(f"expected a value, found {shown}", offset)

    def postfix(self, node: Node) -> Node:
        while True:
            _, text, offset = self.peek()
            if text == ".":
                self.take()
                k, name, at = self.take()
                if name == "*":
                    node = Prop(node, None, offset)
                elif k == "ident":
                    node = Prop(node, Lit(name, at), offset)
                else:
                    raise ExprError(f"expected a property name after '.', found {name!r}", at)
            elif text == "[":
                self.take()
                if self.peek()[1] == "*":
                    self.take()
                    node = Prop(node, None, offset)
                else:
                    node = Prop(node, self.binary(1), offset)
                self.take("]")
            else:
                return node


_PARSED: dict[str, Node] = {}


def parse(source: str) -> Node:
    node = _PARSED.get(source)
    if node is None:
        node = _PARSED[source] = _Parser(source).parse()
    return node


# -- values ------------------------------------------------------------------------------
def number(value: Any) -> float:
    """GitHub's conversion of any value to a number (NaN when it is none)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "") or isinstance(value, list | dict)


def text(value: Any) -> str:
    """A value as `${{ }}` writes it into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return a is b
    if type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float)):
        if isinstance(a, bool) or isinstance(b, bool):
            return number(a) == number(b)
        return bool(a == b) if a is None or isinstance(a, str) else number(a) == number(b)
    return number(a) == number(b)


def _order(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.casefold()
        y: Any = b.casefold()
    else:
        x, y = number(a), number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def _index(target: Any, key: Any) -> Any:
    if isinstance(target, dict):
        if not isinstance(key, str):
            key = text(key)
        for k, v in target.items():  # property names are case-insensitive
            if k == key or k.casefold() == key.casefold():
                return v
        return None
    if isinstance(target, list):
        n = number(key)
        if not math.isnan(n) and n.is_integer() and 0 <= n < len(target):
            return target[int(n)]
    return None


def _format(fmt: Any, *args: Any) -> str:
    source = text(fmt)
    out = []
    i = 0
    while i < len(source):
        c = source[i]
        if c == "{" and source.startswith("{{", i):
            out.append("{")
            i += 2
        elif c == "}" and source.startswith("}}", i):
            out.append("}")
            i += 2
        elif c == "{":
            end = source.find("}", i)
            index = source[i + 1 : end] if end != -1 else ""
            if not index.isdigit() or int(index) >= len(args):
                raise ExprError(f"format: no argument for {{{index}}} in {source!r}")
            out.append(text(args[int(index)]))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(_equal(x, item) for x in search)
    return text(item).casefold() in text(search).casefold()


def _from_json(value: Any) -> Any:
    try:
        return json.loads(text(value))
    except ValueError as exc:
        raise ExprError(f"fromJSON: not JSON: {text(value)[:60]!r}") from exc


def hash_files(root: str, patterns: Sequence[str]) -> str:
    """GitHub's hashFiles: SHA-256 over each matched file's SHA-256, in path order; ''
    when nothing matches. `!pattern` excludes."""
    from conveyor.workspace.globs import glob_regex

    include = [glob_regex(p) for p in patterns if not p.startswith("!")]
    exclude = [glob_regex(p[1:]) for p in patterns if p.startswith("!")]
    matched = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (".git", ".conveyor"))
        rel = os.path.relpath(base, root)
        for name in files:
            path = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            if any(rx.fullmatch(path) for rx in include) and not any(
                rx.fullmatch(path) for rx in exclude
            ):
                matched.append(path)
    if not matched:
        return ""
    outer = hashlib.sha256()
    for path in sorted(matched):
        with open(os.path.join(root, path), "rb") as fh:
            outer.update(hashlib.file_digest(fh, "sha256").digest())
    return outer.hexdigest()


@dataclass
class Env:
    """What names resolve to: each context by name, and the job's status so far."""

    contexts: Mapping[str, Any]
    status: str = "success"
    """success, failure or cancelled: how the job (or the run, for a job) is going."""
    root: str = "."
    """The workspace, for hashFiles."""


_FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "contains": (2, 2, _contains),
    "startswith": (2, 2, lambda a, b: text(a).casefold().startswith(text(b).casefold())),
    "endswith": (2, 2, lambda a, b: text(a).casefold().endswith(text(b).casefold())),
    "format": (1, 99, _format),
    "join": (
        1,
        2,
        lambda a, sep=",": text(sep).join(text(x) for x in a) if isinstance(a, list) else text(a),
    ),
    "tojson": (1, 1, lambda a: json.dumps(a, indent=2)),
    "fromjson": (1, 1, _from_json),
}


def evaluate(node: Node, env: Env) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ctx):
        if node.name not in env.contexts:
            raise ExprError(f"unknown context '{node.name}'", node.offset)
        return env.contexts[node.name]
    if isinstance(node, Prop):
        target = evaluate(node.target, env)
        if node.key is None:  # the filter: every element (or value) of the target
            if isinstance(node.target, Prop) and node.target.key is None:
                target = [x for sub in target for x in (sub if isinstance(sub, list) else [])]
            if isinstance(target, dict):
                return list(target.values())
            return list(target) if isinstance(target, list) else []
        key = evaluate(node.key, env)
        if isinstance(target, list) and isinstance(node.target, Prop) and node.target.key is None:
            return [_index(x, key) for x in target]
        return _index(target, key)
    if isinstance(node, Unary):
        return not truthy(evaluate(node.operand, env))
    if isinstance(node, Binary):
        left = evaluate(node.left, env)
        if node.op == "&&":
            return evaluate(node.right, env) if truthy(left) else left
        if node.op == "||":
            return left if truthy(left) else evaluate(node.right, env)
        right = evaluate(node.right, env)
        if node.op == "==":
            return _equal(left, right)
        if node.op == "!=":
            return not _equal(left, right)
        return _order(node.op, left, right)
    name = node.func.lower()
    if name in STATUS:
        if node.args:
            raise ExprError(f"{node.func}() takes no arguments", node.offset)
        return {
            "always": True,
            "success": env.status == "success",
            "failure": env.status == "failure",
            "cancelled": env.status == "cancelled",
        }[name]
    if name == "hashfiles":
        return hash_files(env.root, [text(evaluate(a, env)) for a in node.args])
    spec = _FUNCTIONS.get(name)
    if spec is None:
        raise ExprError(f"unknown function '{node.func}'", node.offset)
    low, high, func = spec
    if not low <= len(node.args) <= high:
        raise ExprError(f"{node.func}() takes {low}-{high} arguments", node.offset)
    return func(*(evaluate(a, env) for a in node.args))


def uses_status(node: Node) -> bool:
    """Whether the condition calls a status function (else `success() &&` is implied)."""
    if isinstance(node, Call):
        return node.func.lower() in STATUS or any(uses_status(a) for a in node.args)
    if isinstance(node, Prop):
        return uses_status(node.target) or (node.key is not None and uses_status(node.key))
    if isinstance(node, Unary):
        return uses_status(node.operand)
    if isinstance(node, Binary):
        return uses_status(node.left) or uses_status(node.right)
    return False


def _whole(text: str) -> re.Match[str] | None:
    """The one `${{ }}` that is all of `text` (not the first of several: the lazy
    pattern would stretch across them to match the whole)."""
    m = TEMPLATE.fullmatch(text)
    return m if m is not None and "}}" not in m.group(1) else None


def condition(source: str) -> str:
    """An `if:` as written (with or without `${{ }}`) as a bare expression."""
    stripped = source.strip()
    m = _whole(stripped)
    return m.group(1) if m else stripped


def check(source: str, env: Env) -> bool:
    """An `if:` condition, `success() &&` implied when it calls no status function."""
    node = parse(condition(source))
    if not uses_status(node) and env.status != "success":
        return False
    return truthy(evaluate(node, env))


def render(source: str, env: Env) -> str:
    """`source` with each `${{ expression }}` replaced by its value as text."""
    if "${{" not in source:
        return source
    return TEMPLATE.sub(lambda m: text(evaluate(parse(m.group(1)), env)), source)


def render_value(value: Any, env: Env) -> Any:
    """A YAML value (string, list, mapping) with its strings rendered; a string that is a
    whole `${{ }}` keeps its value's type (`fromJSON(...)` gives a list)."""
    if isinstance(value, str):
        m = _whole(value.strip())
        if m:
            return evaluate(parse(m.group(1)), env)
        return render(value, env)
    if isinstance(value, list):
        return [render_value(v, env) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, env) for k, v in value.items()}
    return value


# -- a job's `if:` for Conveyor's scheduler ------------------------------------------------
_LATE = frozenset({"needs", "matrix"})
"""Contexts known only per job instance or once the jobs it needs have ended."""


class _Residual:
    """The part of a job's `if:` only the run can tell, in Conveyor's syntax."""

    def __init__(self, env: Env, outputs_of: Mapping[str, Sequence[str]], prefix: str) -> None:
        self.env = env
        self.outputs_of = outputs_of
        self.prefix = prefix

    def late(self, node: Node) -> bool:
        if isinstance(node, Ctx):
            return node.name in _LATE
        if isinstance(node, Call):
            return node.func.lower() in STATUS or any(self.late(a) for a in node.args)
        if isinstance(node, Prop):
            return self.late(node.target) or (node.key is not None and self.late(node.key))
        if isinstance(node, Unary):
            return self.late(node.operand)
        if isinstance(node, Binary):
            return self.late(node.left) or self.late(node.right)
        return False

    def write(self, node: Node) -> str:
        if not self.late(node):
            return _literal(evaluate(node, self.env))
        if isinstance(node, Call) and node.func.lower() in STATUS:
            return f"{node.func.lower()}()"
        if isinstance(node, Call) and node.func.lower() in ("contains", "startswith", "endswith"):
            name = {"contains": "contains", "startswith": "startsWith", "endswith": "endsWith"}
            args = ", ".join(self.write(a) for a in node.args)
            return f"{name[node.func.lower()]}({args})"
        if isinstance(node, Unary):
            return f"!({self.write(node.operand)})"
        if isinstance(node, Binary):
            if node.op in ("<", "<=", ">", ">="):
                raise ExprError(f"'{node.op}' on a needed job's result or output", node.offset)
            return f"({self.write(node.left)} {node.op} {self.write(node.right)})"
        path = path_of(node)
        if path is not None and len(path) == 2 and path[0] == "matrix":
            return f"matrix.{path[1]}"
        if path is not None and len(path) == 3 and path[0] == "needs" and path[2] == "result":
            return f"needs.{self.prefix}{path[1]}.result"
        if path is not None and len(path) == 4 and path[0] == "needs" and path[2] == "outputs":
            return f"needs.{self.prefix}{path[1]}.values.{path[3]}"
        raise ExprError(
            "only matrix.NAME, needs.JOB.result and needs.JOB.outputs.NAME can be read "
            "in a job's if: when run locally",
            node.offset,
        )


def path_of(node: Node) -> list[str] | None:
    """`github.event.name` as ['github', 'event', 'name']; None for anything else."""
    if isinstance(node, Ctx):
        return [node.name]
    if isinstance(node, Prop) and isinstance(node.key, Lit) and isinstance(node.key.value, str):
        head = path_of(node.target)
        return None if head is None else [*head, node.key.value]
    return None


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return text(value)
    if isinstance(value, list | dict):
        return _literal(json.dumps(value))
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def residual(
    source: str, env: Env, outputs_of: Mapping[str, Sequence[str]], prefix: str = ""
) -> str | None:
    """A job's `if:` with every static context (github, inputs, vars, matrix, env)
    evaluated now, written in Conveyor's syntax; None when it is plain `success()`.
    `prefix`: what the jobs of a called workflow are named under (`caller.`).
    Raises ExprError for what cannot be carried over."""
    node = parse(condition(source))
    out = _Residual(env, outputs_of, prefix).write(node)
    # Conveyor too implies success() where no status function is called.
    return None if out in ("true", "success()") else out
